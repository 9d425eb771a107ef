// The session actor: one per 2025-era MCP session, and one serving the
// stateless (2026-07-28) endpoint. It validates and dispatches requests, runs
// tool, prompt and resource handlers, and owns their in-flight state.
//
// What survives a restart lives in the `session_record` (negotiated version,
// client capabilities, log level, subscriptions, SSE replay buffers); what
// does not is the in-flight work, whose requests are answered with
// `actor_restarted` when the actor stops.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

/// How long a session holds the spans of answered calls before it sends
/// them to the exporter (unless it holds 64 before).
inline constexpr std::chrono::milliseconds span_hold{200};

/// What runs on a session with a cache lookup's answer (a copy, or a miss).
using lookup_handler = std::function<void(const call_ptr&, std::optional<cache_hit>)>;

struct session_state : call_owner {
  static inline const char* name = "session";

  /// A request being worked on.
  struct running {
    call_ptr call;
    call_handler handler; ///< Called again when 2025-era input arrives.
    sink_ptr sink;
    json::value id; ///< JSON-RPC id of the request.
    json::value progress_token;
    std::optional<log_level> level; ///< 2026-07-28: per-request log level.
    uint64_t stream = 0; ///< 2025 era: SSE stream id for event ids.
    bool streamed = false; ///< True once a message preceded the response.
    std::string context; ///< What `requestState` is bound to.
    json::value gathered; ///< 2025 era: input responses collected so far.
    std::size_t awaiting = 0;
    std::string state; ///< 2025 era: state to hand back with the input.
    std::chrono::steady_clock::time_point received; ///< When the request arrived.
    /// What the rate limiter was asked (its tokens go back if the call
    /// never runs); empty key when no limit applied.
    admission_request admission;
    std::chrono::steady_clock::time_point admission_asked{}; ///< For its span.
    std::size_t bytes_in = 0; ///< The request's size.
    std::size_t bytes_out = 0; ///< What went out before the answer.

    // -- as a task (the tasks extension) --------------------------------------------

    /// Whether the call becomes a task if its handler does not answer in
    /// its first run: a tools/call of a tool that supports tasks, from a
    /// client that declared the extension on the request.
    bool may_task = false;
    /// How long it may go on unanswered before it becomes one (the tool's
    /// `task_after`).
    std::chrono::milliseconds task_after{0};
    /// What a call keeps once it is a task; null for every other call.
    struct task_part {
      enum class phase : uint8_t {
        creating, ///< the store is creating its task; the request waits
        running, ///< the request was answered with the task; the call goes on
      } at = phase::creating;
      std::string id;
      /// What the handler reported while the store created the task (a
      /// task state), reported once it exists.
      json::value early;
      /// The input requests the task waits for: the key the client sees ->
      /// {key: the handler's own key, request}.
      json::value inputs;
      uint64_t keys = 0; ///< input keys minted for the task so far
    };
    std::unique_ptr<task_part> task;
    bool task_creating() const noexcept { return task && task->at == task_part::phase::creating; }
    bool task_running() const noexcept { return task && task->at == task_part::phase::running; }
  };

  /// A cache lookup of a call: what runs with the answer.
  struct pending_lookup {
    call_ptr call;
    lookup_handler then;
    std::chrono::steady_clock::time_point started;
  };

  /// What the access log and a request's span say of an answer, besides
  /// what `record` counts.
  struct answer_facts {
    const trace::context* trace = nullptr;
    int status = 0; ///< HTTP status of the answer.
    std::size_t bytes_in = 0, bytes_out = 0;
    std::string_view identity, remote;
    /// The name the request asked for, known to the catalog or not (the
    /// access log shows it; metric labels take only known names).
    std::string_view requested;
  };

  /// A 2026-07-28 `subscriptions/listen` stream.
  struct listener {
    sink_ptr sink;
    json::value subscription_id; ///< The listen request's JSON-RPC id.
    bool tools = false;
    bool prompts = false;
    bool resources = false;
    watch_set uris; ///< Resources it watches (counted in the runtime's watches)
  };

  session_actor::stateful_pointer<session_state> self = nullptr;
  /// When the mailbox size was last reported to the actor tree.
  std::chrono::steady_clock::time_point mailbox_noted;
  env_ptr env;
  /// What a reload may change (rate limits, keys), as of the current
  /// generation; set on first use.
  std::optional<settings_view> live;
  session_record_ptr rec;
  /// When this session's shared directory entry was last refreshed.
  std::chrono::steady_clock::time_point shared_at;

