#include "actors/gateway_calls.hpp"

#include <algorithm>

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/limiter_actor.hpp"
#include "actors/operations.hpp"
#include "actors/runtime.hpp"
#include "actors/session.hpp"
#include "config/audit.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "messages/crypto.hpp"
#include "messages/mcp.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

// -- policy --------------------------------------------------------------------------

std::shared_ptr<const service_config> gateway_context::service(const std::string& name) const {
  for (auto& s : cfg->services)
    if (s.name == name)
      return std::shared_ptr<const service_config>(cfg, &s);
  return nullptr;
}

bool gateway_context::has_policy() const {
  // With a key file, any reload may bring a key with its own policy.
  return !cfg->policy.allow.empty() || !cfg->policy.deny.empty() || !cfg->agents.empty() || rt->options().ops.api_keys;
}

policy_decision gateway_context::decide(const client_view& client, const std::string& service,
                                        const std::string& tool) const {
  if (auto own = resolve_key(rt->settings()->ops, client.identity).policy)
    return check_policy(*own, service, tool);
  if (client.info["name"].is_string())
    if (auto a = cfg->agents.find(client.info["name"].as_string()); a != cfg->agents.end())
      return check_policy(a->second, service, tool);
  return check_policy(cfg->policy, service, tool);
}

bool gateway_context::denied(const call_ptr& c, const std::string& service, const std::string& tool) const {
  auto d = decide(c->client(), service, tool);
  if (d.allowed)
    return false;
  c->give_back(); // the service was not used: its budget (and the caller's) is given back
  auto trace = mcp::new_trace_id();
  audit::record({"policy.denied",
                 "denied",
                 c->client().identity,
                 {},
                 service + ":" + tool,
                 trace,
                 value::make_object({{"rule", d.rule}})});
  c->fail(error_code::denied_by_policy,
          "DENIED_BY_POLICY: " + service + ":" + tool + " is denied by the gateway policy (" + d.rule + ")",
          value::make_object({{"rule", d.rule}, {"server", service}, {"tool", tool}, {"traceId", trace}}));
  return true;
}

void fail_not_ready(const call_ptr& c, const std::string& service, const std::string& status,
                    const std::string& problem) {
  auto data = value::make_object({{"server", service}, {"status", status}, {"reachedService", false}});
  if (status == "unavailable") {
    data.set("reason", problem);
    return c->fail(error_code::service_unavailable, "service " + service + " is unavailable: " + problem,
                   std::move(data));
  }
  data.set("retry_after_seconds", 1);
  c->fail(error_code::service_unavailable, "service " + service + " is starting; retry shortly", std::move(data));
}

// -- the call path ---------------------------------------------------------------------

/// One route: a method of one service, with how its entry is called.
struct route_spec {
  gateway_context_ptr ctx;
  std::shared_ptr<const service_config> svc;
  std::string method; ///< tools/call, prompts/get, resources/read, completion/complete
  bool idempotent = false;
  bool cacheable = false;
};
using route_ptr = std::shared_ptr<const route_spec>;

/// What the listener (the service's breaker) needs of a downstream call's
/// route to answer its client.
struct downstream_route {
  route_ptr r;
  std::string cache_key;
};

