// Public API: the tools, resources and prompts a Bulwark server offers, and
// the context a handler gets for one invocation.
//
// Handlers run inside the session actor that received the request. A handler
// either answers at once (`finish`, `fail`, `require_input`) or schedules more
// work with `after` and answers later; it must answer exactly once. A handler
// that throws answers a tool call with `isError: true`.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/errors.hpp"
#include "messages/json.hpp"
#include "messages/trace.hpp"

namespace bulwark {

/// Log levels in MCP's (syslog) order.
enum class log_level : uint8_t { debug, info, notice, warning, error, critical, alert, emergency };

std::string_view to_string(log_level lvl) noexcept;
std::optional<log_level> parse_log_level(std::string_view s) noexcept;

/// What the server knows of the client behind a request.
struct client_view {
  std::string protocol_version; ///< Negotiated (2025 era) or declared (2026 era).
  bool stateless = false; ///< True for the 2026-07-28 era.
  json::value capabilities; ///< The client's declared capabilities.
  json::value info; ///< clientInfo, when given.
  /// Who is calling: "key:<SHA-256 of its bearer key>", "anonymous" or
  /// "stdio". Private cached results and rate limits are kept per identity.
  std::string identity;
  /// The client's address ("address:port") for logs; empty over stdio.
  std::string remote;
  /// The request's validated OAuth access token (`auth.mode` "oauth"), for
  /// a service that acts for the caller; null otherwise. Never logged.
  std::shared_ptr<const std::string> credential;
  /// That token's scopes; null (no OAuth token): no scope checks.
  std::shared_ptr<const std::vector<std::string>> scopes;

  bool has_capability(std::string_view name) const noexcept { return capabilities.find(name) != nullptr; }
};

class call_context;

namespace schema {
class validator;
} // namespace schema
using call_ptr = std::shared_ptr<call_context>;
using call_handler = std::function<void(const call_ptr&)>;

/// Implemented by the actor that runs a call; the context forwards to it.
class call_owner {
public:
  virtual ~call_owner() = default;
  virtual void on_progress(call_context& c, double progress, std::optional<double> total, std::string message) = 0;
  virtual void on_log(call_context& c, log_level lvl, json::value data, std::string logger) = 0;
  virtual void on_after(const call_ptr& c, std::chrono::milliseconds delay, call_handler next) = 0;
  virtual void on_finish(call_context& c, json::value result) = 0;
  virtual void on_fail(call_context& c, error_code code, std::string message, json::value data) = 0;
  virtual void on_input_required(call_context& c, json::value requests, std::string state) = 0;
};

/// An error a handler reports to its caller on purpose: its message is meant
/// for the client and reaches it in every `errors.mode` (a tools/call gets
/// it as an `isError` result, other methods as -32603). Anything else a
/// handler throws is an internal failure: the client gets a trace id, the
/// log the exception text.
class tool_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// One invocation of a tool, a prompt or a resource read.
class call_context : public std::enable_shared_from_this<call_context> {
public:
  call_context(std::string method, json::value params, client_view client);
  call_context(const call_context&) = delete;
  call_context& operator=(const call_context&) = delete;

  // -- what was asked ----------------------------------------------------------

  /// `tools/call`, `prompts/get` or `resources/read`.
  const std::string& method() const noexcept { return method_; }
  const json::value& params() const noexcept { return params_; }
  /// `params.arguments` for tools and prompts; for a resource read the
  /// variables a URI template matched, plus `uri`.
  const json::value& arguments() const noexcept { return args_in_params_ ? *args_in_params_ : arguments_; }
  const client_view& client() const noexcept { return client_; }
  /// The client's answer to the input request named `key`, if it sent one.
  const json::value* input_response(std::string_view key) const noexcept { return input_responses_.find(key); }
  const json::value& input_responses() const noexcept { return input_responses_; }
  /// The state the handler asked to get back with the input (verified).
  const std::string& request_state() const noexcept { return request_state_; }
  /// True once the client cancelled the request or went away.
  bool cancelled() const noexcept { return cancelled_; }

  // -- while working -------------------------------------------------------------

