// The rate limiter's token buckets (rate_buckets), driven by explicit time
// points.
#include <catch2/catch.hpp>

#include <vector>

#include "actors/limiter.hpp"
#include "tests/unit/time_points.hpp"

using namespace bulwark;
using namespace std::chrono;
using namespace std::chrono_literals;

namespace {

using test::t0;
using test::time_point;

admission_request call(std::string key, std::string tier = "free", std::string service = {},
                       milliseconds max_wait = 0ms) {
  return admission_request{std::move(key), std::move(tier), std::move(service), max_wait};
}

/// Admits `req` at `now` until the first refusal; returns how many got in
/// and the refusal.
std::pair<int, admission> burst(rate_buckets& rb, const admission_request& req, time_point now, int limit = 100'000) {
  for (int n = 0; n < limit; ++n) {
    auto a = rb.check(req, now);
    if (!a.admitted)
      return {n, a};
    CHECK(a.delay == 0ms);
  }
  return {limit, admission{}};
}

using tokens = std::vector<double>;

/// Token counts equal up to floating-point drift (1e-9 tokens: a few
/// nanoseconds' refill, far below anything a test could observe).
auto exactly(tokens expected) {
  return Catch::Matchers::Approx(expected).epsilon(0).margin(1e-9);
}

} // namespace

// -- rate limiter -------------------------------------------------------------------

TEST_CASE("the default limits are the free and paid tiers", "[limiter]") {
  auto cfg = default_limiter_config();
  REQUIRE(cfg.tiers.size() == 2);
  REQUIRE(cfg.tiers["free"].size() == 2);
  CHECK(cfg.tiers["free"][0].count == 10);
  CHECK(cfg.tiers["free"][0].per == minutes(1));
  CHECK(cfg.tiers["free"][1].count == 300);
  CHECK(cfg.tiers["free"][1].per == hours(1));
  REQUIRE(cfg.tiers["paid"].size() == 2);
  CHECK(cfg.tiers["paid"][0].count == 50);
  CHECK(cfg.tiers["paid"][1].count == 2000);
  CHECK(cfg.services.empty());
  CHECK(cfg.global.empty());

  CHECK(describe({10, minutes(1)}) == "10 per minute");
  CHECK(describe({300, hours(1)}) == "300 per hour");
  CHECK(describe({5, seconds(30)}) == "5 per 30 s");
  CHECK(describe({3, minutes(5)}) == "3 per 5 minutes");
  CHECK(describe({7, milliseconds(1500)}) == "7 per 1500 ms");
}

TEST_CASE("buckets refill continuously and refuse with the time to the next token", "[limiter]") {
  rate_buckets rb;
  auto alice = call("alice");
  auto [n, refused] = burst(rb, alice, t0);
  CHECK(n == 10);
  CHECK(refused.refused_by == "user_quota");
  CHECK(refused.limit == "free tier: 10 per minute");
  CHECK(refused.retry_after == 6000ms);
  CHECK_THAT(rb.key_tokens("alice", t0), exactly({0, 290}));

  // Half a token per 3 s in the minute window, a quarter in the hour window.
  CHECK_THAT(rb.key_tokens("alice", t0 + 3s), exactly({0.5, 290.25}));
  auto a = rb.check(alice, t0 + 3s);
  CHECK_FALSE(a.admitted);
  CHECK(a.retry_after == 3000ms);

  // One nanosecond short of a token: refused, retry in (at least) 1 ms.
  a = rb.check(alice, t0 + 6s - 1ns);
  CHECK_FALSE(a.admitted);
  CHECK(a.retry_after == 1ms);

  CHECK_THAT(rb.key_tokens("alice", t0 + 6s), exactly({1, 290.5}));
  CHECK(rb.check(alice, t0 + 6s).admitted);
  a = rb.check(alice, t0 + 6s);
  CHECK_FALSE(a.admitted);
  CHECK(a.retry_after == 6000ms);
  CHECK_THAT(rb.key_tokens("alice", t0 + 6s), exactly({0, 289.5}));

  // A minute later the minute window is full again, never fuller.
  CHECK_THAT(rb.key_tokens("alice", t0 + 66s), exactly({10, 294.5}));
  CHECK_THAT(rb.key_tokens("alice", t0 + 1000s), exactly({10, 300}));
  CHECK(burst(rb, alice, t0 + 66s).first == 10);

  // Other keys have their own buckets.
  CHECK(burst(rb, call("bob"), t0).first == 10);
  CHECK(rb.keys() == 2);
  CHECK(rb.counters().refused_user_quota == 6);
}