namespace {

// -- answers ---------------------------------------------------------------------------

/// The freshness hints a 2026-07-28 client gets with a service's result.
/// A result Bulwark caches (`cached_by`, the service whose cache settings
/// apply) is what Bulwark itself answers for the rest of its time in the
/// cache, so the hints say so, scoped as the cache keeps it. Otherwise
/// they are the service's own, less the result's age; a read the service
/// gave none for is "immediately stale, for this caller only" (ttlMs 0,
/// private): Bulwark does not know how long the service's data stays as
/// it is, nor whether it is the same for everyone. (A 2025-era client
/// gets no hints: the session drops them.)
value with_cache_hints(const call_ptr& c, value result, milliseconds age, const service_config* cached_by = nullptr) {
  if (!c->client().stateless || !result.is_object())
    return result;
  const auto& ttl = result["ttlMs"];
  const auto& scope = result["cacheScope"].is_string() ? result["cacheScope"].as_string() : std::string();
  if (cached_by) {
    result.set("ttlMs", std::max<long long>(0, (cached_by->settings.cache_ttl - age).count()));
    result.set("cacheScope", cached_by->settings.cache_public ? "public" : "private");
  } else if (ttl.is_integer()) {
    result.set("ttlMs", std::max<long long>(0, ttl.as_int() - static_cast<long long>(age.count())));
    if (scope != "public" && scope != "private")
      result.set("cacheScope", "private");
  } else if (c->method() == "resources/read") {
    result.set("ttlMs", 0);
    result.set("cacheScope", "private");
  }
  return result;
}

/// A cached result, marked with its age (and whether it is stale).
value marked(value result, const cache_hit& hit, const std::string& service) {
  auto meta = result["_meta"].is_object() ? result["_meta"] : value(json::object{});
  meta.set("io.bulwark/cache",
           value::make_object(
             {{"stale", hit.stale}, {"ageMs", static_cast<long long>(hit.age.count())}, {"service", service}}));
  result.set("_meta", std::move(meta));
  return result;
}

/// A service's own JSON-RPC error, passed on. Its code stays; in
/// production mode its message is redacted as log lines are (an agent
/// corrects its call from it) and its `data` keeps only the members MCP
/// defines, while the whole of it goes to the log line with the trace id
/// (as `detail`). Development mode passes everything on.
void pass_on_error(const call_ptr& c, downstream_outcome o) {
  auto code = static_cast<error_code>(o.code);
  if (mcp::current_error_mode() == mcp::error_mode::development)
    return c->fail(code, o.message, o.data);
  value data(json::object{});
  if (o.data.is_object())
    for (auto* member : {"requiredCapabilities", "supported", "traceId", "reachedService"})
      if (const auto* v = o.data.find(member))
        data.set(member, log::redact(*v));
  auto whole = value::make_object({{"message", o.message}, {"data", o.data}});
  data.set("detail", "the service's error: " + json::dump(log::redact(whole)));
  c->fail(code, log::redact_text(o.message), std::move(data));
}

void answer(const call_ptr& c, downstream_outcome o) {
  switch (o.what) {
    case downstream_outcome::kind::result:
      return c->finish(std::move(o.result));
    case downstream_outcome::kind::error:
      return pass_on_error(c, std::move(o));
    default: {
      auto data = o.data.is_object() ? o.data : value(json::object{});
      // Whether the call may have run: a client must not blindly retry a
      // call that reached the service.
      data.set("reachedService", o.reached);
      if (o.retry_after.count() > 0)
        data.set("retry_after_seconds", static_cast<double>(o.retry_after.count()) / 1000.0);
      return c->fail(static_cast<error_code>(o.code ? o.code : static_cast<int>(error_code::service_unavailable)),
                     o.message, std::move(data));
    }
  }
}

/// The capability the client lacks for a service's request, if any.
std::optional<std::string> missing_capability(const call_ptr& c, const std::string& method) {
  std::string need = method == "sampling/createMessage" ? "sampling"
                     : method == "elicitation/create"   ? "elicitation"
                     : method == "roots/list"           ? "roots"
                                                        : "";
  if (need.empty() || c->client().has_capability(need))
    return std::nullopt;
  return need;
}

/// Answers -32021 for a service's request the client cannot take.
void fail_missing(const call_ptr& c, const std::string& method, const std::string& missing) {
  c->fail(error_code::missing_client_capability,
          "the service asked for " + method + ", but the client did not declare the " + missing + " capability",
          value::make_object({{"requiredCapabilities", value::make_array({missing})}}));
}

/// The exposed name of the tool a tools/call runs.
std::string tool_of(const call_context& c) {
  if (!c.tool.empty())
    return c.tool;
  return c.params()["name"].as_string();
}

/// A call's priority: the tool's configured one, else its caller's key's,
/// else its service's; a client may lower (never raise) it through
/// `_meta["io.bulwark/priority"]`.
priority priority_of(const gateway_context& ctx, const call_ptr& c, const service_config& svc) {
  auto settings = ctx.rt->settings();
  const auto& ops = settings->ops;
  std::optional<priority> p;
  if (c->method() == "tools/call")
    if (auto i = ops.tool_priorities.find(tool_of(*c)); i != ops.tool_priorities.end())
      p = i->second;
  if (!p)
    p = resolve_key(ops, c->client().identity).prio;
  if (!p)
    p = parse_priority(svc.settings.priority);
  auto base = p.value_or(priority::normal);
  const auto& asked = c->params()["_meta"]["io.bulwark/priority"];
  if (asked.is_string())
    if (auto lower = parse_priority(asked.as_string()); lower && *lower > base)
      return *lower;
  return base;
}

// -- the call path ---------------------------------------------------------------------

void call_service(const route_ptr& r, const call_ptr& c, value params, const std::string& cache_key);

/// Answers a call from the service's outcome: caches a good result; when
/// the service could not answer, falls back to a stale copy, then to the
/// static message, then to the typed error.
void conclude(const route_ptr& r, const call_ptr& c, downstream_outcome o, const std::string& key) {
  const auto& svc = *r->svc;
  auto cache = key.empty() ? caf::actor() : r->ctx->rt->find(cache_actor_name);
  if (!o.unanswered()) {
    if (cache && o.what == downstream_outcome::kind::result
        && !(o.result["isError"].is_bool() && o.result["isError"].as_bool())) {
      caf::anon_send(caf::actor_cast<cache_actor>(cache), atom::put_v, key, o.result,
                     static_cast<int64_t>(svc.settings.cache_ttl.count()),
                     static_cast<int64_t>(svc.settings.max_stale.count()));
      o.result = with_cache_hints(c, std::move(o.result), milliseconds(0), &svc);
    } else if (o.what == downstream_outcome::kind::result) {
      o.result = with_cache_hints(c, std::move(o.result), milliseconds(0));
    }
    return answer(c, std::move(o));
  }
  // Counts an answer served for the service in its place (source: fresh,
  // stale or static).
  auto served = [metrics = r->ctx->rt->environment()->metrics, service = svc.name](const char* source) {
    if (metrics)
      metrics->counter("bulwark_fallbacks_total", {{"service", service}, {"source", source}}).inc();
  };
  auto static_or_error = [message = svc.settings.fallback_message, service = svc.name, served](const call_ptr& c,
                                                                                               downstream_outcome o) {
    // The message answers as a tool result: a prompt, a read or a
    // completion has no such shape, and gets the typed error.
    if (message.empty() || c->method() != "tools/call")
      return answer(c, std::move(o));
    served("static");
    auto result = mcp::text_result(message, true);
    result.set("_meta", value::make_object({{"io.bulwark/fallback",
                                             value::make_object({{"reason", o.message}, {"service", service}})}}));
    c->finish(std::move(result));
  };
  if (cache && svc.settings.fallback == fallback_mode::stale) {
    // No answer from the cache is no stale copy.
    look_up(c, caf::actor_cast<cache_actor>(cache), key, true,
            [o, static_or_error, served, service = svc.name,
             metrics = r->ctx->rt->environment()->metrics](const call_ptr& c, std::optional<cache_hit> hit) {
              if (metrics)
                metrics
                  ->counter(hit ? "bulwark_service_cache_hits_total" : "bulwark_service_cache_misses_total",
                            {{"service", service}})
                  .inc();
              if (hit) {
                served(hit->stale ? "stale" : "fresh");
                return c->finish(with_cache_hints(c, marked(hit->result, *hit, service), hit->age));
              }
              static_or_error(c, o);
            });
    return;
  }
  if (svc.settings.fallback == fallback_mode::none)
    return answer(c, std::move(o));
  static_or_error(c, std::move(o));
}

/// Runs the route's method on its service for client call `c`; `params` as
/// the service names things.
void run_call(const route_ptr& r, const call_ptr& c, value params) {
  const auto& state = c->request_state();
  const auto& service = r->svc->name;
  // Fresh cached results answer without the service; results of calls that
  // carry client input are never cached.
  std::string key;
  if (r->cacheable && state.empty() && c->input_responses().is_null()) {
    // Private results are kept per caller: one never sees another's.
    bool shared = r->svc->settings.cache_public;
    // A read is kept under its URI first, so that an update of that URI
    // drops its copies for every caller (see the router's atom::drop).
    const auto& method = r->method;
    std::string uri = method == "resources/read" && params["uri"].is_string() ? params["uri"].as_string() : "";
    if (method != "resources/read" || (!uri.empty() && uri.find('\n') == std::string::npos))
      key = service + "\n" + method + "\n" + (uri.empty() ? "" : uri + "\n")
            + (shared ? std::string("*") : c->client().identity) + "\n" + canonical_json(params);
  }
  if (!key.empty()) {
    if (auto cache = r->ctx->rt->find(cache_actor_name)) {
      // A lookup the cache never answers counts as a miss.
      look_up(c, caf::actor_cast<cache_actor>(cache), key, false,
              [r, params, key](const call_ptr& c, std::optional<cache_hit> hit) {
                if (const auto& m = r->ctx->rt->environment()->metrics)
                  m->counter(hit ? "bulwark_service_cache_hits_total" : "bulwark_service_cache_misses_total",
                             {{"service", r->svc->name}})
                    .inc();
                if (hit) {
                  c->upstream = r->svc->name; // whose answer it is (the access log)
                  c->give_back(); // answered from memory: the service was not used
                  return c->finish(
                    with_cache_hints(c, marked(hit->result, *hit, r->svc->name), hit->age, r->svc.get()));
                }
                call_service(r, c, params, key);
              });
      return;
    }
  }
  call_service(r, c, std::move(params), key);
}

/// The client answered what a service asked (a 2025-era client, or a
/// 2026-07-28 client of a stateful service): the service's breaker passes
/// the answer down and lets the downstream call report to this call from
/// now on.
void resume_with_input(const route_ptr& r, const call_ptr& c) {
  const auto& state = c->request_state();
  auto nl = state.find('\n');
  value request_id;
  json::parse_error err;
  if (nl == std::string::npos || !json::parse(state.substr(nl + 1), request_id, err))
    return c->fail(error_code::invalid_params, "requestState is not one of ours");
  const auto* response = c->input_response("request");
  std::string body = response && response->is_object()
                       ? mcp::result_body(request_id, *response)
                       : mcp::error_body(request_id, error_code::invalid_request, "the client gave no answer");
  // The service's breaker keeps the downstream call that waits for it.
  auto breaker = r->ctx->rt->find(breaker_name(r->svc->name));
  if (!breaker)
    return c->fail(error_code::invalid_params, "the service call this input belongs to has ended; call the tool again");
  caf::anon_send(caf::actor_cast<breaker_actor>(breaker), atom::answer_v, state.substr(0, nl), std::move(body), c);
}

void call_service(const route_ptr& r, const call_ptr& c, value params, const std::string& cache_key) {
  auto& rt = *r->ctx->rt;
  const auto& service = r->svc->name;
  const auto& state = c->request_state();
  if (state.rfind("ds\n", 0) == 0) {
    // The client answers what a stateless service asked: send the answers
    // and the service's own request state with the call again.
    auto downstream_state = state.substr(3);
    params.set("inputResponses", c->input_responses());
    if (!downstream_state.empty())
      params.set("requestState", downstream_state);
  } else if (!state.empty()) {
    return resume_with_input(r, c);
  }
  // A service that acts for the caller gets the caller's token, and a call
  // without one never goes with Bulwark's own credentials instead.
  const auto& auth = r->svc->auth;
  if (auth.acts_for_caller() && !c->client().credential)
    return c->fail(error_code::unauthorized,
                   "service " + service + " acts for the calling user, and this call carries no OAuth access token",
                   value::make_object({{"service", service}, {"reachedService", false}}));
  auto breaker = rt.find(breaker_name(service));
  if (!breaker)
    return c->fail(error_code::service_unavailable, "service " + service + " is restarting",
                   value::make_object({{"service", service}, {"retry_after_seconds", 1}, {"reachedService", false}}));
  auto dc = std::make_shared<downstream_call>();
  dc->service = service;
  dc->method = r->method;
  dc->params = std::move(params);
  dc->idempotent = r->idempotent;
  dc->client_capabilities = c->client().capabilities;
  if (auth.acts_for_caller())
    dc->caller_token = c->client().credential;
  // Retries share the service timeout's budget several times over.
  dc->deadline = steady_clock::now() + r->svc->settings.timeout * 3;
  dc->listener = caf::actor_cast<downstream_listener>(breaker);
  dc->target = c;
  dc->trace = c->trace;
  dc->parent_span = c->handler_span != 0 ? c->handler_span : c->trace.span;
  dc->enqueued = steady_clock::now();
  dc->route = std::make_shared<const downstream_route>(downstream_route{r, cache_key});
  auto handle = caf::actor_cast<breaker_actor>(breaker);
  auto queue = rt.find(queue_actor_name);
  if (!queue) {
    c->on_cancel([dc, handle] { caf::anon_send(handle, atom::cancel_v, dc); });
    send_call(handle, dc);
    return;
  }
  // Wait for a turn in the priority queue, which sends the call to the
  // service's breaker; its end frees the service's slot in the queue.
  auto work = std::make_shared<queued_work>(dc);
  work->prio = priority_of(*r->ctx, c, *r->svc);
  work->lane = service;
  work->owner = c->client().identity;
  work->request_id = c->request_id;
  work->label = c->method() == "tools/call" ? tool_of(*c) : r->method;
  work->not_before = c->not_before;
  work->deadline = dc->deadline;
  auto qh = caf::actor_cast<queue_actor>(queue);
  dc->queue = qh;
  dc->queue_slot = work->id;
  c->on_cancel([dc, rt = &rt, service, qh, id = work->id] {
    caf::anon_send(qh, atom::cancel_v, id);
    if (auto breaker = rt->find(breaker_name(service)))
      caf::anon_send(caf::actor_cast<breaker_actor>(breaker), atom::cancel_v, dc);
  });
  // A queue that is gone, or killed before it takes the work, refuses it
  // as the work is destroyed (see queued_work).
  caf::anon_send(qh, atom::enqueue_v, std::move(work));
}

// -- entries ---------------------------------------------------------------------------

/// The handler of an entry that sends `method` to the service, with the
/// parameters `params` makes of the client's call.
call_handler route(const gateway_context_ptr& ctx, const service_config& s, std::string method,
                   std::function<value(const call_ptr&)> params, bool idempotent, bool cacheable = false) {
  auto r = std::make_shared<route_spec>();
  r->ctx = ctx;
  r->svc = std::shared_ptr<const service_config>(ctx->cfg, &s);
  r->method = std::move(method);
  r->idempotent = idempotent;
  r->cacheable = cacheable;
  return [r = route_ptr(std::move(r)), params = std::move(params)](const call_ptr& c) { run_call(r, c, params(c)); };
}

/// Completion of a prompt's or template's arguments goes to the service,
/// which knows their values, with `ref` as the service names it. It
/// changes nothing, so it may be sent again.
call_handler completion(const gateway_context_ptr& ctx, const service_config& s, value ref) {
  return route(
    ctx, s, "completion/complete",
    [ref = std::move(ref)](const call_ptr& c) {
      auto params = value::make_object({{"ref", ref}, {"argument", c->params()["argument"]}});
      if (c->params()["context"].is_object())
        params.set("context", c->params()["context"]);
      return params;
    },
    true);
}

/// Fills what resources and templates share; reads go to the service by URI.
template <class Spec>
Spec make_readable(const gateway_context_ptr& ctx, const service_config& s, const value& r) {
  Spec spec;
  spec.service = s.name;
  spec.name = r["name"].as_string();
  spec.title = r["title"].as_string();
  spec.description = r["description"].as_string();
  spec.mime_type = r["mimeType"].as_string();
  // Reading changes nothing, so a read is cacheable whenever the service
  // caches at all (unless `cache.resources` is false).
  bool cacheable = s.settings.cache_ttl.count() > 0 && s.settings.cache_resources;
  spec.handler = route(
    ctx, s, "resources/read",
    [](const call_ptr& c) {
      return value::make_object({{"uri", c->arguments()["uri"]}});
    },
    true, cacheable);
  return spec;
}

} // namespace

