// Admission control: the rate limiter's token buckets and the priority
// queue, both driven by explicit time points.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "actors/limiter.hpp"
#include "actors/queue.hpp"

using namespace bulwark;
using namespace std::chrono;
using namespace std::chrono_literals;

namespace {

using clock_type = steady_clock;
using time_point = clock_type::time_point;

/// Far from the clock's epoch, like a real steady clock.
const time_point t0 = time_point{} + hours(1000);
const time_point never = time_point::max();

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

// -- priority queue -----------------------------------------------------------------

namespace {

bool any_lane(const std::string&) {
  return true;
}

std::vector<uint64_t> drain(priority_queue_core& q, time_point now,
                            const std::function<bool(const std::string&)>& can_run = any_lane) {
  std::vector<uint64_t> out;
  while (auto id = q.pop(now, can_run))
    out.push_back(*id);
  return out;
}

bool push(priority_queue_core& q, uint64_t id, priority p, time_point at = t0, std::string lane = "svc") {
  return q.push(id, p, std::move(lane), at, at, never).accepted;
}

using ids = std::vector<uint64_t>;

} // namespace

TEST_CASE("priorities parse and print", "[queue]") {
  CHECK(parse_priority("critical") == priority::critical);
  CHECK(parse_priority("high") == priority::high);
  CHECK(parse_priority("normal") == priority::normal);
  CHECK(parse_priority("low") == priority::low);
  CHECK_FALSE(parse_priority("urgent"));
  CHECK_FALSE(parse_priority("Low"));
  CHECK(std::string(to_string(priority::low)) == "low");
  CHECK(std::string(to_string(priority::critical)) == "critical");
}

TEST_CASE("the queue is FIFO within a priority and strict across priorities", "[queue]") {
  priority_queue_core q;
  SECTION("FIFO") {
    for (uint64_t id = 1; id <= 5; ++id)
      CHECK(push(q, id, priority::normal));
    CHECK(drain(q, t0) == ids{1, 2, 3, 4, 5});
  }
  SECTION("priority order") {
    push(q, 1, priority::low);
    push(q, 2, priority::normal);
    push(q, 3, priority::critical);
    push(q, 4, priority::high);
    push(q, 5, priority::normal);
    push(q, 6, priority::critical);
    CHECK(q.depth() == std::array<std::size_t, 4>{2, 1, 2, 1});
    CHECK(q.size() == 6);
    CHECK(drain(q, t0) == ids{3, 6, 4, 2, 5, 1});
    CHECK(q.size() == 0);
    CHECK(q.depth() == std::array<std::size_t, 4>{0, 0, 0, 0});
    CHECK(q.counters().popped == 6);
  }
}

TEST_CASE("aging lets waiting work overtake younger work of higher priority", "[queue]") {
  priority_queue_core q({1000, 5s});
  SECTION("not yet one aging period") {
    push(q, 1, priority::low, t0);
    push(q, 2, priority::normal, t0 + 4s);
    CHECK(drain(q, t0 + 4s) == ids{2, 1});
  }
  SECTION("one period: LOW ranks as NORMAL and is older") {
    push(q, 1, priority::low, t0);
    push(q, 2, priority::normal, t0 + 6s);
    CHECK(q.position(1, t0 + 6s, 1)->prio == priority::normal);
    CHECK(drain(q, t0 + 6s) == ids{1, 2});
  }
  SECTION("two periods against a HIGH that waited one second") {
    push(q, 1, priority::low, t0);
    push(q, 2, priority::high, t0 + 9s);
    auto copy = q;
    CHECK(drain(copy, t0 + 9s) == ids{2, 1});
    CHECK(drain(q, t0 + 10s) == ids{1, 2});
  }
  SECTION("no entry rises above critical") {
    // At t0+15s the LOW entry has aged three levels, the CRITICAL one two:
    // both are critical, and the older goes first.
    push(q, 1, priority::low, t0);
    push(q, 2, priority::critical, t0 + 5s);
    CHECK(q.position(1, t0 + 15s, 1)->prio == priority::critical);
    CHECK(drain(q, t0 + 15s) == ids{1, 2});
  }
  SECTION("zero turns aging off") {
    priority_queue_core flat({1000, 0ms});
    push(flat, 1, priority::low, t0);
    push(flat, 2, priority::normal, t0 + hours(1));
    CHECK(drain(flat, t0 + hours(1)) == ids{2, 1});
  }
}

TEST_CASE("a full queue refuses LOW work and sheds the youngest of the lowest priority", "[queue]") {
  priority_queue_core q({3, 5s});
  SECTION("refuse, then evict") {
    CHECK(push(q, 1, priority::normal, t0));
    CHECK(push(q, 2, priority::low, t0 + 1ms));
    CHECK(push(q, 3, priority::low, t0 + 2ms));
    CHECK(q.fill() == 1.0);

    auto r = q.push(4, priority::low, "svc", t0 + 3ms, t0 + 3ms, never);
    CHECK_FALSE(r.accepted);
    CHECK_FALSE(r.shed);
    CHECK(r.retry_after >= 1000ms);

    r = q.push(5, priority::high, "svc", t0 + 4ms, t0 + 4ms, never);
    CHECK(r.accepted);
    REQUIRE(r.shed);
    CHECK(*r.shed == 3);
    r = q.push(6, priority::normal, "svc", t0 + 5ms, t0 + 5ms, never);
    CHECK(r.accepted);
    CHECK(r.shed == std::optional<uint64_t>(2));
    // Nothing below NORMAL is left.
    r = q.push(7, priority::normal, "svc", t0 + 6ms, t0 + 6ms, never);
    CHECK_FALSE(r.accepted);
    CHECK_FALSE(r.shed);
    // A CRITICAL entry sheds the younger NORMAL one.
    r = q.push(8, priority::critical, "svc", t0 + 7ms, t0 + 7ms, never);
    CHECK(r.accepted);
    CHECK(r.shed == std::optional<uint64_t>(6));
    CHECK(q.size() == 3);
    CHECK(q.counters().pushed == 6);
    CHECK(q.counters().refused == 2);
    CHECK(q.counters().shed == 3);
    CHECK_FALSE(q.contains(6));
    CHECK(drain(q, t0 + 8ms) == ids{8, 5, 1});
  }
  SECTION("LOW goes before a younger NORMAL") {
    push(q, 1, priority::low, t0);
    push(q, 2, priority::normal, t0 + 1ms);
    push(q, 3, priority::normal, t0 + 2ms);
    auto r = q.push(4, priority::high, "svc", t0 + 3ms, t0 + 3ms, never);
    CHECK(r.shed == std::optional<uint64_t>(1));
  }
  SECTION("the youngest across lanes") {
    push(q, 1, priority::low, t0, "a");
    push(q, 2, priority::low, t0 + 1ms, "b");
    push(q, 3, priority::low, t0 + 2ms, "a");
    CHECK(q.push(4, priority::normal, "a", t0 + 3ms, t0 + 3ms, never).shed == std::optional<uint64_t>(3));
    CHECK(q.push(5, priority::normal, "a", t0 + 4ms, t0 + 4ms, never).shed == std::optional<uint64_t>(2));
    CHECK(drain(q, t0 + 5ms) == ids{4, 5, 1});
  }
}

TEST_CASE("shed_low refuses new LOW work even with room", "[queue]") {
  priority_queue_core q({100, 5s, 2});
  push(q, 1, priority::low);
  q.set_shed_low(true);
  auto r = q.push(2, priority::low, "svc", t0, t0, never);
  CHECK_FALSE(r.accepted);
  CHECK(r.retry_after == 1000ms); // the floor: little work ahead
  CHECK(push(q, 3, priority::normal));
  CHECK(q.size() == 2); // queued LOW work stays

  // The estimate follows the observed service time: 4 entries ahead, 1 s
  // each, 2 at a time.
  q.record_service_time(1s);
  push(q, 4, priority::high);
  push(q, 5, priority::critical);
  r = q.push(6, priority::low, "svc", t0, t0, never);
  CHECK_FALSE(r.accepted);
  CHECK(r.retry_after == 2000ms);

  q.set_shed_low(false);
  CHECK(push(q, 7, priority::low));
  CHECK(drain(q, t0) == ids{5, 4, 3, 1, 7});
}

TEST_CASE("not_before holds an entry back and next_ready tells when", "[queue]") {
  priority_queue_core q;
  CHECK_FALSE(q.next_ready(t0));
  CHECK(q.push(1, priority::normal, "svc", t0, t0 + 2s, never).accepted);
  push(q, 2, priority::low, t0);
  CHECK(q.next_ready(t0) == t0 + 2s);
  CHECK(q.pop(t0, any_lane) == std::optional<uint64_t>(2));
  CHECK_FALSE(q.pop(t0 + 1999ms, any_lane));
  CHECK_FALSE(q.next_ready(t0 + 2s)); // ready now, nothing later
  auto pos = q.position(1, t0, 1);
  REQUIRE(pos);
  CHECK(pos->position == 0);
  CHECK(pos->estimated_wait == 2000ms);
  CHECK(q.pop(t0 + 2s, any_lane) == std::optional<uint64_t>(1));
  CHECK_FALSE(q.next_ready(t0));
}

TEST_CASE("lanes that cannot run are skipped without losing order", "[queue]") {
  priority_queue_core q;
  push(q, 1, priority::normal, t0, "a");
  push(q, 2, priority::normal, t0, "b");
  push(q, 3, priority::normal, t0, "a");
  push(q, 4, priority::normal, t0, "b");
  push(q, 5, priority::normal, t0, "a");
  push(q, 6, priority::high, t0, "a");
  std::map<std::string, int> asked;
  auto not_a = [&](const std::string& lane) {
    ++asked[lane];
    return lane != "a";
  };
  CHECK(q.pop(t0, not_a) == std::optional<uint64_t>(2));
  CHECK(asked == std::map<std::string, int>{{"a", 1}, {"b", 1}}); // once per lane, not per entry
  CHECK(q.pop(t0, not_a) == std::optional<uint64_t>(4));
  CHECK_FALSE(q.pop(t0, not_a));
  CHECK(drain(q, t0) == ids{6, 1, 3, 5});
}

TEST_CASE("remove and expire take entries out", "[queue]") {
  priority_queue_core q;
  q.push(1, priority::normal, "svc", t0, t0, t0 + 1s);
  q.push(2, priority::normal, "svc", t0, t0, t0 + 5s);
  q.push(3, priority::normal, "svc", t0, t0, never);
  q.push(4, priority::low, "svc", t0, t0, t0 + 1s);
  q.push(5, priority::high, "svc", t0, t0 + 3s, t0 + 10s);
  CHECK(q.remove(2));
  CHECK_FALSE(q.remove(2));
  CHECK_FALSE(q.remove(99));
  CHECK(q.remove(5));
  CHECK_FALSE(q.next_ready(t0)); // 5's not_before went with it
  CHECK(q.next_deadline() == t0 + 1s);
  CHECK(q.expire(t0 + 999ms).empty());
  CHECK(q.expire(t0 + 1s) == ids{1, 4});
  CHECK_FALSE(q.next_deadline());
  CHECK(q.size() == 1);
  CHECK(q.depth() == std::array<std::size_t, 4>{0, 0, 1, 0});
  CHECK(q.counters().removed == 2);
  CHECK(q.counters().expired == 2);
  CHECK(drain(q, t0 + 1s) == ids{3});
  // An id can be queued again once it left.
  CHECK(push(q, 1, priority::normal));
  CHECK_FALSE(push(q, 1, priority::normal));
}

TEST_CASE("position and estimated wait", "[queue]") {
  priority_queue_core q({1000, 5s});
  push(q, 1, priority::normal, t0);
  push(q, 2, priority::high, t0);
  push(q, 3, priority::low, t0);
  push(q, 4, priority::normal, t0);
  CHECK_FALSE(q.position(99, t0, 1));
  CHECK(q.average_service_time() == 10ms);

  auto p = q.position(4, t0, 2);
  REQUIRE(p);
  CHECK(p->position == 2);
  CHECK(p->estimated_wait == 10ms); // 2 x 10 ms / 2
  CHECK(p->prio == priority::normal);
  CHECK(q.position(2, t0, 2)->position == 0);
  CHECK(q.position(2, t0, 2)->estimated_wait == 0ms);
  CHECK(q.position(3, t0, 1)->position == 3);
  CHECK(q.position(3, t0, 1)->estimated_wait == 30ms);

  q.record_service_time(40ms); // the first sample replaces the guess
  CHECK(q.position(4, t0, 2)->estimated_wait == 40ms);
  q.record_service_time(20ms); // then 0.8 x 40 + 0.2 x 20
  CHECK(q.average_service_time() == 36ms);
  CHECK(q.position(3, t0, 1)->estimated_wait == 108ms);
  CHECK(q.position(3, t0, 0)->estimated_wait == 108ms); // no concurrency counts as one

  // After 10 s, 1 and 4 rank critical with 2, and 1 is the oldest.
  CHECK(q.position(1, t0 + 10s, 1)->position == 0);
  CHECK(q.position(2, t0 + 10s, 1)->position == 1);
  CHECK(q.position(4, t0 + 10s, 1)->position == 2);
  CHECK(q.position(3, t0 + 10s, 1)->prio == priority::high);
  CHECK(drain(q, t0 + 10s) == ids{1, 2, 4, 3});
}

TEST_CASE("the queue's status", "[queue]") {
  priority_queue_core q({4, 5s});
  push(q, 1, priority::high, t0);
  push(q, 2, priority::low, t0 + 1s);
  q.set_shed_low(true);
  q.push(3, priority::low, "svc", t0 + 2s, t0 + 2s, never);
  auto s = q.status(t0 + 3s);
  CHECK(s["size"].as_int() == 2);
  CHECK(s["capacity"].as_int() == 4);
  CHECK(s["fill"].as_double() == 0.5);
  CHECK(s["depth"]["high"].as_int() == 1);
  CHECK(s["depth"]["low"].as_int() == 1);
  CHECK(s["depth"]["normal"].as_int() == 0);
  CHECK(s["shedLow"].as_bool());
  CHECK(s["oldestWaitMs"].as_int() == 3000);
  CHECK(s["refused"].as_int() == 1);
  CHECK(s["pushed"].as_int() == 2);
}

namespace {

/// The queue's rules, spelled out the slow way.
struct reference_queue {
  struct item {
    uint64_t id;
    unsigned prio;
    std::string lane;
    time_point enqueued, not_before, deadline;
    uint64_t seq;
  };
  std::size_t capacity;
  milliseconds aging;
  std::vector<item> items;
  uint64_t seq = 0;

