// Supervision: restart intensity (OTP-style "at most N restarts in T"),
// supervisors with a strategy (one-for-one, rest-for-one), back-off and
// escalation, and the session supervisor that owns the session actors.
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

/// How a supervisor restarts: its strategy, its intensity (at most
/// `max_restarts` restarts of its children within `window`, counted together
/// as OTP does) and the back-off between restarts that follow each other.
struct supervision_policy {
  restart_strategy strategy = restart_strategy::one_for_one;
  uint32_t max_restarts = 5;
  std::chrono::seconds window{10};
  /// The first restart in a window happens at once; the n-th waits
  /// `backoff_initial * 2^(n-2)`, at most `backoff_max`.
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};

  /// Back-off before a restart that follows `recent` restarts in the window.
  std::chrono::milliseconds backoff(std::size_t recent) const;
};

/// A supervisor and its children, in start order (rest-for-one restarts a
/// child and the ones after it).
struct supervisor_spec {
  std::string name;
  supervision_policy policy;
  std::vector<child_spec> children;
};

/// Spawns the top of a supervision tree. Over its intensity it cannot report
/// further up: it records the escalation and waits one window before it
/// restarts the child.
supervisor_actor spawn_root_supervisor(caf::actor_system& sys, env_ptr env, supervisor_spec spec);

/// A nested supervisor as a child of another one. Over its intensity it
/// stops its children and exits, reporting up; its parent restarts it (and
/// with it, a fresh set of children) within its own intensity. A supervisor
/// that was killed takes over the children its predecessor left running.
child_spec nested_supervisor(env_ptr env, supervisor_spec spec, std::string parent);

/// Spawns the session supervisor (and the stateless session actor under it).
session_supervisor_actor spawn_session_supervisor(caf::actor_system& sys, env_ptr env);

} // namespace bulwark
