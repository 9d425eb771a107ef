// The rate limiter actor: drives the token buckets of limiter.hpp (which
// live in the runtime environment and outlive it) with the actor clock,
// and with Redis when several instances share their budgets.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

inline const std::string limiter_actor_name = "limiter";

/// The limiter drives `env->buckets`, which outlives it.
limiter_actor spawn_limiter(caf::actor_system& sys, env_ptr env);

/// The identity's tier, default priority and key policy under `ops`: its
/// key-file entry, else `ops.keys`, else the defaults.
key_settings resolve_key(const operations_options& ops, const std::string& identity);

} // namespace bulwark