  /// Sends a progress notification when the client asked for progress.
  void progress(double progress, std::optional<double> total = std::nullopt, std::string message = {});
  /// Sends a log notification, subject to the client's log level.
  void log(log_level lvl, json::value data, std::string logger = {});
  /// Runs `next` after `delay` inside the same actor, unless the call ended.
  void after(std::chrono::milliseconds delay, call_handler next);
  /// Runs `next` inside the owning actor as soon as it can, unless the call
  /// ended by then. Callable from any thread: this is how work done
  /// elsewhere (another actor, a downstream service, a host's own threads)
  /// gets back to the call to answer it.
  void resume(call_handler next) const;
  /// Registers what to do (inside the owning actor) when the client cancels
  /// the call or goes away, such as cancelling work elsewhere.
  void on_cancel(std::function<void()> f) { cancel_hook_ = std::move(f); }

  // -- how it ends (exactly once) -------------------------------------------------

  /// Answers with `result` (a CallToolResult, GetPromptResult or
  /// ReadResourceResult object).
  void finish(json::value result);
  /// Answers with a JSON-RPC error.
  void fail(error_code code, std::string message, json::value data = {});
  /// Asks the client for input (elicitation, sampling, roots) and gets called
  /// again with the answers. `requests` maps keys to `{method, params}`;
  /// `state` comes back, integrity-protected, in `request_state()`.
  void require_input(json::value requests, std::string state = {});

  bool done() const noexcept { return done_; }

  // -- for the owning actor ---------------------------------------------------------

  void attach(call_owner* owner) noexcept { owner_ = owner; }
  /// The actor's state that runs the call (null once it ended).
  call_owner* owner() const noexcept { return owner_; }
  void detach() noexcept { owner_ = nullptr; }
  /// Marks the call cancelled and runs the cancel hook once.
  void mark_cancelled() {
    if (cancelled_)
      return;
    cancelled_ = true;
    if (auto hook = std::move(cancel_hook_))
      hook();
  }
  /// How `resume` reaches the owning actor (set once, before the handler runs).
  void set_resumer(std::function<void(call_ptr, call_handler)> r) { resumer_ = std::move(r); }
  void set_input(json::value responses, std::string state) {
    input_responses_ = std::move(responses);
    request_state_ = std::move(state);
    done_ = false;
  }
  /// The client's address, as the transport gave it (for logs).
  void set_remote(std::string remote) { client_.remote = std::move(remote); }
  void set_arguments(json::value args) {
    arguments_ = std::move(args);
    args_in_params_ = nullptr;
  }

  /// Owner-specific bookkeeping (the request's key in the owner's tables).
  uint64_t tag = 0;

  // -- admission (set by the session before the handler runs) ------------------------

  /// The rate limiter let the call in on condition that it does not run
  /// before this (queue mode); the epoch when there is no such condition.
  std::chrono::steady_clock::time_point not_before{};
  /// Gives the call's rate-limit tokens back (it was shed or cancelled
  /// before it ran). Empty when no limit applied.
  std::function<void()> refund;
  /// Runs `refund` now, at most once: the call was answered without its
  /// service (a cache hit, a policy denial), so it costs no budget.
  void give_back() {
    if (auto r = std::exchange(refund, {}))
      r();
  }
  /// The JSON-RPC id of the request (for queue_status).
  json::value request_id;

  // -- set by the gateway when a downstream service answers (or fails) ---------------

  /// The service the call went to, or whose cached copy answered it; empty
  /// for a call Bulwark answered itself.
  std::string upstream;
  /// How long the call waited on that service (see downstream_outcome::waited).
  std::chrono::nanoseconds upstream_wait{0};
  /// The handler failed inside (it threw something other than a
  /// tool_error): the tool result that says so counts as a failure of the
  /// server (-32603) in the error counters and the error_rate alert.
  bool internal_failure = false;
  /// The exposed name of the tool a `tools/call` runs when it is not
  /// `params.name` (the gateway's `execute_tool` names it in its arguments).
  std::string tool;

  // -- tracing and the access log ---------------------------------------------------

  /// The call's place in its trace (`trace.span`: its request span).
  trace::context trace;
  /// The span of the handler's run, while recorded (0: not recorded): the
  /// parent of what the handler starts (cache lookups, downstream calls).
  uint64_t handler_span = 0;
  std::chrono::steady_clock::time_point handler_started{};
  /// How the cache answered the call's latest lookup ("fresh", "stale",
  /// "miss"); null when none was made.
  const char* cache = nullptr;
  /// Attempts at the service beyond the first (set by the gateway).
  uint32_t retries = 0;

private:
  bool begin_answer() noexcept;