tool_spec make_tool(const gateway_context_ptr& ctx, const service_config& s, const value& tool,
                    const std::string& exposed, const std::string& own_name) {
  tool_spec spec;
  spec.name = exposed;
  spec.service = s.name;
  spec.title = tool["title"].as_string();
  spec.description = tool["description"].as_string();
  spec.input_schema = tool["inputSchema"].is_object() ? tool["inputSchema"] : value::make_object({{"type", "object"}});
  if (tool["outputSchema"].is_object())
    spec.output_schema = tool["outputSchema"];
  if (tool["annotations"].is_object())
    spec.annotations = tool["annotations"];
  const auto& name = own_name;
  bool idempotent = tool["annotations"]["idempotentHint"].as_bool();
  idempotent = idempotent
               || std::find(s.settings.idempotent_tools.begin(), s.settings.idempotent_tools.end(), name)
                    != s.settings.idempotent_tools.end();
  bool read_only = tool["annotations"]["readOnlyHint"].as_bool();
  bool cacheable = s.settings.cache_ttl.count() > 0
                   && (read_only
                       || std::find(s.settings.cacheable_tools.begin(), s.settings.cacheable_tools.end(), name)
                            != s.settings.cacheable_tools.end());
  auto forward = route(
    ctx, s, "tools/call",
    [name](const call_ptr& c) {
      return value::make_object({{"name", name}, {"arguments", c->arguments()}});
    },
    idempotent, cacheable);
  if (ctx->has_policy()) {
    auto service = s.name;
    spec.visible = [ctx, service, name](const client_view& client) {
      return ctx->decide(client, service, name).allowed;
    };
    spec.handler = [ctx, service, name, forward](const call_ptr& c) {
      if (!ctx->denied(c, service, name))
        forward(c);
    };
  } else {
    spec.handler = std::move(forward);
  }
  // A call that outlasts gateway.taskAfterMs becomes a task of the
  // gateway's (for a client that takes tasks), and goes on.
  if (ctx->cfg->task_after.count() > 0) {
    spec.tasks = task_support::optional;
    spec.task_after = ctx->cfg->task_after;
  }
  return spec;
}

