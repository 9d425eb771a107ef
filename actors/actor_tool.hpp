// Public API: a tool answered by an actor of the host program.
//
// The host's actor implements `tool_actor`; `actor_tool` builds the tool's
// definition around it. Each call asks the actor with a timeout and answers
// the client from the actor's reply, and a circuit breaker in front of the
// actor keeps clients from waiting on an actor that is gone: while it is
// open, calls fail at once with a typed error that says when to retry.
//
// Errors (JSON-RPC, `data` always names the `tool` and the `breaker` state):
// - the actor is gone, or no actor is running: -32005 service_unavailable,
//   `data.reason` "actor_down" or "no_actor", `data.retry_after_seconds`;
// - no reply within the timeout: -32001 deadline_exceeded, `data.reason`
//   "timeout", `data.retry_after_seconds`;
// - the breaker is open (or half-open with its probes taken): -32005
//   service_unavailable, `data.reason` "breaker_open", `data.retry_after_seconds`
//   until the breaker lets a probe through. The actor is not asked.
// An error the actor answers with (a `caf::error` in place of the result)
// is the actor's answer: the client gets a tool result with `isError: true`
// and the breaker counts a success.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/actors.hpp"
#include "messages/catalog.hpp"
#include "messages/json.hpp"
#include "messages/service.hpp"

namespace bulwark {

class runtime;

/// What a host's actor implements to answer tools: the tool's name and the
/// call's `arguments` in, the answer out. One actor may answer several tools.
///
/// The answer is either a CallToolResult (an object with a `content` array,
/// passed on as it is) or any other JSON value: a string becomes the text
/// of the result, anything else its JSON text, and an object also becomes
/// its `structuredContent`.
/// (`tool_actor` is declared with the other interfaces in messages/actors.hpp.)

/// Finds the actor for one call; a null handle means none is running now.
/// Called for every call, so a host actor that a supervisor replaced is
/// picked up at once; it runs inside session actors, several at a time, so
/// it must be thread-safe and must not block for long.
using tool_actor_lookup = std::function<tool_actor()>;

/// How an actor-backed tool treats its actor.
struct actor_tool_options {
  /// How long one call waits for the actor's reply.
  std::chrono::milliseconds timeout{10000};
  /// The breaker in front of the actor. Timeouts, a gone actor and a missing
  /// actor count as failures; any reply (an error reply too) as a success.
  breaker_settings breaker = default_breaker();
  /// `retry_after` suggested after a failure while the breaker stays closed
  /// (once it opens, the time until it half-opens).
  std::chrono::milliseconds retry_after{1000};

  /// Opens after 3 failures in a row (or half of at least 10 calls within
  /// 30 s failing), stays open for 5 s, then lets one probe through.
  static breaker_settings default_breaker() {
    breaker_settings b;
    b.consecutive_failures = 3;
    b.open_duration = std::chrono::seconds(5);
    return b;
  }
};

/// A tool answered by the actor `lookup` finds for each call. Set the
/// returned spec's other fields (title, annotations, output_schema, ...)
/// before `runtime::add_tool`. Calls run their requests on `rt`'s actor
/// system and report to its metrics:
/// `bulwark_actor_tool_breaker_state{tool}` (0 closed, 1 open, 2 half-open,
/// as of the latest call) and `bulwark_actor_tool_failures_total{tool,reason}`.
tool_spec actor_tool(runtime& rt, std::string name, std::string description, json::value input_schema,
                     tool_actor_lookup lookup, actor_tool_options opts = {});

/// The same for one fixed actor. Once that actor is gone the tool fails
/// (fast, when the breaker is open) until the host registers it anew; pass
/// a lookup to follow an actor that gets replaced.
tool_spec actor_tool(runtime& rt, std::string name, std::string description, json::value input_schema,
                     tool_actor handle, actor_tool_options opts = {});

} // namespace bulwark
