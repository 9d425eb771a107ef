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

namespace {

using json::value;

/// What a 2025-era session keeps of its client's `initialize`, at most.
constexpr std::size_t max_stored_capabilities = 16 * 1024;
constexpr std::size_t max_stored_client_info = 4 * 1024;

/// The tool or prompt a call names (empty for resource reads, whose URIs
/// would make unbounded metric labels, and for completions, which a direct
/// answer does not label either).
std::string_view call_name(const session_state::running& r) {
  if (r.context.rfind("resources/read", 0) == 0 || r.context.rfind("completion/complete", 0) == 0)
    return {};
  auto nl = r.context.find('\n');
  return nl == std::string::npos ? std::string_view() : std::string_view(r.context).substr(nl + 1);
}

const value& empty_object() {
  static const value v(json::object{});
  return v;
}

/// Client capability needed to answer a server-to-client request.
std::string_view capability_for(const std::string& method) {
  if (method == "sampling/createMessage")
    return "sampling";
  if (method == "elicitation/create")
    return "elicitation";
  if (method == "roots/list")
    return "roots";
  return {};
}

value server_capabilities() {
  return value::make_object({
    {"tools", value::make_object({{"listChanged", true}})},
    {"resources", value::make_object({{"subscribe", true}, {"listChanged", true}})},
    {"prompts", value::make_object({{"listChanged", true}})},
    {"completions", value(json::object{})},
    {"logging", value(json::object{})},
  });
}

std::string encode_cursor(std::size_t offset) {
  return mcp::base64_encode("o:" + std::to_string(offset));
}

bool decode_cursor(const value& cursor, std::size_t& offset) {
  if (cursor.is_null()) {
    offset = 0;
    return true;
  }
  std::string raw;
  if (!cursor.is_string() || !mcp::base64_decode(cursor.as_string(), raw) || raw.size() < 3
      || raw.compare(0, 2, "o:") != 0)
    return false;
  offset = 0;
  for (std::size_t i = 2; i < raw.size(); ++i) {
    if (raw[i] < '0' || raw[i] > '9' || offset > (1u << 30))
      return false;
    offset = offset * 10 + static_cast<std::size_t>(raw[i] - '0');
  }
  return true;
}

} // namespace

// -- lifecycle ------------------------------------------------------------------------

