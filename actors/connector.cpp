#include "actors/connector.hpp"

#include <algorithm>
#include <deque>
#include <set>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/cache.hpp"
#include "actors/supervisor.hpp"
#include "actors/telemetry.hpp"
#include "actors/token_keeper.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "config/secrets.hpp"
#include "transport/child_process.hpp"
#include "transport/http_client.hpp"
#include "transport/token_request.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

constexpr std::size_t max_queued_calls = 1000;
/// The most watched resources one service is asked for, by count and bytes:
/// what one listen stream of Bulwark's own accepts, so that a Bulwark behind
/// a Bulwark is never asked for more than it takes.
constexpr std::size_t max_service_watches = max_watched_resources;
constexpr std::size_t max_service_watch_bytes = max_watched_bytes;
/// How long watch changes are gathered before the service is told of them.
constexpr milliseconds watch_coalescing{50};
constexpr const char* client_version = "2025-11-25";

const value& empty_object() {
  static const value empty(json::object{});
  return empty;
}

struct connector_state {
  static inline const char* name = "connector";

  env_ptr env;
  service_config svc;
  gateway_hooks_ptr hooks;
  /// The watched resource URIs this service owns, as the router last said.
  std::vector<std::string> owned;

  enum class phase { down, starting, ready };
  phase ph = phase::down;
  uint64_t generation = 0;
  /// The HTTP exchange that carries the service's change notifications.
  std::optional<uint64_t> change_stream;

  // stdio
  std::unique_ptr<child_process> child;
  restart_intensity intensity{5, seconds(60)};
  uint32_t backoff_step = 0;
  /// Set while the restarts are spent: no start before then, so calls are
  /// answered at once instead of waiting for a start that is not coming.
  std::optional<steady_clock::time_point> resting_until;

  // HTTP
  std::unique_ptr<http_client> http;
  /// Header values written as secret references, resolved per exchange (the
  /// literal ones are the client's own headers).
  secrets::secret_headers secret_headers;
  std::string session_id;

  /// `auth.type` clientCredentials or tokenExchange: the tokens, and the
  /// client that asks the token endpoint for them.
  std::unique_ptr<token_keeper> tokens;
  std::unique_ptr<http_client> token_endpoint;
  bool stateless = false; ///< The backend speaks 2026-07-28 only.
  bool reinitialized = false; ///< One re-initialize after a 404 per failure.

  json::value server_capabilities;
  std::string protocol_version;
  /// What the service offers, per list method (tools/list, ...), and the
  /// pages of a listing in progress.
  std::map<std::string, json::value> lists;
  std::map<std::string, json::value> building;
  /// The watched resources this service was asked to report updates of: by
  /// `resources/subscribe` in our 2025-era session, or in the listen
  /// stream's `resourceSubscriptions` (2026-07-28).
  std::set<std::string> subscribed;
  /// A change of the watched resources waits to be coalesced with others.
  bool watch_due = false;

  /// `control`: a request whose answer only matters when it is an error
  /// (logging/setLevel, resources/subscribe, ...).
  enum class req_kind { initialize, discover, list, call, control };
  struct outstanding {
    req_kind kind = req_kind::call;
    uint64_t attempt = 0;
    downstream_call_ptr call;
    caf::actor reply_to;
    std::string method; ///< The request's method (tools/list, resources/subscribe, ...).
    steady_clock::time_point deadline = steady_clock::time_point::max(); ///< Calls only.
    /// When the request was handed to the transport (calls only): the
    /// service's share of the call's time runs from here to its answer
    /// (before that answer is parsed).
    steady_clock::time_point sent{};
    bool answered = false;
    /// The exchange's span (named in the request's `traceparent`) and its
    /// parent, the breaker's attempt.
    uint64_t span = 0, span_parent = 0;
    /// With a token (`tokens`): the request as sent, for one resend after
    /// the service refused the token (HTTP 401 means it did not run).
    std::string body, name;
    http_header_list extra;
    steady_clock::time_point transmitted{};
    bool resent = false;
  };
  int64_t next_id = 1;
  std::unordered_map<int64_t, outstanding> pending;
  std::unordered_map<uint64_t, int64_t> by_attempt;

  struct queued {
    uint64_t attempt;
    downstream_call_ptr call;
    caf::actor reply_to;
    steady_clock::time_point deadline;
  };
  /// Deadlines are checked by one sweep timer while calls are open, not by a
  /// timer per call (each timer costs a trip through CAF's clock thread).
  bool sweep_armed = false;
  std::deque<queued> waiting; ///< Calls that arrived before the service was ready.
  /// stdio carries nothing that ties a service's request (sampling,
  /// elicitation) to the call that caused it. So at most one call whose
  /// client could answer such a request runs at a time on a child (`asking`,
  /// its request id); the others wait in `held`. A request then belongs to
  /// that call, or to none. Calls whose clients could not answer run
  /// beside it.
  std::optional<int64_t> asking;
  std::deque<queued> held;

  uint64_t garbage_lines = 0;
  /// Why the service is not ready, since its last start failed (empty
  /// while it is ready or starting for the first time).
  std::string problem;

  ~connector_state() {
    // Every call in flight or waiting gets its answer, whatever ended us.
    for (auto& [id, p] : pending)
      if (p.kind == req_kind::call && p.reply_to)
        caf::anon_send(caf::actor_cast<breaker_actor>(p.reply_to), atom::done_v, p.attempt,
                       downstream_outcome::without_answer(
                         downstream_outcome::kind::failure, error_code::actor_restarted,
                         "the connector of service " + svc.name + " stopped while the call was in flight", true));
    for (auto* queue : {&waiting, &held})
      for (auto& q : *queue)
        caf::anon_send(caf::actor_cast<breaker_actor>(q.reply_to), atom::done_v, q.attempt,
                       downstream_outcome::without_answer(
                         downstream_outcome::kind::failure, error_code::actor_restarted,
                         "the connector of service " + svc.name + " stopped before the call was sent", false));
    if (http)
      http->stop();
  }
};

using connector_pointer = connector_actor::stateful_pointer<connector_state>;

json::value log_fields(const connector_state& st, std::initializer_list<std::pair<std::string, value>> more = {}) {
  auto v = value::make_object({{"service", st.svc.name}});
  for (auto& [k, x] : more)
    v.set(k, x);
  return v;
}

/// `arrived`: when the outcome came in, if not now (an answer is stamped
/// before it is parsed: parsing is Bulwark's work, not the service's).
void reply(connector_pointer self, connector_state::outstanding& p, downstream_outcome o,
           steady_clock::time_point arrived = {}) {
  if (p.sent != steady_clock::time_point{}) {
    auto end = arrived == steady_clock::time_point{} ? steady_clock::now() : arrived;
    o.waited = end - p.sent;
    if (p.span != 0 && p.call && p.call->trace.recording) {
      auto s = trace::span::of(p.call->trace, p.span, p.span_parent, p.method, trace::span_kind::client, p.sent, end);
      s.with("bulwark.service", self->state.svc.name).with("mcp.method.name", p.method);
      if (o.unanswered())
        s.failed(o.message);
      else if (o.what == downstream_outcome::kind::error)
        s.with("rpc.jsonrpc.error_code", o.code).failed(o.message);
      trace::span_batch batch;
      batch.add(s);
      submit_spans(*self->state.env, std::move(batch));
    }
  }
  if (p.reply_to)
    self->send(caf::actor_cast<breaker_actor>(p.reply_to), atom::done_v, p.attempt, std::move(o));
}

downstream_outcome failure(std::string message, bool reached, error_code code = error_code::service_unavailable) {
  return downstream_outcome::without_answer(downstream_outcome::kind::failure, code, std::move(message), reached);
}

