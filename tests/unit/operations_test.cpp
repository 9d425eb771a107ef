// The operational actors on CAF's deterministic test coordinator: the rate
// limiter (buckets survive its restart, refill with simulated time), the
// priority queue worker (order, lanes, answers on restart), the cache actor
// (TTL and stale copies on the actor clock), the health supervisor
// (breaker-driven degraded mode and its hysteresis) and the breaker's count
// of a call's wait on its service.
#include <cstdio>
#include <optional>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/env.hpp"
#include "actors/health.hpp"
#include "actors/operations.hpp"
#include "actors/runtime.hpp"
#include "actors/supervisor.hpp"
#include "config/config.hpp"
#include "config/metrics.hpp"
#include "messages/actors.hpp"
#include "messages/crypto.hpp"
#include "tests/unit/simulated.hpp"
#include "transport/http_server.hpp"

using namespace bulwark;
using json::value;
using namespace std::chrono_literals;

namespace {

/// The shared simulated system, with helpers for supervised operational actors.
struct simulated : test::simulated_system {
  /// Runs the named actors under a root supervisor.
  void supervise(std::vector<child_spec> children) {
    supervisor_spec spec{"root-supervisor", {}, std::move(children)};
    spec.policy.backoff_initial = 0ms; // restarts at once: the tests kill in quick succession
    spawned.push_back(caf::actor_cast<caf::actor>(spawn_root_supervisor(*sys, env, std::move(spec))));
    sched->run();
  }

  void kill(const std::string& name) {
    auto h = env->names.get(name);
    REQUIRE(h);
    caf::anon_send_exit(h, caf::exit_reason::kill);
    sched->run();
    auto again = env->names.get(name);
    REQUIRE(again);
    CHECK(again != h);
  }

  /// Advances the actor clock in steps of `step` (firing what falls due).
  void advance(std::chrono::milliseconds total, std::chrono::milliseconds step = 100ms) {
    for (auto t = 0ms; t < total; t += step) {
      sched->advance_time(step);
      sched->run();
    }
  }
};

/// Asks the limiter; returns its verdict.
admission ask(simulated& s, const std::string& key, const std::string& tier) {
  std::optional<admission> got;
  auto t = std::make_shared<admission_ticket>();
  t->request.key = key;
  t->request.tier = tier;
  t->reply = [&got](const admission& a) { got = a; };
  caf::anon_send(caf::actor_cast<limiter_actor>(s.env->names.get(limiter_actor_name)), atom::admit_v, t);
  s.sched->run();
  REQUIRE(got);
  return *got;
}

} // namespace

TEST_CASE("limiter actor: buckets survive its restart and refill on the actor clock", "[operations]") {
  simulated s;
  limiter_config limits;
  limits.tiers["tiny"] = {rate_limit{3, std::chrono::minutes(1)}};
  s.env->opts.ops.limits = limits;
  s.env->buckets = std::make_shared<rate_buckets>(limits);
  s.supervise({child_spec{limiter_actor_name, [env = s.env](caf::actor_system& sys) {
                            return caf::actor_cast<caf::actor>(spawn_limiter(sys, env));
                          }}});
  for (int i = 0; i < 2; ++i)
    CHECK(ask(s, "key:a", "tiny").admitted);

  // A crash of the limiter must not hand out a fresh quota.
  s.kill(limiter_actor_name);
  CHECK(ask(s, "key:a", "tiny").admitted); // the third of three
  auto refused = ask(s, "key:a", "tiny");
  CHECK_FALSE(refused.admitted);
  CHECK(refused.refused_by == "user_quota");
  CHECK(refused.retry_after == 20000ms); // one token per 20 s
  CHECK(ask(s, "key:b", "tiny").admitted); // another key has its own buckets

  // 19.9 s later still nothing; at 20 s one token is back.
  s.sched->advance_time(19900ms);
  CHECK_FALSE(ask(s, "key:a", "tiny").admitted);
  s.sched->advance_time(100ms);
  CHECK(ask(s, "key:a", "tiny").admitted);
  CHECK_FALSE(ask(s, "key:a", "tiny").admitted);
}

