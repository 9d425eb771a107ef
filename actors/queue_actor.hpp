// The priority queue worker: runs the queue of queue.hpp with the actor
// clock in front of the downstream services (four priorities, bounded,
// aging, at most so many calls running per service).
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

inline const std::string queue_actor_name = "queue";

/// Queued work is answered with actor_restarted when the queue actor stops.
queue_actor spawn_queue(caf::actor_system& sys, env_ptr env);

} // namespace bulwark