  std::string method_;
  json::value params_;
  json::value arguments_;
  /// `params.arguments` when it is an object (`params_` is never changed).
  const json::value* args_in_params_ = nullptr;
  client_view client_;
  json::value input_responses_;
  std::string request_state_;
  bool cancelled_ = false;
  bool done_ = false;
  call_owner* owner_ = nullptr;
  std::function<void(call_ptr, call_handler)> resumer_;
  std::function<void()> cancel_hook_;
};

// -- definitions -----------------------------------------------------------------

/// Completion values for one argument, given its partial value.
using completer = std::function<std::vector<std::string>(std::string_view partial)>;

/// Whether a tool's calls may run as tasks (the 2026-07-28 tasks extension,
/// `io.modelcontextprotocol/tasks`).
enum class task_support : uint8_t {
  /// Never: every call is answered on its request.
  none,
  /// A call from a client that declared the extension on the request
  /// becomes a task when its handler does not answer in its first run (it
  /// scheduled more work with `after`, `resume` or a downstream call): the
  /// client gets a CreateTaskResult at once and polls `tasks/get`; what the
  /// handler does from then on (`finish`, `fail`, `require_input`) goes to
  /// the task. A handler that answers in its first run, or asks for input
  /// (a multi round-trip), is answered on its request as usual. Other
  /// clients get every answer on their request.
  optional,
  /// As `optional`, and a client that did not declare the extension is
  /// refused with -32021 (missing_client_capability) before the handler runs.
  required,
};

struct tool_spec {
  std::string name;
  std::string title;
  std::string description;
  json::value input_schema; ///< Defaults to `{"type":"object"}`.
  json::value output_schema; ///< Null when the tool declares none.
  json::value annotations; ///< Null when the tool declares none.
  json::value meta; ///< `_meta` of the tool definition, if any.
  call_handler handler;
  /// Definitions of a group are replaced together (`runtime::set_group`).
  std::string group;
  /// The downstream service behind it (its rate budget applies), if any.
  std::string service;
  /// For a tool whose arguments name the service it reaches (the gateway's
  /// `execute_tool`): that service, in place of `service`. It runs before the
  /// handler, on arguments already checked against the input schema.
  std::function<std::string(const json::value& arguments)> service_of;
  /// Whether a client sees this tool in tools/list (null: every client).
  std::function<bool(const client_view&)> visible;
  /// Whether its calls may run as tasks.
  task_support tasks = task_support::none;
  /// With task support: how long a call may go on unanswered before it
  /// becomes a task (0: as soon as its handler's first run returns
  /// without answering). A call answered sooner is answered on its request.
  std::chrono::milliseconds task_after{0};
  /// `input_schema`, compiled when the tool is registered; tools/call
  /// arguments are checked against it before the handler runs.
  std::shared_ptr<const schema::validator> validator;
};

/// Why `arguments` do not fit tool `t`'s input schema: the message and data
/// of the -32602 answer, every failing field listed. Nothing when they fit
/// or the tool has no compiled schema.
struct argument_errors {
  std::string message;
  json::value data;
};
std::optional<argument_errors> check_arguments(const tool_spec& t, const json::value& arguments);

struct resource_spec {
  std::string uri;
  std::string name;
  std::string title;
  std::string description;
  std::string mime_type;
  call_handler handler; ///< Finishes with a ReadResourceResult.
  std::string group; ///< See `runtime::set_group`.
  std::string service; ///< See `tool_spec::service`.
};

struct resource_template_spec {
  std::string uri_template; ///< RFC 6570 level 1: `{var}` stands for one segment.
  std::string name;
  std::string title;
  std::string description;
  std::string mime_type;
  call_handler handler; ///< Gets the matched variables in `arguments()`.
  std::map<std::string, completer> completions;
  /// Answers `completion/complete` for this template instead of
  /// `completions`, asynchronously: see `prompt_spec::complete`.
  call_handler complete;
  std::string group;
  std::string service; ///< See `tool_spec::service`; completions count too.
};

struct prompt_argument {
  std::string name;
  std::string description;
  bool required = false;
};

struct prompt_spec {
  std::string name;
  std::string title;
  std::string description;
  std::vector<prompt_argument> arguments;
  call_handler handler; ///< Finishes with a GetPromptResult.
  std::map<std::string, completer> completions;
  /// Answers `completion/complete` for this prompt instead of `completions`,
  /// asynchronously (a gateway asks the service behind it). The call's
  /// `params()` hold the request's `ref`, `argument` and `context`; it
  /// finishes with a CompleteResult.
  call_handler complete;
  std::string group;
  std::string service; ///< See `tool_spec::service`; completions count too.
  /// Whether a client sees this prompt in prompts/list (null: every client).
  std::function<bool(const client_view&)> visible;
};

/// An immutable set of definitions. Changes build a new catalog and replace
/// the shared one, so readers never lock.
class catalog {
public:
  std::vector<tool_spec> tools;
  std::vector<resource_spec> resources;
  std::vector<resource_template_spec> templates;
  std::vector<prompt_spec> prompts;

