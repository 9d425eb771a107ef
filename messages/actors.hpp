// Bulwark's actor vocabulary: atoms, message types and every actor interface.
//
// Reading this file tells the whole system's message flow. Transports build
// an `inbound` per client message and hand it to `runtime::dispatch`, which
// sends it to the session actor that owns it; answers travel back through the
// request's `reply_sink`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include "messages/catalog.hpp"
#include "messages/handoff.hpp"
#include "messages/json.hpp"
#include "messages/mcp.hpp"
#include "messages/operations.hpp"
#include "messages/settings.hpp"
#include "messages/sink.hpp"
#include "messages/trace.hpp"

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
  /// Who sent it: "key:<SHA-256 of the bearer key>", "anonymous" or "stdio".
  std::string identity = "anonymous";
  /// The client's address ("address:port"), for logs; empty over stdio.
  std::string remote;
  /// The caller's validated OAuth access token (`auth.mode` "oauth"), for a
  /// service that acts for the caller; null otherwise. Never logged.
  std::shared_ptr<const std::string> credential;
  /// That token's scopes (with `credential`): what `auth.oauth.
  /// requiredScopes` is checked against; null: no scope checks.
  std::shared_ptr<const std::vector<std::string>> scopes;
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
  /// The request's size in bytes (the access log's bytes in).
  std::size_t bytes = 0;
  /// W3C trace context headers of the HTTP request, as sent (the session
  /// prefers the request's `_meta`); empty when absent.
  std::string traceparent, tracestate;
  /// The request's place in its trace; set by the session that handles it.
  trace::context trace;
};
using inbound_ptr = std::shared_ptr<inbound>;

/// SSE replay buffer of one stream of a 2025-era session.
struct event_stream {
  uint64_t next_seq = 1;
  std::deque<std::pair<uint64_t, std::string>> events; ///< (seq, message), bounded
  /// A POST's stream whose last event is the response: a resumption ends
  /// after replaying it.
  bool ended = false;
};

/// What a 2025-era session remembers across restarts of its actor.
struct session_record {
  std::string id;
  bool stateless = false;
  bool initialized = false;
  std::string protocol_version;
  std::string identity; ///< Of the client that initialized the session.
  json::value client_capabilities;
  json::value client_info;
  log_level min_level = log_level::info;
  watch_set subscriptions; ///< Resource URIs (counted in the runtime's watches)
  uint64_t next_stream = 1;
  std::map<uint64_t, event_stream> streams; ///< stream id -> replay buffer
  std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
  uint32_t restarts = 0;
  /// POST answers of this session that are SSE streams now (its actor
  /// counts; the transport reads it to refuse a GET stream over the limit).
  std::atomic<uint32_t> response_streams{0};
};
using session_record_ptr = std::shared_ptr<session_record>;

// -- downstream services (the gateway) ------------------------------------------

/// How one attempt of a downstream call ended, or the call as a whole.
struct downstream_outcome {
  enum class kind : uint8_t {
    result, ///< The downstream answered with a result.
    error, ///< The downstream answered with a JSON-RPC error.
    failure, ///< No answer: transport failure, service down, breaker open.
    timeout, ///< No answer before the deadline.
    cancelled, ///< The client cancelled.
    refused, ///< Never sent: the priority queue refused it (full, shed, expired, restarted).
  };
  kind what = kind::failure;
  json::value result;
  int code = 0; ///< JSON-RPC error code (kind::error) or ours (failure, timeout).
  std::string message;
  json::value data;
  /// The request reached the downstream, which may have acted on it: only an
  /// idempotent call may be sent again.
  bool reached = false;
  std::chrono::milliseconds retry_after{0};
  /// How long the call waited on the service: each attempt from sending it
  /// to its outcome, summed over the attempts (zero when none was sent).
  std::chrono::nanoseconds waited{0};
  /// Attempts the breaker sent to the connector (0: none).
  uint32_t attempts = 0;

  /// An outcome without an answer from the service.
  static downstream_outcome without_answer(kind what, error_code code, std::string message, bool reached) {
    downstream_outcome o;
    o.what = what;
    o.code = static_cast<int>(code);
    o.message = std::move(message);
    o.reached = reached;
    return o;
  }

  /// The service could not answer (a failure or a timeout). A service's own
  /// JSON-RPC error is an answer: the service works.
  bool unanswered() const noexcept { return what == kind::failure || what == kind::timeout; }
};