/// The headers of an HTTP exchange with the service: the era's version,
/// and the mirrored method and name (2026-07-28) or our session (2025 era).
http_header_list mcp_headers(const connector_state& st, std::string accept, const std::string& method,
                             const std::string& name) {
  http_header_list headers{{"Accept", std::move(accept)}};
  if (st.stateless) {
    headers.emplace_back("MCP-Protocol-Version", std::string(mcp::stateless_version));
    headers.emplace_back("Mcp-Method", method);
    if (!name.empty())
      headers.emplace_back("Mcp-Name", mcp::encode_header_value(name));
  } else if (!st.protocol_version.empty()) {
    headers.emplace_back("MCP-Protocol-Version", st.protocol_version);
  }
  if (!st.session_id.empty())
    headers.emplace_back("Mcp-Session-Id", st.session_id);
  return headers;
}

/// The caller's OAuth token that request `id` goes with: a call to a
/// service that acts for the caller; else null.
const std::string* caller_of(const connector_state& st, int64_t id) {
  if (id < 0 || !st.svc.auth.acts_for_caller())
    return nullptr;
  auto i = st.pending.find(id);
  if (i == st.pending.end() || i->second.kind != connector_state::req_kind::call || !i->second.call
      || !i->second.call->caller_token)
    return nullptr;
  return i->second.call->caller_token.get();
}

/// The token slot request `id` goes with: the caller's exchanged token, or
/// Bulwark's own ("").
std::string slot_key(const connector_state& st, int64_t id) {
  auto* caller = st.svc.auth.type == service_auth::kind::token_exchange ? caller_of(st, id) : nullptr;
  return caller ? *caller : std::string();
}

/// The service's credentials for one exchange: its header values written as
/// references, resolved now, and the bearer token: the caller's own
/// (`passthrough`), or the slot's.
void add_credentials(connector_state& st, http_header_list& headers, const token_keeper::slot* slot,
                     const std::string* caller) {
  std::string error;
  st.secret_headers.add_to(headers, error);
  if (!error.empty())
    log::warn("service header's secret reference", log_fields(st, {{"error", error}}));
  if (caller && st.svc.auth.passthrough)
    headers.emplace_back("Authorization", "Bearer " + *caller);
  else if (slot && !slot->token.empty())
    headers.emplace_back("Authorization", "Bearer " + slot->token);
}

void fetch_token(connector_pointer self, const std::string& key);
void token_failed(connector_pointer self, int64_t id, const token_keeper::slot& slot);

/// Sends one JSON-RPC message to the downstream; `id` >= 0 for requests we
/// track (HTTP ties the exchange's end to it).
void transmit(connector_pointer self, const std::string& method, std::string body, int64_t id,
              const std::string& name = {}, http_header_list extra = {}) {
  auto& st = self->state;
  if (st.child) {
    if (!st.child->write_line(std::move(body)) && id >= 0) {
      auto i = st.pending.find(id);
      if (i != st.pending.end() && i->second.kind == connector_state::req_kind::call) {
        reply(self, i->second, failure("service " + st.svc.name + " is not running", false));
        st.by_attempt.erase(i->second.attempt);
        st.pending.erase(i);
        if (st.asking == id)
          st.asking.reset(); // the child is gone: its restart sends the held calls
      }
    }
    return;
  }
  if (!st.http)
    return;
  const std::string* caller = caller_of(st, id);
  const token_keeper::slot* slot = nullptr;
  if (st.tokens && !(caller && st.svc.auth.passthrough)) {
    auto now = steady_clock::now();
    auto i = id >= 0 ? st.pending.find(id) : st.pending.end();
    if (i != st.pending.end()) {
      i->second.body = body;
      i->second.name = name;
      i->second.extra = extra;
      i->second.transmitted = now;
    }
    // The caller's exchanged token, or Bulwark's own (as slot_key says).
    auto key = caller && st.svc.auth.type == service_auth::kind::token_exchange ? *caller : std::string();
    auto& s = st.tokens->at(key, now);
    if (!s.usable(now)) {
      // While the endpoint is failing, calls fail at once (starts and lists
      // ask it again).
      bool is_call = i != st.pending.end() && i->second.kind == connector_state::req_kind::call;
      if (is_call && s.failing(now))
        return token_failed(self, id, s);
      s.waiting.push_back({id, method, std::move(body), name, std::move(extra)});
      return fetch_token(self, key);
    }
    // Renewal in the background once it is due (Bulwark's own token also
    // has a timer for that; a caller's exchanged token is renewed on use).
    if (now >= s.renew_at && !s.fetching)
      fetch_token(self, key);
    slot = &s; // fetch_token adds no slot: the reference holds
  }
  auto headers = mcp_headers(st, "application/json, text/event-stream", method, name);
  for (auto& h : extra)
    headers.push_back(std::move(h));
  add_credentials(st, headers, slot, caller);
  auto handle = caf::actor_cast<connector_actor>(self);
  auto gen = st.generation;
  milliseconds timeout = st.svc.settings.timeout + milliseconds(1000);
  // A 404 within a 2025-era session means the service forgot the session: the
  // exchange's end decides (re-initialize and resend), not its error body.
  bool in_session = !st.stateless && !st.session_id.empty();
  bool oauth = st.tokens || st.svc.auth.passthrough;
  st.http->send(
    "POST", std::move(body), std::move(headers),
    [handle, gen, id](std::string data) { caf::anon_send(handle, atom::line_v, gen, std::move(data), id); },
    [handle, gen, id, in_session, oauth](http_response r) {
      // A refused token (401) is resent, whatever the body says.
      bool has_line = !r.body.empty() && r.content_type == "application/json" && !(in_session && r.status == 404)
                      && !(oauth && r.status == 401);
      if (has_line && id < 0) // nothing waits for its end
        caf::anon_send(handle, atom::line_v, gen, std::move(r.body), id);
      http_exchange_end end;
      if (has_line && id >= 0) {
        end.body = std::move(r.body);
        end.generation = gen;
      }
      end.status = r.status;
      end.error = r.error;
      end.sent = r.sent;
      end.timed_out = r.timed_out;
      end.malformed = r.malformed;
      if (auto* s = r.header("mcp-session-id"))
        end.session_id = *s;
      if (auto* ra = r.header("retry-after"))
        end.retry_after = *ra;
      if (id >= 0)
        caf::anon_send(handle, atom::http_end_v, static_cast<uint64_t>(id), std::move(end));
    },
    timeout);
}

int64_t request(connector_pointer self, connector_state::req_kind kind, const std::string& method, value params,
                connector_state::outstanding p = {}) {
  auto& st = self->state;
  auto id = st.next_id++;
  std::string name; // Mcp-Name
  http_header_list extra; // Mcp-Param-*
  if (st.stateless) {
    if (!params.is_object())
      params = value(json::object{});
    auto* meta = params.find("_meta");
    if (!meta || !meta->is_object())
      meta = &params.set("_meta", value(json::object{}));
    meta->set(std::string(mcp::meta_protocol_version), std::string(mcp::stateless_version));
    const auto& caps = p.call && p.call->client_capabilities.is_object() ? p.call->client_capabilities : empty_object();
    // The gateway answers the caller on its request and has no tasks of the
    // service to poll: the service is never told that the caller takes
    // tasks.
    if (mcp::declares_extension(caps, mcp::tasks_extension)) {
      auto without = caps;
      without.find("extensions")->erase(mcp::tasks_extension);
      meta->set(std::string(mcp::meta_client_capabilities), std::move(without));
    } else {
      meta->set(std::string(mcp::meta_client_capabilities), caps);
    }
    if (kind == connector_state::req_kind::call)
      meta->set(std::string(mcp::meta_log_level), "debug"); // we filter per client
    if (const auto* mirrored = mcp::mirrored_name(method, params))
      name = mirrored->as_string();
    if (method == "tools/call") {
      if (auto l = st.lists.find("tools/list"); l != st.lists.end())
        for (auto& tool : l->second.as_array())
          if (tool["name"].as_string() == name)
            extra = mcp::param_headers(tool["inputSchema"], params["arguments"]);
    }
  }
  // An HTTP service also gets the trace context as headers.
  if (const auto* tp = params["_meta"].find("traceparent"); tp && tp->is_string() && !st.child) {
    extra.emplace_back("traceparent", tp->as_string());
    if (const auto* ts = params["_meta"].find("tracestate"); ts && ts->is_string())
      extra.emplace_back("tracestate", ts->as_string());
  }
  auto body = mcp::request_body(value(id), method, params);
  p.kind = kind;
  p.method = method;
  // Before the write: a loopback send may run the service at once, ahead of
  // this thread, and that time is the service's.
  if (kind == connector_state::req_kind::call)
    p.sent = steady_clock::now();
  st.pending[id] = std::move(p);
  transmit(self, method, std::move(body), id, name, std::move(extra));
  return id;
}