prompt_spec make_prompt(const gateway_context_ptr& ctx, const service_config& s, const value& prompt,
                        const std::string& exposed) {
  prompt_spec spec;
  spec.name = exposed;
  spec.service = s.name;
  spec.title = prompt["title"].as_string();
  spec.description = prompt["description"].as_string();
  for (auto& a : prompt["arguments"].as_array())
    spec.arguments.push_back(
      prompt_argument{a["name"].as_string(), a["description"].as_string(), a["required"].as_bool()});
  auto name = prompt["name"].as_string();
  // Reading a prompt changes nothing: it may be sent again.
  spec.handler = route(
    ctx, s, "prompts/get",
    [name](const call_ptr& c) {
      return value::make_object({{"name", name}, {"arguments", c->arguments()}});
    },
    true);
  spec.complete = completion(ctx, s, value::make_object({{"type", "ref/prompt"}, {"name", name}}));
  return spec;
}

resource_spec make_resource(const gateway_context_ptr& ctx, const service_config& s, const value& r) {
  auto spec = make_readable<resource_spec>(ctx, s, r);
  spec.uri = r["uri"].as_string();
  return spec;
}

resource_template_spec make_template(const gateway_context_ptr& ctx, const service_config& s, const value& t) {
  auto spec = make_readable<resource_template_spec>(ctx, s, t);
  spec.uri_template = t["uriTemplate"].as_string();
  spec.complete = completion(ctx, s, value::make_object({{"type", "ref/resource"}, {"uri", spec.uri_template}}));
  return spec;
}

