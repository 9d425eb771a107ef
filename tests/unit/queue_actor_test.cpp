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

TEST_CASE("queue actor: runs by priority, one call per lane at a time, and answers queued work when killed",
          "[queue_actor]") {
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

TEST_CASE("queue actor: work it never took (killed first, or gone) is refused, not lost", "[queue_actor]") {
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
