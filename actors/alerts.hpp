// Alerting on Bulwark's own health: a sliding window of request and cache
// counts, and the rules that turn a health sample into alerts, with a
// cooldown per (rule, subject) so that a lasting condition alerts once per
// cooldown rather than once per sample. Both are pure state machines driven
// by explicit time points, so tests can check them to the nanosecond.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/json.hpp"

namespace bulwark {

// -- sliding window -------------------------------------------------------------------

/// Counts of requests, errors, cache lookups and hits over the last `span`,
/// kept in `slots` fixed slots of `span / slots` each, aligned to the clock's
/// epoch. A count stays in the sums while its slot lies within the last
/// `span`: for at least `span - slot width` and less than `span` after it
/// was added. Memory does not grow with traffic.
class sliding_window {
public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  /// The sums over the window.
  struct totals {
    uint64_t requests = 0;
    uint64_t errors = 0;
    uint64_t lookups = 0;
    uint64_t hits = 0;
  };

  explicit sliding_window(std::chrono::milliseconds span = std::chrono::minutes(5), std::size_t slots = 30);

  /// Adds `requests` finished requests at `now`, `errors` of them failed.
  void add_requests(time_point now, uint64_t requests, uint64_t errors);
  /// Adds `lookups` cache lookups at `now`, `hits` of them found an entry.
  void add_lookups(time_point now, uint64_t lookups, uint64_t hits);
  /// The sums over the slots within the last span at `now`.
  totals sum(time_point now) const;

  /// Span actually covered: the slot width times the slot count.
  clock::duration span() const noexcept { return width_ * static_cast<clock::rep>(slots_.size()); }
  clock::duration slot_width() const noexcept { return width_; }

private:
  struct slot {
    int64_t index = -1; ///< Which slot since the epoch; -1 for never used.
    totals counts;
  };

  int64_t index_of(time_point t) const noexcept;
  /// The slot of `now`, cleared if it held an older slot's counts; nullptr
  /// when `now` is already out of the window of a newer slot.
  slot* slot_at(time_point now);

  clock::duration width_;
  std::vector<slot> slots_;
};

// -- rules ------------------------------------------------------------------------------

/// One alert rule; `name` is its config key and says what it checks.
struct alert_rule {
  std::string name;
  bool enabled = true;
  /// Compared with the rule's value; see `default_alert_config`.
  double threshold = 0;
  /// Least number of events in the window for a rate to mean anything.
  uint64_t min_count = 0;
  /// After firing for a subject, the rule stays quiet for it this long.
  std::chrono::milliseconds cooldown{std::chrono::minutes(15)};
  std::string severity = "warning";
};

struct alert_config {
  std::vector<alert_rule> rules;
};

/// The rules Bulwark knows, with their defaults:
/// - `error_rate`: errors/requests over the window above 0.05, with at least
///   100 requests in it.
/// - `upstream_budget`: a service has used more than 0.9 of its rate budget
///   (one alert per service).
/// - `cache_hit_rate`: hits/lookups over the window below 0.6, with at least
///   50 lookups in it.
/// - `p95_latency`: the 95th percentile request latency above 2.0 seconds.
/// - `breaker_open`: a service's circuit breaker is open (one alert per
///   service; "critical"; has no threshold).
/// - `queue_fill`: the request queue more than 0.8 full.
/// Comparisons are strict: a value equal to the threshold does not fire.
/// Every cooldown is 15 minutes.
alert_config default_alert_config();

/// Sets `key` of the rule named `rule` to `value`. Keys: `threshold`,
/// `minCount` (a whole number; only for the rate rules), `cooldownSeconds`,
/// `enabled` (0 or 1). Returns why it cannot be set (unknown rule or key, a
/// value out of range), or an empty string when it was set.
std::string apply_alert_setting(alert_config& cfg, const std::string& rule, const std::string& key,
                                double value);

/// What the rules look at: one snapshot of Bulwark's health.
struct health_sample {
  /// Drives the cooldowns.
  std::chrono::steady_clock::time_point now;
  /// Stamped on the alerts.
  std::chrono::system_clock::time_point wall;
  /// Sums of the sliding window at `now`.
  sliding_window::totals window;
  /// The span `window` covers, for the messages.
  std::chrono::milliseconds window_span{std::chrono::minutes(5)};
  /// Service -> fraction of its rate budget used.
  std::map<std::string, double> upstream_usage;
  double p95_latency_seconds = 0;
  /// Services whose breaker is open.
  std::vector<std::string> open_breakers;
  /// Fraction of the request queue in use.
  double queue_fill = 0;
};

/// One firing of a rule.
struct alert {
  std::string rule;
  /// The service for per-service rules, else empty.
  std::string subject;
  std::string severity;
  /// For people, e.g. "error rate 7.5% over the last 5 minutes (150 of 2000
  /// requests), above 5%".
  std::string message;
  double value = 0;
  double threshold = 0;
  std::chrono::system_clock::time_point at;

  /// An object with every field; `at` as ISO-8601 UTC with milliseconds.
  json::value to_json() const;
};

/// Evaluates the rules on health samples and remembers what fired.
class alert_rules {
public:
  using clock = std::chrono::steady_clock;

  /// Most recent alerts kept in `history()`.
  static constexpr std::size_t history_limit = 500;

  /// Rules with names this class does not know are ignored.
  explicit alert_rules(alert_config cfg);

  /// The alerts that fire on `s`: each enabled rule whose condition holds,
  /// per subject, unless it fired for that subject less than its cooldown
  /// before `s.now` (then it counts as suppressed).
  std::vector<alert> evaluate(const health_sample& s);

  /// Fired alerts, oldest first, at most `history_limit`.
  const std::deque<alert>& history() const noexcept { return history_; }

  /// The rules with their settings, fired and suppressed counts and when
  /// each last fired, and the history's size.
  json::value status() const;

  const alert_config& config() const noexcept { return cfg_; }

private:
  struct rule_stats {
    uint64_t fired = 0;
    uint64_t suppressed = 0;
    bool ever_fired = false;
    std::chrono::system_clock::time_point last_fired{};
  };

  /// Fires `a` for rule `r` unless its subject is in cooldown.
  void consider(std::size_t r, const health_sample& s, alert a, std::vector<alert>& out);

  alert_config cfg_;
  std::vector<rule_stats> stats_; ///< Parallel to `cfg_.rules`.
  /// (rule, subject) -> when it last fired.
  std::map<std::pair<std::string, std::string>, clock::time_point> last_fired_;
  std::deque<alert> history_;
};

} // namespace bulwark