// -- a downstream call's reports (the listener's side) ---------------------------------------

void relay_notification(const call_ptr& to, const std::string& method, const value& params) {
  to->resume([method, params](const call_ptr& c) {
    if (method == "notifications/progress") {
      std::optional<double> total;
      if (params["total"].is_number())
        total = params["total"].as_double();
      c->progress(params["progress"].as_double(), total,
                  params["message"].is_string() ? params["message"].as_string() : std::string());
    } else if (method == "notifications/message") {
      auto lvl = params["level"].is_string() ? parse_log_level(params["level"].as_string()) : std::nullopt;
      c->log(lvl.value_or(log_level::info), params["data"],
             params["logger"].is_string() ? params["logger"].as_string() : std::string());
    }
  });
}

void relay_input_request(const call_ptr& to, const std::string& token, const std::string& method, const value& params,
                         const value& request_id, const caf::actor& connector) {
  auto state = token + "\n" + json::dump(request_id);
  to->resume([method, params, state, request_id, connector](const call_ptr& c) {
    if (auto missing = missing_capability(c, method)) {
      // Refuse like a direct server would, and tell the service.
      if (connector)
        caf::anon_send(caf::actor_cast<connector_actor>(connector), atom::answer_v,
                       mcp::error_body(request_id, error_code::missing_client_capability,
                                       "the client has no " + *missing + " capability"));
      return fail_missing(c, method, *missing);
    }
    c->require_input(value::make_object({{"request", value::make_object({{"method", method}, {"params", params}})}}),
                     state);
  });
}

