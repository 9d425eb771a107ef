// Alerting as pure state machines: the sliding window and the alert rules are
// driven by explicit time points, so expiry and cooldowns are checked at the
// exact boundary (one nanosecond or millisecond either side).
#include <catch2/catch.hpp>

#include <algorithm>

#include <cstdio>

#include "actors/alerts.hpp"
#include "config/log.hpp"

using namespace bulwark;
using json::value;
using namespace std::chrono_literals;
using std::chrono::steady_clock;
using std::chrono::system_clock;

namespace {

// One hour after the epoch: a whole number of 10 s slots.
const steady_clock::time_point t0 = steady_clock::time_point{} + 1h;
// 2026-07-28T09:30:00.250Z
const system_clock::time_point wall0 = system_clock::time_point{} + 1785231000s + 250ms;

health_sample sample_at(steady_clock::time_point now) {
  health_sample s;
  s.now = now;
  s.wall = wall0 + std::chrono::duration_cast<system_clock::duration>(now - t0);
  return s;
}

health_sample requests(uint64_t n, uint64_t errors, steady_clock::time_point now = t0) {
  auto s = sample_at(now);
  s.window.requests = n;
  s.window.errors = errors;
  return s;
}

health_sample lookups(uint64_t n, uint64_t hits) {
  auto s = sample_at(t0);
  s.window.lookups = n;
  s.window.hits = hits;
  return s;
}

/// What fires on `s` for rules that have never fired before.
std::vector<alert> fresh(const health_sample& s, alert_config cfg = default_alert_config()) {
  alert_rules rules(std::move(cfg));
  return rules.evaluate(s);
}

const value& rule_status(const value& status, const std::string& name) {
  for (auto& r : status["rules"].as_array())
    if (r["name"].as_string() == name)
      return r;
  FAIL("no status for rule " << name);
  static value none;
  return none;
}

} // namespace

// -- sliding window -------------------------------------------------------------------

TEST_CASE("sliding window: a count stays for the span and is forgotten exactly when its slot leaves it", "[alerts]") {
  sliding_window w; // 5 minutes in 30 slots of 10 s
  CHECK(w.span() == 5min);
  CHECK(w.slot_width() == 10s);

  w.add_requests(t0, 10, 2);
  w.add_lookups(t0, 8, 5);
  auto at_start = w.sum(t0);
  CHECK(at_start.requests == 10);
  CHECK(at_start.errors == 2);
  CHECK(at_start.lookups == 8);
  CHECK(at_start.hits == 5);

  auto last = w.sum(t0 + 5min - 1ns);
  CHECK(last.requests == 10);
  CHECK(last.errors == 2);
  CHECK(last.lookups == 8);
  CHECK(last.hits == 5);

  auto gone = w.sum(t0 + 5min);
  CHECK(gone.requests == 0);
  CHECK(gone.errors == 0);
  CHECK(gone.lookups == 0);
  CHECK(gone.hits == 0);

  // Later in the same slot: leaves with the slot, not a span after it came.
  w.add_requests(t0 + 9s, 1, 0);
  CHECK(w.sum(t0 + 5min - 1ns).requests == 11);
  CHECK(w.sum(t0 + 5min).requests == 0);

  // The next slot leaves one slot width later.
  w.add_requests(t0 + 10s, 4, 1);
  CHECK(w.sum(t0 + 5min).requests == 4);
  CHECK(w.sum(t0 + 5min + 10s - 1ns).requests == 4);
  CHECK(w.sum(t0 + 5min + 10s).requests == 0);
}

TEST_CASE("sliding window: sums every slot of the span; reused slots start empty", "[alerts]") {
  sliding_window w(1min, 6); // slots of 10 s
  for (int i = 0; i < 6; ++i)
    w.add_requests(t0 + i * 10s, 1, i % 2);
  CHECK(w.sum(t0 + 55s).requests == 6);
  CHECK(w.sum(t0 + 55s).errors == 3);
  CHECK(w.sum(t0 + 60s).requests == 5); // the first slot left
  CHECK(w.sum(t0 + 60s).errors == 3);
  CHECK(w.sum(t0 + 70s).requests == 4);
  CHECK(w.sum(t0 + 70s).errors == 2);

  // t0 + 60s lands in the ring position of t0: the old counts are dropped.
  w.add_lookups(t0, 100, 100);
  w.add_lookups(t0 + 60s, 7, 3);
  auto s = w.sum(t0 + 60s);
  CHECK(s.lookups == 7);
  CHECK(s.hits == 3);
  CHECK(s.requests == 5);

  // A long gap forgets everything.
  CHECK(w.sum(t0 + 1h).requests == 0);
  CHECK(w.sum(t0 + 1h).lookups == 0);
  w.add_requests(t0 + 1h, 2, 1);
  CHECK(w.sum(t0 + 1h).requests == 2);
  CHECK(w.sum(t0 + 1h).lookups == 0);

  // A count arriving for a time already beyond the span is not counted.
  w.add_requests(t0 + 1h - 1min, 50, 50);
  CHECK(w.sum(t0 + 1h).requests == 2);
}