void notify(connector_pointer self, const std::string& method, value params) {
  transmit(self, method, mcp::notification_body(method, params), -1);
}

void fail_all(connector_pointer self, const std::string& why) {
  auto& st = self->state;
  for (auto& [id, p] : st.pending)
    if (p.kind == connector_state::req_kind::call)
      reply(self, p, failure(why, true));
  st.pending.clear();
  st.by_attempt.clear();
  st.asking.reset();
}

void start(connector_pointer self);

/// The service cannot start (or stopped): says why to health (through
/// `atom::get`) and to the gateway's tools, which clients and the open
/// health endpoint see. So `why` names no command line, URL or file: the
/// log line beside each call has those.
void set_problem(connector_pointer self, std::string why) {
  auto& st = self->state;
  if (why == st.problem)
    return;
  st.problem = std::move(why);
  if (auto router = st.hooks->router())
    self->send(router, atom::status_v, st.svc.name, false, st.problem);
}

/// A service URL as logs and reasons show it: without user information or
/// query, which may hold credentials.
std::string shown_url(const std::string& url) {
  auto scheme = url.find("://");
  auto host = scheme == std::string::npos ? 0 : scheme + 3;
  auto end = url.find_first_of("/?#", host);
  auto at = url.find('@', host);
  std::string out = url;
  if (at != std::string::npos && (end == std::string::npos || at < end))
    out = url.substr(0, host) + url.substr(at + 1);
  auto query = out.find_first_of("?#");
  return query == std::string::npos ? out : out.substr(0, query);
}

/// The answer to a call while the restarts are spent: the service is
/// unavailable, why, and when it is started again.
downstream_outcome resting_outcome(const connector_state& st) {
  auto left = std::chrono::duration_cast<milliseconds>(*st.resting_until - steady_clock::now());
  auto o = failure("service " + st.svc.name + " is unavailable: " + (st.problem.empty() ? "it failed" : st.problem)
                     + "; it was restarted too often and is started again in "
                     + std::to_string(std::max<long long>(1, (left.count() + 999) / 1000)) + " s",
                   false);
  o.retry_after = std::max(milliseconds(1000), left);
  return o;
}

void schedule_restart(connector_pointer self) {
  auto& st = self->state;
  st.ph = connector_state::phase::down;
  if (!st.intensity.allow(self->clock().now())) {
    log::error("service restarted too often; waiting one window",
               log_fields(st, {{"window_s", static_cast<long long>(st.hooks->child_restart_window.count())},
                               {"problem", st.problem}}));
    st.resting_until = steady_clock::now() + st.hooks->child_restart_window;
    for (auto* queue : {&st.waiting, &st.held}) {
      for (auto& q : *queue)
        self->send(caf::actor_cast<breaker_actor>(q.reply_to), atom::done_v, q.attempt, resting_outcome(st));
      queue->clear();
    }
    self->delayed_send(self, st.hooks->child_restart_window, atom::start_v);
    return;
  }
  auto delay = milliseconds(std::min<long long>(100LL << std::min<uint32_t>(st.backoff_step, 7), 10000));
  ++st.backoff_step;
  self->delayed_send(self, delay, atom::start_v);
}

/// The array a list method's result holds its items in.
std::string_view list_field(const std::string& method) {
  if (method == "tools/list")
    return "tools";
  if (method == "resources/list")
    return "resources";
  if (method == "resources/templates/list")
    return "resourceTemplates";
  return "prompts";
}

void fetch_list(connector_pointer self, const std::string& method, value cursor) {
  auto params = value(json::object{});
  if (cursor.is_string())
    params.set("cursor", cursor);
  else
    self->state.building[method] = value(json::array{});
  request(self, connector_state::req_kind::list, method, std::move(params));
}

/// Lists everything the service declares it offers.
void fetch_all(connector_pointer self) {
  auto& caps = self->state.server_capabilities;
  fetch_list(self, "tools/list", value());
  if (caps.find("resources")) {
    fetch_list(self, "resources/list", value());
    fetch_list(self, "resources/templates/list", value());
  }
  if (caps.find("prompts"))
    fetch_list(self, "prompts/list", value());
}

/// Deadline checks run every tenth of the timeout (10 ms .. 250 ms).
milliseconds sweep_interval(const connector_state& st) {
  return std::clamp(st.svc.settings.timeout / 10, milliseconds(10), milliseconds(250));
}

void arm_sweep(connector_pointer self) {
  auto& st = self->state;
  if (st.sweep_armed)
    return;
  st.sweep_armed = true;
  self->delayed_send(self, sweep_interval(st), atom::expire_v);
}

/// Whether the service could ask the client behind `call` for input
/// (stdio services only: see `connector_state::asking`).
bool may_be_asked(const connector_state& st, const downstream_call& call) {
  const auto& caps = call.client_capabilities;
  return st.svc.is_stdio() && call.listener && caps.is_object() && (caps.find("sampling") || caps.find("elicitation"));
}

void dispatch_call(connector_pointer self, uint64_t attempt, const downstream_call_ptr& call,
                   const caf::actor& reply_to) {
  auto& st = self->state;
  connector_state::outstanding p;
  p.attempt = attempt;
  p.call = call;
  p.reply_to = reply_to;
  if (call->method == "completion/complete" && !st.server_capabilities.find("completions")) {
    // A service that does not complete has no values to offer: the answer
    // needs no trip to it.
    downstream_outcome o;
    o.what = downstream_outcome::kind::result;
    o.result = mcp::completion_result({});
    return reply(self, p, std::move(o));
  }
  bool asks = may_be_asked(st, *call);
  if (asks && st.asking) {
    st.held.push_back(
      {attempt, call, reply_to, std::min(call->deadline, steady_clock::now() + st.svc.settings.timeout)});
    arm_sweep(self);
    return;
  }
  auto params = call->params; // the call keeps its own for a retry
  if (!params.is_object())
    params = value(json::object{});
  // Our own progress token, so the service's progress finds this call.
  auto id = st.next_id; // the id `request` will use
  auto* meta = params.find("_meta");
  if (!meta || !meta->is_object())
    meta = &params.set("_meta", value(json::object{}));
  meta->set("progressToken", "bw-" + std::to_string(id));
  // The service continues the client's trace, under this exchange's span.
  if (call->trace.valid()) {
    p.span = trace::new_span_id();
    p.span_parent = call->attempt_span;
    meta->set("traceparent", call->trace.traceparent(p.span));
    if (!call->trace.state.empty())
      meta->set("tracestate", call->trace.state);
  }
  p.deadline = std::min(call->deadline, steady_clock::now() + st.svc.settings.timeout);
  id = request(self, connector_state::req_kind::call, call->method, std::move(params), std::move(p));
  if (asks && st.pending.count(id))
    st.asking = id;
  st.by_attempt[attempt] = id;
  arm_sweep(self);
}

/// A call with request id `id` is over: when it was the one a request could
/// belong to, the next held call takes its place.
void call_over(connector_pointer self, int64_t id) {
  auto& st = self->state;
  if (st.asking != id)
    return;
  st.asking.reset();
  while (!st.asking && !st.held.empty() && st.ph == connector_state::phase::ready) {
    auto q = std::move(st.held.front());
    st.held.pop_front();
    dispatch_call(self, q.attempt, q.call, q.reply_to);
  }
}

