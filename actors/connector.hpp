// The connector of one downstream service: an MCP client over a stdio child
// (restarted with back-off when it exits) or over Streamable HTTP (either
// protocol era), which forwards calls and reports the service's tools.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"
#include "messages/service.hpp"

namespace boost::asio {
class io_context;
}

namespace bulwark {

/// What connectors need from the gateway (they report to its router).
struct gateway_hooks {
  /// Where HTTP connectors run their I/O.
  boost::asio::io_context* io = nullptr;
  uint32_t child_max_restarts = 5;
  std::chrono::seconds child_restart_window{60};
};
using gateway_hooks_ptr = std::shared_ptr<gateway_hooks>;

/// Spawns a service's connector, which reports its lists, status and
/// changes to `router`.
connector_actor spawn_connector(caf::actor_system& sys, env_ptr env, service_config svc, gateway_hooks_ptr hooks,
                                gateway_router_actor router);

} // namespace bulwark