// -- rules at their thresholds ----------------------------------------------------------

TEST_CASE("default alert config: the seven rules with their thresholds, counts and 15 minute cooldowns", "[alerts]") {
  auto cfg = default_alert_config();
  REQUIRE(cfg.rules.size() == 7);
  struct expected {
    const char* name;
    double threshold;
    uint64_t min_count;
    const char* severity;
  };
  expected want[] = {{"error_rate", 0.05, 100, "warning"},   {"upstream_budget", 0.9, 0, "warning"},
                     {"cache_hit_rate", 0.6, 50, "warning"}, {"p95_latency", 2.0, 0, "warning"},
                     {"breaker_open", 0, 0, "critical"},     {"queue_fill", 0.8, 0, "warning"},
                     {"tool_changed", 0, 0, "warning"}};
  for (std::size_t i = 0; i < 7; ++i) {
    INFO(want[i].name);
    CHECK(cfg.rules[i].name == want[i].name);
    CHECK(cfg.rules[i].enabled);
    CHECK(cfg.rules[i].threshold == want[i].threshold);
    CHECK(cfg.rules[i].min_count == want[i].min_count);
    CHECK(cfg.rules[i].severity == want[i].severity);
    CHECK(cfg.rules[i].cooldown == 15min);
  }
}

TEST_CASE("tool_changed fires per held change while it is held, then resolves", "[alerts]") {
  alert_rules rules(default_alert_config());
  auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  health_sample s;
  s.now = t0;
  s.held_tools = {"crm:search", "crm:delete"};
  auto fired = rules.evaluate(s);
  REQUIRE(fired.size() == 2);
  CHECK(fired[0].rule == "tool_changed");
  CHECK(fired[0].subject == "crm:search");
  CHECK(fired[0].message
        == "service crm changed the definition of its tool search; the change is held until an operator approves it");
  s.now = t0 + 1s;
  CHECK(rules.evaluate(s).empty()); // still held: no second alert
  s.held_tools = {"crm:search"};
  s.now = t0 + 2s;
  auto resolved = rules.evaluate(s);
  REQUIRE(resolved.size() == 1);
  CHECK(resolved[0].resolved);
  CHECK(resolved[0].subject == "crm:delete");
}

TEST_CASE("error_rate fires above 5% with at least 100 requests", "[alerts]") {
  CHECK(fresh(requests(2000, 100)).empty()); // exactly 5%
  CHECK(fresh(requests(0, 0)).empty());
  CHECK(fresh(requests(99, 99)).empty()); // all failed, but too few requests

  auto at_count = fresh(requests(100, 6));
  REQUIRE(at_count.size() == 1);
  CHECK(at_count[0].rule == "error_rate");
  CHECK(at_count[0].value == Approx(0.06));

  auto a = fresh(requests(2000, 150));
  REQUIRE(a.size() == 1);
  CHECK(a[0].rule == "error_rate");
  CHECK(a[0].subject.empty());
  CHECK(a[0].severity == "warning");
  CHECK(a[0].value == Approx(0.075));
  CHECK(a[0].threshold == 0.05);
  CHECK(a[0].at == wall0);
  CHECK(a[0].message
        == "error rate 7.5% over the last 5 minutes (150 failures in 2000 requests; callers' mistakes not counted), "
           "above 5%");

  auto s = requests(2000, 150);
  s.window_span = 1min;
  auto b = fresh(s);
  REQUIRE(b.size() == 1);
  CHECK(b[0].message
        == "error rate 7.5% over the last 1 minute (150 failures in 2000 requests; callers' mistakes not counted), "
           "above 5%");
}