/// An HTTP service tells of changes (list_changed, resources/updated) on a
/// long-lived stream: the 2025 era's GET stream of our session, or a
/// 2026-07-28 `subscriptions/listen`. Its messages arrive as lines; when a
/// working stream ends, another is opened a second later.
void open_change_stream(connector_pointer self) {
  auto& st = self->state;
  if (!st.http || st.child)
    return;
  if (st.change_stream)
    st.http->cancel(*st.change_stream);
  st.change_stream.reset();
  if (!st.stateless && st.session_id.empty())
    return;
  std::string method = st.stateless ? "POST" : "GET", body;
  auto headers = st.stateless ? mcp_headers(st, "application/json, text/event-stream", "subscriptions/listen", {})
                              : mcp_headers(st, "text/event-stream", {}, {});
  add_credentials(st, headers, st.tokens ? &st.tokens->own() : nullptr, nullptr);
  if (st.stateless) {
    auto wanted =
      value::make_object({{"toolsListChanged", true}, {"promptsListChanged", true}, {"resourcesListChanged", true}});
    if (!st.subscribed.empty()) {
      value uris(json::array{});
      for (auto& uri : st.subscribed)
        uris.push_back(uri);
      wanted.set("resourceSubscriptions", std::move(uris));
    }
    auto params = value::make_object(
      {{"notifications", std::move(wanted)},
       {"_meta", value::make_object({{std::string(mcp::meta_protocol_version), std::string(mcp::stateless_version)},
                                     {std::string(mcp::meta_client_capabilities), json::object{}}})}});
    body = mcp::request_body(value("bulwark-listen"), "subscriptions/listen", params);
  }
  auto handle = caf::actor_cast<connector_actor>(self);
  auto gen = st.generation;
  st.change_stream = st.http->send(
    method, std::move(body), std::move(headers),
    [handle, gen](std::string data) { caf::anon_send(handle, atom::line_v, gen, std::move(data), int64_t{-1}); },
    [handle, gen, name = st.svc.name, oauth = st.tokens != nullptr](http_response r) {
      // A service without such a stream (405, a JSON answer) is not asked
      // again; one we cancelled was replaced already.
      if (r.content_type == "text/event-stream" && r.error != "cancelled") {
        caf::delayed_anon_send(handle, seconds(1), atom::listen_v, gen);
      } else if (r.status == 401 && oauth) {
        // The token was refused: renew it, then open the stream again.
        caf::anon_send(handle, atom::token_v);
        caf::delayed_anon_send(handle, seconds(1), atom::listen_v, gen);
      } else if ((r.status >= 400 && r.status != 405) || r.body.find("\"error\"") != std::string::npos) {
        // No updates come from it now: say so once per refusal (405: it
        // offers no such stream, as the spec allows).
        log::warn("service refused the change stream; no list or resource updates come from it",
                  value::make_object({{"service", name}, {"status", r.status}, {"body", r.body.substr(0, 300)}}));
      }
    },
    milliseconds(0));
}

/// Asks the service for updates of the watched resources it owns, and no
/// longer for the others: 2025 era by `resources/subscribe` and
/// `resources/unsubscribe` in our session, 2026-07-28 by opening the listen
/// stream again with the new `resourceSubscriptions`. Only for a service
/// that declares `resources.subscribe`.
void reconcile_watches(connector_pointer self) {
  auto& st = self->state;
  if (st.ph != connector_state::phase::ready)
    return;
  const auto& subscribe = st.server_capabilities["resources"]["subscribe"];
  if (!subscribe.is_bool() || !subscribe.as_bool())
    return;
  const auto& owned = st.owned;
  std::set<std::string> want;
  std::size_t bytes = 0;
  for (auto& uri : owned) {
    // What one service is asked to watch stays within one listen request a
    // service accepts; the rest get no updates, and the log says so.
    if (want.size() >= max_service_watches || bytes + uri.size() > max_service_watch_bytes) {
      log::error("more watched resources than one service is asked for; the rest get no updates",
                 log_fields(st, {{"watched", static_cast<unsigned long long>(owned.size())},
                                 {"asked", static_cast<unsigned long long>(want.size())}}));
      break;
    }
    bytes += uri.size();
    want.insert(uri);
  }
  if (want == st.subscribed)
    return;
  log::debug("resource subscriptions", log_fields(st, {{"count", static_cast<unsigned long long>(want.size())}}));
  if (st.stateless) {
    st.subscribed = std::move(want);
    open_change_stream(self);
    return;
  }
  auto ask = [&](const char* method, const std::string& uri) {
    request(self, connector_state::req_kind::control, method, value::make_object({{"uri", uri}}));
  };
  for (auto& uri : want)
    if (st.subscribed.count(uri) == 0)
      ask("resources/subscribe", uri);
  for (auto& uri : st.subscribed)
    if (want.count(uri) == 0)
      ask("resources/unsubscribe", uri);
  st.subscribed = std::move(want);
}

void became_ready(connector_pointer self) {
  auto& st = self->state;
  st.ph = connector_state::phase::ready;
  st.backoff_step = 0;
  st.problem.clear();
  if (auto router = st.hooks->router())
    self->send(router, atom::status_v, st.svc.name, true, std::string());
  log::info("service ready",
            log_fields(st, {{"protocolVersion", st.protocol_version}, {"transport", st.child ? "stdio" : "http"}}));
  // Everything the service logs reaches Bulwark, which filters per client
  // (a 2026-07-28 call carries its level itself).
  if (!st.stateless && st.server_capabilities.find("logging"))
    request(self, connector_state::req_kind::control, "logging/setLevel", value::make_object({{"level", "debug"}}));
  fetch_all(self);
  // A 2026-07-28 service's listen stream opens with the watched resources.
  reconcile_watches(self);
  if (!st.change_stream)
    open_change_stream(self);
  // Calls held back before a restart go first: they came first.
  auto waiting = std::move(st.held);
  st.held.clear();
  for (auto& q : st.waiting)
    waiting.push_back(std::move(q));
  st.waiting.clear();
  for (auto& q : waiting)
    dispatch_call(self, q.attempt, q.call, q.reply_to);
}

void fall_back_to_initialize(connector_pointer self, const std::string& why);

/// `arrived`: when the line holding `msg` came in, before it was parsed.
void on_response(connector_pointer self, int64_t id, const value& msg, steady_clock::time_point arrived) {
  auto& st = self->state;
  auto i = st.pending.find(id);
  if (i == st.pending.end())
    return;
  auto& p = i->second;
  p.answered = true;
  const auto* err = msg.find("error");
  switch (p.kind) {
    case connector_state::req_kind::initialize: {
      if (err) {
        log::error("service refused initialize", log_fields(st, {{"error", *err}}));
        set_problem(self, "the service refused initialize: "
                            + ((*err)["message"].is_string() ? (*err)["message"].as_string() : json::dump(*err)));
        break;
      }
      const auto& r = msg["result"];
      st.server_capabilities = r["capabilities"];
      st.protocol_version = r["protocolVersion"].is_string() ? r["protocolVersion"].as_string() : client_version;
      if (st.child) {
        notify(self, "notifications/initialized", value(json::object{}));
        became_ready(self);
      }
      // HTTP: ready once the exchange ended and the session id is known.
      break;
    }
    case connector_state::req_kind::discover:
      if (err) {
        fall_back_to_initialize(self, "server/discover failed: " + (*err)["message"].as_string());
        break;
      }
      st.server_capabilities = msg["result"]["capabilities"];
      st.protocol_version = std::string(mcp::stateless_version);
      became_ready(self);
      break;
    case connector_state::req_kind::control:
      if (err)
        log::warn("service refused a request", log_fields(st, {{"method", p.method}, {"error", *err}}));
      break;
    case connector_state::req_kind::list: {
      const auto& method = p.method;
      if (err) {
        log::warn("listing failed", log_fields(st, {{"method", method}, {"error", *err}}));
        break;
      }
      auto& into = st.building[method];
      for (auto& item : msg["result"][list_field(method)].as_array())
        into.push_back(item);
      const auto& next = msg["result"]["nextCursor"];
      if (next.is_string() && !next.as_string().empty() && into.as_array().size() < 100000) {
        fetch_list(self, method, next);
      } else {
        st.lists[method] = std::move(into);
        st.building.erase(method);
        if (auto router = st.hooks->router())
          self->send(router, atom::publish_v, st.svc.name, method, st.lists[method]);
      }
      break;
    }
    case connector_state::req_kind::call: {
      downstream_outcome o;
      o.reached = true;
      if (err) {
        o.what = downstream_outcome::kind::error;
        o.code = (*err)["code"].is_integer() ? static_cast<int>((*err)["code"].as_int())
                                             : static_cast<int>(error_code::internal_error);
        o.message = (*err)["message"].is_string() ? (*err)["message"].as_string() : "error";
        o.data = (*err)["data"];
      } else {
        o.what = downstream_outcome::kind::result;
        o.result = msg["result"];
        st.reinitialized = false; // the session works: a later 404 may re-initialize again
      }
      reply(self, p, std::move(o), arrived);
      st.by_attempt.erase(p.attempt);
      break;
    }
  }
  // HTTP exchanges of internal requests end in http_end; keep those entries.
  bool call = p.kind == connector_state::req_kind::call;
  if (call || st.child)
    st.pending.erase(id);
  if (call)
    call_over(self, id);
}

