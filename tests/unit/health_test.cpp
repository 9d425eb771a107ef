// Health: the degraded switch and the health assessment as pure functions,
// the health supervisor on CAF's deterministic test coordinator
// (breaker-driven degraded mode and its hysteresis, escalations), and the
// operator routes it serves.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/breaker.hpp"
#include "actors/health.hpp"
#include "actors/limiter_actor.hpp"
#include "actors/runtime.hpp"
#include "config/config.hpp"
#include "messages/actors.hpp"
#include "messages/crypto.hpp"
#include "tests/unit/simulated.hpp"
#include "transport/http_server.hpp"

using namespace bulwark;
using json::value;
using namespace std::chrono_literals;
using test::simulated;

TEST_CASE("degraded switch: enter after N troubled checks, leave after a clean period", "[health]") {
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

TEST_CASE("health assessment: downstream trouble is degraded, a missing core is unhealthy", "[health]") {
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

TEST_CASE("health assessment: an escalation is degraded with the supervisor's reason", "[health]") {
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

TEST_CASE("health assessment: Redis away is degraded with the reason", "[health]") {
  health_thresholds t;
  health_inputs in;
  CHECK(assess(in, t).level == health_level::healthy);
  in.shared_state_problem = "Connection refused";
  auto v = assess(in, t);
  CHECK(v.level == health_level::degraded);
  REQUIRE(v.reasons.size() == 1);
  CHECK(v.reasons[0].find("redis unreachable (Connection refused)") == 0);
}

TEST_CASE("health supervisor: an open breaker switches degraded mode on; it goes off after the clean period",
          "[health]") {
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

TEST_CASE("health supervisor: one round without a component's answer is not yet unresponsiveness; two in a row are",
          "[health]") {
  simulated s;
  // A stand-in breaker that leaves the next `*quiet` health checks unanswered.
  auto quiet = std::make_shared<int>(0);
  auto breaker = s.sys->spawn([quiet](caf::event_based_actor* self) -> caf::behavior {
    return {[self, quiet](atom::get) -> caf::result<value> {
      if (*quiet > 0) {
        --*quiet;
        return self->make_response_promise<value>(); // never delivered: the request times out
      }
      return value::make_object({{"state", "closed"}});
    }};
  });
  auto connector = s.sys->spawn([]() -> caf::behavior {
    return {[](atom::get) { return value::make_object({{"phase", "ready"}}); }};
  });
  auto core = s.sys->spawn([]() -> caf::behavior { return {[](atom::notify, const std::string&, const value&) {}}; });
  s.spawned = {breaker, connector, core};
  s.env->names.put(breaker_name("svc"), breaker);
  s.env->names.put(connector_name("svc"), connector);
  s.env->names.put(names::session_supervisor, core);
  s.env->names.put(names::stateless_session, core);
  health_settings hs;
  hs.interval = 1000ms;
  auto health = spawn_health(*s.sys, s.env, hs, {"svc"});
  s.spawned.push_back(caf::actor_cast<caf::actor>(health));
  s.sched->run();
  auto status = [&] { return std::get<2>(s.env->health())["status"].as_string(); };
  s.advance(2000ms);
  REQUIRE(status() == "healthy");

  // One slow round (a busy worker at start-up, say): still healthy.
  *quiet = 1;
  for (int i = 0; i < 4; ++i) {
    s.advance(1000ms);
    CHECK(status() == "healthy");
  }
  CHECK(*quiet == 0);

  // Silent from now on: unresponsive after the second round in a row.
  *quiet = 1000;
  s.advance(1000ms);
  s.advance(1000ms);
  CHECK(status() == "healthy");
  s.advance(1000ms);
  auto report = std::get<2>(s.env->health());
  CHECK(report["status"].as_string() == "degraded");
  REQUIRE(report["reasons"].as_array().size() == 1);
  CHECK(report["reasons"].as_array()[0].as_string().find("did not answer") != std::string::npos);
}

TEST_CASE("health supervisor: reports a recent escalation with its reason, and forgets it after the storm window",
          "[health]") {
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

TEST_CASE("operator routes: details only on loopback, with the admin token or on the admin listener; metrics behind "
          "their token",
          "[health]") {
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

TEST_CASE("operator routes: metrics on the admin listener only", "[health]") {
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