TEST_CASE("queue actor: runs by priority, one call per lane at a time, and answers queued work when killed",
          "[operations]") {
  simulated s;
  s.env->opts.ops.max_concurrent_per_service = 1;
  s.supervise({child_spec{queue_actor_name, [env = s.env](caf::actor_system& sys) {
                            return caf::actor_cast<caf::actor>(spawn_queue(sys, env));
                          }}});
  std::vector<std::string> started;
  std::map<std::string, std::function<void()>> finish;
  std::map<std::string, int> rejected; // label -> error code
  auto enqueue = [&](const std::string& label, priority p, const std::string& lane) {
    auto w = std::make_shared<queued_work>();
    w->label = label;
    w->prio = p;
    w->lane = lane;
    w->deadline = std::chrono::steady_clock::time_point::max();
    w->start = [&, label](std::function<void()> done) {
      started.push_back(label);
      finish[label] = std::move(done);
    };
    w->reject = [&, label](error_code code, std::string, value) { rejected[label] = static_cast<int>(code); };
    caf::anon_send(caf::actor_cast<queue_actor>(s.env->names.get(queue_actor_name)), atom::enqueue_v, w);
    s.sched->run();
  };
  enqueue("a", priority::normal, "svc");
  enqueue("b", priority::low, "svc");
  enqueue("c", priority::high, "svc");
  enqueue("d", priority::critical, "svc");
  enqueue("x", priority::low, "other"); // another lane runs at once
  CHECK(started == std::vector<std::string>{"a", "x"});
  finish["a"]();
  s.sched->run();
  CHECK(started.back() == "d");
  finish["d"]();
  s.sched->run();
  CHECK(started.back() == "c");
  CHECK(started.size() == 4);

  // "b" still waits: killing the queue answers it instead of dropping it.
  s.kill(queue_actor_name);
  CHECK(rejected.size() == 1);
  CHECK(rejected["b"] == static_cast<int>(error_code::actor_restarted));
}

TEST_CASE("cache actor: fresh for the TTL, then stale until max stale, on the actor clock", "[operations]") {
  simulated s;
  auto cache = spawn_cache(*s.sys, 100, 1 << 20);
  s.spawned.push_back(caf::actor_cast<caf::actor>(cache));
  std::optional<cache_hit> got;
  bool answered = false;
  auto lookup = [&](bool stale) {
    answered = false;
    cache_reply reply = [&](std::optional<cache_hit> h) {
      got = std::move(h);
      answered = true;
    };
    caf::anon_send(cache, atom::get_v, std::string("svc\ntools/call\n*\n{}"), stale, reply);
    s.sched->run();
    REQUIRE(answered);
  };
  caf::anon_send(cache, atom::put_v, std::string("svc\ntools/call\n*\n{}"), value::make_object({{"n", 1}}),
                 int64_t{1000}, int64_t{5000});
  s.sched->run();
  lookup(false);
  REQUIRE(got);
  CHECK_FALSE(got->stale);
  s.sched->advance_time(1001ms);
  lookup(false);
  CHECK_FALSE(got); // expired for fresh answers
  lookup(true);
  REQUIRE(got);
  CHECK(got->stale);
  CHECK(got->age == 1001ms);
  s.sched->advance_time(5000ms);
  lookup(true);
  CHECK_FALSE(got); // past max stale too
  // Invalidation by prefix drops what a service's list_changed touches.
  caf::anon_send(cache, atom::put_v, std::string("svc\ntools/call\n*\n{}"), value::make_object({{"n", 2}}),
                 int64_t{1000}, int64_t{5000});
  caf::anon_send(cache, atom::drop_v, std::string("svc\ntools/call\n"));
  s.sched->run();
  lookup(true);
  CHECK_FALSE(got);
}