void on_notification(connector_pointer self, const value& msg, int64_t via) {
  auto& st = self->state;
  const auto& method = msg["method"].as_string();
  const auto& params = msg["params"];
  if (method == "notifications/progress") {
    const auto& token = params["progressToken"];
    if (!token.is_string() || token.as_string().rfind("bw-", 0) != 0)
      return;
    int64_t id = std::strtoll(token.as_string().c_str() + 3, nullptr, 10);
    auto i = st.pending.find(id);
    if (i != st.pending.end() && i->second.call && i->second.call->listener)
      self->send(i->second.call->listener, atom::notify_v, i->second.call, method, params);
  } else if (method == "notifications/message") {
    // On the response stream of a call it is that call's; on stdio it is
    // the call's only while that call is the only one in flight. Any other
    // belongs to no call: one client never gets what another's call logged.
    const connector_state::outstanding* to = nullptr;
    std::size_t calls = 0;
    for (auto& [id, p] : st.pending)
      if (p.call && (via >= 0 ? id == via : st.child != nullptr)) {
        to = &p;
        ++calls;
      }
    if (calls == 1 && to->call->listener)
      self->send(to->call->listener, atom::notify_v, to->call, method, params);
    else
      log::debug("service log message", log_fields(st, {{"params", params}}));
  }
  // Straight to the cache, before the answer of a call in flight goes on
  // (a service tells of a change before it answers the call that made it):
  // a read the client sends after that answer finds the stale copy gone.
  if (method.find("list_changed") != std::string::npos || method == "notifications/resources/updated") {
    auto prefix =
      stale_results_prefix(st.svc.name, method, params["uri"].is_string() ? params["uri"].as_string() : std::string());
    if (auto cache = st.env->names.get(cache_actor_name); cache && !prefix.empty())
      self->send(caf::actor_cast<cache_actor>(cache), atom::drop_v, std::move(prefix));
  }
  if (method == "notifications/tools/list_changed") {
    fetch_list(self, "tools/list", value());
  } else if (method == "notifications/resources/list_changed") {
    fetch_list(self, "resources/list", value());
    fetch_list(self, "resources/templates/list", value());
  } else if (method == "notifications/prompts/list_changed") {
    fetch_list(self, "prompts/list", value());
  } else if (method == "notifications/resources/updated") {
    if (auto router = st.hooks->router(); router && params["uri"].is_string())
      self->send(router, atom::notify_v, params["uri"].as_string());
  }
}

/// The call a service's request belongs to: the one whose HTTP response
/// carried it; on stdio, the one call in flight whose client could be asked
/// (`connector_state::asking`). None for a request on an HTTP service's
/// GET stream, which the spec keeps for requests unrelated to any call.
connector_state::outstanding* related_call(connector_state& st, int64_t via) {
  std::optional<int64_t> id;
  if (via >= 0)
    id = via;
  else if (st.child)
    id = st.asking;
  if (!id)
    return nullptr;
  auto i = st.pending.find(*id);
  return i != st.pending.end() && i->second.call ? &i->second : nullptr;
}

void on_server_request(connector_pointer self, const value& msg, int64_t via) {
  auto& st = self->state;
  const auto& method = msg["method"].as_string();
  std::string body;
  if (method == "ping") {
    body = mcp::result_body(msg["id"], value(json::object{}));
  } else if (method == "sampling/createMessage" || method == "elicitation/create" || method == "roots/list") {
    // A client is asked only for its own call, and only what it declared it
    // can answer. A stdio child is shared by every client, so its roots are
    // Bulwark's (none), never one client's.
    std::string_view need = method == "sampling/createMessage" ? "sampling"
                            : method == "elicitation/create"   ? "elicitation"
                                                               : "roots";
    auto* p = method == "roots/list" && via < 0 ? nullptr : related_call(st, via);
    bool can =
      p && p->call->listener && p->call->client_capabilities.is_object() && p->call->client_capabilities.find(need);
    if (can) {
      // The client answers through atom::answer.
      self->send(p->call->listener, atom::park_v, p->call, method, msg["params"], msg["id"],
                 caf::actor_cast<caf::actor>(self));
      return;
    }
    if (method == "roots/list")
      body = mcp::result_body(msg["id"], value::make_object({{"roots", value(json::array{})}}));
    else if (p)
      body = mcp::error_body(msg["id"], error_code::invalid_request,
                             "the client whose call this is did not declare the " + std::string(need)
                               + " capability; Bulwark cannot answer " + method + " for it");
    else
      body = mcp::error_body(msg["id"], error_code::invalid_request,
                             method + " belongs to no client call that Bulwark could ask, so no client is asked");
  } else {
    body = mcp::error_body(msg["id"], error_code::method_not_found,
                           "the Bulwark gateway does not relay " + method + " to clients");
  }
  transmit(self, "", std::move(body), -1);
}

void on_line(connector_pointer self, uint64_t gen, const std::string& text, int64_t via) {
  auto& st = self->state;
  if (gen != st.generation)
    return;
  auto arrived = steady_clock::now();
  value msg;
  json::parse_error err;
  if (!json::parse(text, msg, err) || !msg.is_object()) {
    if (++st.garbage_lines % 100 == 1)
      log::warn(
        "service sent a line that is not JSON-RPC; ignored",
        log_fields(st, {{"count", static_cast<unsigned long long>(st.garbage_lines)}, {"head", text.substr(0, 80)}}));
    return;
  }
  auto cls = mcp::classify(msg);
  switch (cls.kind) {
    case mcp::message_kind::response:
      if (msg["id"].is_integer())
        on_response(self, msg["id"].as_int(), msg, arrived);
      break;
    case mcp::message_kind::notification:
      on_notification(self, msg, via);
      break;
    case mcp::message_kind::request:
      on_server_request(self, msg, via);
      break;
    default:
      if (++st.garbage_lines % 100 == 1)
        log::warn("service sent an invalid JSON-RPC message; ignored", log_fields(st, {{"reason", cls.reason}}));
  }
}

value initialize_params();

/// A service that does not speak 2026-07-28: our own 2025-era session.
void fall_back_to_initialize(connector_pointer self, const std::string& why) {
  auto& st = self->state;
  if (st.svc.settings.protocol == "2026-07-28") {
    log::error("service does not speak 2026-07-28", log_fields(st, {{"why", why}}));
    set_problem(self, "configured for protocol 2026-07-28, which the service does not speak (" + why + ")");
    return;
  }
  st.stateless = false;
  request(self, connector_state::req_kind::initialize, "initialize", initialize_params());
}

value initialize_params() {
  // Bulwark relays these requests to the client whose call caused them.
  auto caps = value::make_object(
    {{"sampling", value(json::object{})}, {"elicitation", value(json::object{})}, {"roots", value(json::object{})}});
  return value::make_object({{"protocolVersion", client_version},
                             {"capabilities", std::move(caps)},
                             {"clientInfo", value::make_object({{"name", "bulwark-gateway"}, {"version", "0.1.0"}})}});
}

