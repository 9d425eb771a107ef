// What the transports hand client messages to: the MCP side of Bulwark as
// the HTTP server and the stdio loop see it. The runtime
// (actors/runtime.hpp) implements it; the transports know only this
// interface, so that they depend on their own layer and below, never on the
// actors.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "messages/catalog.hpp"
#include "messages/settings.hpp"
#include "messages/sink.hpp"

namespace bulwark {

struct inbound;
using inbound_ptr = std::shared_ptr<inbound>;

namespace metrics {
class registry;
} // namespace metrics

class mcp_endpoint {
public:
  virtual ~mcp_endpoint() = default;

  /// The actor system whose workers may run the transport's I/O (the fused
  /// scheduler).
  virtual caf::actor_system& system() noexcept = 0;
  /// Where the transport counts what it refuses.
  virtual std::shared_ptr<metrics::registry> metric_registry() const = 0;
  /// The current configuration generation's settings.
  virtual std::shared_ptr<const runtime_options> settings() const = 0;
  virtual catalog_ptr current_catalog() const = 0;

  /// Routes one client message to its session. Never blocks.
  virtual void dispatch(inbound_ptr msg) = 0;

  // -- 2025-era sessions, bound to the identity that initialized them ------------

  virtual bool has_session(const std::string& id, const std::string& identity) const = 0;
  /// Opens a standalone SSE stream; false for an unknown session.
  virtual bool open_stream(const std::string& session_id, const std::string& identity, sink_ptr sink,
                           std::string last_event_id) = 0;
  /// The same for a transport with one client and no identities (stdio).
  virtual bool open_stream(const std::string& session_id, sink_ptr sink, std::string last_event_id) = 0;
  virtual bool end_session(const std::string& id, const std::string& identity) = 0;
  /// False when the session's streams leave no room for a GET stream.
  virtual bool stream_allowed(const std::string& id) const = 0;
  /// Several instances: true when session `id` is not live here but may be
  /// in the shared directory; `take_over_session` then starts it here and
  /// calls `done` on some thread.
  virtual bool session_elsewhere(const std::string& id) const = 0;
  virtual void take_over_session(const std::string& id, std::function<void()> done) = 0;
};

} // namespace bulwark
