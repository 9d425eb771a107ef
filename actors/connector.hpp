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

/// What connectors tell the gateway, and what they need from it.
struct gateway_hooks {
  /// One of the service's current lists (`method` is tools/list,
  /// resources/list, resources/templates/list or prompts/list; `items` the
  /// JSON array of its items), after start-up and after each list_changed.
  /// Called on the connector's thread.
  std::function<void(const std::string& service, const std::string& method, json::value items)> publish;
  /// The service reported a resource as updated.
  std::function<void(const std::string& uri)> resource_updated;
  /// The resource URIs clients watch that the service owns (it is the one
  /// their reads go to). Called on the connector's thread after
  /// `atom::watch`.
  std::function<std::vector<std::string>(const std::string& service)> watched;
  /// The service said something changed (a list_changed or resource-updated
  /// notification's method, and the updated resource's URI): cached results
  /// of it are dropped.
  std::function<void(const std::string& service, const std::string& method, const std::string& uri)> changed;
  /// The service became ready (`problem` empty), or failed to start or to
  /// stay up, with why. Called on the connector's thread.
  std::function<void(const std::string& service, bool ready, const std::string& problem)> status;
  /// Where HTTP connectors run their I/O.
  boost::asio::io_context* io = nullptr;
  uint32_t child_max_restarts = 5;
  std::chrono::seconds child_restart_window{60};
};
using gateway_hooks_ptr = std::shared_ptr<gateway_hooks>;

connector_actor spawn_connector(caf::actor_system& sys, env_ptr env, service_config svc, gateway_hooks_ptr hooks);

} // namespace bulwark
