// What several Bulwark instances share through Redis (`redis.url`): rate-limit
// buckets, cache invalidations, the 2025-era session directory, breaker
// states. Every function here hands its Redis work to the client's I/O
// thread and reports back through a callback or a message, so no actor waits;
// when Redis is unavailable the callers use their local state instead.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

class redis_client;

/// The Redis client of `env`'s runtime, with the subscriptions that carry
/// other instances' cache invalidations and breaker states to this one's
/// actors. Not started yet.
std::shared_ptr<redis_client> make_shared_state(const env_ptr& env);

// -- rate limits ----------------------------------------------------------------------

/// Decides `ticket` with the shared buckets (one Lua script, atomic across
/// instances) at degraded-mode `scale`; the verdict goes to the ticket's
/// reply. When Redis fails for this call, the ticket goes back to `limiter`
/// marked `local`. False (nothing sent) for a request the shared buckets do
/// not cover (an unknown tier): decide it locally.
bool shared_admit(const env_ptr& env, const admission_ticket_ptr& ticket, double scale, const caf::actor& limiter);

/// Gives an admitted call's tokens back to the shared buckets.
void shared_refund(const env_ptr& env, const admission_request& request, double scale);

} // namespace bulwark