TEST_CASE("health supervisor: an open breaker switches degraded mode on; it goes off after the clean period",
          "[operations]") {
  simulated s;
  // A stand-in breaker and connector whose state the test sets.
  auto state = std::make_shared<std::string>("closed");
  auto breaker = s.sys->spawn([state]() -> caf::behavior {
    return {[state](atom::get) { return value::make_object({{"state", *state}}); }};
  });
  auto connector = s.sys->spawn([]() -> caf::behavior {
    return {[](atom::get) { return value::make_object({{"phase", "ready"}}); }};
  });
  // A stand-in limiter that records the degrade switches it is told.
  auto told = std::make_shared<std::vector<bool>>();
  auto limiter = s.sys->spawn([told]() -> caf::behavior {
    return {[told](atom::degrade, bool on) { told->push_back(on); },
            [](atom::get) {
              return value::make_object({{"usage", json::object{}}});
            }};
  });
  // A stand-in session supervisor that takes the mode's log notifications.
  auto notified = std::make_shared<int>(0);
  auto core = s.sys->spawn([notified]() -> caf::behavior {
    return {[notified](atom::notify, const std::string&, const value&) { ++*notified; }};
  });
  s.spawned = {breaker, connector, limiter, core};
  s.env->names.put(breaker_name("svc"), breaker);
  s.env->names.put(connector_name("svc"), connector);
  s.env->names.put(limiter_actor_name, limiter);
  s.env->names.put(names::session_supervisor, core);
  s.env->names.put(names::stateless_session, core);
  health_settings hs;
  hs.interval = 1000ms;
  hs.enter_checks = 2;
  hs.exit_after = 3000ms;
  auto health = spawn_health(*s.sys, s.env, hs, {"svc"});
  s.spawned.push_back(caf::actor_cast<caf::actor>(health));
  s.sched->run();

  auto level = [&] { return std::get<0>(s.env->health()); };
  s.advance(2000ms);
  CHECK(level() == static_cast<uint8_t>(health_level::healthy));
  CHECK(std::get<1>(s.env->health())); // ready: the service was reached

  // The breaker opens. Checks see it from the next round on; two troubled
  // checks in a row switch degraded mode on.
  *state = "open";
  s.advance(2000ms);
  CHECK(level() == static_cast<uint8_t>(health_level::degraded));
  CHECK_FALSE(s.env->degraded.load());
  s.advance(1000ms);
  CHECK(s.env->degraded.load());
  REQUIRE(told->size() == 1);
  CHECK(told->back());
  CHECK(*notified == 1); // clients were told
  auto report = std::get<2>(s.env->health());
  CHECK(report["components"]["breakers"]["svc"]["state"].as_string() == "open");
  CHECK(report["reasons"].as_array().size() == 1);

  // It closes: the report is healthy at once, but degraded mode stays on
  // until checks were clean for 3 s (hysteresis).
  *state = "closed";
  s.advance(2000ms);
  CHECK(level() == static_cast<uint8_t>(health_level::healthy));
  CHECK(s.env->degraded.load());
  s.advance(2000ms);
  CHECK(s.env->degraded.load());
  s.advance(1000ms);
  CHECK_FALSE(s.env->degraded.load());
  REQUIRE(told->size() == 2);
  CHECK_FALSE(told->back());

  // An operator may force it; the force wins over the checks.
  caf::anon_send(caf::actor_cast<caf::actor>(health), atom::degrade_v, int32_t{1});
  s.advance(3000ms);
  CHECK(s.env->degraded.load());
  caf::anon_send(caf::actor_cast<caf::actor>(health), atom::degrade_v, int32_t{-1});
  s.sched->run();
  CHECK_FALSE(s.env->degraded.load());
}

TEST_CASE("degraded switch: enter after N troubled checks, leave after a clean period", "[operations]") {
  using clock = std::chrono::steady_clock;
  degraded_switch sw(2, 3000ms);
  auto t0 = clock::time_point{};
  CHECK_FALSE(sw.update(t0, true));
  CHECK(sw.update(t0 + 1s, true));
  CHECK(sw.on());
  CHECK_FALSE(sw.update(t0 + 2s, false));
  CHECK_FALSE(sw.update(t0 + 3s, true)); // trouble again restarts the clean period
  CHECK_FALSE(sw.update(t0 + 4s, false));
  CHECK_FALSE(sw.update(t0 + 6999ms, false));
  CHECK(sw.update(t0 + 7s, false));
  CHECK_FALSE(sw.on());
  CHECK(sw.switches() == 2);
}

TEST_CASE("health assessment: downstream trouble is degraded, a missing core is unhealthy", "[operations]") {
  health_thresholds t;
  health_inputs in;
  CHECK(assess(in, t).level == health_level::healthy);
  in.breakers["a"] = "half_open";
  CHECK(assess(in, t).level == health_level::degraded);
  in.breakers["a"] = "closed";
  in.queue_fill = 0.81;
  auto v = assess(in, t);
  CHECK(v.level == health_level::degraded);
  CHECK(v.reasons.front().find("queue") != std::string::npos);
  in.queue_fill = 0.8;
  in.recent_restarts = t.restart_storm;
  CHECK(assess(in, t).level == health_level::degraded);
  in.recent_restarts = 0;
  in.core_up = false;
  CHECK(assess(in, t).level == health_level::unhealthy);
}

TEST_CASE("health assessment: an escalation is degraded with the supervisor's reason", "[operations]") {
  health_thresholds t;
  health_inputs in;
  in.recent_escalations = 1;
  in.escalations = {
    "service/web exceeded its restart intensity: connector/web stopped (kill) after 5 restarts within 10 s"};
  auto v = assess(in, t);
  CHECK(v.level == health_level::degraded);
  REQUIRE(v.reasons.size() == 1);
  CHECK(v.reasons[0] == in.escalations[0]);
  // The root giving up on the session supervisor leaves no core: unhealthy.
  in.core_up = false;
  in.escalations.push_back("root-supervisor exceeded its restart intensity: session-supervisor stopped");
  v = assess(in, t);
  CHECK(v.level == health_level::unhealthy);
  CHECK(v.reasons.size() == 3);
  CHECK(v.reasons[2].find("session-supervisor") != std::string::npos);
}