TEST_CASE("a tier's minute window runs out first, its hour window caps the total", "[limiter]") {
  SECTION("ten per minute until the hour budget is spent") {
    rate_buckets rb;
    auto alice = call("alice");
    int total = 0;
    // The hour window refills 5 per minute, so it drains by a net 5 per minute.
    for (int m = 0; m < 59; ++m) {
      auto [n, refused] = burst(rb, alice, t0 + minutes(m));
      INFO("minute " << m);
      CHECK(n == 10);
      CHECK(refused.limit == "free tier: 10 per minute");
      total += n;
    }
    auto [n, refused] = burst(rb, alice, t0 + minutes(59));
    CHECK(n == 5);
    CHECK(refused.refused_by == "user_quota");
    CHECK(refused.limit == "free tier: 300 per hour");
    CHECK(refused.retry_after == 12'000ms); // 300 per hour: one per 12 s
    total += n;
    CHECK(total == 300 + 59 * 5);
  }
  SECTION("a burst stops at 300 when the minute window is wide") {
    limiter_config cfg;
    cfg.tiers["wide"] = {{1000, minutes(1)}, {300, hours(1)}};
    rate_buckets rb(cfg);
    auto [n, refused] = burst(rb, call("alice", "wide"), t0);
    CHECK(n == 300);
    CHECK(refused.limit == "wide tier: 300 per hour");
    CHECK_THAT(rb.key_tokens("alice", t0), exactly({700, 0}));
  }
}

TEST_CASE("unknown, empty and unlimited tiers", "[limiter]") {
  limiter_config cfg = default_limiter_config();
  cfg.tiers["internal"] = {};
  rate_buckets rb(cfg);
  auto a = rb.check(call("mallory", "gold"), t0);
  CHECK_FALSE(a.admitted);
  CHECK(a.refused_by == "user_quota");
  CHECK(a.limit == "unknown tier gold");
  CHECK(a.retry_after == 0ms);
  CHECK(burst(rb, call("anonymous", ""), t0, 1000).first == 1000);
  CHECK(burst(rb, call("ops", "internal"), t0, 1000).first == 1000);
  CHECK(rb.keys() == 0);
  CHECK(rb.counters().refused_user_quota == 1);
  CHECK(rb.counters().admitted == 2000);
}

TEST_CASE("a refusal by the service level leaves the key's tokens intact", "[limiter]") {
  auto cfg = default_limiter_config();
  cfg.services["github"] = {{3, minutes(1)}};
  rate_buckets rb(cfg);
  auto via_github = call("alice", "free", "github");
  auto [n, refused] = burst(rb, via_github, t0);
  CHECK(n == 3);
  CHECK(refused.refused_by == "service");
  CHECK(refused.limit == "service github: 3 per minute");
  CHECK(refused.retry_after == 20'000ms);
  for (int i = 0; i < 5; ++i)
    CHECK_FALSE(rb.check(via_github, t0).admitted);
  CHECK_THAT(rb.key_tokens("alice", t0), exactly({7, 297}));
  CHECK_THAT(rb.service_tokens("github", t0), exactly({0}));

  // Exactly the seven calls the refusals did not take.
  auto [m, by_key] = burst(rb, call("alice"), t0);
  CHECK(m == 7);
  CHECK(by_key.refused_by == "user_quota");
  CHECK(rb.counters().refused_service == 6);
  CHECK(rb.counters().refused_user_quota == 1);

  // A service without limits is not a level.
  CHECK(rb.check(call("bob", "free", "unlimited"), t0).admitted);
}

TEST_CASE("a refusal by the global level leaves the key's tokens intact", "[limiter]") {
  auto cfg = default_limiter_config();
  cfg.global = {{8, seconds(1)}};
  rate_buckets rb(cfg);
  CHECK(burst(rb, call("alice"), t0, 6).first == 6);
  CHECK(burst(rb, call("bob"), t0, 2).first == 2);
  auto a = rb.check(call("alice"), t0);
  CHECK_FALSE(a.admitted);
  CHECK(a.refused_by == "global");
  CHECK(a.limit == "global: 8 per second");
  CHECK(a.retry_after == 125ms);
  CHECK_THAT(rb.key_tokens("alice", t0), exactly({4, 294}));
  // A key refused on its first call is not even tracked.
  CHECK_FALSE(rb.check(call("carol"), t0).admitted);
  CHECK(rb.keys() == 2);
  CHECK(rb.key_tokens("carol", t0).empty());

  // A second later the global budget is back; alice's minute window holds
  // 4 + 1/6 tokens: exactly four calls.
  CHECK_THAT(rb.global_tokens(t0 + 1s), exactly({8}));
  auto [n, refused] = burst(rb, call("alice"), t0 + 1s);
  CHECK(n == 4);
  CHECK(refused.refused_by == "user_quota");
  CHECK(rb.counters().refused_global == 2);
}

TEST_CASE("queue mode borrows tokens up to max_wait", "[limiter]") {
  SECTION("the debt of one bucket") {
    rate_buckets rb;
    auto queued = call("alice", "free", {}, 10s);
    for (int i = 0; i < 10; ++i)
      CHECK(rb.check(queued, t0).delay == 0ms);
    auto a = rb.check(queued, t0);
    CHECK(a.admitted);
    CHECK(a.delay == 6000ms);
    CHECK_THAT(rb.key_tokens("alice", t0), exactly({-1, 289}));

    // The next one would wait 12 s: refused, and no debt is left behind.
    a = rb.check(queued, t0);
    CHECK_FALSE(a.admitted);
    CHECK(a.refused_by == "user_quota");
    CHECK(a.retry_after == 12'000ms); // two tokens short
    CHECK_THAT(rb.key_tokens("alice", t0), exactly({-1, 289}));

    // At t0+6s the debt is repaid: no whole token yet, but queue mode waits.
    CHECK_THAT(rb.key_tokens("alice", t0 + 6s), exactly({0, 289.5}));
    CHECK_FALSE(rb.check(call("alice"), t0 + 6s).admitted);
    a = rb.check(queued, t0 + 6s);
    CHECK(a.admitted);
    CHECK(a.delay == 6000ms);
    CHECK(rb.counters().delayed == 2);
  }
  SECTION("the delay is the longest wait over the levels") {
    auto cfg = default_limiter_config();
    cfg.services["slow"] = {{1, seconds(10)}};
    rate_buckets rb(cfg);
    // alice's key must wait 6 s, the service has a token: 6 s.
    CHECK(burst(rb, call("alice"), t0).first == 10);
    auto a = rb.check(call("alice", "free", "slow", 7s), t0);
    CHECK(a.admitted);
    CHECK(a.delay == 6000ms);
    CHECK_THAT(rb.service_tokens("slow", t0), exactly({0}));

    // bob's key could wait 6 s, but the service needs 10 s > 7 s: refused
    // by the service, and bob's key owes nothing.
    CHECK(burst(rb, call("bob"), t0).first == 10);
    a = rb.check(call("bob", "free", "slow", 7s), t0);
    CHECK_FALSE(a.admitted);
    CHECK(a.refused_by == "service");
    CHECK(a.retry_after == 10'000ms);
    CHECK_THAT(rb.key_tokens("bob", t0), exactly({0, 290}));
    CHECK_THAT(rb.service_tokens("slow", t0), exactly({0}));

    // With 10 s allowed both levels borrow; the service's wait is longer.
    a = rb.check(call("bob", "free", "slow", 10s), t0);
    CHECK(a.admitted);
    CHECK(a.delay == 10'000ms);
    CHECK_THAT(rb.key_tokens("bob", t0), exactly({-1, 289}));
    CHECK_THAT(rb.service_tokens("slow", t0), exactly({-1}));
  }
}

TEST_CASE("refund gives a queued call's tokens back, never above capacity", "[limiter]") {
  auto cfg = default_limiter_config();
  cfg.services["github"] = {{5, minutes(1)}};
  cfg.global = {{100, seconds(1)}};
  rate_buckets rb(cfg);
  auto req = call("alice", "free", "github");
  CHECK(rb.check(req, t0).admitted);
  CHECK_THAT(rb.key_tokens("alice", t0), exactly({9, 299}));
  CHECK_THAT(rb.service_tokens("github", t0), exactly({4}));
  CHECK_THAT(rb.global_tokens(t0), exactly({99}));
  rb.refund(req, t0);
  CHECK_THAT(rb.key_tokens("alice", t0), exactly({10, 300}));
  CHECK_THAT(rb.service_tokens("github", t0), exactly({5}));
  CHECK_THAT(rb.global_tokens(t0), exactly({100}));
  rb.refund(req, t0);
  CHECK_THAT(rb.key_tokens("alice", t0), exactly({10, 300}));
  CHECK_THAT(rb.service_tokens("github", t0), exactly({5}));

  // Refunding a delayed call pays its debt back.
  auto queued = call("alice", "free", "github", 60s);
  CHECK(burst(rb, req, t0).first == 5);
  auto a = rb.check(queued, t0);
  CHECK(a.delay == 12'000ms);
  CHECK_THAT(rb.service_tokens("github", t0), exactly({-1}));
  rb.refund(queued, t0);
  CHECK_THAT(rb.service_tokens("github", t0), exactly({0}));
  CHECK_THAT(rb.key_tokens("alice", t0), exactly({5, 295}));
}

TEST_CASE("set_scale tightens capacities and refill rates", "[limiter]") {
  auto cfg = default_limiter_config();
  cfg.services["github"] = {{10, minutes(1)}};
  rate_buckets rb(cfg);
  auto req = call("alice", "free", "github");
  CHECK(burst(rb, req, t0, 2).first == 2);
  rb.set_scale(0.5);
  CHECK(rb.scale() == 0.5);
  CHECK_THAT(rb.key_tokens("alice", t0), exactly({5, 150}));
  CHECK_THAT(rb.service_tokens("github", t0), exactly({5}));
  auto [n, refused] = burst(rb, req, t0);
  CHECK(n == 5);
  CHECK(refused.limit == "free tier: 10 per minute (at 50% while degraded)");
  CHECK(refused.retry_after == 12'000ms); // 5 per minute now
  CHECK(rb.usage("github", t0) == 1.0);
  CHECK_THAT(rb.key_tokens("alice", t0 + 6s), exactly({0.5, 145.25}));

  // Back to normal: the rate doubles, tokens are not handed out for free.
  rb.set_scale(1.0);
  CHECK_THAT(rb.key_tokens("alice", t0), exactly({0, 145}));
  CHECK_THAT(rb.key_tokens("alice", t0 + 6s), exactly({1, 145.5}));

  // Never below one token, nor outside (0, 1].
  rb.set_scale(0.05);
  auto [m, tight] = burst(rb, call("bob"), t0);
  CHECK(m == 1);
  CHECK(tight.retry_after == 120'000ms); // half a token per minute
  rb.set_scale(3.0);
  CHECK(rb.scale() == 1.0);
  rb.set_scale(-1.0);
  CHECK(rb.scale() > 0.0);
}

TEST_CASE("usage reports the tightest window of a service", "[limiter]") {
  auto cfg = default_limiter_config();
  cfg.services["github"] = {{10, minutes(1)}, {100, hours(1)}};
  rate_buckets rb(cfg);
  CHECK(rb.usage("github", t0) == 0.0);
  CHECK(rb.usage("unknown", t0) == 0.0);
  CHECK(burst(rb, call("alice", "", "github"), t0, 5).first == 5);
  CHECK(rb.usage("github", t0) == Approx(0.5));
  // The minute window is full again, the hour window has 95 + 100/120.
  CHECK(rb.usage("github", t0 + 30s) == Approx(1.0 - (95.0 + 100.0 / 120.0) / 100.0));
  CHECK(rb.usage("github", t0 + 30s) == Approx(1.0 / 24.0));
  // Debt reads as fully used.
  CHECK(burst(rb, call("alice", "", "github"), t0).first == 5);
  CHECK(rb.check(call("alice", "", "github", 60s), t0).admitted);
  CHECK(rb.usage("github", t0) == 1.0);
}

TEST_CASE("sweep forgets keys whose buckets are full again", "[limiter]") {
  rate_buckets rb;
  CHECK(rb.check(call("alice"), t0).admitted);
  CHECK(burst(rb, call("bob"), t0, 5).first == 5);
  CHECK(rb.keys() == 2);
  // alice's minute window is full after 6 s, her hour window after 12 s.
  rb.sweep(t0 + 12s - 1ms);
  CHECK(rb.keys() == 2);
  rb.sweep(t0 + 12s);
  CHECK(rb.keys() == 1);
  CHECK(rb.key_tokens("alice", t0 + 12s).empty());
  CHECK(rb.key_tokens("bob", t0 + 12s).size() == 2);
  // A forgotten key starts full, as it would have been.
  CHECK(burst(rb, call("alice"), t0 + 12s).first == 10);
  rb.sweep(t0 + hours(2));
  CHECK(rb.keys() == 0);
}

TEST_CASE("the limiter's status lists limits, tokens and refusals", "[limiter]") {
  auto cfg = default_limiter_config();
  cfg.services["github"] = {{3, minutes(1)}};
  cfg.global = {{100, seconds(1)}};
  rate_buckets rb(cfg);
  CHECK(burst(rb, call("alice", "free", "github"), t0).first == 3);
  CHECK_FALSE(rb.check(call("x", "gold"), t0).admitted);
  auto s = rb.status(t0);
  CHECK(s["keys"].as_int() == 1);
  CHECK(s["admitted"].as_int() == 3);
  CHECK(s["refusals"]["service"].as_int() == 1);
  CHECK(s["refusals"]["user_quota"].as_int() == 1);
  CHECK(s["refusals"]["global"].as_int() == 0);
  CHECK(s["tiers"]["free"].as_array().at(0)["text"].as_string() == "10 per minute");
  CHECK(s["tiers"]["paid"].as_array().at(1)["count"].as_int() == 2000);
  CHECK(s["services"]["github"].as_array().at(0)["tokens"].as_double() == 0.0);
  CHECK(s["global"].as_array().at(0)["tokens"].as_double() == 97.0);
  CHECK(s["global"].as_array().at(0)["capacity"].as_double() == 100.0);
}

TEST_CASE("the buckets are plain data: a copy carries on where the original was", "[limiter]") {
  rate_buckets rb;
  CHECK(burst(rb, call("alice"), t0, 7).first == 7);
  rate_buckets copy = rb;
  CHECK(burst(copy, call("alice"), t0).first == 3);
  CHECK(burst(rb, call("alice"), t0).first == 3);
}

TEST_CASE("a reload keeps the buckets' levels under the new limits", "[limiter]") {
  auto cfg = default_limiter_config();
  cfg.services["svc"] = {{100, minutes(1)}};
  cfg.global = {{1000, minutes(1)}};
  rate_buckets rb(cfg);
  // alice uses 7 of the free tier's 10 a minute, the service 30 of its 100.
  CHECK(burst(rb, call("alice"), t0, 7).first == 7);
  for (int i = 0; i < 30; ++i)
    REQUIRE(rb.check(call("svc-user-" + std::to_string(i), "", "svc"), t0).admitted);
  SECTION("a window of the same period keeps what is used") {
    auto next = cfg;
    next.tiers["free"] = {{20, minutes(1)}, {300, hours(1)}}; // more per minute
    next.services["svc"] = {{50, minutes(1)}}; // fewer
    rb.reconfigure(next, t0);
    CHECK_THAT(rb.key_tokens("alice", t0), exactly({3, 293}));
    CHECK_THAT(rb.service_tokens("svc", t0), exactly({50})); // 70 left, at most the new 50
    CHECK_THAT(rb.global_tokens(t0), exactly({963}));
    CHECK(burst(rb, call("alice"), t0).first == 3);
  }
  SECTION("a new window starts full, a dropped one goes") {
    auto next = cfg;
    next.tiers["free"] = {{10, seconds(1)}};
    next.services.erase("svc");
    next.services["other"] = {{5, minutes(1)}};
    rb.reconfigure(next, t0);
    CHECK_THAT(rb.key_tokens("alice", t0), exactly({10}));
    CHECK(rb.service_tokens("svc", t0).empty());
    CHECK_THAT(rb.service_tokens("other", t0), exactly({5}));
  }
  SECTION("keys of a tier that went away are forgotten") {
    auto next = cfg;
    next.tiers.erase("free");
    rb.reconfigure(next, t0);
    CHECK(rb.key_tokens("alice", t0).empty());
    CHECK_FALSE(rb.check(call("alice"), t0).admitted); // an unknown tier now
  }
}
