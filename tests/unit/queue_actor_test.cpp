// The priority queue's worker actor on CAF's deterministic test coordinator:
// order, lanes, and answers for queued work when it is killed or gone.
#include <functional>
#include <map>

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/queue_actor.hpp"
#include "messages/actors.hpp"
#include "tests/unit/simulated.hpp"

using namespace bulwark;
using json::value;
using namespace std::chrono_literals;
using test::simulated;

namespace {

/// Stands in for the services' breakers: records which calls the queue
/// sent (by their method, which the tests use as a label).
caf::actor fake_breaker(simulated& s, std::vector<std::string>& started) {
  return s.sys->spawn([&started](caf::event_based_actor*) -> caf::behavior {
    return {[&started](atom::call, const downstream_call_ptr& call, const handoff_ptr& h) {
      h->take();
      started.push_back(call->method);
    }};
  });
}

/// A queued call labelled `label` whose outcome's code (when it ends without
/// running) goes to `refused`.
queued_work_ptr queued(simulated& s, const std::string& label, priority p, const std::string& lane,
                       std::map<std::string, int>& refused) {
  auto call = std::make_shared<downstream_call>();
  call->service = lane;
  call->method = label;
  call->listener = s.listener([&refused, label](downstream_outcome o) {
    if (o.what == downstream_outcome::kind::refused)
      refused[label] = o.code;
  });
  auto w = std::make_shared<queued_work>(call);
  w->label = label;
  w->prio = p;
  w->lane = lane;
  w->deadline = std::chrono::steady_clock::time_point::max();
  return w;
}

} // namespace

TEST_CASE("queue actor: runs by priority, one call per lane at a time, and answers queued work when killed",
          "[queue_actor]") {
  simulated s;
  s.env->opts.ops.max_concurrent_per_service = 1;
  s.supervise({child_spec{queue_actor_name, [env = s.env](caf::actor_system& sys) {
                            return caf::actor_cast<caf::actor>(spawn_queue(sys, env));
                          }}});
  std::vector<std::string> started;
  auto breaker = fake_breaker(s, started);
  s.env->names.put("breaker/svc", breaker);
  s.env->names.put("breaker/other", breaker);
  std::map<std::string, uint64_t> ids;
  std::map<std::string, int> refused; // label -> error code
  auto queue = [&] { return caf::actor_cast<queue_actor>(s.env->names.get(queue_actor_name)); };
  auto enqueue = [&](const std::string& label, priority p, const std::string& lane) {
    auto w = queued(s, label, p, lane, refused);
    ids[label] = w->id;
    caf::anon_send(queue(), atom::enqueue_v, std::move(w));
    s.sched->run();
  };
  auto finish = [&](const std::string& label) {
    caf::anon_send(queue(), atom::done_v, ids[label]);
    s.sched->run();
  };
  enqueue("a", priority::normal, "svc");
  enqueue("b", priority::low, "svc");
  enqueue("c", priority::high, "svc");
  enqueue("d", priority::critical, "svc");
  enqueue("x", priority::low, "other"); // another lane runs at once
  CHECK(started == std::vector<std::string>{"a", "x"});
  finish("a");
  CHECK(started.back() == "d");
  finish("d");
  CHECK(started.back() == "c");
  CHECK(started.size() == 4);
  CHECK(refused.empty());

  // "b" still waits: killing the queue answers it instead of dropping it.
  s.kill(queue_actor_name);
  CHECK(refused.size() == 1);
  CHECK(refused["b"] == static_cast<int>(error_code::actor_restarted));
}

TEST_CASE("queue actor: a full queue refuses with its reason, and a cancelled call leaves it", "[queue_actor]") {
  simulated s;
  s.env->opts.ops.max_concurrent_per_service = 1;
  s.env->opts.ops.queue.capacity = 2;
  s.supervise({child_spec{queue_actor_name, [env = s.env](caf::actor_system& sys) {
                            return caf::actor_cast<caf::actor>(spawn_queue(sys, env));
                          }}});
  std::vector<std::string> started;
  s.env->names.put("breaker/svc", fake_breaker(s, started));
  std::map<std::string, int> refused;
  auto queue = caf::actor_cast<queue_actor>(s.env->names.get(queue_actor_name));
  std::map<std::string, uint64_t> ids;
  for (auto label : {"a", "b", "c", "d"}) {
    auto w = queued(s, label, priority::normal, "svc", refused);
    ids[label] = w->id;
    caf::anon_send(queue, atom::enqueue_v, std::move(w));
    s.sched->run();
  }
  CHECK(started == std::vector<std::string>{"a"});
  CHECK(refused["d"] == static_cast<int>(error_code::overloaded)); // "b" and "c" fill it
  caf::anon_send(queue, atom::cancel_v, ids["b"]);
  s.sched->run();
  CHECK(refused["b"] == static_cast<int>(error_code::request_cancelled));
  caf::anon_send(queue, atom::done_v, ids["a"]);
  s.sched->run();
  CHECK(started == std::vector<std::string>{"a", "c"});
}

TEST_CASE("queue actor: work it never took (killed first, or gone) is refused, not lost", "[queue_actor]") {
  simulated s;
  s.supervise({child_spec{queue_actor_name, [env = s.env](caf::actor_system& sys) {
                            return caf::actor_cast<caf::actor>(spawn_queue(sys, env));
                          }}});
  auto queue = caf::actor_cast<queue_actor>(s.env->names.get(queue_actor_name));
  REQUIRE(queue);
  std::vector<std::string> started;
  s.env->names.put("breaker/svc", fake_breaker(s, started));
  std::map<std::string, int> refused;
  caf::anon_send_exit(queue, caf::exit_reason::kill);
  caf::anon_send(queue, atom::enqueue_v, queued(s, "early", priority::normal, "svc", refused));
  s.sched->run();
  CHECK(started.empty());
  REQUIRE(refused.count("early"));
  CHECK(refused["early"] == static_cast<int>(error_code::actor_restarted));

  // Sent to the dead incarnation: the same.
  caf::anon_send(queue, atom::enqueue_v, queued(s, "late", priority::normal, "svc", refused));
  s.sched->run();
  CHECK(started.empty());
  REQUIRE(refused.count("late"));
  CHECK(refused["late"] == static_cast<int>(error_code::actor_restarted));
}