TEST_CASE("health supervisor: reports a recent escalation with its reason, and forgets it after the storm window",
          "[operations]") {
  simulated s;
  auto core = s.sys->spawn([]() -> caf::behavior { return {[](atom::notify, const std::string&, const value&) {}}; });
  s.spawned = {core};
  s.env->names.put(names::session_supervisor, core);
  s.env->names.put(names::stateless_session, core);
  health_settings hs;
  hs.interval = 1000ms;
  hs.storm_window = 5s;
  auto health = spawn_health(*s.sys, s.env, hs, {});
  s.spawned.push_back(caf::actor_cast<caf::actor>(health));
  s.sched->run();
  s.advance(2000ms);
  CHECK(std::get<0>(s.env->health()) == static_cast<uint8_t>(health_level::healthy));

  s.env->escalate({"operations-supervisor", "queue", "operations-supervisor exceeded its restart intensity: queue",
                   std::chrono::steady_clock::now()});
  s.advance(1000ms);
  auto report = std::get<2>(s.env->health());
  CHECK(report["status"].as_string() == "degraded");
  REQUIRE(report["reasons"].as_array().size() == 1);
  CHECK(report["reasons"].as_array()[0].as_string() == "operations-supervisor exceeded its restart intensity: queue");
  // Past the storm window the escalation no longer counts.
  s.advance(6000ms);
  CHECK(std::get<2>(s.env->health())["status"].as_string() == "healthy");
}

