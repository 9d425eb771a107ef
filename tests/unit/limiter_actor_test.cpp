// The rate limiter actor on CAF's deterministic test coordinator: its buckets
// survive its restart and refill with simulated time.
#include <optional>

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/limiter.hpp"
#include "actors/limiter_actor.hpp"
#include "messages/actors.hpp"
#include "tests/unit/simulated.hpp"

using namespace bulwark;
using namespace std::chrono_literals;

namespace {

using test::simulated;

/// Stands in for the asking session: keeps the verdicts it is sent.
caf::actor verdict_sink(simulated& s, std::optional<admission>& got, uint64_t& serial) {
  return s.sys->spawn([&got, &serial](caf::event_based_actor*) -> caf::behavior {
    return {[&got, &serial](atom::admit, uint64_t n, const admission& a) {
      serial = n;
      got = a;
    }};
  });
}

/// Asks the limiter; returns its verdict.
admission ask(simulated& s, const std::string& key, const std::string& tier) {
  std::optional<admission> got;
  uint64_t serial = 0;
  admission_request req;
  req.key = key;
  req.tier = tier;
  auto t = std::make_shared<admission_ticket>(req, verdict_sink(s, got, serial), 42);
  caf::anon_send(caf::actor_cast<limiter_actor>(s.env->names.get(limiter_actor_name)), atom::admit_v, std::move(t));
  s.sched->run();
  REQUIRE(got);
  CHECK(serial == 42); // the verdict names the call it is for
  return *got;
}

} // namespace

TEST_CASE("limiter actor: buckets survive its restart and refill on the actor clock", "[limiter_actor]") {
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

TEST_CASE("limiter actor: a ticket the limiter never decided answers its session as undecided", "[limiter_actor]") {
  simulated s;
  std::optional<admission> got;
  uint64_t serial = 0;
  {
    // The message carrying the ticket is dropped: its receiver is gone.
    auto gone = s.sys->spawn([](caf::event_based_actor*) -> caf::behavior { return {[](atom::admit) {}}; });
    caf::anon_send_exit(gone, caf::exit_reason::kill);
    s.sched->run();
    auto t = std::make_shared<admission_ticket>(admission_request{}, verdict_sink(s, got, serial), 7);
    caf::anon_send(caf::actor_cast<limiter_actor>(gone), atom::admit_v, std::move(t));
  }
  s.sched->run();
  REQUIRE(got);
  CHECK(serial == 7);
  CHECK(got->undecided);
  CHECK_FALSE(got->admitted);
}

TEST_CASE("limiter actor: a ticket answers once", "[limiter_actor]") {
  simulated s;
  std::optional<admission> got;
  uint64_t serial = 0;
  int verdicts = 0;
  auto sink = s.sys->spawn([&](caf::event_based_actor*) -> caf::behavior {
    return {[&](atom::admit, uint64_t n, const admission& a) {
      serial = n;
      got = a;
      ++verdicts;
    }};
  });
  {
    admission yes;
    yes.admitted = true;
    admission_ticket t(admission_request{}, sink, 3);
    t.answer(yes);
    t.answer(admission{}); // later answers, and the ticket's end, send nothing
  }
  s.sched->run();
  CHECK(verdicts == 1);
  REQUIRE(got);
  CHECK(got->admitted);
  CHECK_FALSE(got->undecided);
}
