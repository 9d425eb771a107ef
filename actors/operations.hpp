// The operational actors: the rate limiter, the priority queue worker and
// the alert manager (the health supervisor is in health.hpp). Their pure
// logic lives in limiter.hpp, queue.hpp and alerts.hpp; these are the actors
// that drive it with the actor clock, so tests can run them on CAF's test
// coordinator with simulated time.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

/// Registry names.
inline const std::string limiter_actor_name = "limiter";
inline const std::string queue_actor_name = "queue";
inline const std::string alert_actor_name = "alerts";

/// The limiter drives `env->buckets`, which outlives it.
limiter_actor spawn_limiter(caf::actor_system& sys, env_ptr env);

/// Queued work is answered with actor_restarted when the queue actor stops.
queue_actor spawn_queue(caf::actor_system& sys, env_ptr env);

alert_actor spawn_alert_manager(caf::actor_system& sys, env_ptr env);

/// The identity's tier, default priority and key policy under `ops`: its
/// key-file entry, else `ops.keys`, else the defaults.
key_settings resolve_key(const operations_options& ops, const std::string& identity);

} // namespace bulwark