struct downstream_call;
/// A call to a downstream service, shared by the session that started it,
/// the priority queue, the service's breaker and connector, and the
/// gateway's router (defined below the actor interfaces it names).
using downstream_call_ptr = std::shared_ptr<downstream_call>;

/// How the gateway answers the client's call from a downstream call's
/// reports: the route and cache key the call came through. Opaque here;
/// actors/gateway_calls.cpp defines it and only the listener reads it.
struct downstream_route;

/// Whether the gateway's services have listed their tools (start-up).
struct gateway_readiness {
  /// Services that have not listed their tools yet.
  std::vector<std::string> not_ready;
  /// Why the gateway refuses to start (a name clash in prefix mode never);
  /// empty when it does not.
  std::string refusal;
};

/// One configuration generation of the gateway.
using gateway_config_ptr = std::shared_ptr<const gateway_config>;

/// A cached result and how old it is.
struct cache_hit {
  json::value result;
  std::chrono::milliseconds age{0};
  bool stale = false;
};

/// A lookup in the cache for a session's call. The cache answers the
/// session with `atom::found, token, std::optional<cache_hit>` (see
/// session_actor); a lookup destroyed unanswered (the cache stopped before
/// it answered, or the message carrying it was dropped) answers a miss.
class cache_lookup {
public:
  cache_lookup(std::string key, bool allow_stale, caf::actor session, uint64_t token);
  ~cache_lookup();
  cache_lookup(const cache_lookup&) = delete;
  cache_lookup& operator=(const cache_lookup&) = delete;

  const std::string key;
  /// A stale copy will do (a fallback for a failed call).
  const bool allow_stale;

  /// Sends the answer to the session; once (later calls do nothing). Safe
  /// from any thread.
  void answer(std::optional<cache_hit> hit);

private:
  caf::actor session_;
  uint64_t token_;
  std::atomic<bool> answered_{false};
};
using cache_lookup_ptr = std::shared_ptr<cache_lookup>;

// -- admission ---------------------------------------------------------------------------

/// A call asking the rate limiter to be let in. The verdict goes to the
/// session that asked, as `atom::admit, serial, admission` (see
/// session_actor). A ticket destroyed unanswered (the limiter stopped before
/// it decided, or the message carrying the ticket was dropped) sends an
/// undecided admission instead, so no call waits for a verdict that is not
/// coming. (CAF 0.17 drops an undelivered response promise without a word,
/// so a typed request to the limiter could not say so at once.)
class admission_ticket {
public:
  /// `session` is the asking session actor; `serial` its call's.
  admission_ticket(admission_request req, caf::actor session, uint64_t serial);
  ~admission_ticket();
  admission_ticket(const admission_ticket&) = delete;
  admission_ticket& operator=(const admission_ticket&) = delete;

  admission_request request;
  /// Decide with this instance's buckets only (Redis failed for this call).
  bool local = false;

  /// Sends the verdict to the session; once (later calls do nothing). Safe
  /// from any thread.
  void answer(const admission& a);

private:
  caf::actor session_;
  uint64_t serial_;
  std::atomic<bool> answered_{false};
};
using admission_ticket_ptr = std::shared_ptr<admission_ticket>;

/// A downstream call waiting for its turn in the priority queue. When its
/// turn comes the queue sends the call to its service's breaker (`lane`),
/// and the call's end is reported back with `atom::done, id` (which frees
/// the lane's slot). A call the queue will not run (full, shed, expired,
/// cancelled, restarted) ends with a `refused` outcome carrying the error;
/// so does one destroyed before it ran or was refused (the message that
/// carried it to the queue was dropped, or the queue that held it stopped).
struct queued_work {
  explicit queued_work(downstream_call_ptr c)
      : id(next_id().fetch_add(1, std::memory_order_relaxed)), call(std::move(c)) {}
  const uint64_t id;
  priority prio = priority::normal;
  std::string lane; ///< The service: at most so many of a lane run at once.
  std::string owner; ///< The caller's identity (for queue_status).
  json::value request_id;
  std::string label; ///< What runs, e.g. the tool name.
  std::chrono::steady_clock::time_point not_before{}, deadline{};

  /// The call, for the breaker: from now on it answers for itself. Null
  /// when it was refused already.
  downstream_call_ptr take() { return std::exchange(call, nullptr); }

  /// Ends the call with the queue's error (`data` gets `reachedService:
  /// false`) unless it ran or was refused already.
  void refuse(error_code code, std::string message, json::value data);