  unsigned eff(const item& i, time_point now) const {
    auto periods = static_cast<unsigned>((now - i.enqueued) / aging);
    return periods >= i.prio ? 0 : i.prio - periods;
  }
  bool before(const item& a, const item& b, time_point now) const {
    auto ea = eff(a, now), eb = eff(b, now);
    return ea != eb ? ea < eb : a.seq < b.seq;
  }
  std::pair<bool, std::optional<uint64_t>> push(uint64_t id, unsigned prio, std::string lane, time_point now,
                                                time_point nb, time_point deadline) {
    std::optional<uint64_t> shed;
    if (items.size() >= capacity) {
      std::optional<std::size_t> victim;
      for (std::size_t k = 0; k < items.size(); ++k) {
        auto& c = items[k];
        if (c.prio <= prio)
          continue;
        if (!victim || c.prio > items[*victim].prio || (c.prio == items[*victim].prio && c.seq > items[*victim].seq))
          victim = k;
      }
      if (!victim)
        return {false, std::nullopt};
      shed = items[*victim].id;
      items.erase(items.begin() + static_cast<std::ptrdiff_t>(*victim));
    }
    items.push_back({id, prio, std::move(lane), now, nb, deadline, ++seq});
    return {true, shed};
  }
  std::optional<uint64_t> pop(time_point now, const std::set<std::string>& blocked) {
    std::optional<std::size_t> best;
    for (std::size_t k = 0; k < items.size(); ++k) {
      auto& c = items[k];
      if (c.not_before > now || blocked.count(c.lane))
        continue;
      if (!best || before(c, items[*best], now))
        best = k;
    }
    if (!best)
      return std::nullopt;
    auto id = items[*best].id;
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(*best));
    return id;
  }
  std::size_t position(uint64_t id, time_point now) const {
    auto& t = *std::find_if(items.begin(), items.end(), [&](auto& i) { return i.id == id; });
    return static_cast<std::size_t>(
      std::count_if(items.begin(), items.end(), [&](auto& i) { return before(i, t, now); }));
  }
};

} // namespace

