#include "actors/queue.hpp"

#include <algorithm>
#include <cmath>

namespace bulwark {

using json::value;
using namespace std::chrono;

// -- helpers ------------------------------------------------------------------------

unsigned priority_queue_core::effective(const entry& e, clock::time_point now) const noexcept {
  auto base = static_cast<unsigned>(e.prio);
  if (cfg_.aging <= milliseconds(0) || now <= e.enqueued)
    return base;
  auto periods = static_cast<uint64_t>((now - e.enqueued) / cfg_.aging);
  return periods >= base ? 0 : base - static_cast<unsigned>(periods);
}

void priority_queue_core::erase(uint64_t id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return;
  auto& e = i->second;
  auto p = static_cast<std::size_t>(e.prio);
  if (auto lane = levels_[p].find(e.lane); lane != levels_[p].end()) {
    lane->second.erase(e.seq);
    if (lane->second.empty())
      levels_[p].erase(lane);
  }
  --depth_[p];
  if (auto nb = not_before_.find(e.not_before); nb != not_before_.end())
    not_before_.erase(nb);
  auto [from, to] = deadlines_.equal_range(e.deadline);
  for (auto d = from; d != to; ++d)
    if (d->second == id) {
      deadlines_.erase(d);
      break;
    }
  entries_.erase(i);
}

milliseconds priority_queue_core::refusal_retry_after(priority prio, clock::time_point) const {
  // Roughly: the work already queued at or above this priority has to drain
  // first. Base priorities keep this O(1) under overload, when it is asked
  // most; aging makes the true figure only larger.
  std::size_t ahead = 0;
  for (std::size_t p = 0; p <= static_cast<std::size_t>(prio); ++p)
    ahead += depth_[p];
  auto workers = static_cast<double>(std::max<std::size_t>(cfg_.concurrency, 1));
  auto us = average_us_ * static_cast<double>(std::max<std::size_t>(ahead, 1)) / workers;
  auto ms = milliseconds(static_cast<milliseconds::rep>(std::ceil(us / 1000.0)));
  return std::max(ms, milliseconds(1000));
}

// -- admission ------------------------------------------------------------------------

priority_queue_core::push_result priority_queue_core::push(uint64_t id, priority prio, std::string lane,
                                                           clock::time_point now, clock::time_point not_before,
                                                           clock::time_point deadline) {
  push_result r;
  auto refuse = [&] {
    ++counters_.refused;
    r.retry_after = refusal_retry_after(prio, now);
    return r;
  };
  if (entries_.count(id) > 0)
    return refuse();
  if (shed_low_ && prio == priority::low)
    return refuse();
  if (entries_.size() >= cfg_.capacity) {
    // Make room by shedding the youngest entry of the lowest priority below
    // this one: it has waited least and matters least.
    std::optional<uint64_t> victim;
    for (auto p = std::size_t{3}; p > static_cast<std::size_t>(prio) && !victim; --p) {
      uint64_t newest = 0;
      for (auto& [name, fifo] : levels_[p])
        if (!fifo.empty() && fifo.rbegin()->first > newest) {
          newest = fifo.rbegin()->first;
          victim = fifo.rbegin()->second;
        }
    }
    if (!victim)
      return refuse();
    erase(*victim);
    ++counters_.shed;
    r.shed = victim;
  }
  auto seq = next_seq_++;
  auto p = static_cast<std::size_t>(prio);
  levels_[p][lane].emplace(seq, id);
  ++depth_[p];
  not_before_.insert(not_before);
  if (deadline != clock::time_point::max())
    deadlines_.emplace(deadline, id);
  entries_.emplace(id, entry{prio, std::move(lane), now, not_before, deadline, seq});
  ++counters_.pushed;
  r.accepted = true;
  return r;
}

// -- dispatch ---------------------------------------------------------------------------

std::optional<uint64_t> priority_queue_core::pop(clock::time_point now,
                                                 const std::function<bool(const std::string& lane)>& can_run) {
  // Within one priority and lane the oldest ready entry is the best: it has
  // aged at least as much as any younger one and comes first in FIFO order.
  // So only the first ready entry of each (priority, lane) competes.
  std::unordered_map<std::string_view, bool> runnable;
  struct candidate {
    unsigned eff;
    uint64_t seq;
    uint64_t id;
  };
  std::optional<candidate> best;
  for (auto& lvl : levels_) {
    for (auto& [lane, fifo] : lvl) {
      for (auto& [seq, id] : fifo) {
        auto& e = entries_.at(id);
        if (e.not_before > now)
          continue;
        auto [known, inserted] = runnable.try_emplace(lane, false);
        if (inserted)
          known->second = can_run ? can_run(lane) : true;
        if (known->second) {
          auto eff = effective(e, now);
          if (!best || eff < best->eff || (eff == best->eff && seq < best->seq))
            best = candidate{eff, seq, id};
        }
        break;
      }
    }
  }
  if (!best)
    return std::nullopt;
  erase(best->id);
  ++counters_.popped;
  return best->id;
}

bool priority_queue_core::remove(uint64_t id) {
  if (entries_.count(id) == 0)
    return false;
  erase(id);
  ++counters_.removed;
  return true;
}

std::vector<uint64_t> priority_queue_core::expire(clock::time_point now) {
  std::vector<uint64_t> out;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto id = deadlines_.begin()->second;
    erase(id);
    out.push_back(id);
    ++counters_.expired;
  }
  return out;
}