  queued_work(const queued_work&) = delete;
  queued_work& operator=(const queued_work&) = delete;
  /// Refuses the call (actor_restarted) unless it ran or was refused.
  ~queued_work();

private:
  downstream_call_ptr call;
  static std::atomic<uint64_t>& next_id() {
    static std::atomic<uint64_t> n{1};
    return n;
  }
};
using queued_work_ptr = std::shared_ptr<queued_work>;

/// A child of a supervisor.
struct child_spec {
  std::string name;
  /// Spawns the child and returns its handle (untyped).
  std::function<caf::actor(caf::actor_system&)> spawn;
  /// What the admin tree shows as its kind (default: its name up to '/').
  std::string kind = {};
};

/// One downstream service as a configuration generation has it.
using service_config_ptr = std::shared_ptr<const service_config>;

/// The end of one HTTP exchange with a downstream (its messages arrive as lines).
struct http_exchange_end {
  int status = 0;
  std::string error;
  bool sent = false;
  bool timed_out = false;
  bool malformed = false; ///< See http_response::malformed.
  std::string session_id; ///< Mcp-Session-Id of the response, if any.
  std::string retry_after; ///< Retry-After of the response, if any.
  /// A JSON response body, handled as the exchange's last line (one message
  /// instead of two), with the connector generation that sent the request.
  std::string body;
  uint64_t generation = 0;
};

} // namespace bulwark

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::inbound_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::sink_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::json::value)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::session_record_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::call_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::call_handler)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::downstream_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::downstream_call_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::http_exchange_end)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::cache_lookup_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<bulwark::cache_hit>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::admission_ticket_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::admission_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::admission)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::queued_work_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::handoff_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::health_sample)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::service_config_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::token_grant)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::child_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::gateway_readiness)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::gateway_config_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(bulwark::trace::span_batch)

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
CAF_ADD_ATOM(bulwark, bulwark::atom, resume, "resume")
CAF_ADD_ATOM(bulwark, bulwark::atom, call, "call")
CAF_ADD_ATOM(bulwark, bulwark::atom, done, "done")
CAF_ADD_ATOM(bulwark, bulwark::atom, retry, "retry")
CAF_ADD_ATOM(bulwark, bulwark::atom, cancel, "cancel")
CAF_ADD_ATOM(bulwark, bulwark::atom, line, "line")
CAF_ADD_ATOM(bulwark, bulwark::atom, exited, "exited")
CAF_ADD_ATOM(bulwark, bulwark::atom, start, "start")
CAF_ADD_ATOM(bulwark, bulwark::atom, expire, "expire")
CAF_ADD_ATOM(bulwark, bulwark::atom, http_end, "http_end")
CAF_ADD_ATOM(bulwark, bulwark::atom, answer, "answer")
CAF_ADD_ATOM(bulwark, bulwark::atom, put, "put")
CAF_ADD_ATOM(bulwark, bulwark::atom, drop, "drop")
CAF_ADD_ATOM(bulwark, bulwark::atom, degrade, "degrade")
CAF_ADD_ATOM(bulwark, bulwark::atom, sample, "sample")
CAF_ADD_ATOM(bulwark, bulwark::atom, admit, "admit")
CAF_ADD_ATOM(bulwark, bulwark::atom, refund, "refund")
CAF_ADD_ATOM(bulwark, bulwark::atom, enqueue, "enqueue")
CAF_ADD_ATOM(bulwark, bulwark::atom, position, "position")
CAF_ADD_ATOM(bulwark, bulwark::atom, force, "force")
CAF_ADD_ATOM(bulwark, bulwark::atom, watch, "watch")
CAF_ADD_ATOM(bulwark, bulwark::atom, reload, "reload")
CAF_ADD_ATOM(bulwark, bulwark::atom, add, "add")
CAF_ADD_ATOM(bulwark, bulwark::atom, publish, "publish")
CAF_ADD_ATOM(bulwark, bulwark::atom, status, "status")
CAF_ADD_ATOM(bulwark, bulwark::atom, park, "park")
CAF_ADD_ATOM(bulwark, bulwark::atom, ready, "ready")
CAF_ADD_ATOM(bulwark, bulwark::atom, found, "found")
CAF_ADD_ATOM(bulwark, bulwark::atom, spans, "spans")
CAF_ADD_ATOM(bulwark, bulwark::atom, flush, "flush")
CAF_ADD_ATOM(bulwark, bulwark::atom, exported, "exported")
CAF_ADD_ATOM(bulwark, bulwark::atom, token, "token")
CAF_ADD_ATOM(bulwark, bulwark::atom, approve, "approve")
CAF_ADD_ATOM(bulwark, bulwark::atom, pins, "pins")
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
  // The same, with the events another instance kept of the stream the client
  // names (`shared_events`: [{"seq", "body", "last"}]), to replay first.
  caf::reacts_to<atom::listen, sink_ptr, std::string, json::value>,
  // A client of this session subscribed to a resource URI (true) or
  // unsubscribed through another instance.
  caf::reacts_to<atom::watch, std::string, bool>,
  // The response stream of a request (by sink serial) was closed by the client.
  caf::reacts_to<atom::closed, uint64_t>,
  // Internal: a handler's `after` continuation is due.
  caf::reacts_to<atom::timer, uint64_t>,
  // A call's continuation from another thread or actor (`call_context::resume`).
  caf::reacts_to<atom::resume, call_ptr, call_handler>,
  // The cache's answer to a lookup of one of its calls (the lookup's token):
  // a copy, or a miss.
  caf::reacts_to<atom::found, uint64_t, std::optional<cache_hit>>,
  // The rate limiter's verdict on the call with this serial (its
  // admission_ticket): run it, park it, or refuse it.
  caf::reacts_to<atom::admit, uint64_t, admission>,
  // A server-wide notification (list_changed, resources/updated) to pass on.
  caf::reacts_to<atom::notify, std::string, json::value>,
  // The client ended the session (HTTP DELETE).
  caf::reacts_to<atom::end>,
  // Internal: idle-expiry check.
  caf::reacts_to<atom::sweep>,
  // Internal: the spans of answered calls it holds are due for export.
  caf::reacts_to<atom::flush>,
  // From the task store: a client's answers (inputResponses) to the input
  // requests of the task that runs as call `serial` here.
  caf::reacts_to<atom::answer, uint64_t, json::value>,
  // From the task store: the client cancelled the task of call `serial`.
  caf::reacts_to<atom::cancel, uint64_t>>;

