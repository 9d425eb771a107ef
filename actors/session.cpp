// The session actor's life and dispatch: what a client message is, which
// method handles it (2025-era and 2026-07-28 rules), and the behavior. The
// methods are in session_methods.cpp, the calls of tools, prompts and
// resources in session_calls.cpp, the SSE streams in session_streams.cpp.
#include "actors/session.hpp"

#include <algorithm>
#include <exception>

#include <caf/all.hpp>

#include "actors/operations.hpp"
#include "actors/shared_state.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "messages/crypto.hpp"
#include "messages/schema.hpp"

namespace bulwark {

using json::value;

const value& session_state::empty_object() {
  static const value v(json::object{});
  return v;
}

value session_state::server_capabilities() {
  return value::make_object({
    {"tools", value::make_object({{"listChanged", true}})},
    {"resources", value::make_object({{"subscribe", true}, {"listChanged", true}})},
    {"prompts", value::make_object({{"listChanged", true}})},
    {"completions", value(json::object{})},
    {"logging", value(json::object{})},
  });
}

// -- lifecycle ------------------------------------------------------------------------

session_state::~session_state() {
  // Handlers may still hold their contexts; cut them off from this state.
  // Dropping the sinks answers every unanswered request (see reply_sink);
  // while the server shuts down, they are told so.
  bool stopping = env && env->draining.load();
  int64_t answered_tasks = 0;
  for (auto& [serial, r] : calls) {
    r.call->detach();
    // (A running task's request was answered with the task; the task store
    // fails the task once this actor is gone.)
    if (r.task_running()) {
      ++answered_tasks;
      continue;
    }
    if (stopping && !r.call->done()) {
      outbound out;
      out.what = outbound::kind::response;
      out.body =
        mcp::error_body(r.id, error_code::shutting_down, "the server shut down before the call finished; retry later");
      out.http_status = 503;
      r.sink->deliver(std::move(out));
    }
  }
  // The server ends its subscriptions: each listen request gets the
  // completion result that tells a graceful end from a lost connection (the
  // client subscribes again, on another instance of a fleet).
  if (stopping)
    for (auto& l : listeners) {
      outbound out;
      out.what = outbound::kind::response;
      out.body = mcp::result_body(
        l.subscription_id,
        value::make_object(
          {{"resultType", "complete"},
           {"_meta", value::make_object({{std::string(mcp::meta_subscription_id), l.subscription_id}})}}));
      l.sink->deliver(std::move(out));
    }
  if (env)
    env->inflight -= static_cast<int64_t>(calls.size()) - answered_tasks;
  // The calls' streams end with this actor; a restarted one starts afresh.
  if (rec)
    rec->response_streams = 0;
  for (auto& [id, t] : timers)
    t.first->detach();
  for (auto& [token, l] : lookups)
    l.call->detach();
  if (env)
    flush_spans();
}

// -- dispatch -------------------------------------------------------------------------------

void session_state::handle(const inbound_ptr& in) {
  rec->last_used = std::chrono::steady_clock::now();
  // Several instances: keep the directory entry alive while the session is
  // used here (a few writes per TTL, not one per request).
  const auto& shared_ttl = env->opts.ops.redis.session_ttl;
  if (env->redis && !rec->stateless && rec->initialized
      && rec->last_used - shared_at > (shared_ttl.count() > 0 ? shared_ttl : env->opts.session_idle_timeout) / 8) {
    shared_at = rec->last_used;
    publish_session(env, *rec);
  }
  switch (in->kind) {
    case mcp::message_kind::request:
      handle_request(in);
      break;
    case mcp::message_kind::notification:
      handle_notification(in->message);
      break;
    case mcp::message_kind::response:
      handle_response(in->message);
      break;
    default:
      break;
  }
}

void session_state::handle_request(const inbound_ptr& in) {
  const auto& method = in->message["method"].as_string();
  const auto& params_in = in->message["params"];
  const auto& params = params_in.is_object() ? params_in : empty_object();
  // The request's trace: the one its `_meta` names, else its HTTP
  // headers', else a new one.
  std::optional<trace::context> parent;
  const auto& meta = params["_meta"];
  if (const auto* tp = meta.find("traceparent"); tp && tp->is_string()) {
    parent = trace::parse_traceparent(tp->as_string());
    if (const auto* ts = meta.find("tracestate"); parent && ts && ts->is_string())
      parent->state = trace::checked_tracestate(ts->as_string());
  } else if (!in->traceparent.empty()) {
    parent = trace::parse_traceparent(in->traceparent);
    if (parent)
      parent->state = trace::checked_tracestate(in->tracestate);
  }
  if (!live)
    live.emplace(*env);
  const auto& telemetry = (*live)->ops.telemetry;
  in->trace = trace::begin(parent, telemetry.sample_ratio, !telemetry.endpoint.empty());
  if (in->stateless)
    dispatch_stateless(in, method, params);
  else
    dispatch_stateful(in, method, params);
}

void session_state::dispatch_stateful(const inbound_ptr& in, const std::string& method, const json::value& params) {
  if (method == "initialize")
    return do_initialize(in, params);
  if (!rec->initialized && method != "ping")
    return reply_error(in, error_code::invalid_request, "the session is not initialized: send initialize first");
  if (method == "ping")
    return reply(in, value(json::object{}), false);
  if (method == "tools/list" || method == "resources/list" || method == "resources/templates/list"
      || method == "prompts/list")
    return do_list(in, method, params, false, stateful_client(*in));
  if (method == "tools/call" || method == "prompts/get" || method == "resources/read")
    return do_call(in, method, params, stateful_client(*in), std::nullopt);
  if (method == "completion/complete")
    return do_complete(in, params, stateful_client(*in), std::nullopt);
  if (method == "logging/setLevel") {
    auto* level = params.find("level");
    if (!level || !level->is_string())
      return reply_error(in, error_code::invalid_params, "params.level must be a string");
    auto parsed = parse_log_level(level->as_string());
    if (!parsed)
      return reply_error(in, error_code::invalid_params,
                         "params.level must be one of debug, info, notice, warning, error, "
                         "critical, alert, emergency");
    rec->min_level = *parsed;
    return reply_once_shared(in);
  }
  if (method == "resources/subscribe" || method == "resources/unsubscribe") {
    auto* uri = params.find("uri");
    if (!uri || !uri->is_string() || uri->as_string().empty())
      return reply_error(in, error_code::invalid_params, "params.uri must be a non-empty string");
    if (method == "resources/subscribe") {
      bool added = false;
      auto refused = rec->subscriptions.insert(env->watches, uri->as_string(), rec->identity, added);
      if (refused != watch_refusal::none)
        return reply_error(in, error_code::invalid_params, describe(refused));
      if (added) {
        share_subscription(env, rec->id, uri->as_string(), true);
        return reply_once_shared(in);
      }
    } else if (rec->subscriptions.erase(uri->as_string())) {
      share_subscription(env, rec->id, uri->as_string(), false);
      return reply_once_shared(in);
    }
    return reply(in, value(json::object{}), false);
  }
  reply_error(in, error_code::method_not_found, "method not found: " + method);
}

void session_state::dispatch_stateless(const inbound_ptr& in, const std::string& method, const json::value& params) {
  // Every 2026-07-28 request declares its version and capabilities.
  auto* meta = params.find("_meta");
  if (!meta || !meta->is_object())
    return reply_error(in, error_code::invalid_params,
                       "params._meta is required: it carries the protocol version and client "
                       "capabilities",
                       {}, 400);
  auto* version = meta->find(mcp::meta_protocol_version);
  if (!version || !version->is_string())
    return reply_error(in, error_code::invalid_params,
                       std::string("params._meta[\"") + std::string(mcp::meta_protocol_version)
                         + "\"] is required and must be a string",
                       {}, 400);
  if (!mcp::is_stateless_version(version->as_string())) {
    value supported(json::array{});
    for (auto& v : mcp::supported_versions())
      supported.push_back(v);
    return reply_error(in, error_code::unsupported_protocol_version, "Unsupported protocol version",
                       value::make_object({{"supported", std::move(supported)}, {"requested", version->as_string()}}),
                       400);
  }
  auto* caps = meta->find(mcp::meta_client_capabilities);
  if (!caps || !caps->is_object())
    return reply_error(in, error_code::invalid_params,
                       std::string("params._meta[\"") + std::string(mcp::meta_client_capabilities)
                         + "\"] is required and must be an object",
                       {}, 400);
  std::optional<log_level> level;
  if (auto* lvl = meta->find(mcp::meta_log_level)) {
    if (!lvl->is_string() || !(level = parse_log_level(lvl->as_string())))
      return reply_error(in, error_code::invalid_params,
                         std::string("params._meta[\"") + std::string(mcp::meta_log_level) + "\"] must be a log level",
                         {}, 400);
  }
  if (method == "server/discover") {
    // Every version served, so that -32022's `supported` agrees with it.
    value supported(json::array{});
    for (auto& v : mcp::supported_versions())
      supported.push_back(v);
    // The 2026-07-28 extensions served: tasks.
    auto caps = server_capabilities();
    caps.set("extensions", value::make_object({{std::string(mcp::tasks_extension), value(json::object{})}}));
    auto result = value::make_object({
      {"supportedVersions", std::move(supported)},
      {"capabilities", std::move(caps)},
      {"_meta", value::make_object(
                  {{std::string(mcp::meta_server_info),
                    value::make_object({{"name", env->opts.server_name}, {"version", env->opts.server_version}})}})},
    });
    if (!env->opts.instructions.empty())
      result.set("instructions", env->opts.instructions);
    result.set("ttlMs", env->opts.list_ttl_ms);
    result.set("cacheScope", "public");
    return reply(in, std::move(result), true);
  }
  client_view client;
  client.protocol_version = version->as_string();
  client.stateless = true;
  client.capabilities = *caps;
  client.identity = in->identity;
  client.credential = in->credential;
  client.scopes = in->scopes;
  if (auto* info = meta->find(mcp::meta_client_info))
    client.info = *info;
  if (method == "tools/list" || method == "resources/list" || method == "resources/templates/list"
      || method == "prompts/list")
    return do_list(in, method, params, true, client);
  if (method == "tools/call" || method == "prompts/get" || method == "resources/read")
    return do_call(in, method, params, client, level);
  if (method == "completion/complete")
    return do_complete(in, params, client, level);
  if (method == "subscriptions/listen")
    return do_listen(in, params);
  if (method == "tasks/get" || method == "tasks/update" || method == "tasks/cancel")
    return do_task_method(in, method, params, client);
  reply_error(in, error_code::method_not_found, "method not found in protocol version 2026-07-28: " + method, {}, 404);
}

void session_state::handle_notification(const json::value& msg) {
  const auto& method = msg["method"].as_string();
  if (method == "notifications/initialized") {
    rec->initialized = true;
  } else if (method == "notifications/cancelled") {
    const auto& id = msg["params"]["requestId"];
    auto i = by_request_id.find(mcp::id_key(id));
    if (i == by_request_id.end())
      return;
    auto serial = i->second;
    auto c = calls.find(serial);
    if (c == calls.end())
      return;
    c->second.call->mark_cancelled();
    // The client forgot the request: no response, the stream just ends.
    outbound out;
    out.silent = true;
    end_call(serial, std::move(out));
  }
  // Other notifications (roots/list_changed, ...) need no action here.
}

void session_state::handle_response(const json::value& msg) {
  auto i = outgoing.find(mcp::id_key(msg["id"]));
  if (i == outgoing.end())
    return;
  auto [serial, key] = i->second;
  outgoing.erase(i);
  auto c = calls.find(serial);
  if (c == calls.end())
    return;
  auto& r = c->second;
  if (auto* err = msg.find("error")) {
    const auto& text = (*err)["message"].as_string();
    outbound out;
    out.body = mcp::error_body(r.id, error_code::server_error,
                               "the client answered our " + key + " request with an error: " + text, (*err)["data"]);
    end_call(serial, std::move(out));
    return;
  }
  r.gathered.set(key, msg["result"]);
  if (r.awaiting > 0 && --r.awaiting == 0) {
    r.call->set_input(std::move(r.gathered), std::move(r.state));
    r.gathered = value();
    run(r);
  }
}

client_view session_state::stateful_client(const inbound& in) const {
  client_view v;
  v.credential = in.credential;
  v.scopes = in.scopes;
  v.protocol_version = rec->protocol_version;
  v.stateless = false;
  v.capabilities = rec->client_capabilities;
  v.info = rec->client_info;
  v.identity = rec->identity;
  return v;
}

// -- behavior ---------------------------------------------------------------------------------------

session_actor::behavior_type session(session_pointer self, env_ptr env, session_record_ptr rec) {
  auto& st = self->state;
  st.self = self;
  st.env = std::move(env);
  st.rec = std::move(rec);
  if (st.env->redis && !st.rec->stateless && st.rec->next_stream == 1) {
    // Several instances number this session's streams, and any of them may
    // replay any stream: each starts its numbers at a random base.
    st.rec->next_stream = (std::strtoull(crypto::random_hex(4).c_str(), nullptr, 16) << 20) + 1;
  }
  if (!st.rec->stateless && st.env->opts.session_idle_timeout.count() > 0) {
    // Idle expiry is checked by the session itself; the supervisor sees a
    // normal exit and forgets the session.
    self->delayed_send(caf::actor_cast<session_actor>(self), st.env->opts.session_idle_timeout, atom::sweep_v);
  }
  return {
    [self](const inbound_ptr& in) {
      auto& st = self->state;
      st.handle(in);
      // The actor tree shows mailbox sizes; only the actor may look, and a
      // look every 100 ms is enough.
      auto now = std::chrono::steady_clock::now();
      if (now - st.mailbox_noted >= std::chrono::milliseconds(100)) {
        st.mailbox_noted = now;
        st.env->note_mailbox(st.rec->stateless ? names::stateless_session : names::session_prefix + st.rec->id,
                             self->mailbox().size());
      }
    },
    [self](atom::listen, sink_ptr& sink, const std::string& last_event_id) {
      self->state.open_stream(std::move(sink), last_event_id);
    },
    [self](atom::listen, sink_ptr& sink, const std::string& last_event_id, const json::value& kept) {
      self->state.resume_stream(std::move(sink), last_event_id, kept);
    },
    [self](atom::watch, const std::string& uri, bool on) {
      // Another instance took the subscription (and its watch limits); this
      // copy of the session follows.
      auto& st = self->state;
      if (on) {
        bool added = false;
        st.rec->subscriptions.insert(st.env->watches, uri, st.rec->identity, added);
      } else {
        st.rec->subscriptions.erase(uri);
      }
    },
    [self](atom::closed, uint64_t serial) { self->state.stream_closed(serial); },
    [self](atom::timer, uint64_t id) { self->state.fire_timer(id); },
    [self](atom::resume, call_ptr& call, call_handler& next) { self->state.continue_call(call, next); },
    [self](atom::admit, uint64_t serial, const admission& a) { self->state.admitted(serial, a); },
    [self](atom::found, uint64_t token, std::optional<cache_hit>& hit) { self->state.found(token, std::move(hit)); },
    [self](atom::notify, const std::string& method, const json::value& params) {
      self->state.broadcast(method, params);
    },
    [self](atom::end) { self->quit(); },
    [self](atom::answer, uint64_t serial, const json::value& responses) {
      self->state.task_answered(serial, responses);
    },
    [self](atom::cancel, uint64_t serial) { self->state.task_cancelled(serial); },
    [self](atom::flush) {
      self->state.flush_armed = false;
      self->state.flush_spans();
    },
    [self](atom::sweep) {
      // Idle expiry: end the session when nothing used it for the configured
      // time and nothing is in flight; check again otherwise.
      auto& st = self->state;
      auto timeout = st.env->opts.session_idle_timeout;
      auto idle = std::chrono::steady_clock::now() - st.rec->last_used;
      if (idle >= timeout && st.calls.empty()) {
        log::info("session expired", json::value::make_object({{"session", st.rec->id}}));
        self->quit();
        return;
      }
      auto wait = idle >= timeout ? timeout : timeout - idle;
      self->delayed_send(caf::actor_cast<session_actor>(self),
                         std::chrono::duration_cast<std::chrono::milliseconds>(wait), atom::sweep_v);
    },
  };
}

} // namespace bulwark
