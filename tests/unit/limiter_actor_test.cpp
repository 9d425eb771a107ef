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