session_state::~session_state() {
  // Handlers may still hold their contexts; cut them off from this state.
  // Dropping the sinks answers every unanswered request (see reply_sink);
  // while the server shuts down, they are told so.
  bool stopping = env && env->draining.load();
  for (auto& [serial, r] : calls) {
    r.call->detach();
    if (stopping && !r.call->done()) {
      outbound out;
      out.what = outbound::kind::response;
      out.body =
        mcp::error_body(r.id, error_code::shutting_down, "the server shut down before the call finished; retry later");
      out.http_status = 503;
      r.sink->deliver(std::move(out));
    }
  }
  if (env)
    env->inflight -= static_cast<int64_t>(calls.size());
  // The calls' streams end with this actor; a restarted one starts afresh.
  if (rec)
    rec->response_streams = 0;
  for (auto& [id, t] : timers)
    t.first->detach();
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
    return do_list(in, method, params, false, stateful_client());
  if (method == "tools/call" || method == "prompts/get" || method == "resources/read")
    return do_call(in, method, params, stateful_client(), std::nullopt);
  if (method == "completion/complete")
    return do_complete(in, params, stateful_client(), std::nullopt);
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
      if (added)
        return reply_once_shared(in);
    } else if (rec->subscriptions.erase(uri->as_string())) {
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
    auto result = value::make_object({
      {"supportedVersions", std::move(supported)},
      {"capabilities", server_capabilities()},
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

// -- methods -----------------------------------------------------------------------------------

void session_state::do_initialize(const inbound_ptr& in, const json::value& params) {
  if (!rec->protocol_version.empty())
    return reply_error(in, error_code::invalid_request, "the session is already initialized");
  // A refused initialize made no session: this actor ends, and the caller's
  // session slot is free again (the client got no id to DELETE).
  auto refuse = [&](std::string message, value data = {}) {
    reply_error(in, error_code::invalid_params, std::move(message), std::move(data));
    self->quit();
  };
  auto* version = params.find("protocolVersion");
  if (!version || !version->is_string())
    return refuse("params.protocolVersion must be a string");
  auto* caps = params.find("capabilities");
  if (caps && !caps->is_object())
    return refuse("params.capabilities must be an object");
  // Both are kept for the session's life: bounded, so that a session pins
  // little memory.
  auto* info = params.find("clientInfo");
  for (auto [field, v, max] : {std::tuple{"capabilities", caps, max_stored_capabilities},
                               std::tuple{"clientInfo", info, max_stored_client_info}})
    if (v && json::dump(*v).size() > max)
      return refuse(std::string("params.") + field + " is larger than " + std::to_string(max) + " bytes",
                    value::make_object({{"limit", field}, {"maxBytes", static_cast<unsigned long long>(max)}}));
  rec->protocol_version =
    mcp::is_stateful_version(version->as_string()) ? version->as_string() : std::string(mcp::latest_stateful_version);
  rec->client_capabilities = caps ? *caps : value(json::object{});
  if (rec->identity.empty()) // the session supervisor set it when it made the record
    rec->identity = in->identity;
  if (info)
    rec->client_info = *info;
  // Requests may follow the initialize response before the initialized
  // notification arrives (it is a separate POST); accept them.
  rec->initialized = true;
  auto result = value::make_object({
    {"protocolVersion", rec->protocol_version},
    {"capabilities", server_capabilities()},
    {"serverInfo", value::make_object({{"name", env->opts.server_name}, {"version", env->opts.server_version}})},
  });
  if (!env->opts.instructions.empty())
    result.set("instructions", env->opts.instructions);
  outbound out;
  out.body = mcp::result_body(in->message["id"], result);
  out.session_id = rec->id;
  // Every instance can tell that the session exists and whose it is once the
  // client holds its id: the answer waits for the directory entry (so the
  // session outlives this instance even if it dies right after answering).
  shared_at = std::chrono::steady_clock::now();
  publish_session(env, *rec, [sink = in->sink, out = std::move(out)]() mutable { sink->deliver(std::move(out)); });
  log::info("session initialized", value::make_object({{"session", rec->id},
                                                       {"protocolVersion", rec->protocol_version},
                                                       {"client", rec->client_info["name"]}}));
}

/// Tools and prompts may be hidden from some clients (`visible`).
template <class Spec, class = void>
struct has_visibility : std::false_type {};
template <class Spec>
struct has_visibility<Spec, std::void_t<decltype(std::declval<Spec>().visible)>> : std::true_type {};

void session_state::do_list(const inbound_ptr& in, const std::string& method, const json::value& params, bool stateless,
                            const client_view& client) {
  std::size_t offset = 0;
  if (!decode_cursor(params["cursor"], offset))
    return reply_error(in, error_code::invalid_params, "params.cursor is not a cursor this server issued", {},
                       stateless ? 400 : 0);
  auto cat = env->current();
  value items(json::array{});
  std::size_t total = 0;
  std::size_t page = std::max<std::size_t>(1, env->opts.page_size);
  bool per_client = false; // some items are hidden from some clients
  auto take = [&](const auto& list) {
    // Pages run over what this client may see, so cursors stay stable for it.
    std::vector<std::size_t> shown;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if constexpr (has_visibility<std::decay_t<decltype(list[i])>>::value) {
        if (list[i].visible) {
          per_client = true;
          if (!list[i].visible(client))
            continue;
        }
      }
      shown.push_back(i);
    }
    total = shown.size();
    for (std::size_t k = offset; k < shown.size() && k < offset + page; ++k)
      items.push_back(catalog::describe(list[shown[k]]));
  };
  const char* key;
  if (method == "tools/list") {
    take(cat->tools);
    key = "tools";
  } else if (method == "resources/list") {
    take(cat->resources);
    key = "resources";
  } else if (method == "resources/templates/list") {
    take(cat->templates);
    key = "resourceTemplates";
  } else {
    take(cat->prompts);
    key = "prompts";
  }
  value result(json::object{});
  result.set(key, std::move(items));
  if (offset + page < total)
    result.set("nextCursor", encode_cursor(offset + page));
  if (stateless) {
    result.set("ttlMs", env->opts.list_ttl_ms);
    result.set("cacheScope", per_client ? "private" : "public");
  }
  reply(in, std::move(result), stateless);
}

void session_state::do_complete(const inbound_ptr& in, const json::value& params, const client_view& client,
                                std::optional<log_level> level) {
  bool stateless = client.stateless;
  const auto& ref = params["ref"];
  const auto& arg = params["argument"];
  int bad = stateless ? 400 : 0;
  if (!ref.is_object() || !ref["type"].is_string())
    return reply_error(in, error_code::invalid_params, "params.ref must be an object with a type", {}, bad);
  if (!arg.is_object() || !arg["name"].is_string())
    return reply_error(in, error_code::invalid_params, "params.argument must be an object with a name", {}, bad);
  if (!arg["value"].is_string() && !arg["value"].is_null())
    return reply_error(in, error_code::invalid_params, "params.argument.value must be a string", {}, bad);
  auto cat = env->current();
  const std::map<std::string, completer>* completions = nullptr;
  const call_handler* complete = nullptr;
  const std::string* service = nullptr;
  std::string context = "completion/complete\n";
  const auto& type = ref["type"].as_string();
  if (type == "ref/prompt") {
    auto* p = cat->find_prompt(ref["name"].as_string());
    if (!p)
      return reply_error(in, error_code::invalid_params, "unknown prompt: " + ref["name"].as_string(), {}, bad);
    completions = &p->completions;
    complete = &p->complete;
    service = &p->service;
    context += "prompt\n" + p->name;
  } else if (type == "ref/resource") {
    const auto& uri = ref["uri"].as_string();
    // The first template of that URI, as reads take the first that matches.
    for (auto& t : cat->templates)
      if (t.uri_template == uri) {
        completions = &t.completions;
        complete = &t.complete;
        service = &t.service;
        break;
      }
    if (!completions)
      return reply_error(in, error_code::invalid_params, "unknown resource template: " + uri, {}, bad);
    context += "resource\n" + uri;
  } else {
    return reply_error(in, error_code::invalid_params, "params.ref.type must be ref/prompt or ref/resource", {}, bad);
  }
  // A definition that answers for itself (a service behind the gateway)
  // runs as a call: it may wait, be cancelled and fail like one.
  if (*complete)
    return start_call(in, "completion/complete", params, client, level, *complete, std::nullopt, std::move(context),
                      *service);
  std::vector<std::string> values;
  if (auto i = completions->find(arg["name"].as_string()); i != completions->end() && i->second)
    values = i->second(arg["value"].as_string());
  reply(in, mcp::completion_result(std::move(values)), stateless);
}

void session_state::do_listen(const inbound_ptr& in, const json::value& params) {
  const auto& filter = params["notifications"];
  if (!filter.is_object())
    return reply_error(in, error_code::invalid_params,
                       "params.notifications must be an object naming what to listen to", {}, 400);
  listener l;
  l.sink = in->sink;
  l.subscription_id = in->message["id"];
  value accepted(json::object{});
  if (filter["toolsListChanged"].as_bool()) {
    l.tools = true;
    accepted.set("toolsListChanged", true);
  }
  if (filter["promptsListChanged"].as_bool()) {
    l.prompts = true;
    accepted.set("promptsListChanged", true);
  }
  if (filter["resourcesListChanged"].as_bool()) {
    l.resources = true;
    accepted.set("resourcesListChanged", true);
  }
  if (auto* uris = filter.find("resourceSubscriptions"); uris && uris->is_array()) {
    if (uris->as_array().size() > max_watched_resources)
      return reply_error(in, error_code::invalid_params,
                         "params.notifications.resourceSubscriptions names more than "
                           + std::to_string(max_watched_resources) + " resources",
                         {}, 400);
    value list(json::array{});
    for (auto& u : uris->as_array()) {
      if (u.is_string()) {
        bool added = false;
        auto refused = l.uris.insert(env->watches, u.as_string(), in->identity, added);
        if (refused != watch_refusal::none)
          return reply_error(in, error_code::invalid_params,
                             "params.notifications.resourceSubscriptions: " + describe(refused), {}, 400);
        if (added)
          list.push_back(u);
      }
    }
    accepted.set("resourceSubscriptions", std::move(list));
  }
  auto params_out = value::make_object({
    {"_meta", value::make_object({{std::string(mcp::meta_subscription_id), l.subscription_id}})},
    {"notifications", std::move(accepted)},
  });
  outbound out;
  out.what = outbound::kind::notification;
  out.body = mcp::notification_body("notifications/subscriptions/acknowledged", params_out);
  in->sink->deliver(std::move(out));
  record("subscriptions/listen", {}, "ok", 0, in->received); // counted when acknowledged
  auto self_handle = caf::actor_cast<session_actor>(self);
  in->sink->on_close([self_handle](uint64_t s) { caf::anon_send(self_handle, atom::closed_v, s); });
  listeners.push_back(std::move(l));
}

void session_state::do_call(const inbound_ptr& in, const std::string& method, const json::value& params,
                            const client_view& client, std::optional<log_level> level) {
  bool stateless = client.stateless;
  int bad = stateless ? 400 : 0;
  auto cat = env->current();
  call_handler handler;
  std::optional<json::value> arguments; // when the handler sees others than the params'
  std::string context;
  std::string service;
  if (method == "tools/call" || method == "prompts/get") {
    auto* name = params.find("name");
    if (!name || !name->is_string())
      return reply_error(in, error_code::invalid_params, "params.name must be a string", {}, bad);
    auto* args = params.find("arguments");
    if (args && !args->is_object() && !args->is_null())
      return reply_error(in, error_code::invalid_params, "params.arguments must be an object", {}, bad);
    if (method == "tools/call") {
      auto* tool = cat->find_tool(name->as_string());
      if (!tool)
        return reply_error(in, error_code::invalid_params, "unknown tool: " + name->as_string(),
                           value::make_object({{"name", name->as_string()}}), bad);
      handler = tool->handler;
      // Arguments are checked against the tool's input schema before
      // anything runs or is forwarded; every failing field is listed.
      const value& given = args && args->is_object() ? *args : empty_object();
      if (env->opts.validate_arguments)
        if (auto invalid = check_arguments(*tool, given))
          return reply_error(in, error_code::invalid_params, std::move(invalid->message), std::move(invalid->data),
                             bad);
      // Strings lose their control characters (all but tab and line breaks).
      if (schema::has_control_characters(given)) {
        arguments = given;
        schema::strip_control_characters(*arguments);
      }
      service = tool->service_of ? tool->service_of(arguments ? *arguments : given) : tool->service;
    } else {
      auto* prompt = cat->find_prompt(name->as_string());
      if (!prompt)
        return reply_error(in, error_code::invalid_params, "unknown prompt: " + name->as_string(),
                           value::make_object({{"name", name->as_string()}}), bad);
      for (auto& a : prompt->arguments) {
        const auto* given = args ? args->find(a.name) : nullptr;
        if (a.required && (!given || given->is_null()))
          return reply_error(in, error_code::invalid_params, "missing required argument: " + a.name, {}, bad);
        if (given && !given->is_string() && !given->is_null())
          return reply_error(in, error_code::invalid_params, "prompt argument " + a.name + " must be a string", {},
                             bad);
      }
      handler = prompt->handler;
      service = prompt->service;
    }
    context = method + "\n" + name->as_string();
  } else {
    auto* uri = params.find("uri");
    if (!uri || !uri->is_string())
      return reply_error(in, error_code::invalid_params, "params.uri must be a string", {}, bad);
    if (uri->as_string().size() > max_uri_bytes)
      return reply_error(in, error_code::invalid_params,
                         "params.uri is longer than " + std::to_string(max_uri_bytes) + " bytes", {}, bad);
    if (auto* r = cat->find_resource(uri->as_string())) {
      handler = r->handler;
      service = r->service;
      arguments = value::make_object({{"uri", uri->as_string()}});
    } else {
      value vars(json::object{});
      auto* t = cat->match_template(uri->as_string(), vars);
      if (!t)
        return reply_error(in, error_code::invalid_params, "Resource not found",
                           value::make_object({{"uri", uri->as_string()}}), bad);
      vars.set("uri", uri->as_string());
      handler = t->handler;
      service = t->service;
      arguments = std::move(vars);
    }
    context = method + "\n" + uri->as_string();
  }
  if (!handler)
    return reply_error(in, error_code::internal_error, "no handler registered", {}, 500);
  start_call(in, method, params, client, level, std::move(handler), std::move(arguments), std::move(context), service);
}

void session_state::start_call(const inbound_ptr& in, const std::string& method, const json::value& params,
                               const client_view& client, std::optional<log_level> level, call_handler handler,
                               std::optional<json::value> arguments, std::string context, const std::string& service) {
  bool stateless = client.stateless;
  if (!stateless && calls.size() >= env->opts.max_concurrent_requests) {
    auto max = env->opts.max_concurrent_requests;
    return reply_error(
      in, error_code::session_limit,
      "too many concurrent requests in this session (at most " + std::to_string(max)
        + "); retry when one has been answered",
      value::make_object(
        {{"limit", "concurrentRequests"}, {"max", static_cast<unsigned long long>(max)}, {"retry_after_seconds", 1}}),
      describe(error_code::session_limit).http_status);
  }

  // Multi round-trip input (2026-07-28): the client's answers and our state.
  value input_responses;
  std::string request_state;
  if (stateless) {
    if (auto* ir = params.find("inputResponses"); ir && !ir->is_null()) {
      if (!ir->is_object())
        return reply_error(in, error_code::invalid_params, "params.inputResponses must be an object", {}, 400);
      for (auto& [k, v] : ir->as_object())
        if (!v.is_object())
          return reply_error(in, error_code::invalid_params, "params.inputResponses." + k + " must be an object", {},
                             400);
      input_responses = *ir;
    }
    if (auto* rs = params.find("requestState"); rs && !rs->is_null()) {
      if (!rs->is_string())
        return reply_error(in, error_code::invalid_params, "params.requestState must be a string", {}, 400);
      // Sealed to the caller's identity too: another caller's replay of it
      // opens nothing.
      if (!crypto::unseal(env->state_key, client.identity + "\n" + context, rs->as_string(), request_state))
        return reply_error(in, error_code::invalid_params, "params.requestState failed its integrity check", {}, 400);
    }
  }

  // The request's params move into the call: the message is not read again
  // except for its id. (`params` refers into `in->message`, which this
  // request owns.)
  auto progress_token = params["_meta"]["progressToken"];
  json::value owned_params;
  if (params.is_object())
    owned_params = std::move(const_cast<json::value&>(params));
  auto call = std::make_shared<call_context>(method, std::move(owned_params), client);
  auto self_handle = caf::actor_cast<session_actor>(self);
  call->set_resumer([self_handle](call_ptr c, call_handler next) {
    caf::anon_send(self_handle, atom::resume_v, std::move(c), std::move(next));
  });
  if (arguments)
    call->set_arguments(std::move(*arguments));
  if (!input_responses.is_null() || !request_state.empty())
    call->set_input(std::move(input_responses), std::move(request_state));
  auto serial = in->sink->serial();
  call->tag = serial;
  call->request_id = in->message["id"];
  call->attach(this);

  running r;
  r.call = call;
  r.handler = std::move(handler);
  r.sink = in->sink;
  r.id = in->message["id"];
  r.progress_token = std::move(progress_token);
  r.level = level;
  r.context = std::move(context);
  r.received = in->received;
  auto& slot = calls.emplace(serial, std::move(r)).first->second;
  env->inflight++;
  if (!stateless)
    by_request_id[mcp::id_key(slot.id)] = serial;
  // Learn when the client goes away: for 2026-07-28 that cancels the call.
  in->sink->on_close([self_handle](uint64_t s) { caf::anon_send(self_handle, atom::closed_v, s); });
  admit(slot, service);
}

void session_state::admit(running& r, const std::string& service) {
  // The levels that apply: the caller's tier, the service's budget, the
  // global budget. With none of them, the call needs no trip to the limiter.
  if (!env->buckets)
    return run(r); // An environment without a limiter (unit tests).
  if (!live)
    live.emplace(*env);
  const auto& ops = (*live)->ops;
  const auto& limits = ops.limits;
  auto key = resolve_key(ops, r.call->client().identity);
  bool service_limited = !service.empty() && limits.services.count(service) > 0;
  if (key.tier.empty() && !service_limited && limits.global.empty())
    return run(r);
  auto limiter = env->names.get(limiter_actor_name);
  if (!limiter)
    return r.call->fail(error_code::actor_restarted, "the rate limiter is restarting; retry",
                        value::make_object({{"retry_after_seconds", 1}}));
  admission_request request;
  request.key = r.call->client().identity;
  request.tier = key.tier;
  request.service = service_limited ? service : std::string();
  if (ops.queue_on_limit)
    request.max_wait = ops.max_limit_wait;
  r.admission = request;
  // The verdict comes back as atom::admit (see `admitted`); a limiter that
  // is gone, or killed before it decides, never answers: the ticket's end
  // does.
  auto ticket = std::make_shared<admission_ticket>(std::move(request), caf::actor_cast<caf::actor>(self), r.call->tag);
  caf::anon_send(caf::actor_cast<limiter_actor>(limiter), atom::admit_v, std::move(ticket));
}

namespace {

/// Gives an admitted call's tokens back to the limiter.
void give_back_tokens(const env_ptr& env, const admission_request& request) {
  if (auto l = env->names.get(limiter_actor_name))
    caf::anon_send(caf::actor_cast<limiter_actor>(l), atom::refund_v, request);
}

} // namespace

void session_state::admitted(uint64_t serial, const admission& a) {
  auto i = calls.find(serial);
  if (i == calls.end())
    return; // the call ended (cancelled, its client gone) before the verdict
  auto& r = i->second;
  const auto& c = r.call;
  if (a.undecided)
    return c->fail(error_code::actor_restarted, "the rate limiter restarted before it admitted the call; retry",
                   value::make_object({{"retry_after_seconds", 1}}));
  if (!a.admitted) {
    auto retry = static_cast<double>(a.retry_after.count()) / 1000.0;
    return c->fail(
      error_code::rate_limited, "rate limit reached: " + a.limit,
      value::make_object({{"limit", a.refused_by}, {"description", a.limit}, {"retry_after_seconds", retry}}));
  }
  c->refund = [env = env, request = r.admission] { give_back_tokens(env, request); };
  if (a.delay.count() > 0) {
    // Parked: a service call waits in the priority queue, other calls here.
    if (!r.admission.service.empty()) {
      c->not_before = std::chrono::steady_clock::now() + a.delay;
    } else {
      c->after(a.delay, r.handler);
      return;
    }
  }
  run(r);
}

namespace {

/// Answers a call whose handler threw (called from a catch block): a
/// tool_error's message goes to the client; anything else is internal, its
/// text kept for the log (and the client only in development mode).
void answer_exception(const call_ptr& call) {
  std::string detail = "an exception of unknown type";
  try {
    throw;
  } catch (const tool_error& e) {
    if (call->method() == "tools/call")
      return call->finish(mcp::text_result(e.what(), true));
    return call->fail(error_code::internal_error, e.what());
  } catch (const std::exception& e) {
    detail = e.what();
  } catch (...) {
  }
  if (call->method() == "tools/call")
    return call->finish(mcp::internal_tool_failure(call->params()["name"].as_string(), detail));
  call->fail(error_code::internal_error, "internal error while answering " + call->method(),
             value::make_object({{"detail", detail}}));
}

} // namespace

void session_state::run(running& r) {
  auto call = r.call; // keeps the context alive while the handler runs
  try {
    r.handler(call);
  } catch (...) {
    answer_exception(call);
  }
}

// -- call_owner ------------------------------------------------------------------------------------

void session_state::on_progress(call_context& c, double progress, std::optional<double> total, std::string message) {
  auto i = calls.find(c.tag);
  if (i == calls.end() || i->second.progress_token.is_null())
    return;
  auto params = value::make_object({{"progressToken", i->second.progress_token}, {"progress", progress}});
  if (total)
    params.set("total", *total);
  if (!message.empty())
    params.set("message", std::move(message));
  send_on(i->second, mcp::notification_body("notifications/progress", params), outbound::kind::notification);
}

void session_state::on_log(call_context& c, log_level lvl, json::value data, std::string logger) {
  auto i = calls.find(c.tag);
  if (i == calls.end())
    return;
  auto& r = i->second;
  if (c.client().stateless) {
    // 2026-07-28: logs only when the request asked for them.
    if (!r.level || lvl < *r.level)
      return;
  } else if (lvl < rec->min_level) {
    return;
  }
  auto params = value::make_object({{"level", std::string(to_string(lvl))}, {"data", std::move(data)}});
  if (!logger.empty())
    params.set("logger", std::move(logger));
  send_on(r, mcp::notification_body("notifications/message", params), outbound::kind::notification);
}

void session_state::on_after(const call_ptr& c, std::chrono::milliseconds delay, call_handler next) {
  auto id = ++next_timer;
  timers.emplace(id, std::make_pair(c, std::move(next)));
  self->delayed_send(caf::actor_cast<session_actor>(self), delay, atom::timer_v, id);
}

void session_state::fire_timer(uint64_t id) {
  auto i = timers.find(id);
  if (i == timers.end())
    return;
  auto [call, next] = std::move(i->second);
  timers.erase(i);
  continue_call(call, next);
}

void session_state::continue_call(const call_ptr& call, const call_handler& next) {
  auto c = calls.find(call->tag);
  if (call->done() || call->cancelled() || c == calls.end() || c->second.call != call)
    return;
  try {
    next(call);
  } catch (...) {
    answer_exception(call);
  }
}

void session_state::on_finish(call_context& c, json::value result) {
  auto i = calls.find(c.tag);
  if (i == calls.end())
    return;
  auto& r = i->second;
  if (!result.is_object())
    result = value(json::object{});
  if (c.client().stateless) {
    if (!result.find("resultType"))
      result.set("resultType", "complete");
    // Bulwark's own resources take the configured hints; a service's read
    // comes with the hints the gateway gave it.
    if (c.method() == "resources/read" && !result.find("ttlMs")) {
      result.set("ttlMs", env->opts.list_ttl_ms);
      result.set("cacheScope", "public");
    }
  } else {
    // A result a 2026-07-28 service gave has fields a 2025-era client does
    // not know.
    for (auto* field : {"resultType", "ttlMs", "cacheScope"})
      result.erase(field);
  }
  bool tool_error = result["isError"].is_bool() && result["isError"].as_bool();
  record(c.method(), call_name(r), tool_error ? "tool_error" : "ok", 0, r.received, &c);
  outbound out;
  out.body = mcp::result_body(r.id, result);
  end_call(c.tag, std::move(out));
}

void session_state::on_fail(call_context& c, error_code code, std::string message, json::value data) {
  auto i = calls.find(c.tag);
  if (i == calls.end())
    return;
  record(c.method(), call_name(i->second), "error", static_cast<int>(code), i->second.received, &c);
  outbound out;
  out.body = mcp::error_body(i->second.id, code, message, data);
  // 2026-07-28 answers protocol-level refusals with an HTTP status too.
  if (c.client().stateless) {
    switch (code) {
      case error_code::invalid_params:
      case error_code::missing_client_capability:
      case error_code::header_mismatch:
      case error_code::unsupported_protocol_version:
        out.http_status = 400;
        break;
      case error_code::method_not_found:
        out.http_status = 404;
        break;
      default:
        break;
    }
  }
  end_call(c.tag, std::move(out));
}

void session_state::on_input_required(call_context& c, json::value requests, std::string state) {
  auto i = calls.find(c.tag);
  if (i == calls.end())
    return;
  auto& r = i->second;
  if (!requests.is_object() || requests.size() == 0) {
    outbound out;
    out.body = mcp::error_body(r.id, error_code::internal_error, "the handler asked for input without naming any");
    return end_call(c.tag, std::move(out));
  }
  if (c.client().stateless) {
    auto result = value::make_object({{"resultType", "input_required"}, {"inputRequests", std::move(requests)}});
    if (!state.empty())
      result.set("requestState", crypto::seal(env->state_key, c.client().identity + "\n" + r.context, state));
    outbound out;
    out.body = mcp::result_body(r.id, result);
    return end_call(c.tag, std::move(out));
  }
  // 2025 era: ask the client ourselves over the request's stream, then run
  // the handler again with the answers.
  for (auto& [key, req] : requests.as_object()) {
    const auto& method = req["method"].as_string();
    auto cap = capability_for(method);
    if (!cap.empty() && !c.client().has_capability(cap)) {
      outbound out;
      out.body =
        mcp::error_body(r.id, error_code::missing_client_capability,
                        "the client did not declare the " + std::string(cap) + " capability this request needs",
                        value::make_object(
                          {{"requiredCapabilities", value::make_object({{std::string(cap), value(json::object{})}})}}));
      return end_call(c.tag, std::move(out));
    }
  }
  // The questions travel on the request's stream: without room for one,
  // the call cannot go on.
  if (!may_stream(r)) {
    outbound out;
    out.body = mcp::error_body(r.id, error_code::session_limit, too_many_streams(),
                               value::make_object({{"limit", "streams"},
                                                   {"max", static_cast<unsigned long long>(env->opts.max_streams)},
                                                   {"retry_after_seconds", 1}}));
    out.http_status = describe(error_code::session_limit).http_status;
    return end_call(c.tag, std::move(out));
  }
  r.gathered = value(json::object{});
  r.awaiting = requests.size();
  r.state = std::move(state);
  for (auto& [key, req] : requests.as_object()) {
    auto id = value("bulwark-" + std::to_string(++next_outgoing));
    outgoing[mcp::id_key(id)] = {c.tag, key};
    send_on(r, mcp::request_body(id, req["method"].as_string(), req["params"]), outbound::kind::request);
  }
}

// -- answering ------------------------------------------------------------------------------------

void session_state::record(const std::string& method, std::string_view name, const char* outcome, int code,
                           std::chrono::steady_clock::time_point received, const call_context* call) {
  auto& m = env->metrics;
  if (!m)
    return;
  m->counter("bulwark_requests_total", {{"method", method}, {"tool", name}, {"outcome", outcome}}).inc();
  if (code != 0) {
    auto text = std::to_string(code);
    m->counter("bulwark_errors_total", {{"code", text}}).inc();
    env->errors_total.fetch_add(1, std::memory_order_relaxed);
  }
  env->requests_total.fetch_add(1, std::memory_order_relaxed);
  auto took = std::chrono::steady_clock::now() - received;
  auto seconds = std::chrono::duration<double>(took).count();
  m->histogram("bulwark_request_duration_seconds", {{"method", method}}).observe(seconds);
  if (env->latency)
    env->latency->observe(seconds);
  if (call && !call->upstream.empty()) {
    using dseconds = std::chrono::duration<double>;
    m->histogram("bulwark_upstream_duration_seconds", {{"service", call->upstream}})
      .observe(dseconds(call->upstream_wait).count());
    // The wait lies within the call's duration; the clamp only guards the
    // histogram.
    auto own = std::max(took - call->upstream_wait, decltype(took)::zero());
    m->histogram("bulwark_gateway_overhead_seconds", {{"service", call->upstream}}).observe(dseconds(own).count());
  }
}

void session_state::reply(const inbound_ptr& in, json::value result, bool stateless) {
  if (stateless && !result.find("resultType"))
    result.set("resultType", "complete");
  outbound out;
  out.body = mcp::result_body(in->message["id"], result);
  in->sink->deliver(std::move(out));
  record(in->message["method"].as_string(), {}, "ok", 0, in->received);
}

void session_state::reply_once_shared(const inbound_ptr& in) {
  outbound out;
  out.body = mcp::result_body(in->message["id"], value(json::object{}));
  shared_at = std::chrono::steady_clock::now();
  publish_session(env, *rec, [sink = in->sink, out = std::move(out)]() mutable { sink->deliver(std::move(out)); });
  record(in->message["method"].as_string(), {}, "ok", 0, in->received);
}

void session_state::reply_error(const inbound_ptr& in, error_code code, std::string message, json::value data,
                                int http_status) {
  record(in->message["method"].as_string(), {}, "error", static_cast<int>(code), in->received);
  outbound out;
  out.body = mcp::error_body(in->message["id"], code, message, data);
  if (http_status != 0)
    out.http_status = http_status;
  in->sink->deliver(std::move(out));
}

std::string session_state::next_event_id(uint64_t stream, const std::string& body) {
  auto& s = rec->streams[stream];
  auto seq = s.next_seq++;
  s.events.emplace_back(seq, body);
  while (s.events.size() > env->opts.replay_events)
    s.events.pop_front();
  // Keep a bounded number of streams per session.
  while (rec->streams.size() > 64)
    rec->streams.erase(rec->streams.begin());
  return std::to_string(stream) + "-" + std::to_string(seq);
}

bool session_state::may_stream(const running& r) const {
  if (r.streamed || r.call->client().stateless)
    return true;
  return rec->response_streams.load() + (get_stream ? 1 : 0) < env->opts.max_streams;
}

std::string session_state::too_many_streams() const {
  return "too many SSE streams open in this session (at most " + std::to_string(env->opts.max_streams)
         + "); retry when one has ended";
}

void session_state::send_on(running& r, std::string body, outbound::kind what) {
  // Over the session's stream limit, a call's notifications are left out
  // and its answer comes as plain JSON.
  if (!may_stream(r))
    return;
  outbound out;
  out.what = what;
  if (!r.call->client().stateless) {
    if (r.stream == 0)
      r.stream = rec->next_stream++;
    out.event_id = next_event_id(r.stream, body);
    if (!r.streamed)
      rec->response_streams++;
  }
  r.streamed = true;
  out.body = std::move(body);
  r.sink->deliver(std::move(out));
}

void session_state::end_call(uint64_t serial, outbound out) {
  auto i = calls.find(serial);
  if (i == calls.end())
    return;
  auto& r = i->second;
  out.what = outbound::kind::response;
  if (r.streamed && !r.call->client().stateless && !out.silent) {
    out.event_id = next_event_id(r.stream, out.body);
    rec->streams[r.stream].ended = true;
  }
  r.sink->deliver(std::move(out));
  r.call->detach();
  if (r.streamed && !r.call->client().stateless && rec->response_streams > 0)
    rec->response_streams--;
  if (!r.call->client().stateless)
    by_request_id.erase(mcp::id_key(r.id));
  for (auto o = outgoing.begin(); o != outgoing.end();) {
    if (o->second.first == serial)
      o = outgoing.erase(o);
    else
      ++o;
  }
  calls.erase(i);
  env->inflight--;
}

// -- streams -----------------------------------------------------------------------------------------

void session_state::open_stream(sink_ptr sink, const std::string& last_event_id) {
  // Resume: replay what the client missed on the stream it names.
  if (!last_event_id.empty()) {
    auto dash = last_event_id.find('-');
    if (dash != std::string::npos) {
      uint64_t stream = std::strtoull(last_event_id.substr(0, dash).c_str(), nullptr, 10);
      uint64_t seq = std::strtoull(last_event_id.substr(dash + 1).c_str(), nullptr, 10);
      if (auto s = rec->streams.find(stream); s != rec->streams.end()) {
        const auto& events = s->second.events;
        for (auto& [n, body] : events) {
          if (n <= seq)
            continue;
          outbound out;
          out.what = outbound::kind::notification;
          out.body = body;
          out.event_id = std::to_string(stream) + "-" + std::to_string(n);
          // The response that ended a POST's stream ends the resumed one.
          if (s->second.ended && n == events.back().first)
            out.what = outbound::kind::response;
          sink->deliver(std::move(out));
        }
        if (s->second.ended) {
          // A finished POST stream: nothing follows its response, and the
          // session's GET stream (if open) stays the one it is.
          if (events.empty() || events.back().first <= seq) {
            outbound out;
            out.what = outbound::kind::response;
            out.silent = true; // the client had it all: end at once
            sink->deliver(std::move(out));
          }
          return;
        }
      }
      // The stream of a call that still runs goes on on this connection:
      // what the call sends from now on, its response last, comes here and
      // not to the POST connection the client lost (which nobody reads).
      // Then this is that call's stream, not the session's GET stream.
      for (auto& [serial, r] : calls)
        if (r.stream == stream && r.streamed && !r.call->client().stateless) {
          r.sink = std::move(sink);
          return;
        }
    }
  }
  get_stream = std::move(sink);
  get_stream_id = rec->next_stream++;
  auto self_handle = caf::actor_cast<session_actor>(self);
  get_stream->on_close([self_handle](uint64_t s) { caf::anon_send(self_handle, atom::closed_v, s); });
}

void session_state::send_standalone(std::string body) {
  if (!get_stream || !get_stream->open())
    return;
  outbound out;
  out.what = outbound::kind::notification;
  out.event_id = next_event_id(get_stream_id, body);
  out.body = std::move(body);
  get_stream->deliver(std::move(out));
}

void session_state::stream_closed(uint64_t serial) {
  if (get_stream && get_stream->serial() == serial) {
    get_stream.reset();
    return;
  }
  for (auto l = listeners.begin(); l != listeners.end(); ++l) {
    if (l->sink->serial() == serial) {
      listeners.erase(l);
      return;
    }
  }
  auto i = calls.find(serial);
  if (i == calls.end())
    return;
  // 2026-07-28: closing the response stream cancels the request. A 2025-era
  // client may reconnect and resume, so its call keeps running.
  if (i->second.call->client().stateless) {
    i->second.call->mark_cancelled();
    outbound out;
    out.body = mcp::error_body(i->second.id, error_code::request_cancelled, "the client closed the response stream");
    end_call(serial, std::move(out));
  }
}

void session_state::broadcast(const std::string& method, const json::value& params) {
  bool resource_update = method == "notifications/resources/updated";
  const auto& uri = params["uri"].as_string();
  if (method == "notifications/message") {
    // Server-wide log messages (degraded mode, alerts): 2025-era sessions
    // at or below their log level; alerts only to admin keys' sessions.
    if (rec->stateless)
      return;
    auto lvl = parse_log_level(params["level"].as_string());
    if (lvl && *lvl < rec->min_level)
      return;
    if (params["_meta"]["io.bulwark/audience"].as_string() == "admin") {
      const auto& admins = env->opts.ops.admin_identities;
      if (std::find(admins.begin(), admins.end(), rec->identity) == admins.end())
        return;
    }
    send_standalone(mcp::notification_body(method, params));
    return;
  }
  if (!rec->stateless) {
    if (resource_update && !rec->subscriptions.contains(uri))
      return;
    send_standalone(mcp::notification_body(method, params));
    return;
  }
  for (auto& l : listeners) {
    bool wanted = (method == "notifications/tools/list_changed" && l.tools)
                  || (method == "notifications/prompts/list_changed" && l.prompts)
                  || (method == "notifications/resources/list_changed" && l.resources)
                  || (resource_update && l.uris.contains(uri));
    if (!wanted)
      continue;
    value p = params.is_object() ? params : value(json::object{});
    auto meta = p["_meta"].is_object() ? p["_meta"] : value(json::object{});
    meta.set(std::string(mcp::meta_subscription_id), l.subscription_id);
    p.set("_meta", std::move(meta));
    outbound out;
    out.what = outbound::kind::notification;
    out.body = mcp::notification_body(method, p);
    l.sink->deliver(std::move(out));
  }
}

client_view session_state::stateful_client() const {
  client_view v;
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
    [self](atom::closed, uint64_t serial) { self->state.stream_closed(serial); },
    [self](atom::timer, uint64_t id) { self->state.fire_timer(id); },
    [self](atom::resume, call_ptr& call, call_handler& next) { self->state.continue_call(call, next); },
    [self](atom::admit, uint64_t serial, const admission& a) { self->state.admitted(serial, a); },
    [self](atom::notify, const std::string& method, const json::value& params) {
      self->state.broadcast(method, params);
    },
    [self](atom::end) { self->quit(); },
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
