// Admission by capacity: a bounded priority queue of calls waiting for a
// worker, with aging (waiting work rises in priority), per-lane dispatch
// limits decided by the caller, load shedding and wait estimates. A pure
// data structure driven by explicit time points; the actor in front of it
// maps entry ids to the calls themselves.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "messages/json.hpp"
#include "messages/settings.hpp"

namespace bulwark {

/// Queue counters since construction.
struct queue_counters {
  uint64_t pushed = 0; ///< Accepted.
  uint64_t popped = 0; ///< Handed out to run.
  uint64_t refused = 0; ///< Refused on push (full, or LOW while shedding).
  uint64_t shed = 0; ///< Evicted to make room for more urgent work.
  uint64_t expired = 0; ///< Removed by `expire` after their deadline.
  uint64_t removed = 0; ///< Removed by `remove` (cancelled).
};

class priority_queue_core {
public:
  using clock = std::chrono::steady_clock;

  explicit priority_queue_core(queue_config cfg = {}) : cfg_(cfg) {}

  // -- admission ------------------------------------------------------------

  struct push_result {
    bool accepted = false;
    /// A queued entry evicted to make room; the caller answers it with an
    /// error.
    std::optional<uint64_t> shed;
    /// For a refused push: when trying again may succeed (at least 1 s).
    std::chrono::milliseconds retry_after{0};
  };

  /// Queues entry `id` (unique among queued entries; a duplicate is refused).
  /// When full, an incoming entry evicts the most recently queued entry of
  /// the lowest priority present below its own; with nothing below it, it is
  /// refused. `not_before`: the entry must not run earlier (a delay from the
  /// rate limiter). `deadline`: `expire` drops it after this.
  push_result push(uint64_t id, priority prio, std::string lane, clock::time_point now, clock::time_point not_before,
                   clock::time_point deadline);

  /// Degraded mode: while on, new LOW work is refused even when there is
  /// room. Queued LOW work stays.
  void set_shed_low(bool on) noexcept { shed_low_ = on; }
  /// New bounds (a reload): entries queued beyond a lower capacity stay and
  /// run; new ones are refused until the queue is below it.
  void reconfigure(queue_config cfg) noexcept { cfg_ = cfg; }
  bool shed_low() const noexcept { return shed_low_; }

  // -- dispatch -------------------------------------------------------------

  /// Removes and returns the entry to run next: among entries that are ready
  /// (`not_before <= now`) and whose lane `can_run`, the highest effective
  /// priority, oldest first. The effective priority rises one level per full
  /// `aging` period waited, up to critical. Call `expire` first: `pop` does
  /// not look at deadlines. `can_run` is asked at most once per lane.
  std::optional<uint64_t> pop(clock::time_point now, const std::function<bool(const std::string& lane)>& can_run);

  /// Removes a queued entry (its call was cancelled); false if unknown.
  bool remove(uint64_t id);

  /// Removes and returns the entries whose deadline has come (`deadline <=
  /// now`), earliest deadline first.
  std::vector<uint64_t> expire(clock::time_point now);

  /// The earliest `not_before` after `now` among queued entries: when a
  /// delayed entry becomes ready.
  std::optional<clock::time_point> next_ready(clock::time_point now) const;

  /// The earliest deadline among queued entries: when `expire` has work.
  std::optional<clock::time_point> next_deadline() const;

  // -- estimates ------------------------------------------------------------

  struct position_info {
    /// Entries that would run before it as of now, ignoring lanes.
    std::size_t position = 0;
    /// position x average service time / concurrency, or the time until its
    /// `not_before` if that is longer.
    std::chrono::milliseconds estimated_wait{0};
    /// Its effective priority now (after aging).
    priority prio = priority::normal;
  };

  /// Where a queued entry stands; nothing for an unknown id. Linear in the
  /// queue's size.
  std::optional<position_info> position(uint64_t id, clock::time_point now, std::size_t concurrency) const;

  /// Feeds the moving average of how long a dispatched call runs. The first
  /// sample replaces the initial guess of 10 ms; later ones weigh 1/5.
  void record_service_time(std::chrono::microseconds took);
  std::chrono::microseconds average_service_time() const noexcept;

  // -- inspection -----------------------------------------------------------

  /// Queued entries by (base) priority, critical first.
  std::array<std::size_t, 4> depth() const noexcept { return depth_; }
  std::size_t size() const noexcept { return entries_.size(); }
  /// size / capacity (1 for a zero capacity).
  double fill() const noexcept;
  const queue_counters& counters() const noexcept { return counters_; }
  const queue_config& config() const noexcept { return cfg_; }
  bool contains(uint64_t id) const noexcept { return entries_.count(id) > 0; }

  /// Depth by priority, fill, counters, the oldest wait and the average
  /// service time.
  json::value status(clock::time_point now) const;

private:
  struct entry {
    priority prio;
    std::string lane;
    clock::time_point enqueued;
    clock::time_point not_before;
    clock::time_point deadline;
    uint64_t seq; ///< Enqueue order.
  };
  /// Per lane, the entries of one priority in enqueue order: seq -> id.
  using level = std::map<std::string, std::map<uint64_t, uint64_t>, std::less<>>;

  unsigned effective(const entry& e, clock::time_point now) const noexcept;
  void erase(uint64_t id);
  std::chrono::milliseconds refusal_retry_after(priority prio, clock::time_point now) const;

  queue_config cfg_;
  bool shed_low_ = false;
  uint64_t next_seq_ = 1;
  std::unordered_map<uint64_t, entry> entries_;
  std::array<level, 4> levels_;
  std::array<std::size_t, 4> depth_{};
  std::multiset<clock::time_point> not_before_;
  std::multimap<clock::time_point, uint64_t> deadlines_;
  double average_us_ = 10'000;
  bool sampled_ = false;
  queue_counters counters_;
};

} // namespace bulwark