void relay_outcome(const downstream_call& dc, const call_ptr& to, downstream_outcome o) {
  if (!dc.route)
    return;
  to->resume([route = dc.route, o = std::move(o)](const call_ptr& c) mutable {
    const auto& r = route->r;
    const auto& service = r->svc->name;
    c->upstream = service;
    c->upstream_wait += o.waited;
    if (o.attempts > 1)
      c->retries += o.attempts - 1;
    // Answered for the service without asking it (a completion it has
    // no capability for): its budget is given back, as for a cache hit.
    if (o.what == downstream_outcome::kind::result && !o.reached)
      c->give_back();
    if (o.what == downstream_outcome::kind::refused) {
      // Refused by the queue while it waited for its turn: it never ran,
      // so what it took of the rate limits goes back.
      c->give_back();
      auto data = o.data.is_object() ? std::move(o.data) : value(json::object{});
      data.set("reachedService", false);
      return c->fail(static_cast<error_code>(o.code), o.message, std::move(data));
    }
    if (o.what == downstream_outcome::kind::result && o.result["resultType"].as_string() == "input_required") {
      // A stateless service needs client input: ask our client, keeping
      // the service's state inside ours.
      const auto& requests = o.result["inputRequests"];
      for (auto& [key, req] : requests.as_object())
        if (auto missing = missing_capability(c, req["method"].as_string()))
          return fail_missing(c, req["method"].as_string(), *missing);
      return c->require_input(requests, "ds\n" + o.result["requestState"].as_string());
    }
    conclude(r, c, std::move(o), route->cache_key);
  });
}

} // namespace bulwark
