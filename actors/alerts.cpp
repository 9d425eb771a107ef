#include "actors/alerts.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "config/log.hpp"
#include "messages/text.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

// -- sliding window -------------------------------------------------------------------

namespace {

constexpr int64_t never_used = std::numeric_limits<int64_t>::min();

} // namespace

sliding_window::sliding_window(milliseconds span, std::size_t slots) : slots_(std::max<std::size_t>(slots, 1)) {
  auto n = static_cast<clock::rep>(slots_.size());
  width_ = std::max<clock::duration>(duration_cast<clock::duration>(span) / n, clock::duration(1));
  for (auto& s : slots_)
    s.index = never_used;
}

int64_t sliding_window::index_of(time_point t) const noexcept {
  auto ticks = t.time_since_epoch().count();
  auto w = width_.count();
  auto q = ticks / w;
  if (ticks % w != 0 && ticks < 0)
    --q; // floor, so that slots stay aligned before the epoch too
  return static_cast<int64_t>(q);
}

sliding_window::slot* sliding_window::slot_at(time_point now) {
  auto k = index_of(now);
  auto n = static_cast<int64_t>(slots_.size());
  auto& s = slots_[static_cast<std::size_t>(((k % n) + n) % n)];
  if (s.index > k)
    return nullptr; // a newer slot took its place: `now` is beyond the span
  if (s.index < k)
    s = slot{k, totals{}};
  return &s;
}

void sliding_window::add_requests(time_point now, uint64_t requests, uint64_t errors) {
  if (auto* s = slot_at(now)) {
    s->counts.requests += requests;
    s->counts.errors += errors;
  }
}

void sliding_window::add_lookups(time_point now, uint64_t lookups, uint64_t hits) {
  if (auto* s = slot_at(now)) {
    s->counts.lookups += lookups;
    s->counts.hits += hits;
  }
}

sliding_window::totals sliding_window::sum(time_point now) const {
  auto k = index_of(now);
  auto n = static_cast<int64_t>(slots_.size());
  totals t;
  for (auto& s : slots_) {
    if (s.index == never_used || s.index > k || s.index <= k - n)
      continue;
    t.requests += s.counts.requests;
    t.errors += s.counts.errors;
    t.lookups += s.counts.lookups;
    t.hits += s.counts.hits;
  }
  return t;
}

// -- rules ------------------------------------------------------------------------------

