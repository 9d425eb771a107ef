// The alert manager: evaluates the rules of alerts.hpp on the health
// supervisor's samples and delivers what fires to the log, a webhook (with
// retries behind a breaker) and the admin sessions.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

inline const std::string alert_actor_name = "alerts";

alert_actor spawn_alert_manager(caf::actor_system& sys, env_ptr env);

} // namespace bulwark