TEST_CASE("cache_hit_rate fires below 60% with at least 50 lookups", "[alerts]") {
  CHECK(fresh(lookups(50, 30)).empty()); // exactly 60%
  CHECK(fresh(lookups(49, 0)).empty()); // too few lookups
  CHECK(fresh(lookups(0, 0)).empty());

  auto a = fresh(lookups(50, 29));
  REQUIRE(a.size() == 1);
  CHECK(a[0].rule == "cache_hit_rate");
  CHECK(a[0].value == Approx(0.58));
  CHECK(a[0].message == "cache hit rate 58% over the last 5 minutes (29 of 50 lookups), below 60%");
}

TEST_CASE("upstream_budget fires per service above 90% used", "[alerts]") {
  auto s = sample_at(t0);
  s.upstream_usage = {{"at-limit", 0.9}, {"over", 0.95}, {"idle", 0.1}};
  auto a = fresh(s);
  REQUIRE(a.size() == 1);
  CHECK(a[0].rule == "upstream_budget");
  CHECK(a[0].subject == "over");
  CHECK(a[0].value == 0.95);
  CHECK(a[0].message == "service over has used 95% of its rate budget, above 90%");
}

TEST_CASE("p95_latency fires above 2 seconds", "[alerts]") {
  auto s = sample_at(t0);
  s.p95_latency_seconds = 2.0;
  CHECK(fresh(s).empty());
  s.p95_latency_seconds = 2.5;
  auto a = fresh(s);
  REQUIRE(a.size() == 1);
  CHECK(a[0].rule == "p95_latency");
  CHECK(a[0].value == 2.5);
  CHECK(a[0].message == "p95 request latency 2.5 s, above 2 s");
}

TEST_CASE("queue_fill fires above 80% full", "[alerts]") {
  auto s = sample_at(t0);
  s.queue_fill = 0.8;
  CHECK(fresh(s).empty());
  s.queue_fill = 0.81;
  auto a = fresh(s);
  REQUIRE(a.size() == 1);
  CHECK(a[0].rule == "queue_fill");
  CHECK(a[0].message == "request queue 81% full, above 80%");
}

TEST_CASE("breaker_open fires once per open breaker, critical", "[alerts]") {
  auto s = sample_at(t0);
  CHECK(fresh(s).empty());
  s.open_breakers = {"search", "files", "search"};
  auto a = fresh(s);
  REQUIRE(a.size() == 2);
  CHECK(a[0].subject == "files");
  CHECK(a[1].subject == "search");
  for (auto& x : a) {
    CHECK(x.rule == "breaker_open");
    CHECK(x.severity == "critical");
  }
  CHECK(a[1].message == "the circuit breaker of service search is open");
}

TEST_CASE("a healthy sample fires nothing; a sick one fires every rule", "[alerts]") {
  auto s = sample_at(t0);
  s.window = {1000, 10, 1000, 900};
  s.upstream_usage = {{"a", 0.5}};
  s.p95_latency_seconds = 0.3;
  s.queue_fill = 0.1;
  CHECK(fresh(s).empty());

  s.window = {1000, 100, 1000, 100};
  s.upstream_usage = {{"a", 1.0}};
  s.p95_latency_seconds = 3;
  s.open_breakers = {"a"};
  s.queue_fill = 1.0;
  auto a = fresh(s);
  REQUIRE(a.size() == 6);
  std::vector<std::string> names;
  for (auto& x : a)
    names.push_back(x.rule);
  CHECK(names
        == std::vector<std::string>{"error_rate", "upstream_budget", "cache_hit_rate", "p95_latency", "breaker_open",
                                    "queue_fill"});
}

// -- cooldown, subjects, history --------------------------------------------------------

TEST_CASE("cooldown suppresses a rule until exactly the cooldown passed, then it fires again", "[alerts]") {
  alert_rules rules(default_alert_config());
  CHECK(rules.evaluate(requests(1000, 100, t0)).size() == 1);
  CHECK(rules.evaluate(requests(1000, 100, t0 + 1min)).empty());
  CHECK(rules.evaluate(requests(1000, 100, t0 + 15min - 1ms)).empty());
  // A healthy sample resolves the firing; it neither counts as suppressed
  // nor resets the cooldown.
  auto resolved = rules.evaluate(requests(1000, 1, t0 + 15min - 1ms));
  REQUIRE(resolved.size() == 1);
  CHECK(resolved[0].resolved);

  auto again = rules.evaluate(requests(1000, 100, t0 + 15min));
  REQUIRE(again.size() == 1);
  CHECK(again[0].at == wall0 + 15min);
  // The cooldown now runs from the second firing.
  CHECK(rules.evaluate(requests(1000, 100, t0 + 30min - 1ns)).empty());
  CHECK(rules.evaluate(requests(1000, 100, t0 + 30min)).size() == 1);

  auto st = rules.status();
  auto& er = rule_status(st, "error_rate");
  CHECK(er["fired"].as_int() == 3);
  CHECK(er["suppressed"].as_int() == 3);
  CHECK(er["lastFiredAt"].as_string() == "2026-07-28T10:00:00.250Z");
  CHECK(rule_status(st, "queue_fill")["fired"].as_int() == 0);
  CHECK(rule_status(st, "queue_fill")["lastFiredAt"].is_null());
  CHECK(st["fired"].as_int() == 3);
  CHECK(st["suppressed"].as_int() == 3);
  CHECK(st["history"].as_int() == 4); // three firings and a resolution
  CHECK(rules.history().size() == 4);
}