std::optional<priority_queue_core::clock::time_point> priority_queue_core::next_ready(clock::time_point now) const {
  auto i = not_before_.upper_bound(now);
  if (i == not_before_.end())
    return std::nullopt;
  return *i;
}

std::optional<priority_queue_core::clock::time_point> priority_queue_core::next_deadline() const {
  if (deadlines_.empty())
    return std::nullopt;
  return deadlines_.begin()->first;
}

// -- estimates ------------------------------------------------------------------------

std::optional<priority_queue_core::position_info> priority_queue_core::position(uint64_t id, clock::time_point now,
                                                                                std::size_t concurrency) const {
  auto target = entries_.find(id);
  if (target == entries_.end())
    return std::nullopt;
  auto eff = effective(target->second, now);
  auto seq = target->second.seq;
  std::size_t ahead = 0;
  for (auto& [other_id, e] : entries_) {
    auto other = effective(e, now);
    if (other < eff || (other == eff && e.seq < seq))
      ++ahead;
  }
  position_info info;
  info.position = ahead;
  info.prio = static_cast<priority>(eff);
  auto us = static_cast<double>(ahead) * average_us_ / static_cast<double>(std::max<std::size_t>(concurrency, 1));
  info.estimated_wait = milliseconds(static_cast<milliseconds::rep>(std::llround(us / 1000.0)));
  if (target->second.not_before > now)
    info.estimated_wait = std::max(info.estimated_wait, ceil<milliseconds>(target->second.not_before - now));
  return info;
}

void priority_queue_core::record_service_time(microseconds took) {
  auto us = static_cast<double>(std::max<microseconds::rep>(took.count(), 0));
  if (!sampled_) {
    average_us_ = us;
    sampled_ = true;
    return;
  }
  average_us_ = 0.8 * average_us_ + 0.2 * us;
}

microseconds priority_queue_core::average_service_time() const noexcept {
  return microseconds(static_cast<microseconds::rep>(std::llround(average_us_)));
}

// -- inspection -------------------------------------------------------------------------

double priority_queue_core::fill() const noexcept {
  if (cfg_.capacity == 0)
    return 1.0;
  return static_cast<double>(entries_.size()) / static_cast<double>(cfg_.capacity);
}

json::value priority_queue_core::status(clock::time_point now) const {
  // Each lane's first entry is its oldest.
  std::optional<clock::time_point> oldest;
  for (auto& lvl : levels_)
    for (auto& [lane, fifo] : lvl)
      if (!fifo.empty()) {
        auto enq = entries_.at(fifo.begin()->second).enqueued;
        if (!oldest || enq < *oldest)
          oldest = enq;
      }
  long long oldest_ms = oldest && now > *oldest ? duration_cast<milliseconds>(now - *oldest).count() : 0;
  auto depth = value::make_object();
  for (std::size_t p = 0; p < depth_.size(); ++p)
    depth.set(to_string(static_cast<priority>(p)), static_cast<unsigned long long>(depth_[p]));
  return value::make_object({{"size", static_cast<unsigned long long>(entries_.size())},
                             {"capacity", static_cast<unsigned long long>(cfg_.capacity)},
                             {"fill", fill()},
                             {"depth", std::move(depth)},
                             {"shedLow", shed_low_},
                             {"agingMs", static_cast<long long>(cfg_.aging.count())},
                             {"averageServiceMs", average_us_ / 1000.0},
                             {"oldestWaitMs", oldest_ms},
                             {"pushed", static_cast<unsigned long long>(counters_.pushed)},
                             {"popped", static_cast<unsigned long long>(counters_.popped)},
                             {"refused", static_cast<unsigned long long>(counters_.refused)},
                             {"shed", static_cast<unsigned long long>(counters_.shed)},
                             {"expired", static_cast<unsigned long long>(counters_.expired)},
                             {"removed", static_cast<unsigned long long>(counters_.removed)}});
}

} // namespace bulwark
