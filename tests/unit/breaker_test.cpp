// The circuit breaker: its state machine on an injected clock, and the
// breaker actor on CAF's deterministic test coordinator (a call's wait on its
// service, failing fast, and calls in messages that are dropped).
#include <optional>

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/breaker.hpp"
#include "messages/actors.hpp"
#include "tests/unit/simulated.hpp"

using namespace bulwark;
using json::value;
using namespace std::chrono_literals;

namespace {

using clock_type = circuit_breaker::clock;

breaker_settings small() {
  breaker_settings s;
  s.consecutive_failures = 3;
  s.failure_rate = 0.5;
  s.window = 10s;
  s.minimum_calls = 6;
  s.open_duration = 1000ms;
  s.half_open_probes = 2;
  s.successes_to_close = 2;
  return s;
}

} // namespace

TEST_CASE("breaker: consecutive failures open it; open fails fast with the time left", "[breaker]") {
  circuit_breaker b(small());
  auto t = clock_type::time_point{} + 1h;
  for (int i = 0; i < 2; ++i) {
    REQUIRE(b.admit(t).allowed);
    b.record(t, false, false);
  }
  CHECK(b.state() == breaker_state::closed);
  REQUIRE(b.admit(t).allowed);
  b.record(t, true, false); // a success resets the run
  for (int i = 0; i < 3; ++i) {
    REQUIRE(b.admit(t).allowed);
    b.record(t, false, false);
  }
  CHECK(b.state() == breaker_state::open);
  CHECK(b.transitions() == 1);
  auto a = b.admit(t + 400ms);
  CHECK_FALSE(a.allowed);
  CHECK(a.retry_after == 600ms);
}

TEST_CASE("breaker: the failure rate over the window opens it once enough calls were seen", "[breaker]") {
  circuit_breaker b(small());
  auto t = clock_type::time_point{} + 1h;
  // Alternating results never make three failures in a row.
  for (int i = 0; i < 5; ++i) {
    REQUIRE(b.admit(t).allowed);
    b.record(t, i % 2 == 1, false); // F S F S F
  }
  CHECK(b.state() == breaker_state::closed); // 5 calls < minimum 6
  REQUIRE(b.admit(t).allowed);
  b.record(t, true, false); // 3 of 6 failed = 0.5
  CHECK(b.state() == breaker_state::closed); // the 6th call was a success: no check
  REQUIRE(b.admit(t).allowed);
  b.record(t, false, false); // 4 of 7 failed
  CHECK(b.state() == breaker_state::open);
  // Old calls leave the window: after it, one failure is not enough.
  circuit_breaker c(small());
  for (int i = 0; i < 5; ++i) { // F S F S F: below the minimum
    c.admit(t);
    c.record(t, i % 2 == 1, false);
  }
  c.admit(t + 11s);
  c.record(t + 11s, false, false);
  CHECK(c.state() == breaker_state::closed);
}

TEST_CASE("breaker: the window counts in slices, whatever the call rate", "[breaker]") {
  circuit_breaker b(small()); // a 10 s window: slices of 156.25 ms
  auto t = clock_type::time_point{} + 1h;
  for (int i = 0; i < 100000; ++i) {
    b.admit(t);
    b.record(t, true, false);
  }
  CHECK(b.window_calls() == 100000);
  // Half a window later both batches count.
  b.admit(t + 5s);
  b.record(t + 5s, true, false);
  CHECK(b.window_calls() == 100001);
  // Once the first batch is a full window old it leaves, within one slice.
  b.admit(t + 10s + 200ms);
  b.record(t + 10s + 200ms, true, false);
  CHECK(b.window_calls() == 2);
  // A quiet spell longer than the window leaves nothing behind.
  b.admit(t + 1h);
  b.record(t + 1h, false, false);
  CHECK(b.window_calls() == 1);
  CHECK(b.state() == breaker_state::closed);
}

TEST_CASE("breaker: half-open admits exactly the probe count and closes after enough successes", "[breaker]") {
  circuit_breaker b(small());
  auto t = clock_type::time_point{} + 1h;
  b.force(t, breaker_state::open, "test");
  auto later = t + 1000ms;
  auto p1 = b.admit(later);
  auto p2 = b.admit(later);
  auto p3 = b.admit(later);
  CHECK(b.state() == breaker_state::half_open);
  CHECK((p1.allowed && p1.probe && p2.allowed && p2.probe));
  CHECK_FALSE(p3.allowed); // only two probes at a time
  b.record(later, true, true);
  CHECK(b.state() == breaker_state::half_open); // one of two successes
  CHECK(b.admit(later).allowed); // a probe slot freed
  b.record(later, true, true);
  CHECK(b.state() == breaker_state::closed);
}