TEST_CASE("the queue agrees with a naive model over random traffic", "[queue]") {
  std::mt19937_64 rng(20260728);
  auto roll = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  const std::vector<std::string> lanes{"a", "b", "c", "d"};
  priority_queue_core q({40, 2s});
  reference_queue ref{40, 2s, {}};
  auto now = t0;
  uint64_t next_id = 1;
  int pops = 0, sheds = 0;
  for (int step = 0; step < 6000; ++step) {
    now += milliseconds(roll(40));
    auto op = roll(10);
    if (op < 5) {
      auto prio = static_cast<unsigned>(roll(4));
      auto lane = lanes[static_cast<std::size_t>(roll(4))];
      auto nb = roll(4) == 0 ? now + milliseconds(roll(3000)) : now;
      auto deadline = roll(3) == 0 ? now + milliseconds(roll(20'000)) : never;
      auto id = next_id++;
      auto r = q.push(id, static_cast<priority>(prio), lane, now, nb, deadline);
      auto [accepted, shed] = ref.push(id, prio, lane, now, nb, deadline);
      REQUIRE(r.accepted == accepted);
      REQUIRE(r.shed == shed);
      sheds += shed ? 1 : 0;
    } else if (op < 9) {
      std::set<std::string> blocked;
      for (auto& l : lanes)
        if (roll(3) == 0)
          blocked.insert(l);
      auto got = q.pop(now, [&](const std::string& l) { return blocked.count(l) == 0; });
      REQUIRE(got == ref.pop(now, blocked));
      pops += got ? 1 : 0;
    } else {
      auto expired = q.expire(now);
      std::set<uint64_t> gone(expired.begin(), expired.end());
      std::set<uint64_t> due;
      for (auto& i : ref.items)
        if (i.deadline <= now)
          due.insert(i.id);
      REQUIRE(gone == due);
      ref.items.erase(std::remove_if(ref.items.begin(), ref.items.end(), [&](auto& i) { return due.count(i.id); }),
                      ref.items.end());
      if (!ref.items.empty()) {
        auto& some = ref.items[static_cast<std::size_t>(roll(static_cast<int>(ref.items.size())))];
        REQUIRE(q.position(some.id, now, 1)->position == ref.position(some.id, now));
        if (roll(2) == 0) {
          REQUIRE(q.remove(some.id));
          ref.items.erase(std::find_if(ref.items.begin(), ref.items.end(), [&](auto& i) { return i.id == some.id; }));
        }
      }
    }
    REQUIRE(q.size() == ref.items.size());
  }
  // The run exercised what it meant to.
  CHECK(pops > 1000);
  CHECK(sheds > 10);
}