TEST_CASE("a firing resolves once, when its condition stops holding; per subject", "[alerts]") {
  alert_rules rules(default_alert_config());
  auto open = [](std::vector<std::string> services, steady_clock::time_point at) {
    auto s = sample_at(at);
    s.open_breakers = std::move(services);
    return s;
  };
  REQUIRE(rules.evaluate(open({"a", "b"}, t0)).size() == 2);
  // Still open, within the cooldown: neither fires nor resolves.
  CHECK(rules.evaluate(open({"a", "b"}, t0 + 1s)).empty());
  // b closed: b resolves, a stays.
  auto r = rules.evaluate(open({"a"}, t0 + 2s));
  REQUIRE(r.size() == 1);
  CHECK(r[0].rule == "breaker_open");
  CHECK(r[0].subject == "b");
  CHECK(r[0].resolved);
  CHECK(r[0].at == wall0 + 2s);
  CHECK(r[0].message == "resolved: the circuit breaker of service b is open");
  CHECK(r[0].to_json()["status"].as_string() == "resolved");
  CHECK(rules.history().back().resolved);
  // Once only.
  CHECK(rules.evaluate(open({"a"}, t0 + 3s)).empty());
  // b opens again within its cooldown: suppressed, so nothing resolves
  // when it closes again.
  CHECK(rules.evaluate(open({"a", "b"}, t0 + 4s)).empty());
  r = rules.evaluate(open({}, t0 + 5s));
  REQUIRE(r.size() == 1);
  CHECK(r[0].subject == "a");
  CHECK(r[0].resolved);
  // A firing says so.
  auto fired = rules.evaluate(open({"c"}, t0 + 6s));
  REQUIRE(fired.size() == 1);
  CHECK_FALSE(fired[0].resolved);
  CHECK(fired[0].to_json()["status"].as_string() == "firing");
}

TEST_CASE("a configured cooldown is honoured to the millisecond", "[alerts]") {
  auto cfg = default_alert_config();
  REQUIRE(apply_alert_setting(cfg, "queue_fill", "cooldownSeconds", 90.5).empty());
  alert_rules rules(cfg);
  auto full = [](steady_clock::time_point now) {
    auto s = sample_at(now);
    s.queue_fill = 0.9;
    return s;
  };
  CHECK(rules.evaluate(full(t0)).size() == 1);
  CHECK(rules.evaluate(full(t0 + 90500ms - 1ms)).empty());
  CHECK(rules.evaluate(full(t0 + 90500ms)).size() == 1);
}

TEST_CASE("per-service rules keep a cooldown per service", "[alerts]") {
  alert_rules rules(default_alert_config());
  auto open = [](steady_clock::time_point now, std::vector<std::string> services) {
    auto s = sample_at(now);
    s.open_breakers = std::move(services);
    return s;
  };
  auto subjects = [](const std::vector<alert>& as) {
    std::vector<std::string> out;
    for (auto& a : as)
      out.push_back(a.subject);
    return out;
  };
  CHECK(subjects(rules.evaluate(open(t0, {"a"}))) == std::vector<std::string>{"a"});
  CHECK(subjects(rules.evaluate(open(t0 + 1min, {"a", "b"}))) == std::vector<std::string>{"b"});
  CHECK(subjects(rules.evaluate(open(t0 + 15min, {"a", "b"}))) == std::vector<std::string>{"a"});
  CHECK(subjects(rules.evaluate(open(t0 + 16min, {"a", "b"}))) == std::vector<std::string>{"b"});

  // The budget rule too, and separately from the breaker rule for the same service.
  auto s = open(t0 + 16min, {"a"});
  s.upstream_usage = {{"a", 0.99}, {"b", 0.2}};
  auto fired = rules.evaluate(s);
  REQUIRE(fired.size() == 2);
  CHECK(fired[0].rule == "upstream_budget");
  CHECK(fired[0].subject == "a");
  CHECK_FALSE(fired[0].resolved);
  // b's breaker closed: its alert resolves.
  CHECK(fired[1].rule == "breaker_open");
  CHECK(fired[1].subject == "b");
  CHECK(fired[1].resolved);
  s.now = t0 + 17min;
  s.upstream_usage = {{"a", 0.99}, {"b", 0.95}};
  fired = rules.evaluate(s);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0].subject == "b");

  auto st = rules.status();
  CHECK(rule_status(st, "breaker_open")["fired"].as_int() == 4);
  // a at 1, 16 and twice more at 16 and 17 minutes; b at 15 minutes.
  CHECK(rule_status(st, "breaker_open")["suppressed"].as_int() == 5);
  CHECK(rule_status(st, "upstream_budget")["fired"].as_int() == 2);
  CHECK(rule_status(st, "upstream_budget")["suppressed"].as_int() == 1);
}