  std::unordered_map<uint64_t, running> calls; ///< by sink serial
  std::unordered_map<std::string, uint64_t> by_request_id; ///< 2025 era: id -> serial
  /// Our requests to the client: id -> (call serial, input key).
  std::unordered_map<std::string, std::pair<uint64_t, std::string>> outgoing;
  std::unordered_map<uint64_t, std::pair<call_ptr, call_handler>> timers;
  /// Cache lookups of calls, by token: the call and what runs with the answer.
  std::unordered_map<uint64_t, pending_lookup> lookups;
  uint64_t next_lookup = 0;
  uint64_t next_timer = 0;
  uint64_t next_outgoing = 0;

  /// Spans not yet sent to the exporter, written here as they end: sent
  /// when 64 are held, or by a timer armed with the first of them.
  trace::span_batch pending_spans;
  /// The size of the last batch sent, reserved for the next one at once.
  std::size_t pending_bytes = 0;
  bool flush_armed = false;
  /// Encodes `s` into `pending_spans`, sending them when enough are held.
  void hold_span(const trace::span& s);
  void flush_spans();

  sink_ptr get_stream; ///< 2025 era: the standalone SSE stream
  uint64_t get_stream_id = 0;
  std::vector<listener> listeners;

  session_state() = default;
  ~session_state() override;

  // -- message handlers ---------------------------------------------------------------

  void handle(const inbound_ptr& in);
  void open_stream(sink_ptr sink, const std::string& last_event_id);
  /// `open_stream` for a stream this instance does not know, with the events
  /// another instance kept of it (`shared_events`).
  void resume_stream(sink_ptr sink, const std::string& last_event_id, const json::value& kept);
  void stream_closed(uint64_t serial);
  void fire_timer(uint64_t id);
  /// Looks `key` up in `cache` for call `c`; see `look_up` below.
  void look_up(const call_ptr& c, const cache_actor& cache, std::string key, bool allow_stale, lookup_handler then);
  /// The cache's answer to lookup `token`.
  void found(uint64_t token, std::optional<cache_hit> hit);
  /// The rate limiter's verdict on the call `serial`.
  void admitted(uint64_t serial, const admission& a);
  /// Runs a continuation of `call` unless it ended (timers, `resume`).
  void continue_call(const call_ptr& call, const call_handler& next);
  /// The task store's answer to the creation of call `serial`'s task: the
  /// task, a refusal, or null when the store did not answer.
  void task_created(uint64_t serial, json::value created);
  /// The client's answers to the input requests of call `serial`'s task.
  void task_answered(uint64_t serial, const json::value& responses);
  /// The client cancelled call `serial`'s task.
  void task_cancelled(uint64_t serial);
  void broadcast(const std::string& method, const json::value& params);

  // -- call_owner ---------------------------------------------------------------------

  void on_progress(call_context& c, double progress, std::optional<double> total, std::string message) override;
  void on_log(call_context& c, log_level lvl, json::value data, std::string logger) override;
  void on_after(const call_ptr& c, std::chrono::milliseconds delay, call_handler next) override;
  void on_finish(call_context& c, json::value result) override;
  void on_fail(call_context& c, error_code code, std::string message, json::value data) override;
  void on_input_required(call_context& c, json::value requests, std::string state) override;

private:
  void handle_request(const inbound_ptr& in);
  void handle_response(const json::value& msg);
  void handle_notification(const json::value& msg);
  void dispatch_stateful(const inbound_ptr& in, const std::string& method, const json::value& params);
  void dispatch_stateless(const inbound_ptr& in, const std::string& method, const json::value& params);

  void do_initialize(const inbound_ptr& in, const json::value& params);
  void do_list(const inbound_ptr& in, const std::string& method, const json::value& params, bool stateless,
               const client_view& client);
  void do_call(const inbound_ptr& in, const std::string& method, const json::value& params, const client_view& client,
               std::optional<log_level> level);
  /// Registers a checked request as a running call and starts `handler`
  /// (through the rate limiter when a limit applies). `arguments`, when set,
  /// replace the params' own as the handler sees them; `context` binds a
  /// 2026-07-28 requestState to this request.
  void start_call(const inbound_ptr& in, const std::string& method, const json::value& params,
                  const client_view& client, std::optional<log_level> level, call_handler handler,
                  std::optional<json::value> arguments, std::string context, const std::string& service,
                  bool may_task = false, std::chrono::milliseconds task_after = {});
  void do_complete(const inbound_ptr& in, const json::value& params, const client_view& client,
                   std::optional<log_level> level);
  void do_listen(const inbound_ptr& in, const json::value& params);
  /// tasks/get, tasks/update and tasks/cancel (2026-07-28).
  void do_task_method(const inbound_ptr& in, const std::string& method, const json::value& params,
                      const client_view& client);
  /// Makes call `r` a task: asks the store for one, then answers the
  /// request with it (task_created).
  void begin_task(running& r);
  /// A task's new state, to the store (or kept until the task exists);
  /// a state that ends the task ends the call.
  void report_task(running& r, json::value state);

