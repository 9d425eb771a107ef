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
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/json.hpp"
#include "messages/operations.hpp"
#include "messages/settings.hpp"

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
  using totals = window_totals;

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
  /// The condition of an alert that fired no longer holds ("resolved"),
  /// rather than a firing ("firing").
  bool resolved = false;

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
  /// before `s.now` (then it counts as suppressed). Then a `resolved` alert
  /// for each (rule, subject) that fired and whose condition no longer
  /// holds (once per firing). A reload makes new rules: what fired before
  /// it does not resolve.
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
  /// Adds `a` to the bounded history.
  void remember(const alert& a);

  alert_config cfg_;
  std::vector<rule_stats> stats_; ///< Parallel to `cfg_.rules`.
  /// (rule, subject) -> when it last fired.
  std::map<std::pair<std::string, std::string>, clock::time_point> last_fired_;
  /// (rule, subject) that fired and have not resolved, with the firing.
  std::map<std::pair<std::string, std::string>, alert> firing_;
  /// Those whose condition held in the current evaluation.
  std::set<std::pair<std::string, std::string>> holding_;
  std::deque<alert> history_;
};

} // namespace bulwark
