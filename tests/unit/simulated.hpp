// An actor system on CAF's deterministic test coordinator: actors run only
// when a test runs the scheduler, and time moves only when it advances the
// actor clock. Stopping stops every actor registered in `env` (and any the
// test lists in `spawned`).
#pragma once

#include <memory>
#include <vector>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/env.hpp"

namespace bulwark::test {

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

} // namespace bulwark::test
