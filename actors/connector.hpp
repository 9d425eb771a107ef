// The connector of one downstream service: an MCP client over a stdio child
// (restarted with back-off when it exits) or over Streamable HTTP (either
// protocol era), which forwards calls and reports the service's tools.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
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

/// What connectors need from the gateway.
struct gateway_hooks {
  /// Where HTTP connectors run their I/O.
  boost::asio::io_context* io = nullptr;
  uint32_t child_max_restarts = 5;
  std::chrono::seconds child_restart_window{60};

  /// The router connectors report to; null until it is spawned. Set by the
  /// router's spawn function as soon as it exists (before its name is in
  /// the registry, and before it asks the connectors for their reports),
  /// so a connector that reports after that reaches it, and one that
  /// reported earlier is asked again.
  gateway_router_actor router() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return router_;
  }
  void set_router(gateway_router_actor r) {
    std::lock_guard<std::mutex> guard(mtx_);
    router_ = std::move(r);
  }

private:
  mutable std::mutex mtx_;
  gateway_router_actor router_;
};
using gateway_hooks_ptr = std::shared_ptr<gateway_hooks>;

/// The prefix of the cached results that a service's change notification
/// `method` makes stale (the gateway keys them service, method, URI for a
/// read, caller, arguments): a changed list drops every result of its kind,
/// an updated resource the reads of `uri` for every caller. Empty: nothing
/// was kept for it.
std::string stale_results_prefix(const std::string& service, const std::string& method, const std::string& uri);

/// Spawns a service's connector, which reports its lists, status and
/// changes to the gateway's router (`hooks->router()`).
connector_actor spawn_connector(caf::actor_system& sys, env_ptr env, service_config svc, gateway_hooks_ptr hooks);

} // namespace bulwark