/// The tasks of the tasks extension (`io.modelcontextprotocol/tasks`): their
/// records, by task id. A task runs as a call of the session actor that
/// created it (its runner), which reports each change here; the store
/// answers tasks/get, passes tasks/update and tasks/cancel on to the runner,
/// and fails the tasks of a runner that stops.
using task_store_actor = caf::typed_actor<
  // A new task for call `serial` of `runner`, created by identity: answers
  // the task (the fields of a CreateTaskResult), or {"refused": error} when
  // the identity holds as many tasks as it may.
  caf::replies_to<atom::open, std::string, caf::actor, uint64_t>::with<json::value>,
  // The runner's report of a task's new state (task id, then {status,
  // statusMessage?, inputRequests?, result?, error?}).
  caf::reacts_to<atom::put, std::string, json::value>,
  // tasks/get (task id, identity): the task with what its status carries,
  // or null when the identity has no such task.
  caf::replies_to<atom::get, std::string, std::string>::with<json::value>,
  // tasks/update (task id, identity, inputResponses): passed on to the
  // runner; answers whether the identity has such a task.
  caf::replies_to<atom::answer, std::string, std::string, json::value>::with<bool>,
  // tasks/cancel (task id, identity): the same.
  caf::replies_to<atom::cancel, std::string, std::string>::with<bool>,
  // Status for health and the admin API: counts by status.
  caf::replies_to<atom::get>::with<json::value>,
  // Internal: drop the tasks whose time to live is over.
  caf::reacts_to<atom::sweep>>;

/// Spawns, finds, restarts and ends session actors.
using session_supervisor_actor = caf::typed_actor<
  // An `initialize` request: create a 2025-era session and hand it over.
  caf::reacts_to<atom::open, inbound_ptr>,
  // A session from the shared directory (created on another instance):
  // start its actor here; answers whether it is live here now.
  caf::replies_to<atom::open, session_record_ptr>::with<bool>,
  // End the session with this id (DELETE or idle expiry).
  caf::reacts_to<atom::end, std::string>,
  // Pass a notification to every live session.
  caf::reacts_to<atom::notify, std::string, json::value>,
  // How many sessions are live.
  caf::replies_to<atom::count>::with<uint64_t>>;