TEST_CASE("disabled rules never fire", "[alerts]") {
  auto cfg = default_alert_config();
  REQUIRE(apply_alert_setting(cfg, "breaker_open", "enabled", 0).empty());
  alert_rules rules(cfg);
  auto s = sample_at(t0);
  s.open_breakers = {"a"};
  s.queue_fill = 0.9;
  auto a = rules.evaluate(s);
  REQUIRE(a.size() == 1);
  CHECK(a[0].rule == "queue_fill");
  auto st = rules.status();
  CHECK_FALSE(rule_status(st, "breaker_open")["enabled"].as_bool());
  CHECK(rule_status(st, "breaker_open")["fired"].as_int() == 0);
  CHECK(rule_status(st, "breaker_open")["suppressed"].as_int() == 0);

  REQUIRE(apply_alert_setting(cfg, "breaker_open", "enabled", 1).empty());
  CHECK(fresh(s, cfg).size() == 2);
}

TEST_CASE("the history keeps the last 500 alerts, oldest first", "[alerts]") {
  auto cfg = default_alert_config();
  REQUIRE(apply_alert_setting(cfg, "upstream_budget", "cooldownSeconds", 0).empty());
  alert_rules rules(cfg);
  auto s = sample_at(t0);
  for (int i = 0; i < 600; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "svc%03d", i);
    s.upstream_usage[name] = 1.0;
  }
  CHECK(rules.evaluate(s).size() == 600); // all returned, only 500 kept
  REQUIRE(rules.history().size() == alert_rules::history_limit);
  CHECK(alert_rules::history_limit == 500);
  CHECK(rules.history().front().subject == "svc100");
  CHECK(rules.history().back().subject == "svc599");

  s.upstream_usage = {{"late", 1.0}};
  s.now = t0 + 1s;
  auto second = rules.evaluate(s);
  REQUIRE(second.size() == 601); // "late" fires; the 600 others resolve
  CHECK(second.front().subject == "late");
  CHECK_FALSE(second.front().resolved);
  CHECK(std::count_if(second.begin(), second.end(), [](const alert& a) { return a.resolved; }) == 600);
  CHECK(rules.history().size() == 500);
  CHECK(rules.history().front().subject == "svc100");
  CHECK(rules.history().front().resolved);
  CHECK(rules.history().back().subject == "svc599");
  CHECK(rules.status()["history"].as_int() == 500);
  CHECK(rule_status(rules.status(), "upstream_budget")["fired"].as_int() == 601);
}

// -- settings and JSON ------------------------------------------------------------------