TEST_CASE("config: admission sections are read strictly, with the key's path in errors", "[operations]") {
  config cfg;
  apply_json(cfg, R"({
    "mcpServers": {"web": {"url": "http://127.0.0.1:9/mcp"}},
    "services": {"web": {"ratePerMinute": 120, "cache": {"scope": "public"}}},
    "rateLimits": {"tiers": {"gold": {"perSecond": 5, "perDay": 1000}}, "defaultTier": "gold",
                   "onLimit": "queue", "maxQueueWaitMs": 2000},
    "queue": {"capacity": 10, "maxConcurrentPerService": 2, "toolPriorities": {"slow": "low"}},
    "health": {"intervalMs": 250, "exitAfterMs": 500},
    "alerts": {"rules": {"breaker_open": {"cooldownSeconds": 60}}}
  })",
             "test");
  auto& ops = cfg.runtime.ops;
  REQUIRE(ops.limits.tiers["gold"].size() == 2);
  CHECK(ops.limits.tiers["gold"][0].count == 5);
  CHECK(ops.limits.tiers["gold"][1].per == std::chrono::hours(24));
  CHECK(ops.limits.tiers.count("free") == 1); // the defaults stay
  REQUIRE(ops.limits.services["web"].size() == 1);
  CHECK(ops.limits.services["web"][0].count == 120);
  CHECK(ops.queue_on_limit);
  CHECK(ops.max_limit_wait == 2000ms);
  CHECK(ops.queue.capacity == 10);
  CHECK(ops.tool_priorities["slow"] == priority::low);
  CHECK(ops.health.interval == 250ms);
  CHECK(cfg.gateway.services[0].settings.cache_public);
  auto rule =
    std::find_if(ops.alerts.rules.begin(), ops.alerts.rules.end(), [](auto& r) { return r.name == "breaker_open"; });
  REQUIRE(rule != ops.alerts.rules.end());
  CHECK(rule->cooldown == 60000ms);

  auto refused = [](const char* text) {
    config c;
    try {
      apply_json(c, text, "test");
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(refused(R"({"queue": {"capacty": 3}})").find("$.queue.capacty: unknown key") != std::string::npos);
  CHECK(refused(R"({"rateLimits": {"keys": {"abc": {"tier": "free"}}}})").find("$.rateLimits.keys.abc")
        != std::string::npos);
  CHECK(refused(R"({"rateLimits": {"onLimit": "wait"}})").find("$.rateLimits.onLimit") != std::string::npos);
  CHECK(refused(R"({"queue": {"toolPriorities": {"x": "urgent"}}})").find("$.queue.toolPriorities.x")
        != std::string::npos);
  CHECK(refused(R"({"health": {"queueFill": 2}})").find("$.health.queueFill") != std::string::npos);
  CHECK(refused(R"({"alerts": {"webhook": {"url": "ftp://x"}}})")
          .find("$.alerts.webhook.url: must be an http:// or https:// URL")
        != std::string::npos);
  CHECK(refused(R"({"alerts": {"webhook": {"url": "https://x", "tls": {"certFile": "a.pem"}}}})")
          .find("$.alerts.webhook.tls: certFile and keyFile go together")
        != std::string::npos);
  CHECK(refused(R"({"alerts": {"webhook": {"url": "https://x", "tls": {"caFile": "/nonexistent/ca.pem"}}}})")
          .find("$.alerts.webhook.tls.caFile: cannot read '/nonexistent/ca.pem'")
        != std::string::npos);
  CHECK(refused(R"({"alerts": {"webhook": {"url": "https://x", "tls": {"ca": "x"}}}})")
          .find("$.alerts.webhook.tls.ca: unknown key")
        != std::string::npos);

  // An https:// webhook, with files of its own or the system's store.
  char tmpl[] = "/tmp/bulwark-ca-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  std::string ca = tmpl;
  CHECK(refused((R"({"alerts": {"webhook": {"url": "http://x", "tls": {"caFile": ")" + ca + R"("}}}})").c_str())
          .find("$.alerts.webhook.tls: applies to https:// URLs only")
        != std::string::npos);
  config https;
  apply_json(https,
             R"({"alerts": {"webhook": {"url": "https://hooks.example/a", "tls": {"caFile": ")" + ca + R"("}}}})",
             "test");
  CHECK(https.runtime.ops.webhook.url == "https://hooks.example/a");
  CHECK(https.runtime.ops.webhook.tls.ca_file == ca);
  std::remove(ca.c_str());
  CHECK(refused(R"({"alerts": {"webhook": {"url": "https://hooks.example/a"}}})").empty());
}

TEST_CASE("alert manager: a rule fires, stays quiet for its cooldown, then fires again", "[operations]") {
  simulated s;
  s.env->metrics = std::make_shared<metrics::registry>();
  auto notified = std::make_shared<std::vector<value>>();
  auto core = s.sys->spawn([notified]() -> caf::behavior {
    return {[notified](atom::notify, const std::string&, const value& params) { notified->push_back(params); }};
  });
  s.spawned.push_back(core);
  s.env->names.put(names::session_supervisor, core);
  auto alerts = spawn_alert_manager(*s.sys, s.env);
  s.spawned.push_back(caf::actor_cast<caf::actor>(alerts));
  s.sched->run();

  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  auto sample = [&](std::chrono::steady_clock::time_point at) {
    health_sample h;
    h.now = at;
    h.wall = std::chrono::system_clock::now();
    h.open_breakers = {"svc"};
    caf::anon_send(alerts, atom::sample_v, h);
    s.sched->run();
  };
  auto fired = [&] { return s.env->metrics->counter("bulwark_alerts_total", {{"rule", "breaker_open"}}).value(); };
  sample(t0);
  CHECK(fired() == 1);
  REQUIRE(notified->size() == 1);
  CHECK(notified->back()["data"]["rule"].as_string() == "breaker_open");
  CHECK(notified->back()["_meta"]["io.bulwark/audience"].as_string() == "admin");
  sample(t0 + std::chrono::minutes(1));
  sample(t0 + std::chrono::minutes(15) - 1ms);
  CHECK(fired() == 1); // in its 15-minute cooldown
  sample(t0 + std::chrono::minutes(15));
  CHECK(fired() == 2);
  CHECK(notified->size() == 2);
}

namespace {

/// A tools/call to `service` whose final outcome lands in `outcome`.
downstream_call_ptr call_to(const std::string& service, std::optional<downstream_outcome>& outcome) {
  auto call = std::make_shared<downstream_call>();
  call->service = service;
  call->method = "tools/call";
  call->deadline = std::chrono::steady_clock::now() + 60s;
  call->on_done = [&outcome](downstream_outcome o) { outcome = std::move(o); };
  return call;
}

} // namespace

TEST_CASE("breaker: a call's wait on its service is summed over its attempts", "[breaker]") {
  simulated s;
  // A stand-in connector: the first attempt fails before reaching the
  // service after 3 ms, the second answers after 5 ms.
  auto attempts = std::make_shared<int>(0);
  auto connector = s.sys->spawn([attempts]() -> caf::behavior {
    return {[attempts](atom::call, uint64_t id, const downstream_call_ptr&, const caf::actor& reply_to,
                       const handoff_ptr& handed) {
      handed->take();
      downstream_outcome o;
      if (++*attempts == 1) {
        o = downstream_outcome::without_answer(downstream_outcome::kind::failure, error_code::service_unavailable,
                                               "connection refused", false);
        o.waited = 3ms;
      } else {
        o.what = downstream_outcome::kind::result;
        o.result = value::make_object({{"content", json::array{}}});
        o.reached = true;
        o.waited = 5ms;
      }
      caf::anon_send(caf::actor_cast<breaker_actor>(reply_to), atom::done_v, id, std::move(o));
    }};
  });
  s.spawned.push_back(connector);
  s.env->names.put(connector_name("svc"), connector);
  service_config svc;
  svc.name = "svc";
  svc.settings.retry.attempts = 3;
  svc.settings.retry.base_delay = 10ms;
  svc.settings.retry.jitter = 0;
  auto breaker = spawn_breaker(*s.sys, s.env, svc, false);
  s.spawned.push_back(caf::actor_cast<caf::actor>(breaker));

  std::optional<downstream_outcome> outcome;
  auto call = call_to("svc", outcome);
  send_call(breaker, call);
  s.sched->run();
  CHECK_FALSE(outcome); // the first attempt failed: a retry is due in 10 ms
  s.advance(100ms, 10ms);
  REQUIRE(outcome);
  CHECK(*attempts == 2);
  CHECK(outcome->what == downstream_outcome::kind::result);
  CHECK(outcome->waited == 8ms);
}

TEST_CASE("breaker: an open breaker fails fast with no wait on the service", "[breaker]") {
  simulated s;
  service_config svc;
  svc.name = "svc";
  auto breaker = spawn_breaker(*s.sys, s.env, svc, false);
  s.spawned.push_back(caf::actor_cast<caf::actor>(breaker));
  caf::anon_send(breaker, atom::force_v, std::string("open"));
  s.sched->run();
  std::optional<downstream_outcome> outcome;
  auto call = call_to("svc", outcome);
  send_call(breaker, call);
  s.sched->run();
  REQUIRE(outcome);
  CHECK(outcome->unanswered());
  CHECK_FALSE(outcome->reached);
  CHECK(outcome->waited.count() == 0);
}

TEST_CASE("operator routes: details only on loopback, with the admin token or on the admin listener; metrics behind "
          "their token") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 1);
  caf::actor_system sys{cfg};
  runtime_options opts;
  opts.ops.admin_token_sha256 = crypto::sha256_hex("admin-secret");
  opts.ops.metrics_token_sha256 = crypto::sha256_hex("scrape-secret");
  runtime rt(sys, opts);
  rt.environment()->publish_health(
    static_cast<uint8_t>(health_level::degraded), true,
    json::value::make_object({{"status", "degraded"},
                              {"reasons", json::value::make_array({"breaker of billing is open"})},
                              {"unreachedServices", json::value(json::array{})},
                              {"components", json::value::make_object({{"limiter", "tiers"}})}}));
  http_options ho;
  http_server mcp(&rt, ho), admin(&rt, ho);
  add_operator_routes(mcp, rt);
  add_operator_routes(admin, rt, true);
  auto get = [](http_server& srv, std::string path, std::string remote, std::string authorization = {}) {
    http_request_view req;
    req.method = "GET";
    req.path = std::move(path);
    req.remote = std::move(remote);
    req.authorization = std::move(authorization);
    auto r = srv.answer_get(req);
    REQUIRE(r);
    return *r;
  };
  auto json_of = [](const http_reply& r) {
    json::value v;
    json::parse_error err;
    REQUIRE(json::parse(r.body, v, err));
    return v;
  };
  // Off loopback, without the token: the status alone.
  for (auto* path : {"/health", "/ready", "/health/ready"}) {
    INFO(path);
    auto brief = json_of(get(mcp, path, "10.1.2.3:40000"));
    CHECK(brief["status"].as_string() == "degraded");
    CHECK_FALSE(brief.find("reasons"));
    CHECK_FALSE(brief.find("components"));
    CHECK(json_of(get(mcp, path, "[2001:db8::7]:40000", "Bearer wrong")).find("reasons") == nullptr);
    // On loopback, with the admin token, or on the admin listener: all of it.
    CHECK(json_of(get(mcp, path, "127.0.0.1:40000")).find("reasons"));
    CHECK(json_of(get(mcp, path, "[::1]:40000")).find("reasons"));
    CHECK(json_of(get(mcp, path, "10.1.2.3:40000", "Bearer admin-secret")).find("reasons"));
    CHECK(json_of(get(admin, path, "10.1.2.3:40000")).find("reasons"));
  }
  CHECK(get(mcp, "/health", "10.1.2.3:40000").status == 200);
  // The metrics token is demanded wherever the metrics are served.
  for (auto* srv : {&mcp, &admin}) {
    auto refused = get(*srv, "/metrics", "127.0.0.1:40000");
    CHECK(refused.status == 401);
    CHECK(refused.headers.find("WWW-Authenticate: Bearer") != std::string::npos);
    CHECK(get(*srv, "/metrics.json", "127.0.0.1:40000", "Bearer admin-secret").status == 401);
    auto scraped = get(*srv, "/metrics", "10.1.2.3:40000", "Bearer scrape-secret");
    CHECK(scraped.status == 200);
    CHECK(scraped.content_type.rfind("text/plain", 0) == 0);
  }
  CHECK(is_loopback_peer("127.8.9.10:1"));
  CHECK(is_loopback_peer("[::ffff:127.0.0.1]:1"));
  CHECK_FALSE(is_loopback_peer("[::ffff:10.0.0.1]:1"));
  CHECK_FALSE(is_loopback_peer(""));
}

TEST_CASE("operator routes: metrics on the admin listener only") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 1);
  caf::actor_system sys{cfg};
  runtime_options opts;
  opts.ops.metrics_on_admin_only = true;
  runtime rt(sys, opts);
  http_options ho;
  http_server mcp(&rt, ho), admin(&rt, ho);
  add_operator_routes(mcp, rt);
  add_operator_routes(admin, rt, true);
  http_request_view req;
  req.path = "/metrics";
  req.remote = "127.0.0.1:1";
  CHECK_FALSE(mcp.answer_get(req));
  REQUIRE(admin.answer_get(req));
  CHECK(admin.answer_get(req)->status == 200);
  req.path = "/health";
  CHECK(mcp.answer_get(req));
  config c;
  CHECK_THROWS_WITH(apply_json(c, R"({"metrics": {"listener": "admin"}})", "t"),
                    "config: $.metrics.listener: is \"admin\", but there is no admin listener (set admin.port)");
  CHECK_THROWS_WITH(apply_json(c, R"({"metrics": {"listner": "admin"}})", "t"),
                    "config: $.metrics.listner: unknown key");
  config ok;
  apply_json(ok,
             R"({"admin": {"port": 0}, "metrics": {"listener": "admin", "tokenSha256": ")" + crypto::sha256_hex("t")
               + R"("}})",
             "t");
  CHECK(ok.runtime.ops.metrics_on_admin_only);
  CHECK(ok.runtime.ops.metrics_token_sha256 == crypto::sha256_hex("t"));
}

// -- calls in messages that are dropped ---------------------------------------------------
//
// CAF 0.17 destroys an asynchronous message without a word when its receiver
// is gone, or is killed while the message waits in its mailbox (behind the
// exit message). A call handed over in such a message must still get its one
// answer.

namespace {

/// A stand-in connector that answers every attempt with a result and notes
/// its name in `ran`.
caf::actor answering_connector(simulated& s, std::shared_ptr<std::vector<std::string>> ran, std::string name) {
  return s.sys->spawn([ran, name]() -> caf::behavior {
    return {[ran, name](atom::call, uint64_t id, const downstream_call_ptr&, const caf::actor& reply_to,
                        const handoff_ptr& handed) {
      handed->take();
      ran->push_back(name);
      downstream_outcome o;
      o.what = downstream_outcome::kind::result;
      o.result = value::make_object({{"content", json::array{}}});
      o.reached = true;
      caf::anon_send(caf::actor_cast<breaker_actor>(reply_to), atom::done_v, id, std::move(o));
    }};
  });
}

} // namespace

TEST_CASE("breaker: a call it never took (killed first, or gone) is answered: not reached, retry", "[breaker]") {
  simulated s;
  service_config svc;
  svc.name = "svc";
  auto breaker = spawn_breaker(*s.sys, s.env, svc, false);
  s.sched->run();

  // The kill is queued ahead of the call: the breaker stops, and the call
  // waiting behind the exit message is dropped with its mailbox.
  int answers = 0;
  std::optional<downstream_outcome> outcome;
  auto call = call_to("svc", outcome);
  call->on_done = [&](downstream_outcome o) {
    ++answers;
    outcome = std::move(o);
  };
  caf::anon_send_exit(breaker, caf::exit_reason::kill);
  send_call(breaker, call);
  s.sched->run();
  REQUIRE(outcome);
  CHECK(answers == 1);
  CHECK(outcome->code == static_cast<int>(error_code::actor_restarted));
  CHECK(outcome->unanswered());
  CHECK_FALSE(outcome->reached);

  // A registry can still name the incarnation that just died: a call sent
  // to it is answered the same way.
  std::optional<downstream_outcome> late;
  send_call(breaker, call_to("svc", late));
  s.sched->run();
  REQUIRE(late);
  CHECK(late->code == static_cast<int>(error_code::actor_restarted));
  CHECK_FALSE(late->reached);
}

TEST_CASE("breaker: an attempt the connector never took is retried (it did not reach the service), once", "[breaker]") {
  simulated s;
  auto ran = std::make_shared<std::vector<std::string>>();
  auto first = answering_connector(s, ran, "first");
  auto second = answering_connector(s, ran, "second");
  s.spawned.push_back(second);
  s.env->names.put(connector_name("svc"), first);
  service_config svc;
  svc.name = "svc";
  svc.settings.retry.attempts = 3;
  svc.settings.retry.base_delay = 10ms;
  svc.settings.retry.jitter = 0;
  auto breaker = spawn_breaker(*s.sys, s.env, svc, false);
  s.spawned.push_back(caf::actor_cast<caf::actor>(breaker));
  s.sched->run();

  int answers = 0;
  std::optional<downstream_outcome> outcome;
  auto call = call_to("svc", outcome);
  call->idempotent = false; // only a call that never reached the service may go again
  call->on_done = [&](downstream_outcome o) {
    ++answers;
    outcome = std::move(o);
  };
  send_call(breaker, call);
  // The breaker runs first and hands the attempt to the connector, whose
  // kill is already queued: the connector stops with the attempt unread.
  caf::anon_send_exit(first, caf::exit_reason::kill);
  s.sched->run_once();
  s.sched->run();
  CHECK(ran->empty());
  CHECK_FALSE(outcome); // reported unsent: a retry is due
  // The connector's successor takes the retry.
  s.env->names.put(connector_name("svc"), second);
  s.advance(100ms, 10ms);
  REQUIRE(outcome);
  CHECK(answers == 1);
  CHECK(*ran == std::vector<std::string>{"second"});
  CHECK(outcome->what == downstream_outcome::kind::result);
}

TEST_CASE("queue actor: work it never took (killed first, or gone) is refused, not lost", "[operations]") {
  simulated s;
  s.supervise({child_spec{queue_actor_name, [env = s.env](caf::actor_system& sys) {
                            return caf::actor_cast<caf::actor>(spawn_queue(sys, env));
                          }}});
  auto queue = caf::actor_cast<queue_actor>(s.env->names.get(queue_actor_name));
  REQUIRE(queue);
  auto work = [](bool& started, std::optional<int>& refused) {
    auto w = std::make_shared<queued_work>();
    w->lane = "svc";
    w->deadline = std::chrono::steady_clock::time_point::max();
    w->start = [&started](std::function<void()>) { started = true; };
    w->reject = [&refused](error_code code, std::string, value) { refused = static_cast<int>(code); };
    return w;
  };
  bool started = false;
  std::optional<int> refused;
  caf::anon_send_exit(queue, caf::exit_reason::kill);
  caf::anon_send(queue, atom::enqueue_v, work(started, refused));
  s.sched->run();
  CHECK_FALSE(started);
  REQUIRE(refused);
  CHECK(*refused == static_cast<int>(error_code::actor_restarted));

  // Sent to the dead incarnation: the same.
  bool started_late = false;
  std::optional<int> refused_late;
  caf::anon_send(queue, atom::enqueue_v, work(started_late, refused_late));
  s.sched->run();
  CHECK_FALSE(started_late);
  REQUIRE(refused_late);
  CHECK(*refused_late == static_cast<int>(error_code::actor_restarted));
}

TEST_CASE("cache actor: a lookup it never answers (killed first, or gone) is a miss, answered once", "[operations]") {
  simulated s;
  auto cache = spawn_cache(*s.sys, 100, 1 << 20);
  const std::string key = "svc\ntools/call\n*\n{}";
  caf::anon_send(cache, atom::put_v, key, value::make_object({{"n", 1}}), int64_t{60000}, int64_t{60000});
  s.sched->run();
  int answers = 0;
  std::optional<cache_hit> got;
  auto found = [&](std::optional<cache_hit> h) {
    ++answers;
    got = std::move(h);
  };
  look_up(cache, key, false, found);
  s.sched->run();
  CHECK(answers == 1); // a live cache answers once
  CHECK(got);

  answers = 0;
  caf::anon_send_exit(cache, caf::exit_reason::kill);
  look_up(cache, key, false, found);
  s.sched->run();
  CHECK(answers == 1);
  CHECK_FALSE(got);

  answers = 0;
  look_up(cache, key, true, found); // the dead incarnation
  s.sched->run();
  CHECK(answers == 1);
  CHECK_FALSE(got);
}