  const tool_spec* find_tool(std::string_view name) const noexcept;
  const prompt_spec* find_prompt(std::string_view name) const noexcept;
  const resource_spec* find_resource(std::string_view uri) const noexcept;
  /// The first template matching `uri`; fills `vars` with its variables.
  const resource_template_spec* match_template(std::string_view uri, json::value& vars) const;

  /// Definition objects as `tools/list`, `prompts/list`, ... answer them.
  static json::value describe(const tool_spec& t);
  static json::value describe(const resource_spec& r);
  static json::value describe(const resource_template_spec& r);
  static json::value describe(const prompt_spec& p);
};

using catalog_ptr = std::shared_ptr<const catalog>;

/// Matches `uri` against an RFC 6570 level-1 template; fills `vars`.
bool match_uri_template(std::string_view tmpl, std::string_view uri, json::value& vars);

/// The resource URIs this instance's clients watch (2025-era
/// `resources/subscribe`, 2026-07-28 `resourceSubscriptions` of a listen
/// stream), each counted once per holder. The gateway subscribes each
/// service to the watched URIs it owns. Thread-safe.
/// The longest resource URI Bulwark reads, matches against templates or
/// watches (-32602 beyond).
constexpr std::size_t max_uri_bytes = 8192;

/// Resources one session, or one listen stream, may watch: each watched URI
/// costs memory here and work in the gateway, which subscribes services.
constexpr std::size_t max_watched_resources = 1000;
/// ... and the bytes of their URIs: per session or listen stream, per
/// caller over all of them, and of all distinct URIs watched on this server.
constexpr std::size_t max_watched_bytes = 256 * 1024;
constexpr std::size_t max_watched_bytes_per_identity = 1024 * 1024;
constexpr std::size_t max_watched_bytes_total = 16 * 1024 * 1024;

/// Why a resource could not be watched.
enum class watch_refusal { none, uri_too_long, too_many, session_bytes, identity_bytes, server_bytes };

/// The client's words for a refusal (answered as -32602).
std::string describe(watch_refusal r);

class resource_watches {
public:
  /// Called, outside the lock, after a URI gained its first watcher or lost
  /// its last.
  void on_change(std::function<void()> f);
  /// Counts a watcher of `uri` held by caller `identity`; refused (and not
  /// counted) when that caller's watched URIs, or all distinct watched URIs,
  /// would grow past their bounds.
  watch_refusal add(const std::string& uri, const std::string& identity);
  void remove(const std::string& uri, const std::string& identity);
  /// Every URI with at least one watcher, sorted.
  std::vector<std::string> watched() const;

private:
  void changed();
  mutable std::mutex mtx_;
  std::map<std::string, std::size_t> counts_;
  std::map<std::string, std::size_t> identity_bytes_;
  std::size_t distinct_bytes_ = 0;
  std::shared_ptr<std::function<void()>> on_change_;
};

/// One holder's watched URIs (a session's subscriptions, a listen stream's
/// resources): each counts in `resource_watches` while it is held, and all
/// are given back when the set is destroyed, however its holder ended.
class watch_set {
public:
  watch_set() = default;
  watch_set(watch_set&& other) noexcept;
  watch_set& operator=(watch_set&& other) noexcept;
  watch_set(const watch_set&) = delete;
  watch_set& operator=(const watch_set&) = delete;
  ~watch_set();

  /// Counts `uri` in `registry` (kept for later calls) for caller
  /// `identity`: `added` tells whether it was not held already; a refusal
  /// leaves the set as it was.
  watch_refusal insert(const std::shared_ptr<resource_watches>& registry, const std::string& uri,
                       const std::string& identity, bool& added);
  bool erase(const std::string& uri);
  bool contains(const std::string& uri) const { return uris_.count(uri) > 0; }
  const std::set<std::string>& uris() const { return uris_; }

private:
  void release() noexcept;
  std::shared_ptr<resource_watches> registry_;
  std::string identity_;
  std::set<std::string> uris_;
  std::size_t bytes_ = 0;
};

} // namespace bulwark
