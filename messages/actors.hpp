// Bulwark's actor vocabulary: atoms, message types and every actor interface.
//
// Reading this file tells the whole system's message flow. Transports build
// an `inbound` per client message and hand it to `runtime::dispatch`, which
// sends it to the session actor that owns it; answers travel back through the
// request's `reply_sink`.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <caf/fwd.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>

#include "messages/catalog.hpp"
#include "messages/json.hpp"
#include "messages/mcp.hpp"
#include "messages/sink.hpp"

namespace bulwark {

/// One JSON-RPC message from a client, with where its answers go.
struct inbound {
  json::value message;
  mcp::message_kind kind = mcp::message_kind::invalid;
  /// The answer channel; null for notifications and responses, which the
  /// transport has already acknowledged.
  sink_ptr sink;
  /// True for 2026-07-28 (stateless) traffic.
  bool stateless = false;
  /// The 2025-era session the message belongs to (empty for `initialize`
  /// and stateless traffic).
  std::string session_id;
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
};
using inbound_ptr = std::shared_ptr<inbound>;

/// SSE replay buffer of one stream of a 2025-era session.
struct event_stream {
  uint64_t next_seq = 1;
  std::deque<std::pair<uint64_t, std::string>> events; ///< (seq, message), bounded
};

/// What a 2025-era session remembers across restarts of its actor.
struct session_record {
  std::string id;
  bool stateless = false;
  bool initialized = false;
  std::string protocol_version;
  json::value client_capabilities;
  json::value client_info;
  log_level min_level = log_level::info;
  std::set<std::string> subscriptions;
  uint64_t next_stream = 1;
  std::map<uint64_t, event_stream> streams; ///< stream id -> replay buffer
  std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
  uint32_t restarts = 0;
};
using session_record_ptr = std::shared_ptr<session_record>;

} // namespace bulwark

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::inbound_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::sink_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::json::value)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::session_record_ptr)

CAF_BEGIN_TYPE_ID_BLOCK(bulwark, caf::first_custom_type_id)
  CAF_ADD_ATOM(bulwark, bulwark::atom, open, "open")
  CAF_ADD_ATOM(bulwark, bulwark::atom, end, "end")
  CAF_ADD_ATOM(bulwark, bulwark::atom, listen, "listen")
  CAF_ADD_ATOM(bulwark, bulwark::atom, closed, "closed")
  CAF_ADD_ATOM(bulwark, bulwark::atom, timer, "timer")
  CAF_ADD_ATOM(bulwark, bulwark::atom, notify, "notify")
  CAF_ADD_ATOM(bulwark, bulwark::atom, count, "count")
  CAF_ADD_ATOM(bulwark, bulwark::atom, sweep, "sweep")
  CAF_ADD_ATOM(bulwark, bulwark::atom, get, "get")
CAF_END_TYPE_ID_BLOCK(bulwark)

namespace bulwark {

/// One MCP session: the 2025-era session behind an `Mcp-Session-Id`, or the
/// stateless (2026-07-28) endpoint's caller. Runs tool, prompt and resource
/// handlers and owns their in-flight state.
using session_actor = caf::typed_actor<
  // A client message: request, notification or response to our request.
  caf::reacts_to<inbound_ptr>,
  // A 2025-era standalone SSE stream (HTTP GET), resuming after an event id.
  caf::reacts_to<atom::listen, sink_ptr, std::string>,
  // The response stream of a request (by sink serial) was closed by the client.
  caf::reacts_to<atom::closed, uint64_t>,
  // Internal: a handler's `after` continuation is due.
  caf::reacts_to<atom::timer, uint64_t>,
  // A server-wide notification (list_changed, resources/updated) to pass on.
  caf::reacts_to<atom::notify, std::string, json::value>,
  // The client ended the session (HTTP DELETE).
  caf::reacts_to<atom::end>,
  // Internal: idle-expiry check.
  caf::reacts_to<atom::sweep>>;

/// Spawns, finds, restarts and ends session actors.
using session_supervisor_actor = caf::typed_actor<
  // An `initialize` request: create a 2025-era session and hand it over.
  caf::reacts_to<atom::open, inbound_ptr>,
  // End the session with this id (DELETE or idle expiry).
  caf::reacts_to<atom::end, std::string>,
  // Pass a notification to every live session.
  caf::reacts_to<atom::notify, std::string, json::value>,
  // How many sessions are live.
  caf::replies_to<atom::count>::with<uint64_t>>;

} // namespace bulwark
