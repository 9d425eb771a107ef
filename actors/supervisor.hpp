// Supervision: restart intensity (OTP-style "at most N restarts in T"), the
// root supervisor that restarts Bulwark's long-lived actors, and the session
// supervisor that owns the session actors.
//
// Supervisors monitor their children (never link: a kill travels through
// links in CAF 0.17 and bypasses exit handlers) and publish the current
// handle of each child in the registry under the child's name.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

/// Counts restarts in a sliding window.
class restart_intensity {
public:
  restart_intensity(uint32_t max_restarts, std::chrono::steady_clock::duration window)
    : max_(max_restarts), window_(window) {}

  /// Records a restart at `now`; false when that exceeds the intensity.
  bool allow(std::chrono::steady_clock::time_point now);

  std::size_t recent() const noexcept { return stamps_.size(); }

private:
  uint32_t max_;
  std::chrono::steady_clock::duration window_;
  std::deque<std::chrono::steady_clock::time_point> stamps_;
};

/// A child of the root supervisor.
struct child_spec {
  std::string name;
  /// Spawns the child and returns its handle (untyped).
  std::function<caf::actor(caf::actor_system&)> spawn;
};

using supervisor_actor = caf::typed_actor<
  // Stop all children and then the supervisor.
  caf::reacts_to<atom::end>,
  // Internal: restart the named child after a back-off.
  caf::reacts_to<atom::open, std::string>>;

/// Spawns the root supervisor over `children`.
supervisor_actor spawn_root_supervisor(caf::actor_system& sys, env_ptr env,
                                       std::vector<child_spec> children);

/// Spawns the session supervisor (and the stateless session actor under it).
session_supervisor_actor spawn_session_supervisor(caf::actor_system& sys, env_ptr env);

} // namespace bulwark