/// A call to a service that acts for the caller, refused because of the
/// caller's credentials: an error of the call (not counted against the
/// service's breaker, not retried).
downstream_outcome refused_caller(const connector_state& st, std::string why) {
  auto o = downstream_outcome::without_answer(downstream_outcome::kind::error, error_code::unauthorized,
                                              "service " + st.svc.name + " " + why, false);
  o.data = value::make_object({{"service", st.svc.name}, {"reachedService", false}});
  return o;
}

/// An exchange that needed a token got none: a call fails as unavailable
/// (its breaker counts it; it never reached the service, so it may be
/// retried), or as refused when the endpoint would not exchange the
/// caller's token; a start fails and is tried again later.
void token_failed(connector_pointer self, int64_t id, const token_keeper::slot& slot) {
  auto& st = self->state;
  auto i = id >= 0 ? st.pending.find(id) : st.pending.end();
  if (i == st.pending.end())
    return;
  auto why = slot.error;
  auto unavailable = [&] {
    auto o = failure("service " + st.svc.name + " is unavailable: Bulwark could not get a token for it", false);
    o.data = value::make_object({{"detail", "service " + st.svc.name + ": " + why}, {"reachedService", false}});
    o.retry_after = milliseconds(1000);
    return o;
  };
  auto& p = i->second;
  auto kind = p.kind;
  if (kind == connector_state::req_kind::call) {
    reply(self, p,
          slot.caller_refused ? refused_caller(st, "acts for the calling user, and the token endpoint would not "
                                                   "exchange the caller's token ("
                                                     + why + ")")
                              : unavailable());
    st.by_attempt.erase(p.attempt);
    st.pending.erase(i);
    call_over(self, id);
    return;
  }
  st.pending.erase(i);
  if (kind == connector_state::req_kind::initialize || kind == connector_state::req_kind::discover) {
    set_problem(self, "cannot get a token from its token endpoint (" + why + ")");
    st.ph = connector_state::phase::down;
    // The calls waiting for the start hear why now, not at their deadline.
    for (auto& q : st.waiting)
      self->send(caf::actor_cast<breaker_actor>(q.reply_to), atom::done_v, q.attempt, unavailable());
    st.waiting.clear();
    schedule_restart(self);
  }
}

/// Asks the token endpoint for the slot's token (`key`: "" for Bulwark's
/// own, else the caller's token to exchange), unless a request is in flight
/// already: every exchange that waits is sent when it answers.
void fetch_token(connector_pointer self, const std::string& key) {
  auto& st = self->state;
  auto started = st.tokens->begin(key, steady_clock::now());
  if (!started)
    return;
  auto handle = caf::actor_cast<connector_actor>(self);
  auto serial = started->serial;
  if (started->request && !st.token_endpoint) {
    http_client_options o;
    o.url = st.svc.auth.token_url;
    o.max_connections = 4;
    try {
      st.token_endpoint = std::make_unique<http_client>(*st.hooks->io, o);
    } catch (const std::exception& e) {
      started->request.reset();
      started->refused.error = "the token endpoint cannot be used";
      started->refused.detail = e.what();
    }
  }
  if (!started->request) {
    self->send(handle, atom::token_v, key, serial, std::move(started->refused));
    return;
  }
  auto& req = *started->request;
  st.token_endpoint->send(
    "POST", std::move(req.body), std::move(req.headers), {},
    [handle, key, serial](http_response r) {
      token_grant g;
      if (r.timed_out)
        g.error = "the token endpoint did not answer in time";
      else if (!r.error.empty())
        g.error = "the token endpoint could not be reached";
      else
        g = read_token_response(r.status, r.content_type, r.body);
      if (!r.error.empty())
        g.detail = r.error;
      caf::anon_send(handle, atom::token_v, key, serial, std::move(g));
    },
    std::clamp(st.svc.settings.timeout, milliseconds(1000), milliseconds(10000)));
}

/// The token endpoint answered request `serial` of slot `key`: the
/// exchanges that waited go with the new token, or fail.
void took_grant(connector_pointer self, const std::string& key, uint64_t serial, token_grant& g) {
  auto& st = self->state;
  if (!st.tokens)
    return;
  auto now = steady_clock::now();
  bool ok = !g.access_token.empty();
  std::deque<held_exchange> held;
  if (!st.tokens->take(key, serial, g, now, held))
    return;
  if (st.env->metrics)
    st.env->metrics
      ->counter("bulwark_service_token_requests_total",
                {{"service", st.svc.name},
                 {"grant", key.empty() ? "client_credentials" : "token_exchange"},
                 {"outcome", ok ? "granted" : "failed"}})
      .inc();
  auto& slot = st.tokens->at(key, now);
  if (ok && key.empty())
    log::info("service token obtained", log_fields(st, {{"lifetime_ms", static_cast<long long>(g.lifetime.count())}}));
  else if (ok)
    log::debug("service token obtained",
               log_fields(st, {{"grant", key.empty() ? "client_credentials" : "token_exchange"},
                               {"lifetime_ms", static_cast<long long>(g.lifetime.count())}}));
  else
    log::warn("service token request failed",
              log_fields(st, {{"grant", key.empty() ? "client_credentials" : "token_exchange"},
                              {"error", slot.error},
                              {"detail", g.detail}}));
  // Bulwark's own token is renewed by a timer (a caller's when it is used).
  if (key.empty() && slot.renew_at != token_keeper::clock::time_point::max())
    self->delayed_send(self, std::chrono::duration_cast<milliseconds>(slot.renew_at - now), atom::token_v);
  for (auto& h : held) {
    if (h.id >= 0 && !st.pending.count(h.id))
      continue; // answered meanwhile (its deadline passed)
    if (st.tokens->at(key, now).usable(now))
      transmit(self, h.method, std::move(h.body), h.id, h.name, std::move(h.extra));
    else
      token_failed(self, h.id, st.tokens->at(key, now));
  }
}

void start(connector_pointer self) {
  auto& st = self->state;
  if (st.ph != connector_state::phase::down)
    return;
  st.resting_until.reset();
  ++st.generation;
  if (st.change_stream && st.http)
    st.http->cancel(*st.change_stream);
  st.change_stream.reset();
  st.ph = connector_state::phase::starting;
  st.session_id.clear();
  st.protocol_version.clear();
  st.subscribed.clear(); // a new child or session knows of none
  st.asking.reset();
  if (st.svc.is_stdio()) {
    st.child.reset();
    auto handle = caf::actor_cast<connector_actor>(self);
    auto gen = st.generation;
    auto name = st.svc.name;
    child_spec_options o;
    o.command = st.svc.command;
    o.args = st.svc.args;
    o.env = st.svc.env;
    o.inherit = st.svc.inherit_env;
    o.cwd = st.svc.cwd;
    child_callbacks cb;
    cb.on_line = [handle, gen](std::string line) {
      caf::anon_send(handle, atom::line_v, gen, std::move(line), int64_t{-1});
    };
    cb.on_stderr = [name](std::string line) {
      log::info("service stderr", value::make_object({{"service", name}, {"line", std::move(line)}}));
    };
    cb.on_garbage = [name](std::string what) {
      log::warn("service output dropped", value::make_object({{"service", name}, {"why", std::move(what)}}));
    };
    cb.on_exit = [handle, gen](int status) { caf::anon_send(handle, atom::exited_v, gen, status); };
    try {
      st.child = std::make_unique<child_process>(o, std::move(cb));
    } catch (const std::exception& e) {
      log::error("cannot start service", log_fields(st, {{"error", e.what()}}));
      std::string what = e.what();
      set_problem(self, "cannot start its command ("
                          + what.substr(what.rfind(": ") == std::string::npos ? 0 : what.rfind(": ") + 2) + ")");
      schedule_restart(self);
      return;
    }
    log::info("service started", log_fields(st, {{"pid", static_cast<long long>(st.child->pid())}}));
  } else if (!st.http) {
    http_client_options o;
    o.url = st.svc.url;
    st.secret_headers = secrets::secret_headers(st.svc.headers);
    o.headers = st.secret_headers.fixed();
    o.tls = st.svc.settings.tls;
    try {
      st.http = std::make_unique<http_client>(*st.hooks->io, o);
    } catch (const std::exception& e) {
      // A CA file or key that is no PEM: checked again at each restart.
      log::error("cannot start service", log_fields(st, {{"error", e.what()}}));
      set_problem(self, "its TLS files could not be loaded");
      schedule_restart(self);
      return;
    }
  }
  // HTTP: the stateless era when the service speaks it (unless configured
  // otherwise), else our own 2025-era session.
  st.stateless = !st.svc.is_stdio() && st.svc.settings.protocol != "2025-11-25";
  if (st.stateless)
    request(self, connector_state::req_kind::discover, "server/discover", value(json::object{}));
  else
    request(self, connector_state::req_kind::initialize, "initialize", initialize_params());
}

