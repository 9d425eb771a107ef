// The trace exporter actor (see telemetry_actor in messages/actors.hpp) and
// how actors hand it the spans they recorded.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

inline const std::string telemetry_actor_name = "telemetry";

telemetry_actor spawn_telemetry(caf::actor_system& sys, env_ptr env);

/// Sends finished spans to the exporter, if there is one (spans recorded
/// while it restarts are lost, like spans it cannot queue).
void submit_spans(const runtime_env& env, trace::span_batch spans);

} // namespace bulwark