TEST_CASE("breaker: a failed probe opens it again for a whole open duration", "[breaker]") {
  circuit_breaker b(small());
  auto t = clock_type::time_point{} + 1h;
  b.force(t, breaker_state::open, "test");
  REQUIRE(b.admit(t + 1s).probe);
  b.record(t + 1s, false, true);
  CHECK(b.state() == breaker_state::open);
  CHECK_FALSE(b.admit(t + 1500ms).allowed);
  CHECK(b.admit(t + 2s).allowed);
}

TEST_CASE("breaker: an operator's hold stays whatever the calls do, until released", "[breaker]") {
  circuit_breaker b(small());
  auto t = clock_type::time_point{} + 1h;
  // Held open: no half-open after the open duration, however long.
  b.force(t, breaker_state::open, "operator", true);
  CHECK(b.held());
  auto late = b.admit(t + 1h);
  CHECK_FALSE(late.allowed);
  CHECK(late.retry_after > 0ms);
  CHECK(b.state() == breaker_state::open);
  // Released: it half-opens, and the next call probes.
  b.release(t + 1h);
  CHECK_FALSE(b.held());
  CHECK(b.state() == breaker_state::half_open);
  CHECK(b.admit(t + 1h).probe);

  // Held closed: failures in a row do not open it.
  circuit_breaker c(small());
  c.force(t, breaker_state::closed, "operator", true);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(c.admit(t + std::chrono::milliseconds(i)).allowed);
    c.record(t + std::chrono::milliseconds(i), false, false);
  }
  CHECK(c.state() == breaker_state::closed);
  // Released, it counts failures again.
  c.release(t + 1s);
  CHECK(c.state() == breaker_state::closed);
  for (int i = 0; i < 3; ++i)
    c.record(t + 1s, false, false);
  CHECK(c.state() == breaker_state::open);

  // Half-open is a one-off: the probe's outcome moves it as usual.
  circuit_breaker h(small());
  h.force(t, breaker_state::half_open, "operator", true);
  CHECK_FALSE(h.held());
}

using test::simulated;
namespace {

/// A tools/call to `service` whose final outcome lands in `outcome` (once
/// the listener ran).
downstream_call_ptr call_to(simulated& s, const std::string& service, std::optional<downstream_outcome>& outcome) {
  auto call = std::make_shared<downstream_call>();
  call->service = service;
  call->method = "tools/call";
  call->deadline = std::chrono::steady_clock::now() + 60s;
  call->listener = s.listener([&outcome](downstream_outcome o) { outcome = std::move(o); });
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
  auto call = call_to(s, "svc", outcome);
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
  auto call = call_to(s, "svc", outcome);
  send_call(breaker, call);
  s.sched->run();
  REQUIRE(outcome);
  CHECK(outcome->unanswered());
  CHECK_FALSE(outcome->reached);
  CHECK(outcome->waited.count() == 0);
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
  auto call = call_to(s, "svc", outcome);
  call->listener = s.listener([&](downstream_outcome o) {
    ++answers;
    outcome = std::move(o);
  });
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
  send_call(breaker, call_to(s, "svc", late));
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
  auto call = call_to(s, "svc", outcome);
  call->idempotent = false; // only a call that never reached the service may go again
  call->listener = s.listener([&](downstream_outcome o) {
    ++answers;
    outcome = std::move(o);
  });
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

TEST_CASE("downstream call: with its listener gone, its outcome fails the client's call (restarted, retry), once",
          "[breaker]") {
  simulated s;
  /// Stands in for the session: counts the failures of its call.
  struct recording_owner final : call_owner {
    int fails = 0;
    std::optional<error_code> code;
    json::value data;
    void on_progress(call_context&, double, std::optional<double>, std::string) override {}
    void on_log(call_context&, log_level, json::value, std::string) override {}
    void on_after(const call_ptr&, std::chrono::milliseconds, call_handler) override {}
    void on_finish(call_context&, json::value) override {}
    void on_fail(call_context&, error_code c, std::string, json::value d) override {
      ++fails;
      code = c;
      data = std::move(d);
    }
    void on_input_required(call_context&, json::value, std::string) override {}
  } owner;
  auto client_call =
    std::make_shared<call_context>("tools/call", json::value::make_object({{"name", "t"}}), client_view{});
  client_call->attach(&owner);
  client_call->set_resumer([](call_ptr c, call_handler next) { next(c); });

  std::optional<downstream_outcome> heard;
  auto call = call_to(s, "svc", heard);
  call->target = client_call;
  caf::anon_send_exit(call->listener, caf::exit_reason::kill);
  s.sched->run();

  downstream_outcome o;
  o.what = downstream_outcome::kind::result;
  o.reached = true;
  call->complete(o);
  s.sched->run();
  CHECK_FALSE(heard);
  REQUIRE(owner.code);
  CHECK(*owner.code == error_code::actor_restarted);
  CHECK(owner.data["reachedService"].as_bool());
  CHECK(owner.data["retry_after_seconds"].as_int() == 1);
  call->complete(o);
  s.sched->run();
  CHECK(owner.fails == 1);
}
