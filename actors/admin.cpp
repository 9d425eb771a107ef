#include "actors/admin.hpp"

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/env.hpp"
#include "actors/health.hpp"
#include "actors/runtime.hpp"
#include "config/log.hpp"
#include "messages/crypto.hpp"
#include "transport/http_server.hpp"

namespace bulwark {

using json::value;

namespace {

http_reply json_reply(int status, const value& body) {
  http_reply r;
  r.status = status;
  r.body = json::dump(body);
  return r;
}

http_reply refuse(int status, const std::string& why) {
  return json_reply(status, value::make_object({{"error", why}}));
}

/// True when `authorization` carries the admin token (compared by hash, in
/// constant time).
bool authorized(const std::string& expected_sha256, const std::string& authorization) {
  if (authorization.size() <= 7 || authorization.compare(0, 7, "Bearer ") != 0)
    return false;
  return crypto::constant_time_equal(crypto::sha256_hex(authorization.substr(7)), expected_sha256);
}

http_reply action(runtime& rt, const env_ptr& env, const std::string& what, const value& body) {
  if (what == "actors/kill") {
    const auto& name = body["name"].as_string();
    if (name.empty())
      return refuse(400, "body.name must name an actor (see GET /admin/api/actors)");
    if (!rt.kill_actor(name))
      return refuse(404, "no actor named '" + name + "'");
    return json_reply(200, value::make_object({{"killed", name}}));
  }
  if (what == "degraded") {
    const auto& mode = body["mode"].as_string();
    int32_t m = mode == "on" ? 1 : mode == "off" ? 0 : mode == "auto" ? -1 : -2;
    if (m == -2)
      return refuse(400, "body.mode must be \"on\", \"off\" or \"auto\"");
    auto health = env->names.get(health_actor_name);
    if (!health)
      return refuse(503, "the health supervisor is restarting; retry");
    caf::anon_send(health, atom::degrade_v, m);
    return json_reply(200, value::make_object({{"degraded", mode}}));
  }
  if (what == "breakers") {
    const auto& service = body["service"].as_string();
    const auto& state = body["state"].as_string();
    if (state != "open" && state != "closed" && state != "half_open")
      return refuse(400, "body.state must be \"open\", \"closed\" or \"half_open\"");
    auto breaker = env->names.get(breaker_name(service));
    if (!breaker)
      return refuse(404, "no breaker for a service named '" + service + "'");
    caf::anon_send(caf::actor_cast<breaker_actor>(breaker), atom::force_v, state);
    return json_reply(200, value::make_object({{"service", service}, {"state", state}}));
  }
  if (what == "cache/invalidate") {
    // A service's entries, or any key prefix (service\nmethod\n...).
    std::string prefix = body["service"].is_string() ? body["service"].as_string() + "\n" : body["prefix"].as_string();
    if (prefix.empty() || prefix == "\n")
      return refuse(400, "body.service or body.prefix must be a non-empty string");
    auto cache = env->names.get(cache_actor_name);
    if (!cache)
      return refuse(503, "the cache is restarting (and empty); nothing to invalidate");
    caf::anon_send(caf::actor_cast<cache_actor>(cache), atom::drop_v, prefix);
    return json_reply(200, value::make_object({{"invalidated", prefix}}));
  }
  return refuse(404, "no admin action " + what);
}

http_reply view(runtime& rt, const env_ptr& env, const std::string& what) {
  auto report = env->health_report();
  if (what == "queue" || what == "alerts") {
    const auto& part = report["components"][what];
    return json_reply(200, part.is_object() ? part : value::make_object({{"status", "starting"}}));
  }
  if (what == "health")
    return json_reply(200, report.is_null() ? value::make_object({{"status", "starting"}}) : report);
  if (what == "actors") {
    value actors(json::array{});
    auto now = std::chrono::steady_clock::now();
    for (auto& [name, a] : env->actor_tree())
      actors.push_back(value::make_object(
        {{"name", name},
         {"kind", a.kind},
         {"parent", a.parent},
         {"state", a.running ? "running" : "restarting"},
         {"restarts", static_cast<unsigned long long>(a.restarts)},
         {"lastExit", a.last_exit.empty() ? value() : value(a.last_exit)},
         {"uptimeSeconds", a.running ? std::chrono::duration<double>(now - a.started).count() : 0.0}}));
    auto s = rt.status();
    return json_reply(200, value::make_object({{"actors", std::move(actors)},
                                               {"restarts", static_cast<unsigned long long>(s.restarts)},
                                               {"escalations", static_cast<unsigned long long>(s.escalations)},
                                               {"degraded", env->degraded.load()}}));
  }
  return refuse(404, "no admin view " + what);
}

} // namespace

void add_admin_routes(http_server& server, runtime& rt) {
  auto env = rt.environment();
  server.add_handler("/admin/api/", [env, &rt](const http_request_view& req) {
    const auto& token = env->opts.ops.admin_token_sha256;
    auto what = req.path.substr(std::string("/admin/api/").size());
    bool is_action = req.method == "POST";
    if (!token.empty() && !authorized(token, req.authorization)) {
      if (is_action)
        log::warn("admin action refused", value::make_object({{"action", what}, {"why", "no valid admin token"}}));
      auto r = refuse(401, "the admin API needs Authorization: Bearer <admin token>");
      return r;
    }
    if (req.method == "GET")
      return view(rt, env, what);
    if (!is_action)
      return refuse(405, "use GET for views and POST for actions");
    if (token.empty()) {
      log::warn("admin action refused", value::make_object({{"action", what}, {"why", "no admin token configured"}}));
      return refuse(403, "admin actions need an admin token: set admin.tokenSha256 or BULWARK_ADMIN_TOKEN");
    }
    value body;
    json::parse_error err;
    if (!json::parse(req.body.empty() ? std::string("{}") : req.body, body, err) || !body.is_object())
      return refuse(400, "the body must be a JSON object");
    auto reply = action(rt, env, what, body);
    // The audit trail: every action with its target and outcome.
    log::info("admin action", value::make_object({{"action", what}, {"request", body}, {"status", reply.status},
                                                  {"result", reply.body}}));
    return reply;
  });
}

} // namespace bulwark
