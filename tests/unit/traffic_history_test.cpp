// The charts' history: a point per step from the difference of two
// cumulative readings, rates over the time that really passed, quantiles of
// that step's answers only, restarted counters, the bounded span, services
// that come and go, and a step change.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <string>

#include "config/metrics.hpp"
#include "config/traffic_history.hpp"

using namespace bulwark;
using namespace std::chrono_literals;
using metrics::traffic_history;
using metrics::traffic_reading;

namespace {

using clock_type = traffic_history::clock;

const std::chrono::system_clock::time_point wall0{std::chrono::seconds(1'800'000'000)};

/// A reading with `requests` answered, `errors` of them failures, and a
/// latency histogram holding `fast` answers of 1 ms and `slow` of 1 s.
traffic_reading reading(uint64_t requests, uint64_t errors, metrics::histogram& h, int fast, int slow) {
  for (int i = 0; i < fast; ++i)
    h.observe(0.001);
  for (int i = 0; i < slow; ++i)
    h.observe(1.0);
  return {requests, errors, h.snapshot()};
}

} // namespace

TEST_CASE("traffic history: a point is the difference of readings one step apart", "[history]") {
  traffic_history history(1s, 10s);
  metrics::histogram h;
  auto t0 = clock_type::now();
  CHECK(history.due(t0));
  history.record(t0, wall0, reading(100, 1, h, 100, 0), {});
  CHECK(history.overall_points().empty()); // the first reading only starts the series
  CHECK_FALSE(history.due(t0 + 999ms));
  CHECK(history.due(t0 + 1s));

  // 2 s passed (a late check): rates are over the 2 s, not the nominal step.
  history.record(t0 + 2s, wall0 + 2s, reading(300, 21, h, 0, 200), {});
  auto points = history.overall_points();
  REQUIRE(points.size() == 1);
  CHECK(points[0].requests_per_second == Approx(100.0));
  CHECK(points[0].errors_per_second == Approx(10.0));
  CHECK(points[0].at_ms == 1'800'000'002'000);
  // Only this step's 200 slow answers count, not the 100 fast ones before.
  REQUIRE(points[0].p50);
  CHECK(*points[0].p50 > 0.5);
  CHECK(*points[0].p99 >= *points[0].p50);

  // A step without answers has no quantiles.
  history.record(t0 + 3s, wall0 + 3s, reading(300, 21, h, 0, 0), {});
  points = history.overall_points();
  REQUIRE(points.size() == 2);
  CHECK(points[1].requests_per_second == 0);
  CHECK_FALSE(points[1].p50);
  CHECK(history.to_json()["overall"]["p50Seconds"].as_array()[1].is_null());
}

TEST_CASE("traffic history: a restarted count starts from zero, and the span bounds the points", "[history]") {
  traffic_history history(1s, 5s);
  metrics::histogram h;
  auto t0 = clock_type::now();
  history.record(t0, wall0, reading(1000, 0, h, 0, 0), {});
  // The counts fell (a component restarted): what is there is new.
  history.record(t0 + 1s, wall0 + 1s, reading(7, 0, h, 0, 0), {});
  REQUIRE(history.overall_points().size() == 1);
  CHECK(history.overall_points()[0].requests_per_second == Approx(7.0));
  for (int i = 2; i < 20; ++i)
    history.record(t0 + i * 1s, wall0 + i * 1s, reading(7 + i, 0, h, 0, 0), {});
  auto points = history.overall_points();
  CHECK(points.size() == 5); // 5 s of 1 s steps
  CHECK(points.back().at_ms - points.front().at_ms == 4000);
}

TEST_CASE("traffic history: per-service series; a service gone for a span is forgotten", "[history]") {
  traffic_history history(1s, 3s);
  metrics::histogram overall, a, b;
  auto t0 = clock_type::now();
  auto at = [&](int s) { return t0 + s * 1s; };
  auto wall = [&](int s) { return wall0 + s * 1s; };
  history.record(at(0), wall(0), reading(0, 0, overall, 0, 0),
                 {{"a", reading(0, 0, a, 0, 0)}, {"b", reading(0, 0, b, 0, 0)}});
  history.record(at(1), wall(1), reading(0, 0, overall, 0, 0),
                 {{"a", reading(50, 5, a, 50, 0)}, {"b", reading(20, 0, b, 0, 20)}});
  auto j = history.to_json();
  CHECK(j["services"]["a"]["requestsPerSecond"].as_array()[0].as_double() == Approx(50.0));
  CHECK(j["services"]["a"]["errorsPerSecond"].as_array()[0].as_double() == Approx(5.0));
  CHECK(j["services"]["b"]["p50Seconds"].as_array()[0].as_double() > 0.5);
  CHECK(j["services"]["a"]["p50Seconds"].as_array()[0].as_double() < 0.01);
  CHECK(j["stepSeconds"].as_double() == 1.0);
  CHECK(j["spanSeconds"].as_double() == 3.0);
  // b is removed: it keeps its points for a span, then goes.
  history.record(at(2), wall(2), reading(0, 0, overall, 0, 0), {{"a", reading(50, 5, a, 0, 0)}});
  CHECK(history.to_json()["services"].find("b") != nullptr);
  history.record(at(5), wall(5), reading(0, 0, overall, 0, 0), {{"a", reading(50, 5, a, 0, 0)}});
  CHECK(history.to_json()["services"].find("b") == nullptr);
  CHECK(history.to_json()["services"]["a"]["t"].as_array().size() == 3);
}

TEST_CASE("traffic history: a new step drops the points that would not line up", "[history]") {
  traffic_history history(1s, 60s);
  metrics::histogram h;
  auto t0 = clock_type::now();
  history.record(t0, wall0, reading(0, 0, h, 0, 0), {});
  history.record(t0 + 1s, wall0 + 1s, reading(10, 0, h, 0, 0), {});
  REQUIRE(history.overall_points().size() == 1);
  history.set_step(1s);
  CHECK(history.overall_points().size() == 1); // the same step keeps them
  history.set_step(5s);
  CHECK(history.overall_points().empty());
  CHECK(history.to_json()["stepSeconds"].as_double() == 5.0);
  CHECK_FALSE(history.due(t0 + 4s));
  CHECK(history.due(t0 + 6s));
  // The series goes on from its last reading.
  history.record(t0 + 6s, wall0 + 6s, reading(60, 0, h, 0, 0), {});
  REQUIRE(history.overall_points().size() == 1);
  CHECK(history.overall_points()[0].requests_per_second == Approx(10.0));
}