namespace {

std::string trimmed(double x, int decimals) {
  return text::trimmed_number(x, decimals);
}

std::string percent(double fraction) {
  return trimmed(fraction * 100.0, 1) + "%";
}

std::string seconds_text(double s) {
  return trimmed(s, 3) + " s";
}

std::string plural(long long n, const char* unit) {
  return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
}

/// "5 minutes", "30 seconds", "1500 milliseconds".
std::string span_text(milliseconds span) {
  auto ms = span.count();
  if (ms != 0 && ms % 3'600'000 == 0)
    return plural(ms / 3'600'000, "hour");
  if (ms != 0 && ms % 60'000 == 0)
    return plural(ms / 60'000, "minute");
  if (ms % 1000 == 0)
    return plural(ms / 1000, "second");
  return plural(ms, "millisecond");
}

} // namespace

// -- alerts -----------------------------------------------------------------------------

value alert::to_json() const {
  // `value` here is the member; the JSON type needs its full name.
  return json::value::make_object({{"rule", rule},
                                   {"subject", subject},
                                   {"severity", severity},
                                   {"message", message},
                                   {"value", value},
                                   {"threshold", threshold},
                                   {"at", log::utc(at, log::time_digits::millis)},
                                   {"status", resolved ? "resolved" : "firing"}});
}

// -- evaluation -------------------------------------------------------------------------

alert_rules::alert_rules(alert_config cfg) : cfg_(std::move(cfg)), stats_(cfg_.rules.size()) {}

void alert_rules::consider(std::size_t r, const health_sample& s, alert a, std::vector<alert>& out) {
  auto& rule = cfg_.rules[r];
  auto& st = stats_[r];
  auto key = std::make_pair(rule.name, a.subject);
  holding_.insert(key);
  auto i = last_fired_.find(key);
  if (i != last_fired_.end() && s.now - i->second < rule.cooldown) {
    ++st.suppressed;
    return;
  }
  last_fired_[key] = s.now;
  ++st.fired;
  st.ever_fired = true;
  st.last_fired = s.wall;
  a.rule = rule.name;
  a.severity = rule.severity;
  a.threshold = rule.threshold;
  a.at = s.wall;
  firing_[key] = a;
  remember(a);
  out.push_back(std::move(a));
}

void alert_rules::remember(const alert& a) {
  history_.push_back(a);
  while (history_.size() > history_limit)
    history_.pop_front();
}

std::vector<alert> alert_rules::evaluate(const health_sample& s) {
  std::vector<alert> out;
  holding_.clear();
  auto over = " over the last " + span_text(s.window_span);
  for (std::size_t r = 0; r < cfg_.rules.size(); ++r) {
    auto& rule = cfg_.rules[r];
    if (!rule.enabled)
      continue;
    auto fire = [&](std::string subject, double v, std::string message) {
      alert a;
      a.subject = std::move(subject);
      a.value = v;
      a.message = std::move(message);
      consider(r, s, std::move(a), out);
    };
    auto& w = s.window;
    if (rule.name == "error_rate") {
      if (w.requests == 0 || w.requests < rule.min_count)
        continue;
      auto rate = static_cast<double>(w.errors) / static_cast<double>(w.requests);
      if (rate > rule.threshold)
        fire({}, rate,
             "error rate " + percent(rate) + over + " (" + std::to_string(w.errors) + " failures in "
               + std::to_string(w.requests) + " requests; callers' mistakes not counted), above "
               + percent(rule.threshold));
    } else if (rule.name == "cache_hit_rate") {
      if (w.lookups == 0 || w.lookups < rule.min_count)
        continue;
      auto rate = static_cast<double>(w.hits) / static_cast<double>(w.lookups);
      if (rate < rule.threshold)
        fire({}, rate,
             "cache hit rate " + percent(rate) + over + " (" + std::to_string(w.hits) + " of "
               + std::to_string(w.lookups) + " lookups), below " + percent(rule.threshold));
    } else if (rule.name == "upstream_budget") {
      for (auto& [service, used] : s.upstream_usage)
        if (used > rule.threshold)
          fire(service, used,
               "service " + service + " has used " + percent(used) + " of its rate budget, above "
                 + percent(rule.threshold));
    } else if (rule.name == "p95_latency") {
      auto p95 = s.p95_latency_seconds;
      if (p95 > rule.threshold)
        fire({}, p95, "p95 request latency " + seconds_text(p95) + ", above " + seconds_text(rule.threshold));
    } else if (rule.name == "breaker_open") {
      // A service listed twice is still one open breaker.
      for (auto& service : std::set<std::string>(s.open_breakers.begin(), s.open_breakers.end()))
        fire(service, 1.0, "the circuit breaker of service " + service + " is open");
    } else if (rule.name == "tool_changed") {
      for (auto& held : s.held_tools) {
        auto colon = held.find(':');
        fire(held, 1.0,
             "service " + held.substr(0, colon) + " changed the definition of its tool " + held.substr(colon + 1)
               + "; the change is held until an operator approves it");
      }
    } else if (rule.name == "queue_fill") {
      auto fill = s.queue_fill;
      if (fill > rule.threshold)
        fire({}, fill, "request queue " + percent(fill) + " full, above " + percent(rule.threshold));
    }
  }
  for (auto i = firing_.begin(); i != firing_.end();) {
    if (holding_.count(i->first)) {
      ++i;
      continue;
    }
    auto a = std::move(i->second);
    i = firing_.erase(i);
    a.resolved = true;
    a.at = s.wall;
    a.message = "resolved: " + a.message;
    remember(a);
    out.push_back(std::move(a));
  }
  return out;
}

value alert_rules::status() const {
  value rules = value::make_array();
  uint64_t fired = 0, suppressed = 0;
  for (std::size_t r = 0; r < cfg_.rules.size(); ++r) {
    auto& rule = cfg_.rules[r];
    auto& st = stats_[r];
    fired += st.fired;
    suppressed += st.suppressed;
    rules.push_back(value::make_object(
      {{"name", rule.name},
       {"enabled", rule.enabled},
       {"severity", rule.severity},
       {"threshold", rule.threshold},
       {"minCount", static_cast<unsigned long long>(rule.min_count)},
       {"cooldownSeconds", static_cast<double>(rule.cooldown.count()) / 1000.0},
       {"fired", static_cast<unsigned long long>(st.fired)},
       {"suppressed", static_cast<unsigned long long>(st.suppressed)},
       {"lastFiredAt", st.ever_fired ? value(log::utc(st.last_fired, log::time_digits::millis)) : value()}}));
  }
  return value::make_object({{"rules", std::move(rules)},
                             {"fired", static_cast<unsigned long long>(fired)},
                             {"suppressed", static_cast<unsigned long long>(suppressed)},
                             {"history", static_cast<unsigned long long>(history_.size())}});
}

} // namespace bulwark