connector_actor::behavior_type connector_behavior(connector_pointer self, env_ptr env, service_config svc,
                                                  gateway_hooks_ptr hooks) {
  auto& st = self->state;
  st.env = std::move(env);
  st.svc = std::move(svc);
  st.hooks = std::move(hooks);
  st.intensity = restart_intensity(st.hooks->child_max_restarts, st.hooks->child_restart_window);
  if (!st.svc.is_stdio() && st.svc.auth.own_token())
    st.tokens = std::make_unique<token_keeper>(st.svc.auth, st.svc.url);
  self->send(self, atom::start_v);
  return {
    [self](atom::listen, uint64_t gen) {
      auto& st = self->state;
      if (gen == st.generation && st.ph == connector_state::phase::ready)
        open_change_stream(self);
    },
    [self](atom::call, uint64_t attempt, downstream_call_ptr& call, caf::actor& reply_to, handoff_ptr& handed) {
      if (handed)
        handed->take(); // answered from here on, also by this state's destructor
      auto& st = self->state;
      if (st.ph == connector_state::phase::ready)
        return dispatch_call(self, attempt, call, reply_to);
      if (st.ph == connector_state::phase::down && st.resting_until) {
        self->send(caf::actor_cast<breaker_actor>(reply_to), atom::done_v, attempt, resting_outcome(st));
        return;
      }
      if (st.waiting.size() >= max_queued_calls) {
        auto o =
          failure("service " + st.svc.name + " is starting and its queue is full", false, error_code::overloaded);
        o.retry_after = milliseconds(1000);
        self->send(caf::actor_cast<breaker_actor>(reply_to), atom::done_v, attempt, std::move(o));
        return;
      }
      // Bounded by the call's deadline like a dispatched call.
      st.waiting.push_back(
        {attempt, call, reply_to, std::min(call->deadline, steady_clock::now() + st.svc.settings.timeout)});
      arm_sweep(self);
    },
    [self](atom::cancel, uint64_t attempt) {
      auto& st = self->state;
      auto a = st.by_attempt.find(attempt);
      if (a == st.by_attempt.end()) {
        // Not sent yet: a call waiting for its turn leaves the line.
        auto h = std::find_if(st.held.begin(), st.held.end(), [&](auto& q) { return q.attempt == attempt; });
        if (h != st.held.end()) {
          self->send(caf::actor_cast<breaker_actor>(h->reply_to), atom::done_v, attempt,
                     downstream_outcome::without_answer(downstream_outcome::kind::cancelled,
                                                        error_code::request_cancelled, "cancelled by the client",
                                                        false));
          st.held.erase(h);
        }
        return;
      }
      auto id = a->second;
      st.by_attempt.erase(a);
      auto i = st.pending.find(id);
      if (i == st.pending.end())
        return;
      notify(self, "notifications/cancelled",
             value::make_object({{"requestId", id}, {"reason", "cancelled by the client"}}));
      reply(self, i->second,
            downstream_outcome::without_answer(downstream_outcome::kind::cancelled, error_code::request_cancelled,
                                               "cancelled by the client", true));
      st.pending.erase(i);
      call_over(self, id);
    },
    [self](atom::start) { start(self); },
    [self](atom::watch, std::vector<std::string>& owned) {
      // A burst of subscriptions (a client subscribing to many resources,
      // many clients at once) reaches the service as one change: for a
      // 2026-07-28 service each change reopens its listen stream with every
      // watched URI.
      auto& st = self->state;
      st.owned = std::move(owned);
      if (st.watch_due)
        return;
      st.watch_due = true;
      self->delayed_send(self, watch_coalescing, atom::watch_v, true);
    },
    [self](atom::watch, bool) {
      self->state.watch_due = false;
      reconcile_watches(self);
    },
    [self](atom::line, uint64_t gen, std::string& text, int64_t via) { on_line(self, gen, text, via); },
    [self](atom::answer, std::string& body) { transmit(self, "", std::move(body), -1); },
    [self](atom::publish) {
      // A (restarted) router knows nothing yet: tell it what the service
      // offers and how it is.
      auto& st = self->state;
      auto router = st.hooks->router();
      if (!router)
        return;
      for (auto& [method, items] : st.lists)
        self->send(router, atom::publish_v, st.svc.name, method, items);
      if (st.ph == connector_state::phase::ready)
        self->send(router, atom::status_v, st.svc.name, true, std::string());
      else if (!st.problem.empty())
        self->send(router, atom::status_v, st.svc.name, false, st.problem);
    },
    [self](atom::exited, uint64_t gen, int status) {
      auto& st = self->state;
      if (gen != st.generation)
        return;
      std::string how = WIFEXITED(status)     ? "exit status " + std::to_string(WEXITSTATUS(status))
                        : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                              : "status " + std::to_string(status);
      log::warn("service exited", log_fields(st, {{"how", how}}));
      set_problem(self, st.ph == connector_state::phase::ready
                          ? "exited (" + how + ")"
                          : "exited (" + how + ") before it answered initialize; its stderr is in Bulwark's log");
      fail_all(self, "service " + st.svc.name + " exited (" + how + ") while the call was in flight");
      schedule_restart(self);
    },
    [self](atom::http_end, uint64_t id64, http_exchange_end& end) {
      auto& st = self->state;
      auto id = static_cast<int64_t>(id64);
      if (!end.body.empty())
        on_line(self, end.generation, end.body, id);
      auto i = st.pending.find(id);
      if (i == st.pending.end())
        return;
      auto& p = i->second;
      if (p.kind == connector_state::req_kind::initialize && p.answered && !st.stateless) {
        st.pending.erase(i);
        if (!end.session_id.empty())
          st.session_id = end.session_id;
        notify(self, "notifications/initialized", value(json::object{}));
        became_ready(self);
        return;
      }
      if (p.answered) {
        st.pending.erase(i);
        return;
      }
      if (end.status == 401 && (st.tokens || st.svc.auth.passthrough)) {
        // The service refused the token, and so ran nothing. Bulwark's own
        // or an exchanged one: fetch another (unless one came since this
        // request left) and send the request once more. The caller's own
        // token, or a second refusal of an exchanged one: the caller's.
        const auto* caller = caller_of(st, id);
        if (!p.resent && st.tokens && !(caller && st.svc.auth.passthrough)) {
          p.resent = true;
          st.tokens->refused(slot_key(st, id), p.transmitted);
          auto method = p.method, name = p.name;
          auto body = std::move(p.body);
          auto extra = std::move(p.extra);
          transmit(self, method, std::move(body), id, name, std::move(extra));
          return;
        }
        if (caller) {
          reply(self, p, refused_caller(st, "refused the calling user's credentials (HTTP 401)"));
          st.by_attempt.erase(p.attempt);
          st.pending.erase(i);
          call_over(self, id);
          return;
        }
      }
      // The exchange ended without an answer.
      auto why = end.error.empty() ? "HTTP status " + std::to_string(end.status) : end.error;
      if (auto kind = p.kind; kind != connector_state::req_kind::call) {
        auto p_method = p.method;
        st.pending.erase(i); // `p` goes with it
        if (kind == connector_state::req_kind::discover && end.status >= 400 && end.status < 500) {
          fall_back_to_initialize(self, "server/discover answered HTTP " + std::to_string(end.status));
          return;
        }
        if (kind == connector_state::req_kind::initialize || kind == connector_state::req_kind::discover) {
          std::string problem;
          if (end.status == 404)
            problem =
              "HTTP 404 at its URL: check the endpoint path in the URL (Streamable HTTP servers often serve /mcp)";
          else if (end.status != 0)
            problem = "HTTP " + std::to_string(end.status) + " in answer to " + p_method;
          else if (end.timed_out)
            problem = "cannot be reached (timed out)";
          else
            problem =
              "cannot be reached (" + why.substr(why.rfind(": ") == std::string::npos ? 0 : why.rfind(": ") + 2) + ")";
          log::warn(end.status != 0 ? "service refused to start a session" : "service unreachable",
                    log_fields(st, {{"url", shown_url(st.svc.url)}, {"error", why}, {"problem", problem}}));
          set_problem(self, std::move(problem));
          st.ph = connector_state::phase::down;
          schedule_restart(self);
        }
        return;
      }
      if (end.status == 404 && !st.session_id.empty() && !st.reinitialized) {
        // The backend forgot our session: initialize again, once, and resend
        // (a 404 means it did not run the call).
        st.reinitialized = true;
        auto call = p.call;
        auto attempt = p.attempt;
        auto reply_to = p.reply_to;
        st.pending.erase(i);
        st.by_attempt.erase(attempt);
        st.ph = connector_state::phase::down;
        st.waiting.push_front(
          {attempt, call, reply_to, std::min(call->deadline, steady_clock::now() + st.svc.settings.timeout)});
        start(self);
        return;
      }
      if (end.malformed) {
        // Bulwark could not build the request: its own fault, answered as an
        // error (not retried, not a failure of the service's).
        log::error("request to service not sent: it could not be built",
                   log_fields(st, {{"error", end.error}, {"method", p.method}}));
        auto o =
          downstream_outcome::without_answer(downstream_outcome::kind::error, error_code::internal_error,
                                             "Bulwark could not build the request to service " + st.svc.name, false);
        o.data = value::make_object({{"detail", end.error}, {"reachedService", false}});
        reply(self, p, std::move(o));
        st.by_attempt.erase(p.attempt);
        st.pending.erase(i);
        return;
      }
      // The transport's words name addresses and system errors: the log and
      // development mode get them (data.detail), a client in production a
      // summary.
      auto o = failure("service " + st.svc.name
                         + (end.timed_out       ? " did not answer in time"
                            : end.error.empty() ? " answered HTTP " + std::to_string(end.status) + " without a result"
                                                : " could not be reached, or broke off the exchange"),
                       end.sent || end.status != 0);
      o.data = value::make_object({{"detail", "service " + st.svc.name + ": " + why}});
      if (end.timed_out)
        o.what = downstream_outcome::kind::timeout;
      if (!end.retry_after.empty())
        o.retry_after = milliseconds(1000 * std::max(0L, std::strtol(end.retry_after.c_str(), nullptr, 10)));
      reply(self, p, std::move(o));
      st.by_attempt.erase(p.attempt);
      st.pending.erase(i);
    },
    [self](atom::expire) {
      auto& st = self->state;
      st.sweep_armed = false;
      auto now = steady_clock::now();
      // Calls still waiting for the service to start, or for their turn.
      for (auto* queue : {&st.waiting, &st.held})
        for (auto w = queue->begin(); w != queue->end();) {
          if (w->deadline > now) {
            ++w;
            continue;
          }
          auto o = downstream_outcome::without_answer(
            downstream_outcome::kind::timeout, error_code::deadline_exceeded,
            "service " + st.svc.name
              + (queue == &st.waiting ? " did not become ready in time"
                                      : " was busy with another call whose client it could ask for input"),
            false);
          self->send(caf::actor_cast<breaker_actor>(w->reply_to), atom::done_v, w->attempt, std::move(o));
          w = queue->erase(w);
        }
      // Calls the service has not answered in time.
      std::vector<int64_t> late;
      for (auto& [id, p] : st.pending)
        if (p.kind == connector_state::req_kind::call && p.deadline <= now)
          late.push_back(id);
      for (auto id : late) {
        auto i = st.pending.find(id);
        notify(self, "notifications/cancelled",
               value::make_object({{"requestId", id}, {"reason", "timed out in the Bulwark gateway"}}));
        reply(self, i->second,
              downstream_outcome::without_answer(downstream_outcome::kind::timeout, error_code::deadline_exceeded,
                                                 "service " + st.svc.name + " did not answer within "
                                                   + std::to_string(st.svc.settings.timeout.count()) + " ms",
                                                 true));
        st.by_attempt.erase(i->second.attempt);
        st.pending.erase(i);
        call_over(self, id);
      }
      bool open = !st.waiting.empty() || !st.held.empty()
                  || std::any_of(st.pending.begin(), st.pending.end(),
                                 [](auto& e) { return e.second.kind == connector_state::req_kind::call; });
      if (open)
        arm_sweep(self);
    },
    [self](atom::reload, const service_config_ptr& next) {
      // Settings only: the transport (command, URL, headers, TLS, protocol)
      // is what this connector was started with, and a change of it starts
      // a new connector.
      auto& st = self->state;
      auto svc = *next;
      svc.command = st.svc.command;
      svc.args = st.svc.args;
      svc.env = st.svc.env;
      svc.inherit_env = st.svc.inherit_env;
      svc.cwd = st.svc.cwd;
      svc.url = st.svc.url;
      svc.headers = st.svc.headers;
      svc.auth = st.svc.auth;
      svc.settings.tls = st.svc.settings.tls;
      svc.settings.protocol = st.svc.settings.protocol;
      st.svc = std::move(svc);
    },
    [self](atom::token, std::string& key, uint64_t serial, token_grant& g) { took_grant(self, key, serial, g); },
    [self](atom::token) {
      // A renewal timer of Bulwark's own token (a newer token moved the
      // renewal), or a refused change stream.
      auto& st = self->state;
      if (st.tokens && !st.tokens->own().fetching && steady_clock::now() >= st.tokens->own().renew_at)
        fetch_token(self, {});
    },
    [self](atom::get) -> value {
      auto& st = self->state;
      const char* ph = st.ph == connector_state::phase::ready      ? "ready"
                       : st.ph == connector_state::phase::starting ? "starting"
                                                                   : "down";
      return value::make_object(
        {{"service", st.svc.name},
         {"mailbox", static_cast<unsigned long long>(self->mailbox().size())},
         {"phase", ph},
         {"transport", st.svc.is_stdio() ? "stdio" : "http"},
         {"protocolVersion", st.protocol_version},
         {"pending", static_cast<unsigned long long>(st.pending.size())},
         {"waiting", static_cast<unsigned long long>(st.waiting.size() + st.held.size())},
         {"problem", st.problem},
         {"subscriptions", static_cast<unsigned long long>(st.subscribed.size())},
         {"tools", static_cast<unsigned long long>(
                     st.lists.count("tools/list") ? st.lists.at("tools/list").as_array().size() : 0)},
         {"garbageLines", static_cast<unsigned long long>(st.garbage_lines)},
         {"token", st.tokens ? st.tokens->status(steady_clock::now()) : value()}});
    },
  };
}

} // namespace

std::string stale_results_prefix(const std::string& service, const std::string& method, const std::string& uri) {
  std::string what = method == "notifications/tools/list_changed"     ? "tools/call"
                     : method == "notifications/prompts/list_changed" ? "prompts/get"
                                                                      : "resources/read";
  std::string prefix = service + "\n" + what + "\n";
  if (method == "notifications/resources/updated") {
    if (uri.empty() || uri.find('\n') != std::string::npos)
      return {}; // no read of it was kept
    prefix += uri + "\n";
  }
  return prefix;
}

connector_actor spawn_connector(caf::actor_system& sys, env_ptr env, service_config svc, gateway_hooks_ptr hooks) {
  return sys.spawn(connector_behavior, std::move(env), std::move(svc), std::move(hooks));
}

} // namespace bulwark
