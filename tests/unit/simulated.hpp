// An actor system on CAF's deterministic test coordinator: actors run only
// when a test runs the scheduler, and time moves only when it advances the
// actor clock. Stopping stops every actor registered in `env` (and any the
// test lists in `spawned`). `simulated` adds what the tests of the
// operational actors need: a root supervisor over them, kills, and steps of
// the actor clock.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/env.hpp"
#include "actors/supervisor.hpp"

namespace bulwark::test {

using namespace std::chrono_literals;

struct simulated_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  env_ptr env = std::make_shared<runtime_env>();
  std::vector<caf::actor> spawned;

  simulated_system() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sys->await_actors_before_shutdown(false);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
  }

  ~simulated_system() {
    for (auto& h : spawned)
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    for (auto& [name, handle] : env->names.snapshot()) {
      (void)name;
      if (handle)
        caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
    }
    sched->run();
  }

  simulated_system(const simulated_system&) = delete;
  simulated_system& operator=(const simulated_system&) = delete;
};

/// The shared simulated system, with helpers for supervised operational actors.
struct simulated : simulated_system {
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

  /// A stand-in for the gateway's router that hands each downstream call's
  /// final outcome to `on_done` (and ignores notifications).
  downstream_listener listener(std::function<void(downstream_outcome)> on_done) {
    auto h = sys->spawn([on_done = std::move(on_done)]() -> downstream_listener::behavior_type {
      return {
        [](atom::notify, const downstream_call_ptr&, const std::string&, const json::value&) {},
        [](atom::park, const downstream_call_ptr&, const std::string&, const json::value&, const json::value&,
           const caf::actor&) {},
        [on_done](atom::done, const downstream_call_ptr&, downstream_outcome& o, const handoff_ptr& h) {
          h->take();
          on_done(std::move(o));
        },
      };
    });
    spawned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  /// Advances the actor clock in steps of `step` (firing what falls due).
  void advance(std::chrono::milliseconds total, std::chrono::milliseconds step = 100ms) {
    for (auto t = 0ms; t < total; t += step) {
      sched->advance_time(step);
      sched->run();
    }
  }
};

} // namespace bulwark::test
