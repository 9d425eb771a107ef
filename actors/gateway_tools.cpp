#include "actors/gateway_tools.hpp"

#include <chrono>

#include <caf/all.hpp>

#include "actors/ask.hpp"
#include "actors/operations.hpp"
#include "actors/runtime.hpp"
#include "messages/mcp.hpp"

namespace bulwark {

using json::value;

namespace {

/// How long a gateway tool waits for the router's or the queue's answer.
constexpr auto answer_timeout = std::chrono::seconds(5);

/// Runs `then(c, services)` on the call's session with what the router
/// says of the services (`server`, or all of them for ""); a router that
/// does not answer fails the call with a typed error.
template <class Then>
void with_services(const gateway_context_ptr& ctx, const call_ptr& c, std::string server, Then then) {
  ask(
    ctx->rt->system(), ctx->router, answer_timeout,
    [c, then](value services) {
      c->resume([then, services = std::move(services)](const call_ptr& c) { then(c, services); });
    },
    [c](const caf::error&) {
      c->resume([](const call_ptr& c) {
        c->fail(error_code::actor_restarted, "the gateway's router did not answer (restarted or busy); retry",
                value::make_object({{"retry_after_seconds", 1}}));
      });
    },
    atom::get_v, std::move(server));
}

/// Finishes a call with `shown` as the result's text and `structured` as its
/// structured content.
void finish_structured(const call_ptr& c, const value& shown, value structured) {
  auto r = mcp::text_result(json::dump(shown));
  r.set("structuredContent", std::move(structured));
  c->finish(std::move(r));
}

/// The named service of the router's answer, or null.
const value* find_service(const value& services, const std::string& name) {
  for (auto& s : services.as_array())
    if (s["name"].as_string() == name)
      return &s;
  return nullptr;
}

/// Whether the service listed its tools, or is ready (with none).
bool has_tools_to_show(const value& s) {
  return s["listed"].as_bool() || s["status"].as_string() == "ready";
}

/// The service named by the call's `server` argument; answers the call
/// with -32602 and returns null when the generation has none.
std::shared_ptr<const service_config> named_server(const gateway_context& ctx, const call_ptr& c) {
  const auto& server = c->arguments()["server"].as_string();
  auto svc = ctx.service(server);
  if (!svc)
    c->fail(error_code::invalid_params, "no server named '" + server + "'", value::make_object({{"server", server}}));
  return svc;
}

/// Runs the tool `exposed` of `server` with the call's `arguments`, as if it
/// had been called by that name: its input schema, the policy, its priority,
/// idempotence and cache apply.
void execute_exposed(const gateway_context& ctx, const call_ptr& c, const std::string& server, const std::string& tool,
                     const std::string& exposed) {
  auto cat = ctx.rt->current_catalog();
  const auto* spec = exposed.empty() ? nullptr : cat->find_tool(exposed);
  if (!spec || spec->service != server)
    return c->fail(error_code::invalid_params, "server '" + server + "' has no tool named '" + tool + "'",
                   value::make_object({{"server", server}, {"tool", tool}}));
  auto args = c->arguments()["arguments"].is_object() ? c->arguments()["arguments"] : value(json::object{});
  if (ctx.rt->options().validate_arguments)
    if (auto invalid = check_arguments(*spec, args))
      return c->fail(error_code::invalid_params, std::move(invalid->message), std::move(invalid->data));
  c->tool = exposed;
  c->set_arguments(std::move(args));
  spec->handler(c);
}

} // namespace

tool_spec queue_status_tool(const gateway_context_ptr& ctx) {
  tool_spec t;
  t.name = "queue_status";
  t.title = "Queue status";
  t.description = "Shows your calls that wait in Bulwark's priority queue for a downstream service: "
                  "position, priority and estimated wait, and how deep the queue is per priority.";
  t.input_schema = value::make_object(
    {{"type", "object"},
     {"properties",
      value::make_object(
        {{"requestId",
          value::make_object(
            {{"type", value::make_array({"string", "integer"})},
             {"description", "JSON-RPC id of one of your pending calls (all of them when left out)"}})}})}});
  t.annotations = value::make_object({{"readOnlyHint", true}, {"idempotentHint", true}});
  t.handler = [ctx](const call_ptr& c) {
    auto queue = ctx->rt->find(queue_actor_name);
    if (!queue)
      return c->fail(error_code::actor_restarted, "the request queue is restarting; retry",
                     value::make_object({{"retry_after_seconds", 1}}));
    ask(
      ctx->rt->system(), caf::actor_cast<queue_actor>(queue), answer_timeout,
      [c](value status) {
        c->resume([status = std::move(status)](const call_ptr& c) { finish_structured(c, status, status); });
      },
      // The queue was gone, killed before it answered, or too slow.
      [c](const caf::error&) {
        c->resume([](const call_ptr& c) {
          c->fail(error_code::actor_restarted, "the request queue did not answer (restarted or busy); retry",
                  value::make_object({{"retry_after_seconds", 1}}));
        });
      },
      atom::position_v, c->client().identity, c->arguments()["requestId"]);
  };
  return t;
}

std::vector<tool_spec> gateway_tools(const gateway_context_ptr& ctx) {
  std::vector<tool_spec> out;
  auto string_prop = [](const char* what) { return value::make_object({{"type", "string"}, {"description", what}}); };

  tool_spec list;
  list.name = "list_servers";
  list.title = "List servers";
  list.description = "Lists the MCP servers behind this gateway and how many tools each offers you.";
  list.input_schema = value::make_object({{"type", "object"}});
  list.annotations = value::make_object({{"readOnlyHint", true}, {"idempotentHint", true}});
  list.handler = [ctx](const call_ptr& c) {
    with_services(ctx, c, "", [ctx](const call_ptr& c, const value& services) {
      value out(json::array{});
      for (auto& s : services.as_array()) {
        const auto& name = s["name"].as_string();
        long long visible = 0;
        for (auto& t : s["tools"].as_array())
          if (ctx->decide(c->client(), name, t["name"].as_string()).allowed)
            ++visible;
        auto entry = value::make_object({{"name", name},
                                         {"transport", s["transport"]},
                                         {"status", s["status"]},
                                         {"listed", s["listed"]},
                                         {"tools", visible}});
        if (s["reason"].is_string())
          entry.set("reason", s["reason"]);
        out.push_back(std::move(entry));
      }
      finish_structured(c, out, value::make_object({{"servers", out}}));
    });
  };
  out.push_back(std::move(list));

  tool_spec get;
  get.name = "get_server_tools";
  get.title = "Get a server's tools";
  get.description = "Lists the tools of one server behind this gateway, with their input schemas.";
  get.input_schema = value::make_object({{"type", "object"},
                                         {"properties", value::make_object({{"server", string_prop("Server name")}})},
                                         {"required", value::make_array({"server"})}});
  get.annotations = value::make_object({{"readOnlyHint", true}, {"idempotentHint", true}});
  get.handler = [ctx](const call_ptr& c) {
    if (!named_server(*ctx, c))
      return;
    const auto& server = c->arguments()["server"].as_string();
    with_services(ctx, c, server, [ctx, server](const call_ptr& c, const value& services) {
      const auto* s = find_service(services, server);
      if (!s)
        return c->fail(error_code::invalid_params, "no server named '" + server + "'",
                       value::make_object({{"server", server}}));
      // A service that never listed its tools has none to show: say why.
      if (!has_tools_to_show(*s))
        return fail_not_ready(c, server, (*s)["status"].as_string(), (*s)["reason"].as_string());
      value tools(json::array{});
      for (auto& t : (*s)["tools"].as_array())
        if (ctx->decide(c->client(), server, t["name"].as_string()).allowed)
          tools.push_back(t);
      finish_structured(c, tools, value::make_object({{"server", server}, {"tools", tools}}));
    });
  };
  out.push_back(std::move(get));

  tool_spec exec;
  exec.name = "execute_tool";
  exec.title = "Execute a server's tool";
  exec.description = "Calls one tool of one server behind this gateway with the given arguments.";
  exec.input_schema = value::make_object(
    {{"type", "object"},
     {"properties", value::make_object({{"server", string_prop("Server name")},
                                        {"tool", string_prop("Tool name, as get_server_tools lists it")},
                                        {"arguments", value::make_object({{"type", "object"}})}})},
     {"required", value::make_array({"server", "tool"})}});
  // The named service's rate budget applies, as to its own tools.
  exec.service_of = [](const value& arguments) { return arguments["server"].as_string(); };
  exec.handler = [ctx](const call_ptr& c) {
    if (!c->tool.empty() && !c->request_state().empty()) {
      // A 2025-era call runs again once its client answered what the
      // service asked: it goes on as the tool it was resolved to (its
      // arguments are that tool's now), as a call by name would.
      auto cat = ctx->rt->current_catalog();
      if (const auto* spec = cat->find_tool(c->tool))
        return spec->handler(c);
      return c->fail(error_code::service_unavailable, "the tool '" + c->tool + "' is no longer offered",
                     value::make_object({{"tool", c->tool}, {"reachedService", true}}));
    }
    auto svc = named_server(*ctx, c);
    if (!svc)
      return;
    const auto& server = svc->name;
    const auto& tool = c->arguments()["tool"].as_string();
    // A denied tool is refused before anything else is said of it.
    if (ctx->denied(c, server, tool))
      return;
    with_services(ctx, c, server, [ctx, server, tool](const call_ptr& c, const value& services) {
      const auto* s = find_service(services, server);
      std::string exposed = s ? (*s)["exposed"][tool].as_string() : std::string();
      if (exposed.empty() && s && (*s)["status"].as_string() != "ready")
        return fail_not_ready(c, server, (*s)["status"].as_string(), (*s)["reason"].as_string());
      execute_exposed(*ctx, c, server, tool, exposed);
    });
  };
  out.push_back(std::move(exec));
  return out;
}

} // namespace bulwark
