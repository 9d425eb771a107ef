// The gateway's router: one actor that knows which services the generation
// has, what they offer and under which exposed names, and whether they are
// ready. It builds the
// catalog's "gateway" group (the entries of actors/gateway_calls.hpp and
// the gateway tools), applies reloads as changes of the actor tree, and
// answers the gateway tools and start-up. Its interface is
// gateway_router_actor in messages/actors.hpp.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <caf/fwd.hpp>

#include "messages/actors.hpp"

namespace bulwark {

class runtime;

/// The router's name in the actor tree.
inline const std::string gateway_router_name = "gateway-router";

/// What the router starts from, and what outlives it.
struct gateway_seed {
  using spawn_fn = std::function<caf::actor(caf::actor_system&)>;

  /// The generation in force. The router sets it on a reload; a restarted
  /// router, and restarted connectors and breakers, start from it. Read
  /// and written with std::atomic_load/store.
  gateway_config_ptr current() const { return std::atomic_load(&cfg_); }
  void set(gateway_config_ptr c) { std::atomic_store(&cfg_, std::move(c)); }

  /// A service's subtree (its connector, then its breaker), for a service a
  /// reload adds.
  std::function<std::vector<std::pair<std::string, spawn_fn>>(const service_config&)> children;

  /// Removed services whose drain has not ended. Only the router touches
  /// it (one router runs at a time): a restarted router stops them at once,
  /// since the drain's timer died with its predecessor.
  std::set<std::string> draining;

private:
  gateway_config_ptr cfg_;
};
using gateway_seed_ptr = std::shared_ptr<gateway_seed>;

/// True when a change of service `a` into `b` needs a new connector (its
/// transport changed).
bool transport_changed(const service_config& a, const service_config& b);

/// Spawns the router. A restarted one (`restarted`) asks every connector
/// for its service's lists and status before it publishes the catalog.
gateway_router_actor spawn_gateway_router(caf::actor_system& sys, runtime& rt, gateway_seed_ptr seed, bool restarted);

} // namespace bulwark