/// One per downstream service: speaks MCP as a client over a stdio child or
/// Streamable HTTP, and answers each attempt to its breaker.
using connector_actor = caf::typed_actor<
  // An attempt (id) of a call; the outcome goes to the sender as atom::done
  // (the handoff reports it unsent if this message is dropped).
  caf::reacts_to<atom::call, uint64_t, downstream_call_ptr, caf::actor, handoff_ptr>,
  // The client gave up on an attempt: cancel it downstream.
  caf::reacts_to<atom::cancel, uint64_t>,
  // Internal: (re)start the child or the HTTP session.
  caf::reacts_to<atom::start>,
  // Internal: one JSON-RPC message from the downstream (generation, text,
  // and the id of our request whose HTTP response carried it, or -1).
  caf::reacts_to<atom::line, uint64_t, std::string, int64_t>,
  // The client's answer to a service's request (the JSON-RPC response body).
  caf::reacts_to<atom::answer, std::string>,
  // Internal: the child of that generation exited (waitpid status).
  caf::reacts_to<atom::exited, uint64_t, int>,
  // Internal: an HTTP exchange for this request id ended.
  caf::reacts_to<atom::http_end, uint64_t, http_exchange_end>,
  // Internal: check the deadlines of open calls.
  caf::reacts_to<atom::expire>,
  // Internal: reopen the change stream of an HTTP service (generation).
  caf::reacts_to<atom::listen, uint64_t>,
  // From the router: the resources clients watch that this service owns
  // (its reads go to it). Subscribe the service to them and unsubscribe it
  // from the rest; changes within a short while are coalesced into one.
  caf::reacts_to<atom::watch, std::vector<std::string>>,
  // Internal: the coalesced watch change falls due.
  caf::reacts_to<atom::watch, bool>,
  // A reload changed the service's settings (not its transport: that
  // starts a new connector): timeouts apply to calls from now on.
  caf::reacts_to<atom::reload, service_config_ptr>,
  // Internal: the token endpoint answered the request with this serial for
  // a token slot (empty: Bulwark's own token; else the caller's token it
  // exchanges).
  caf::reacts_to<atom::token, std::string, uint64_t, token_grant>,
  // Internal: the token is due for renewal (shortly before it expires, or
  // the service refused it).
  caf::reacts_to<atom::token>,
  // From a (re)started gateway router: tell it the service's lists and
  // status again (atom::publish, atom::status).
  caf::reacts_to<atom::publish>,
  // Status: state, pending calls, tools.
  caf::replies_to<atom::get>::with<json::value>>;

/// What hears of a downstream call while it runs and when it ends: the
/// service's breaker, which knows which client call the downstream call
/// reports to (`downstream_call::target`) and turns each report into that
/// call's continuation on its session (`call_context::resume`). The
/// connector, the breaker itself and the queue send these; nothing answers
/// them.
using downstream_listener = caf::typed_actor<
  // From the connector: a progress or log notification of the call, for its
  // client.
  caf::reacts_to<atom::notify, downstream_call_ptr, std::string, json::value>,
  // From the connector: the service asks the call's client (method, params,
  // the service's request id). The client's answer goes to the connector
  // as atom::answer.
  caf::reacts_to<atom::park, downstream_call_ptr, std::string, json::value, json::value, caf::actor>,
  // The call's final outcome, exactly once (`downstream_call::complete`),
  // from the breaker, or from the queue for a call it never ran. The
  // handoff fails the client's call if this message is dropped (the
  // listener is gone).
  caf::reacts_to<atom::done, downstream_call_ptr, downstream_outcome, handoff_ptr>>;