TEST_CASE("apply_alert_setting sets known keys and rejects unknown names and bad values", "[alerts]") {
  auto cfg = default_alert_config();

  auto e = apply_alert_setting(cfg, "error_rates", "threshold", 0.1);
  CHECK_THAT(e, Catch::Contains("unknown alert rule \"error_rates\""));
  CHECK_THAT(e, Catch::Contains("error_rate, upstream_budget"));
  e = apply_alert_setting(cfg, "error_rate", "treshold", 0.1);
  CHECK_THAT(e, Catch::Contains("unknown key \"treshold\" of alert rule error_rate"));
  CHECK_THAT(e, Catch::Contains("threshold, minCount, cooldownSeconds, enabled"));
  CHECK_THAT(apply_alert_setting(cfg, "error_rate", "cooldown", 60), Catch::Contains("unknown key"));
  // Keys that mean nothing for a rule are unknown for it.
  CHECK_THAT(apply_alert_setting(cfg, "breaker_open", "threshold", 0.5), Catch::Contains("unknown key \"threshold\""));
  CHECK_THAT(apply_alert_setting(cfg, "p95_latency", "minCount", 5), Catch::Contains("unknown key \"minCount\""));

  CHECK_FALSE(apply_alert_setting(cfg, "error_rate", "threshold", 1.5).empty());
  CHECK_FALSE(apply_alert_setting(cfg, "error_rate", "threshold", -0.1).empty());
  CHECK_FALSE(apply_alert_setting(cfg, "p95_latency", "threshold", -1).empty());
  CHECK_FALSE(apply_alert_setting(cfg, "error_rate", "threshold", std::nan("")).empty());
  CHECK_FALSE(apply_alert_setting(cfg, "error_rate", "minCount", 2.5).empty());
  CHECK_FALSE(apply_alert_setting(cfg, "error_rate", "minCount", -1).empty());
  CHECK_FALSE(apply_alert_setting(cfg, "error_rate", "cooldownSeconds", -1).empty());
  CHECK_FALSE(apply_alert_setting(cfg, "error_rate", "enabled", 2).empty());
  CHECK_FALSE(apply_alert_setting(cfg, "error_rate", "enabled", 0.5).empty());
  // Nothing rejected changed the config.
  auto defaults = default_alert_config();
  for (std::size_t i = 0; i < cfg.rules.size(); ++i) {
    CHECK(cfg.rules[i].threshold == defaults.rules[i].threshold);
    CHECK(cfg.rules[i].min_count == defaults.rules[i].min_count);
    CHECK(cfg.rules[i].cooldown == defaults.rules[i].cooldown);
    CHECK(cfg.rules[i].enabled);
  }

  // Accepted settings change what fires.
  CHECK(fresh(requests(10, 5), cfg).empty());
  CHECK(apply_alert_setting(cfg, "error_rate", "minCount", 10).empty());
  CHECK(cfg.rules[0].min_count == 10);
  CHECK(fresh(requests(10, 5), cfg).size() == 1);
  CHECK(apply_alert_setting(cfg, "error_rate", "threshold", 0.5).empty());
  CHECK(fresh(requests(10, 5), cfg).empty());
  CHECK(fresh(requests(10, 6), cfg).size() == 1);
  CHECK(apply_alert_setting(cfg, "p95_latency", "threshold", 10).empty());
  CHECK(apply_alert_setting(cfg, "error_rate", "cooldownSeconds", 30).empty());
  CHECK(cfg.rules[0].cooldown == 30s);
}

TEST_CASE("alerts and status render as JSON with UTC ISO-8601 times", "[alerts]") {
  using log::time_digits;
  CHECK(log::utc(system_clock::time_point{}, time_digits::millis) == "1970-01-01T00:00:00.000Z");
  CHECK(log::utc(wall0, time_digits::millis) == "2026-07-28T09:30:00.250Z");
  CHECK(log::utc(system_clock::time_point{} - 1ms, time_digits::millis) == "1969-12-31T23:59:59.999Z");
  CHECK(log::utc(wall0, time_digits::seconds) == "2026-07-28T09:30:00Z");
  CHECK(log::utc(wall0 + 7us, time_digits::micros) == "2026-07-28T09:30:00.250007Z");
  CHECK(log::utc(system_clock::time_point{} - 1us, time_digits::micros) == "1969-12-31T23:59:59.999999Z");

  auto a = fresh(requests(2000, 150));
  REQUIRE(a.size() == 1);
  CHECK(
    json::dump(a[0].to_json())
    == R"({"rule":"error_rate","subject":"","severity":"warning",)"
       R"("message":"error rate 7.5% over the last 5 minutes (150 failures in 2000 requests; callers' mistakes not counted), above 5%",)"
       R"("value":0.075,"threshold":0.05,"at":"2026-07-28T09:30:00.250Z","status":"firing"})");

  alert_rules rules(default_alert_config());
  auto st = rules.status();
  REQUIRE(st["rules"].size() == 7);
  auto& cache = rule_status(st, "cache_hit_rate");
  CHECK(cache["enabled"].as_bool());
  CHECK(cache["severity"].as_string() == "warning");
  CHECK(cache["threshold"].as_double() == 0.6);
  CHECK(cache["minCount"].as_int() == 50);
  CHECK(cache["cooldownSeconds"].as_double() == 900);
  CHECK(st["fired"].as_int() == 0);
  CHECK(st["history"].as_int() == 0);
}
