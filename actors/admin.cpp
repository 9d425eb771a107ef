#include "actors/admin.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/env.hpp"
#include "actors/gateway_router.hpp"
#include "actors/health.hpp"
#include "actors/runtime.hpp"
#include "config/audit.hpp"
#include "config/log.hpp"
#include "config/traffic_history.hpp"
#include "messages/crypto.hpp"
#include "transport/auth.hpp"
#include "transport/http_server.hpp"

namespace bulwark {

using json::value;

namespace {

http_reply json_answer(int status, const value& body) {
  http_reply r;
  r.status = status;
  r.body = json::dump(body);
  return r;
}

value error_body(const std::string& why) {
  return value::make_object({{"error", why}});
}

http_reply refuse(int status, const std::string& why) {
  return json_answer(status, error_body(why));
}

/// What an action answers, kept as JSON for the audit entry.
struct action_result {
  int status = 200;
  value body;
};

action_result refused(int status, const std::string& why) {
  return {status, error_body(why)};
}

/// True when `authorization` carries the admin token (compared by hash, in
/// constant time).
bool authorized(const std::string& expected_sha256, const std::string& authorization) {
  return bearer_matches(expected_sha256, authorization);
}

action_result action(runtime& rt, const env_ptr& env, const std::string& what, const value& body) {
  if (what == "actors/kill") {
    // By name, or every actor of a kind (as the tree names kinds).
    const auto& name = body["name"].as_string();
    const auto& kind = body["kind"].as_string();
    if (name.empty() == kind.empty())
      return refused(400, "body must name an actor (\"name\") or a kind (\"kind\"); see GET /admin/api/actors");
    value killed(json::array{});
    if (!name.empty()) {
      if (name == names::root_supervisor)
        return refused(409, "the root supervisor is not killed from the admin API: nothing would restart it, and "
                            "the server would stop; stop Bulwark with SIGTERM instead");
      if (!rt.kill_actor(name))
        return refused(404, "no running actor named '" + name + "'");
      killed.push_back(name);
    } else {
      for (auto& [n, a] : env->actor_tree())
        if (a.kind == kind && a.running && rt.kill_actor(n))
          killed.push_back(n);
      if (killed.as_array().empty())
        return refused(404, "no running actor of kind '" + kind + "'");
    }
    return action_result{200, value::make_object({{"killed", std::move(killed)}})};
  }
  if (what == "degraded") {
    const auto& mode = body["mode"].as_string();
    int32_t m = mode == "on" ? 1 : mode == "off" ? 0 : mode == "auto" ? -1 : -2;
    if (m == -2)
      return refused(400, "body.mode must be \"on\", \"off\" or \"auto\"");
    auto health = env->names.get(health_actor_name);
    if (!health)
      return refused(503, "the health supervisor is restarting; retry");
    caf::anon_send(health, atom::degrade_v, m);
    return action_result{200, value::make_object({{"degraded", mode}})};
  }
  if (what == "breakers") {
    const auto& service = body["service"].as_string();
    const auto& state = body["state"].as_string();
    if (state != "open" && state != "closed" && state != "half_open" && state != "auto")
      return refused(400, "body.state must be \"open\" or \"closed\" (held until \"auto\"), \"half_open\" or \"auto\"");
    auto breaker = env->names.get(breaker_name(service));
    if (!breaker)
      return refused(404, "no breaker for a service named '" + service + "'");
    caf::anon_send(caf::actor_cast<breaker_actor>(breaker), atom::force_v, state);
    return action_result{200, value::make_object({{"service", service}, {"state", state}})};
  }
  if (what == "cache/invalidate") {
    // A service's entries, or any key prefix (service\nmethod\n...).
    std::string prefix = body["service"].is_string() ? body["service"].as_string() + "\n" : body["prefix"].as_string();
    if (prefix.empty() || prefix == "\n")
      return refused(400, "body.service or body.prefix must be a non-empty string");
    if (body["service"].is_string()) {
      auto services = env->service_names();
      if (std::find(services.begin(), services.end(), body["service"].as_string()) == services.end())
        return refused(404, "no service named '" + body["service"].as_string() + "'");
    }
    auto cache = env->names.get(cache_actor_name);
    if (!cache)
      return refused(503, "the cache is restarting (and empty); nothing to invalidate");
    caf::anon_send(caf::actor_cast<cache_actor>(cache), atom::drop_v, prefix);
    return action_result{200, value::make_object({{"invalidated", prefix}})};
  }
  if (what == "tools/approve") {
    // A held tool definition change (gateway.pinning), as the health
    // supervisor last saw the router's pins.
    const auto& service = body["service"].as_string();
    const auto& tool = body["tool"].as_string();
    if (service.empty() || tool.empty())
      return refused(400, "body must name the service (\"service\") and its tool (\"tool\"); see GET "
                          "/admin/api/tools");
    auto report = env->health_report();
    const auto& held = report["components"]["tools"]["held"];
    bool found = std::any_of(held.as_array().begin(), held.as_array().end(), [&](const value& h) {
      return h["service"].as_string() == service && h["tool"].as_string() == tool;
    });
    if (!found)
      return refused(404, "no held change of tool '" + tool + "' of service '" + service + "'");
    auto router = env->names.get(gateway_router_name);
    if (!router)
      return refused(503, "the gateway router is restarting; retry");
    caf::anon_send(caf::actor_cast<gateway_router_actor>(router), atom::approve_v, service, tool);
    return action_result{
      200, value::make_object({{"approved", value::make_object({{"service", service}, {"tool", tool}})}})};
  }
  return refused(404, "no admin action " + what);
}

value actors_view(runtime& rt, const env_ptr& env) {
  auto now = std::chrono::steady_clock::now();
  auto seconds = [&](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(now - t).count();
  };
  auto supervisors = env->supervisors();
  value actors(json::array{});
  // The root is nobody's child: it is listed first, as the tree's top.
  if (rt.running())
    actors.push_back(value::make_object({{"name", names::root_supervisor},
                                         {"kind", "supervisor"},
                                         {"parent", value()},
                                         {"state", "running"},
                                         {"restarts", 0ULL},
                                         {"lastExit", value()},
                                         {"uptimeSeconds", seconds(env->started)},
                                         {"mailbox", value()}}));
  // An actor that stopped is "restarting" at once, also before its
  // supervisor saw it go (or while its supervisor is down itself).
  std::map<std::string, caf::actor> registered;
  for (auto& [name, handle] : env->names.snapshot())
    registered.emplace(name, handle);
  auto stopped = [&](const std::string& name) {
    auto i = registered.find(name);
    return i != registered.end() && i->second && i->second->getf(caf::abstract_actor::is_terminated_flag);
  };
  auto tree = env->actor_tree();
  for (auto& [name, a] : tree) {
    std::string state = a.running && !stopped(name) ? "running" : "restarting";
    if (auto s = supervisors.find(name); s != supervisors.end() && s->second.escalated)
      state = "escalated";
    actors.push_back(value::make_object(
      {{"name", name},
       {"kind", a.kind},
       {"parent", a.parent},
       {"state", state},
       {"restarts", static_cast<unsigned long long>(a.restarts)},
       {"lastExit", a.last_exit.empty() ? value() : value(a.last_exit)},
       {"uptimeSeconds", a.running ? seconds(a.started) : 0.0},
       {"mailbox", a.running && a.mailbox >= 0 ? value(static_cast<long long>(a.mailbox)) : value()}}));
  }
  // A supervisor's children: those it was given, and those it started
  // since (the session supervisor's sessions come and go).
  std::map<std::string, std::vector<std::string>> started_by;
  for (auto& [name, a] : tree)
    started_by[a.parent].push_back(name);
  value sups(json::array{});
  for (auto& [name, s] : supervisors) {
    value children(json::array{});
    std::set<std::string> listed(s.children.begin(), s.children.end());
    for (auto& c : s.children)
      children.push_back(c);
    for (auto& c : started_by[name])
      if (!listed.count(c))
        children.push_back(c);
    sups.push_back(value::make_object({{"name", name},
                                       {"parent", s.parent.empty() ? value() : value(s.parent)},
                                       {"strategy", to_string(s.strategy)},
                                       {"maxRestarts", static_cast<unsigned long long>(s.max_restarts)},
                                       {"windowSeconds", static_cast<long long>(s.window.count())},
                                       {"backoffInitialMs", static_cast<long long>(s.backoff_initial.count())},
                                       {"backoffMaxMs", static_cast<long long>(s.backoff_max.count())},
                                       {"children", std::move(children)},
                                       {"escalated", s.escalated}}));
  }
  value escalations(json::array{});
  for (auto& e : env->escalations_since(std::chrono::steady_clock::time_point{}))
    escalations.push_back(value::make_object(
      {{"supervisor", e.supervisor}, {"child", e.child}, {"reason", e.reason}, {"secondsAgo", seconds(e.at)}}));
  auto st = rt.status();
  return value::make_object({{"actors", std::move(actors)},
                             {"supervisors", std::move(sups)},
                             {"recentEscalations", std::move(escalations)},
                             {"restarts", static_cast<unsigned long long>(st.restarts)},
                             {"escalations", static_cast<unsigned long long>(st.escalations)},
                             {"degraded", env->degraded.load()}});
}

value sessions_view(const env_ptr& env) {
  auto now = std::chrono::steady_clock::now();
  value sessions(json::array{});
  for (auto& rec : env->session_records()) {
    if (rec->stateless)
      continue;
    sessions.push_back(value::make_object(
      {{"id", rec->id},
       {"identity", rec->identity},
       {"protocolVersion", rec->protocol_version},
       {"client", rec->client_info["name"].is_string() ? rec->client_info["name"] : value()},
       {"initialized", rec->initialized},
       {"restarts", static_cast<unsigned long long>(rec->restarts)},
       {"idleSeconds", std::chrono::duration_cast<std::chrono::milliseconds>(now - rec->last_used).count() / 1000.0}}));
  }
  auto count = static_cast<unsigned long long>(sessions.as_array().size());
  return value::make_object({{"count", count}, {"sessions", std::move(sessions)}});
}

http_reply view(runtime& rt, const env_ptr& env, const std::string& what) {
  if (what == "actors")
    return json_answer(200, actors_view(rt, env));
  if (what == "sessions")
    return json_answer(200, sessions_view(env));
  if (what == "history")
    return json_answer(200, rt.traffic_history()->to_json());
  auto report = env->health_report();
  if (what == "health")
    return json_answer(200, report.is_null() ? value::make_object({{"status", "starting"}}) : report);
  // Views of one component, as the health supervisor last saw it.
  static const std::map<std::string, std::string> parts = {
    {"queue", "queue"},           {"alerts", "alerts"}, {"breakers", "breakers"},
    {"connectors", "connectors"}, {"cache", "cache"},   {"limits", "limiter"},
    {"telemetry", "telemetry"},   {"tools", "tools"},   {"tasks", "tasks"}};
  auto p = parts.find(what);
  if (p == parts.end())
    return refuse(404, "no admin view " + what
                         + " (views: actors, health, queue, alerts, breakers, connectors, cache, limits, telemetry, "
                           "tools, tasks, sessions, history)");
  const auto& part = report["components"][p->second];
  if (part.is_object())
    return json_answer(200, part);
  return json_answer(200, value::make_object({{"status", report.is_null() ? "starting" : "not running"}}));
}

} // namespace

void add_admin_routes(http_server& server, runtime& rt, config_control control) {
  auto env = rt.environment();
  server.add_route("/admin", [] {
    http_reply r;
    r.content_type = "text/html; charset=utf-8";
    r.body = admin_page_html();
    // The page's buttons act at once: no other site may frame it, and it
    // talks to nothing but this server.
    r.headers = "\r\nContent-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
                "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; frame-ancestors 'none'"
                "\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nCache-Control: no-store";
    return r;
  });
  auto api = [env, &rt, control](const http_request_view& req) -> http_reply {
    const auto& token = env->opts.ops.admin_token_sha256;
    auto what = req.path.substr(std::string("/admin/api/").size());
    bool is_action = req.method == "POST";
    if (!token.empty() && !authorized(token, req.authorization)) {
      if (is_action) {
        log::warn("admin action refused", value::make_object({{"action", what}, {"why", "no valid admin token"}}));
        audit::record({"admin.refused",
                       "denied",
                       "unauthenticated",
                       req.remote,
                       what,
                       {},
                       value::make_object({{"why", "no valid admin token"}})});
      }
      auto r = refuse(401, "the admin API needs Authorization: Bearer <admin token>");
      return r;
    }
    if (req.method == "GET" && what == "config" && control.view)
      return json_answer(200, control.view());
    if (req.method == "GET")
      return view(rt, env, what);
    if (!is_action)
      return refuse(405, "use GET for views and POST for actions");
    if (token.empty()) {
      log::warn("admin action refused", value::make_object({{"action", what}, {"why", "no admin token configured"}}));
      audit::record({"admin.refused",
                     "denied",
                     "unauthenticated",
                     req.remote,
                     what,
                     {},
                     value::make_object({{"why", "no admin token configured"}})});
      return refuse(403, "admin actions need an admin token: set admin.tokenSha256 or BULWARK_ADMIN_TOKEN");
    }
    value body;
    json::parse_error err;
    if (!json::parse(req.body.empty() ? std::string("{}") : req.body, body, err) || !body.is_object())
      return refuse(400, "the body must be a JSON object");
    if (what == "config/reload") {
      if (!control.reload)
        return refuse(404, "this server cannot reload its configuration (it was started by a host program)");
      // The reload writes its own audit entry and log lines.
      auto [status, result] = control.reload(req.remote);
      return json_answer(status, result);
    }
    auto done = action(rt, env, what, body);
    auto reply = json_answer(done.status, done.body);
    // The audit trail: every action with its target and outcome.
    log::info(
      "admin action",
      value::make_object({{"action", what}, {"request", body}, {"status", done.status}, {"result", reply.body}}));
    // The same in the audit log; a kill is its own event, naming its victims.
    audit::record({what == "actors/kill" ? "actor.kill" : "admin.action",
                   done.status < 300 ? "ok" : "failed",
                   "admin",
                   req.remote,
                   what,
                   {},
                   value::make_object({{"request", body}, {"status", done.status}, {"result", std::move(done.body)}})});
    return reply;
  };
  server.add_handler("/admin/api/", [api](const http_request_view& req) {
    auto reply = api(req);
    reply.headers += "\r\nCache-Control: no-store";
    return reply;
  });
}

} // namespace bulwark