/// The gateway's router: which services the generation has and what they
/// offer, under which exposed names (the catalog's "gateway" group, with
/// each entry's handler, policy and cache rules) and whether they are
/// ready. Connectors report
/// to it; the gateway tools and main ask it. Its state is rebuilt from the
/// connectors when it restarts.
using gateway_router_actor = caf::typed_actor<
  // A connector's current list of its service (service, method such as
  // tools/list, the items), after start-up and after each list_changed.
  caf::reacts_to<atom::publish, std::string, std::string, json::value>,
  // A connector's service became ready (true, no problem) or failed to
  // start or to stay up (false, why).
  caf::reacts_to<atom::status, std::string, bool, std::string>,
  // The service reported a resource as updated: clients watching it hear so.
  caf::reacts_to<atom::notify, std::string>,
  // The resources clients watch changed: each connector is told those its
  // service owns.
  caf::reacts_to<atom::watch>,
  // A new generation (and the drain time of removed services, ms), applied
  // as changes of the actor tree; answers once the catalog shows it.
  caf::replies_to<atom::reload, gateway_config_ptr, int64_t>::with<bool>,
  // Internal: check a removed service's drain (its name, the removal's number).
  caf::reacts_to<atom::drop, std::string, uint64_t>,
  // Whether every service listed its tools; answered once they all did
  // (or their start failed), or when the time (ms) is up.
  caf::replies_to<atom::ready, int64_t>::with<gateway_readiness>,
  // Internal: answer the readiness questions whose time is up; end the
  // wait for restarted connectors' reports.
  caf::reacts_to<atom::timer>,
  // The services (one by name, or all for ""): status, why not ready, the
  // listed tools and their exposed names (for the gateway tools).
  caf::replies_to<atom::get, std::string>::with<json::value>,
  // Status for health: the pinning mode and the held tool changes, each
  // with both definitions and what differs.
  caf::replies_to<atom::get>::with<json::value>,
  // An operator approved the held change of a service's tool (service,
  // tool): it is served from now on.
  caf::reacts_to<atom::approve, std::string, std::string>,
  // The fleet's tool pins changed in Redis (another instance wrote them, a
  // write of this one met another's, Redis is reachable again): read them.
  caf::reacts_to<atom::pins>,
  // The fleet's pins as read (an object: field -> text, see pin_book), or
  // null when Redis could not be read.
  caf::reacts_to<atom::pins, json::value>,
  // From its spawn function, once connectors can see it: ask every
  // connector for its service's lists and status.
  caf::reacts_to<atom::publish>>;

/// Results of cacheable calls, fresh and stale.
using cache_actor = caf::typed_actor<
  // Look up a key (fresh only, or stale too); the answer goes to the asking
  // session (`atom::found`: see cache_lookup).
  caf::reacts_to<atom::get, cache_lookup_ptr>,
  // Store a result: key, result, ttl ms, max stale ms.
  caf::reacts_to<atom::put, std::string, json::value, int64_t, int64_t>,
  // Internal: a copy found in the shared cache, kept in memory here only
  // (key, result, ttl ms, max stale ms, age ms, the generations it was
  // found under).
  caf::reacts_to<atom::put, std::string, json::value, int64_t, int64_t, int64_t, std::string>,
  // Drop every entry under a key prefix (a service, a tool).
  caf::reacts_to<atom::drop, std::string>,
  // A reload changed the bounds (entries, bytes): the least recently used
  // entries beyond them go.
  caf::reacts_to<atom::reload, std::size_t, std::size_t>,
  // Drop them here only (true: another instance dropped them everywhere else).
  caf::reacts_to<atom::drop, std::string, bool>,
  // Another instance dropped a prefix; its scope's new generation.
  caf::reacts_to<atom::drop, std::string, std::string>,
  // Internal: this instance's generation bump was answered (scope,
  // generation; empty: it failed).
  caf::reacts_to<atom::done, std::string, std::string>,
  // Read the shared cache's generations again (after a (re)connection).
  caf::reacts_to<atom::start>,
  // Internal: the generations as read (object scope -> generation).
  caf::reacts_to<atom::start, json::value>,
  // Internal: a lookup in the shared cache found a usable copy (or not).
  caf::reacts_to<atom::done, bool>,
  // Status: entries, bytes, hits, misses, stale hits, evictions, hit rate.
  caf::replies_to<atom::get>::with<json::value>>;

/// One per downstream service, in front of its connector: the circuit
/// breaker, retries with back-off, and fallbacks.
using breaker_actor = caf::typed_actor<
  // A call to make (the handoff answers it if this message is dropped).
  caf::reacts_to<atom::call, downstream_call_ptr, handoff_ptr>,
  // From the connector: how the attempt with this id ended.
  caf::reacts_to<atom::done, uint64_t, downstream_outcome>,
  // Internal: a back-off delay ended; try the call again.
  caf::reacts_to<atom::retry, uint64_t>,
  // The client cancelled this call.
  caf::reacts_to<atom::cancel, downstream_call_ptr>,
  // Operators: force the state ("open", "closed", "half_open").
  caf::reacts_to<atom::force, std::string>,
  // Another instance's breaker of this service switched to this state
  // (true: follow it without publishing it again).
  caf::reacts_to<atom::force, std::string, bool>,
  // A reload changed the service's settings: retries, timeouts and
  // fallbacks apply from now on; the breaker keeps its state unless its
  // thresholds changed (then it starts closed under the new ones).
  caf::reacts_to<atom::reload, service_config_ptr>,
  // The client answered what the service asked (the token its call was
  // parked under, the JSON-RPC response body for the service, the client's
  // call that carries the answer): the downstream call reports to that
  // call from now on, and the answer goes down. An unknown token is
  // answered on the call (-32602).
  caf::reacts_to<atom::answer, std::string, std::string, call_ptr>,
  // Status: state, counts, transitions.
  caf::replies_to<atom::get>::with<json::value>>::extend_with<downstream_listener>;

