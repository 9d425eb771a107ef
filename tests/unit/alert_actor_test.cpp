// The alert manager on CAF's deterministic test coordinator: a rule fires,
// waits out its cooldown and fires again; alerts reach a webhook over TLS,
// verified against its caFile.
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/alert_actor.hpp"
#include "actors/alerts.hpp"
#include "config/metrics.hpp"
#include "messages/actors.hpp"
#include "tests/unit/io_loop.hpp"
#include "tests/unit/simulated.hpp"
#include "tests/unit/tls.hpp"

using namespace bulwark;
using json::value;
using namespace std::chrono_literals;
using test::io_loop;
using test::simulated;
using test::test_pki;
using test::tls_server;

TEST_CASE("alert manager: a rule fires, stays quiet for its cooldown, then fires again", "[alert_actor]") {
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

TEST_CASE("https: alerts reach a webhook over TLS, verified against its caFile", "[alert_actor][tls]") {
  test_pki pki;
  tls_server server(pki.server_cert, pki.server_key);
  io_loop loop;
  test::simulated_system s;
  s.env->io = &loop.io;
  auto& webhook = s.env->opts.ops.webhook;
  webhook.url = "https://localhost:" + std::to_string(server.port()) + "/alerts";
  webhook.attempts = 1;
  SECTION("trusted: the alert is posted") {
    webhook.tls.ca_file = pki.ca_file;
  }
  SECTION("the system's store does not know the test CA: nothing is posted") {}
  auto alerts = spawn_alert_manager(*s.sys, s.env);
  s.spawned.push_back(caf::actor_cast<caf::actor>(alerts));
  s.sched->run();
  health_sample h;
  h.now = std::chrono::steady_clock::now();
  h.wall = std::chrono::system_clock::now();
  h.open_breakers = {"svc"};
  caf::anon_send(alerts, atom::sample_v, h);
  s.sched->run();
  // The delivery ends either way: a request, or a refused handshake.
  for (int i = 0; i < 300 && server.requests() == 0 && !(server.accepted() > 0 && webhook.tls.ca_file.empty()); ++i)
    std::this_thread::sleep_for(10ms);
  if (webhook.tls.ca_file.empty()) {
    std::this_thread::sleep_for(100ms);
    CHECK(server.accepted() >= 1);
    CHECK(server.requests() == 0);
  } else {
    REQUIRE(server.requests() == 1);
    CHECK_THAT(server.last_body(), Catch::Contains(R"("rule":"breaker_open")"));
  }
}
