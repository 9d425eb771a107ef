// The session's own methods: initialize, the lists (tools, prompts,
// resources, templates) with their cursors, completion, and the 2026-07-28
// subscriptions/listen stream.
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

namespace {

/// What a 2025-era session keeps of its client's `initialize`, at most.
constexpr std::size_t max_stored_capabilities = 16 * 1024;
constexpr std::size_t max_stored_client_info = 4 * 1024;

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

template <class Spec, class = void>
struct has_visibility : std::false_type {};
template <class Spec>
struct has_visibility<Spec, std::void_t<decltype(std::declval<Spec>().visible)>> : std::true_type {};

} // namespace

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
  // Scopes (auth.oauth.requiredScopes) hide what the token may not use.
  auto settings = env->settings();
  const auto* scopes = client.scopes && !settings->ops.scopes.empty() ? &settings->ops.scopes : nullptr;
  auto take = [&](const auto& list, std::string_view kind, auto name_of) {
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
      if (scopes) {
        per_client = true;
        if (!scope_rules::missing(scopes->required(kind, name_of(list[i])), *client.scopes).empty())
          continue;
      }
      shown.push_back(i);
    }
    total = shown.size();
    for (std::size_t k = offset; k < shown.size() && k < offset + page; ++k)
      items.push_back(catalog::describe(list[shown[k]]));
  };
  const char* key;
  if (method == "tools/list") {
    take(cat->tools, "tool", [](auto& t) -> const std::string& { return t.name; });
    key = "tools";
  } else if (method == "resources/list") {
    take(cat->resources, "resource", [](auto& r) -> const std::string& { return r.uri; });
    key = "resources";
  } else if (method == "resources/templates/list") {
    take(cat->templates, "resource", [](auto& t) -> const std::string& { return t.uri_template; });
    key = "resourceTemplates";
  } else {
    take(cat->prompts, "prompt", [](auto& p) -> const std::string& { return p.name; });
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
  // Task status notifications need the tasks extension; Bulwark sends none
  // (clients poll tasks/get), so it agrees to no task ids.
  bool wants_tasks = filter.find("taskIds") != nullptr;
  if (wants_tasks && !mcp::declares_extension(params["_meta"][mcp::meta_client_capabilities], mcp::tasks_extension))
    return reply_error(in, error_code::missing_client_capability,
                       "task notifications need the " + std::string(mcp::tasks_extension)
                         + " extension declared in the request's client capabilities",
                       mcp::extension_required(mcp::tasks_extension));
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
  if (wants_tasks)
    accepted.set("taskIds", value(json::array{}));
  auto params_out = value::make_object({
    {"_meta", value::make_object({{std::string(mcp::meta_subscription_id), l.subscription_id}})},
    {"notifications", std::move(accepted)},
  });
  outbound out;
  out.what = outbound::kind::notification;
  out.body = mcp::notification_body("notifications/subscriptions/acknowledged", params_out);
  record_answer(in, {}, "ok", 0, out.http_status, out.body.size()); // counted when acknowledged
  in->sink->deliver(std::move(out));
  auto self_handle = caf::actor_cast<session_actor>(self);
  in->sink->on_close([self_handle](uint64_t s) { caf::anon_send(self_handle, atom::closed_v, s); });
  listeners.push_back(std::move(l));
}

} // namespace bulwark