/// Token buckets per key (by tier), per service and global. Its buckets
/// live outside the actor, so a restart hands nobody a fresh quota.
using limiter_actor = caf::typed_actor<
  // Admit a call or refuse it; the verdict goes to the asking session
  // (`atom::admit, serial, admission`: see admission_ticket).
  caf::reacts_to<atom::admit, admission_ticket_ptr>,
  // An admitted call never ran (shed, cancelled in the queue): give its tokens back.
  caf::reacts_to<atom::refund, admission_request>,
  // Degraded mode tightens the budgets.
  caf::reacts_to<atom::degrade, bool>,
  // Internal: forget keys whose buckets are full again.
  caf::reacts_to<atom::sweep>,
  // A new configuration generation: take its limits, keeping the buckets'
  // levels (runtime_env::settings()).
  caf::reacts_to<atom::reload>,
  // Status: limits, tokens, refusals, per-service usage.
  caf::replies_to<atom::get>::with<json::value>>;

/// The priority queue in front of the downstream services: four priorities,
/// bounded, aging, at most so many calls running per service.
using queue_actor = caf::typed_actor<caf::reacts_to<atom::enqueue, queued_work_ptr>,
                                     // The call with this id ended (its entry reports it): its lane's slot
                                     // is free.
                                     caf::reacts_to<atom::done, uint64_t>,
                                     // The caller gave up: leave the queue (refunding its rate-limit tokens).
                                     caf::reacts_to<atom::cancel, uint64_t>,
                                     // Internal: a delayed entry became ready or a deadline passed.
                                     caf::reacts_to<atom::timer>,
                                     // Degraded mode sheds LOW work.
                                     caf::reacts_to<atom::degrade, bool>,
                                     // A new configuration generation: its capacity, aging and concurrency.
                                     caf::reacts_to<atom::reload>,
                                     // Status: depth per priority, fill, counters, queued entries.
                                     caf::replies_to<atom::get>::with<json::value>,
                                     // Position and estimated wait of an owner's queued calls (request id, or
                                     // null for all of them), and the depth per priority.
                                     caf::replies_to<atom::position, std::string, json::value>::with<json::value>>;

/// Alert rules with cooldowns, fed by the health supervisor; delivers to the
/// log, a webhook and admin sessions.
using alert_actor = caf::typed_actor<caf::reacts_to<atom::sample, health_sample>,
                                     // Internal: try a webhook delivery again.
                                     caf::reacts_to<atom::retry, uint64_t>,
                                     // Internal: a webhook delivery ended (id, HTTP status, error).
                                     caf::reacts_to<atom::done, uint64_t, int32_t, std::string>,
                                     // A new configuration generation: its rules (their cooldowns start
                                     // over) and webhook.
                                     caf::reacts_to<atom::reload>,
                                     // Status: rules, counts, history, webhook.
                                     caf::replies_to<atom::get>::with<json::value>>;

/// The trace exporter: keeps finished spans in a bounded queue and sends
/// them in batches to the OTLP collector (`telemetry.otlp`). Spans beyond
/// the bound, and spans of a failed export, are dropped and counted: a slow
/// or absent collector never holds up a call. Nothing answers the spans.
using telemetry_actor = caf::typed_actor<
  // Finished spans of one call (or one part of it) to export.
  caf::reacts_to<atom::spans, trace::span_batch>,
  // Internal: time to export what waits.
  caf::reacts_to<atom::flush>,
  // Internal: an export ended (spans it carried, HTTP status or 0, error).
  caf::reacts_to<atom::exported, uint64_t, int32_t, std::string>,
  // A new configuration generation: its telemetry settings.
  caf::reacts_to<atom::reload>,
  // Status: endpoint, queue, exported, dropped, last error.
  caf::replies_to<atom::get>::with<json::value>>;

