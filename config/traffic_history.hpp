// The recent past of the traffic, for the admin page's charts: requests/s,
// errors/s, p50 and p99 latency, overall and per downstream service, one
// point per step over a fixed span (15 minutes by default).
//
// The health supervisor feeds it the cumulative counts and latency
// histograms it reads anyway; a point is the difference between two such
// readings one step apart. It lives apart from that actor (the runtime owns
// it) so that a restarted health supervisor does not erase the charts, and
// the admin API reads it under its own lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "config/metrics.hpp"
#include "messages/json.hpp"

namespace bulwark::metrics {

/// Cumulative counts of one series at one moment.
struct traffic_reading {
  uint64_t requests = 0;
  uint64_t errors = 0;
  histogram_snapshot latency;
};

/// One step's worth of traffic.
struct traffic_point {
  /// Unix time (ms) at which the step ended.
  int64_t at_ms = 0;
  double requests_per_second = 0;
  double errors_per_second = 0;
  /// Latency quantiles (seconds) of the requests answered in the step;
  /// empty when none was.
  std::optional<double> p50;
  std::optional<double> p99;
};

class traffic_history {
public:
  using clock = std::chrono::steady_clock;

  explicit traffic_history(std::chrono::milliseconds step = std::chrono::seconds(5),
                           std::chrono::milliseconds span = std::chrono::minutes(15));

  /// A new step length; the points kept so far are dropped when it differs
  /// (they would not line up with new ones).
  void set_step(std::chrono::milliseconds step);

  /// True when a reading taken at `now` would end a step: the caller reads
  /// the (costlier) histograms only then.
  bool due(clock::time_point now) const;

  /// Ends a step at `now` (`wall` is the same moment on the wall clock):
  /// each series gets the difference between these readings and the ones
  /// it saw last. The first reading of a series only starts it. A count
  /// lower than the last one (a restarted component) counts from zero. A
  /// service absent from `services` gets no point; one without a point for
  /// a whole span is forgotten.
  void record(clock::time_point now, std::chrono::system_clock::time_point wall, const traffic_reading& overall,
              const std::map<std::string, traffic_reading>& services);

  /// `{stepSeconds, spanSeconds, overall: SERIES, services: {name: SERIES}}`
  /// where SERIES is `{t: [unix ms], requestsPerSecond: [], errorsPerSecond:
  /// [], p50Seconds: [], p99Seconds: []}`, oldest first; a quantile of a
  /// step without requests is null.
  json::value to_json() const;

  /// The points of the overall series (tests).
  std::deque<traffic_point> overall_points() const;

private:
  struct series {
    std::optional<traffic_reading> last;
    clock::time_point last_at;
    std::deque<traffic_point> points;
  };

  void step_series(series& s, clock::time_point now, int64_t at_ms, const traffic_reading& r);

  mutable std::mutex mtx_;
  std::chrono::milliseconds step_;
  std::chrono::milliseconds span_;
  std::size_t capacity_;
  std::optional<clock::time_point> last_step_;
  series overall_;
  std::map<std::string, series> services_;
};

} // namespace bulwark::metrics