  void reply(const inbound_ptr& in, json::value result, bool stateless);
  /// Answers a 2025-era request that changed what the session directory
  /// keeps (log level, subscriptions) with `{}` once the entry holds the
  /// change, so that an instance taking the session over sees it.
  void reply_once_shared(const inbound_ptr& in);
  void reply_error(const inbound_ptr& in, error_code code, std::string message, json::value data = {},
                   int http_status = 0, std::string challenge = {});
  /// Whether the caller's token lacks a scope `name` (a "tool", "prompt"
  /// or "resource") needs (`auth.oauth.requiredScopes`); if so the request
  /// has been answered HTTP 403 insufficient_scope and audited.
  bool lacks_scope(const inbound_ptr& in, const client_view& client, std::string_view kind, const std::string& name);
  void run(running& r);

  /// A call's error context (mcp::error_context), current while it lives:
  /// the log line of an error answered meanwhile names the call.
  class call_error_scope {
  public:
    call_error_scope(const call_context& c, std::string_view name, std::chrono::steady_clock::time_point received,
                     std::string_view session)
        : trace_id_(c.trace.valid() ? c.trace.trace_id() : std::string()),
          ctx_{c.method(), name, c.upstream, session, c.client().identity, c.client().remote, received, trace_id_},
          scope_(ctx_) {}
    call_error_scope(const call_error_scope&) = delete;
    call_error_scope& operator=(const call_error_scope&) = delete;

  private:
    std::string trace_id_;
    mcp::error_context ctx_;
    mcp::error_context_scope scope_;
  };
  call_error_scope error_scope(const call_context& c, const running& r) const;

  /// Asks the rate limiter (when a limit applies) and then runs the call.
  void admit(running& r, const std::string& service);
  /// Counts one answered request in the metrics: `outcome` is ok,
  /// tool_error or error (then `code` says which). For a call that waited on
  /// a downstream service (`call`), also that wait and Bulwark's own share.
  /// Also writes its access log line and exports its spans (`facts`).
  void record(const std::string& method, std::string_view name, const char* outcome, int code,
              std::chrono::steady_clock::time_point received, call_context* call, const answer_facts& facts);
  void export_spans(const std::string& method, std::string_view name, int code,
                    std::chrono::steady_clock::time_point received, std::chrono::steady_clock::time_point now,
                    call_context* call, const answer_facts& facts);
  void write_access(const std::string& method, std::string_view name, const char* outcome, int code,
                    std::chrono::steady_clock::time_point received, std::chrono::steady_clock::time_point now,
                    const call_context* call, const answer_facts& facts);
  /// What `record` needs of call `c`'s answer `out`.
  static answer_facts call_facts(const call_context& c, const running& r, const outbound& out);
  /// `record` for an answer to `in` (not a call's).
  void record_answer(const inbound_ptr& in, std::string_view name, const char* outcome, int code, int status,
                     std::size_t bytes_out, std::string_view requested = {});
  void send_on(running& r, std::string body, outbound::kind what);
  /// True when `r`'s answer is a stream already, or the session's stream
  /// limit leaves room for it to become one.
  bool may_stream(const running& r) const;
  std::string too_many_streams() const;
  void end_call(uint64_t serial, outbound out);
  /// Forgets a task's call (its request was answered when the task began).
  void end_task_call(uint64_t serial);
  void send_standalone(std::string body);
  /// Numbers event `body` of `stream` and keeps it for replay (`last`: the
  /// answer that ends a POST's stream).
  std::string next_event_id(uint64_t stream, const std::string& body, bool last = false);
  /// Makes `sink` the session's GET stream.
  void become_get_stream(sink_ptr sink);
  /// The session's client as request `in` comes from it (with its own
  /// credential: a 2025-era client may renew its token within a session).
  client_view stateful_client(const inbound& in) const;
  static const json::value& empty_object();
  /// What Bulwark offers (initialize, server/discover).
  static json::value server_capabilities();
};

using session_pointer = session_actor::stateful_pointer<session_state>;

/// The tool or prompt a call names (empty for resource reads, whose URIs
/// would make unbounded metric labels, and for completions, which a direct
/// answer does not label either).
std::string_view call_name(const session_state::running& r);

/// Looks `key` up in `cache` (fresh copies only, or stale ones too) for call
/// `c`, from the session that runs it (call it there: in a handler or a
/// continuation). `then` runs on that session with the answer unless the call
/// ended meanwhile; a lookup the cache never answers (it is gone, or was
/// killed before it answered) is a miss.
void look_up(const call_ptr& c, const cache_actor& cache, std::string key, bool allow_stale, lookup_handler then);

/// The session actor's behavior.
session_actor::behavior_type session(session_pointer self, env_ptr env, session_record_ptr rec);

} // namespace bulwark