/// A supervisor over a set of children (the root, the operations
/// supervisor, one per downstream service). Children report by their down
/// messages; nothing here answers.
using supervisor_actor = caf::typed_actor<
  // Stop all children and then the supervisor.
  caf::reacts_to<atom::end>,
  // Start a new child after the others (a reload added a service); one of
  // the same name is replaced.
  caf::reacts_to<atom::add, child_spec>,
  // Stop the named child for good (a reload removed or replaced it): it
  // leaves the registry and the tree at once, with what it supervised.
  caf::reacts_to<atom::drop, std::string>,
  // Internal: start the children that are down, after a back-off.
  caf::reacts_to<atom::open, std::string>>;

/// The health supervisor: checks the components every interval, publishes
/// the report (`/health`), switches degraded mode and feeds the alert rules.
using health_actor = caf::typed_actor<
  // Internal: the next check falls due.
  caf::reacts_to<atom::timer>,
  // Operators: 1 forces degraded mode on, 0 off, -1 back to automatic.
  caf::reacts_to<atom::degrade, int32_t>,
  // A new configuration generation: its thresholds and services (the mode
  // stays).
  caf::reacts_to<atom::reload>,
  // The latest report.
  caf::replies_to<atom::get>::with<json::value>>;

/// A tool answered by an actor (a host's, or a test's): the tool's name and
/// its arguments in, the result out (see actors/actor_tool.hpp for what the
/// result may be and how failures are answered).
using tool_actor = caf::typed_actor<caf::replies_to<atom::call, std::string, json::value>::with<json::value>>;

// -- a downstream call ----------------------------------------------------------------

/// One call from a client's handler to a downstream service. The session
/// that makes it fills it in and hands it on; from then on the connector
/// reads its request, the breaker ends it (`complete`), and the listener
/// (the service's breaker) alone owns `target`.
struct downstream_call : std::enable_shared_from_this<downstream_call> {
  std::string service;
  std::string method; ///< tools/call, resources/read, prompts/get, ...
  json::value params; ///< As the downstream names things.
  bool idempotent = false;
  /// The calling client's capabilities, for a stateless (2026-07-28) service.
  json::value client_capabilities;
  /// The caller's OAuth access token, set only for a service that acts for
  /// the caller (`passthrough`, token exchange). Never logged.
  std::shared_ptr<const std::string> caller_token;
  std::chrono::steady_clock::time_point deadline;
  /// Hears the call's notifications, input requests and outcome (null: the
  /// call has no client to tell, and its service may not ask one).
  downstream_listener listener;
  /// The client call the reports go to: the one that started it, then the
  /// client call that carries the client's input when the service asked
  /// for some (2026-07-28: the client's next call; 2025 era: the same call
  /// run again). Set before the call is handed on, then read and written
  /// by the listener only, which lets go of it when the call ends (the
  /// client call's cancel hook holds this downstream call).
  call_ptr target;
  /// How the listener answers `target` (the gateway's route).
  std::shared_ptr<const downstream_route> route;
  /// The priority queue's slot this call holds (`queue_slot` its id): its
  /// end frees it (atom::done).
  queue_actor queue;
  uint64_t queue_slot = 0;
  std::atomic<bool> cancelled{false};

  // -- tracing ---------------------------------------------------------------------

  /// The client call's trace, passed on to the service (`traceparent`).
  trace::context trace;
  /// The span the call's own spans hang under (the client call's handler).
  uint64_t parent_span = 0;
  /// When the call was handed on (to the queue): the queue wait's start.
  std::chrono::steady_clock::time_point enqueued{};
  /// The span of the attempt under way: set by the breaker before it hands
  /// the attempt to the connector, which reads it when the attempt arrives
  /// (the message orders the two), as the parent of its exchange span.
  uint64_t attempt_span = 0;

  /// Ends the call with `o` unless it has ended already: frees its queue
  /// slot (unless the queue refused it) and tells the listener. The
  /// breaker, the queue, and the fallback of a message that carried the
  /// call and was dropped, all end it this way, so one of them answers.
  /// Safe from any thread.
  void complete(downstream_outcome o);
  bool completed() const noexcept { return completed_.load(); }

private:
  std::atomic<bool> completed_{false};
};

} // namespace bulwark
