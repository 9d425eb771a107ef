// The gateway: downstream MCP servers behind one Bulwark endpoint. Each
// service gets a connector and a breaker under a supervisor of its own; the
// router (actors/gateway_router.hpp) gathers what they offer into the
// runtime's catalog under exposed names (prefix modes), and a call runs
// from its catalog entry (actors/gateway_calls.hpp) through the cache, the
// queue, the breaker and the connector. This class registers those actors
// and is how `main` talks to the router.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "actors/policy.hpp"
#include "messages/json.hpp"
#include "messages/service.hpp"

namespace bulwark {

class runtime;

/// Start-up refusals (a name clash in `never` mode, a service that never
/// listed its tools when that was required).
class gateway_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class gateway {
public:
  /// Registers the services' actors with `rt` (call before `rt.start()`).
  gateway(runtime& rt, gateway_config cfg);
  ~gateway();

  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  /// After `rt.start()`: asks the router, and waits (for `main`), until
  /// every service listed its tools or `limit` passed. Throws gateway_error
  /// on a name clash in `never` mode. Returns the services that are not
  /// ready yet.
  std::vector<std::string> wait_ready(std::chrono::milliseconds limit);

  /// A new configuration generation (a reload), applied as changes of the
  /// actor tree: an added service starts its subtree; a removed one leaves
  /// the catalog at once, may finish its calls in flight within `drain`,
  /// and stops; a service whose transport changed gets a new subtree; one
  /// whose settings changed keeps running with them (its breaker keeps its
  /// state unless its thresholds changed). Naming and policies apply to the
  /// catalog and the next call. Clients see list_changed. The router applies
  /// it; this returns once it has (the reload's answer says it is in force).
  void reconfigure(gateway_config next, std::chrono::milliseconds drain);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace bulwark
