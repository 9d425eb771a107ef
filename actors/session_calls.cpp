// A call of a tool, a prompt, a resource read or a completion in a session:
// its checks, its admission by the rate limiter, the handler's run, what
// the handler reports on the way (progress, log, client input, a timer),
// and its answer.
#include "actors/session.hpp"

#include <algorithm>
#include <exception>

#include <caf/all.hpp>

#include "actors/operations.hpp"
#include "actors/shared_state.hpp"
#include "actors/telemetry.hpp"
#include "config/access_log.hpp"
#include "config/audit.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "messages/crypto.hpp"
#include "messages/schema.hpp"

namespace bulwark {

using json::value;

std::string_view call_name(const session_state::running& r) {
  if (r.context.rfind("resources/read", 0) == 0 || r.context.rfind("completion/complete", 0) == 0)
    return {};
  auto nl = r.context.find('\n');
  return nl == std::string::npos ? std::string_view() : std::string_view(r.context).substr(nl + 1);
}

namespace {

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

} // namespace

void session_state::do_call(const inbound_ptr& in, const std::string& method, const json::value& params,
                            const client_view& client, std::optional<log_level> level) {
  bool stateless = client.stateless;
  int bad = stateless ? 400 : 0;
  auto cat = env->current();
  call_handler handler;
  std::optional<json::value> arguments; // when the handler sees others than the params'
  std::string context;
  std::string service;
  bool may_task = false;
  std::chrono::milliseconds task_after{0};
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
      if (lacks_scope(in, client, "tool", name->as_string()))
        return;
      // Tasks: only a 2026-07-28 client that declared the extension on the
      // request gets one; a tool that runs only as a task refuses others.
      bool declares_tasks = client.stateless && mcp::declares_extension(client.capabilities, mcp::tasks_extension);
      if (tool->tasks == task_support::required && !declares_tasks)
        return reply_error(in, error_code::missing_client_capability,
                           "tool " + name->as_string() + " runs only as a task: declare the "
                             + std::string(mcp::tasks_extension) + " extension in the request's client capabilities",
                           mcp::extension_required(mcp::tasks_extension));
      may_task = declares_tasks && tool->tasks != task_support::none;
      task_after = tool->task_after;
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
      if (lacks_scope(in, client, "prompt", name->as_string()))
        return;
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
    if (lacks_scope(in, client, "resource", uri->as_string()))
      return;
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
  start_call(in, method, params, client, level, std::move(handler), std::move(arguments), std::move(context), service,
             may_task, task_after);
}

void session_state::start_call(const inbound_ptr& in, const std::string& method, const json::value& params,
                               const client_view& client, std::optional<log_level> level, call_handler handler,
                               std::optional<json::value> arguments, std::string context, const std::string& service,
                               bool may_task, std::chrono::milliseconds task_after) {
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
      auto keys = env->state_keys();
      auto bound_to = client.identity + "\n" + context;
      if (std::none_of(keys.begin(), keys.end(), [&](const std::string& key) {
            return crypto::unseal(key, bound_to, rs->as_string(), request_state);
          }))
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
  if (!in->remote.empty())
    call->set_remote(in->remote);
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
  call->trace = in->trace;
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
  r.bytes_in = in->bytes;
  r.may_task = may_task;
  r.task_after = task_after;
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
  r.admission_asked = std::chrono::steady_clock::now();
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
  if (c->trace.recording) {
    auto s = trace::span::of(c->trace, trace::new_span_id(), c->trace.span, "admission", trace::span_kind::internal,
                             r.admission_asked, std::chrono::steady_clock::now());
    s.with("bulwark.admitted", a.admitted);
    if (a.delay.count() > 0)
      s.with("bulwark.delay_ms", static_cast<long long>(a.delay.count()));
    if (!a.admitted)
      s.failed(a.undecided ? "undecided" : "rate limited: " + a.limit);
    hold_span(s);
  }
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
  if (call->method() == "tools/call") {
    call->internal_failure = true;
    return call->finish(mcp::internal_tool_failure(call->params()["name"].as_string(), detail));
  }
  call->fail(error_code::internal_error, "internal error while answering " + call->method(),
             value::make_object({{"detail", detail}}));
}

} // namespace

void session_state::run(running& r) {
  auto call = r.call; // keeps the context alive while the handler runs
  if (call->trace.recording && call->handler_span == 0) {
    call->handler_span = trace::new_span_id();
    call->handler_started = std::chrono::steady_clock::now();
  }
  try {
    r.handler(call);
  } catch (...) {
    auto scope = error_scope(*call, r);
    answer_exception(call);
  }
  // A call that may be a task and did not answer in its first run becomes
  // one (`r` may be gone: the handler may have answered).
  if (call->done() || call->cancelled())
    return;
  auto i = calls.find(call->tag);
  if (i == calls.end() || i->second.call != call || !i->second.may_task || i->second.task)
    return;
  auto& slot = i->second;
  slot.may_task = false; // decided once
  if (slot.task_after.count() <= 0)
    return begin_task(slot);
  // It becomes a task if it is still unanswered then.
  auto me = self;
  call->after(slot.task_after, [me](const call_ptr& c) {
    auto& st = me->state;
    if (auto j = st.calls.find(c->tag); j != st.calls.end() && j->second.call == c && !j->second.task)
      st.begin_task(j->second);
  });
}

session_state::call_error_scope session_state::error_scope(const call_context& c, const running& r) const {
  return call_error_scope(c, call_name(r), r.received, rec->stateless ? std::string_view() : std::string_view(rec->id));
}

// -- call_owner ------------------------------------------------------------------------------------

void session_state::on_progress(call_context& c, double progress, std::optional<double> total, std::string message) {
  auto i = calls.find(c.tag);
  // (A task's request was answered: progress and log messages have no way
  // to the client, and the tasks extension sends none.)
  if (i == calls.end() || i->second.progress_token.is_null() || i->second.task)
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
  if (i == calls.end() || i->second.task)
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

void session_state::look_up(const call_ptr& c, const cache_actor& cache, std::string key, bool allow_stale,
                            lookup_handler then) {
  if (!cache)
    return then(c, std::nullopt);
  auto token = ++next_lookup;
  lookups.emplace(token, pending_lookup{c, std::move(then), std::chrono::steady_clock::now()});
  auto lookup = std::make_shared<cache_lookup>(std::move(key), allow_stale, caf::actor_cast<caf::actor>(self), token);
  caf::anon_send(cache, atom::get_v, std::move(lookup));
}

void session_state::found(uint64_t token, std::optional<cache_hit> hit) {
  auto i = lookups.find(token);
  if (i == lookups.end())
    return;
  auto [call, then, started] = std::move(i->second);
  lookups.erase(i);
  call->cache = !hit ? "miss" : hit->stale ? "stale" : "fresh";
  if (call->trace.recording)
    hold_span(trace::span::of(call->trace, trace::new_span_id(),
                              call->handler_span ? call->handler_span : call->trace.span, "cache lookup",
                              trace::span_kind::internal, started, std::chrono::steady_clock::now())
                .with("bulwark.cache.result", call->cache));
  continue_call(call, [&then, &hit](const call_ptr& c) { then(c, std::move(hit)); });
}

void look_up(const call_ptr& c, const cache_actor& cache, std::string key, bool allow_stale, lookup_handler then) {
  if (auto* session = dynamic_cast<session_state*>(c->owner()))
    session->look_up(c, cache, std::move(key), allow_stale, std::move(then));
}

void session_state::continue_call(const call_ptr& call, const call_handler& next) {
  auto c = calls.find(call->tag);
  if (call->done() || call->cancelled() || c == calls.end() || c->second.call != call)
    return;
  try {
    next(call);
  } catch (...) {
    auto scope = error_scope(*call, c->second);
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
  if (r.task) {
    // The result as the request would have had it, inlined in the task.
    result.erase("resultType");
    return report_task(r, value::make_object({{"status", "completed"}, {"result", std::move(result)}}));
  }
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
  outbound out;
  out.body = mcp::result_body(r.id, result);
  record(c.method(), call_name(r), tool_error ? "tool_error" : "ok",
         c.internal_failure ? static_cast<int>(error_code::internal_error) : 0, r.received, &c, call_facts(c, r, out));
  end_call(c.tag, std::move(out));
}

void session_state::on_fail(call_context& c, error_code code, std::string message, json::value data) {
  auto i = calls.find(c.tag);
  if (i == calls.end())
    return;
  auto scope = error_scope(c, i->second);
  if (i->second.task) {
    auto error = value::make_object({{"code", static_cast<int>(code)}, {"message", message}});
    if (!data.is_null())
      error.set("data", std::move(data));
    return report_task(
      i->second, value::make_object({{"status", "failed"}, {"statusMessage", message}, {"error", std::move(error)}}));
  }
  outbound out;
  out.body = mcp::error_body(i->second.id, code, message, data);
  out.http_status = whole_answer_status(code, c.client().stateless);
  // A service that was reached and failed: the call may have had its
  // effect, so nothing should take the answer for a refusal and send the
  // call again (as a balancer does with a 503).
  if (code == error_code::service_unavailable && data["reachedService"].as_bool())
    out.http_status = 502;
  if (out.http_status == 429 || out.http_status == 503)
    out.retry_after = mcp::retry_after_header(data);
  auto& r = i->second;
  record(c.method(), call_name(r), "error", static_cast<int>(code), r.received, &c, call_facts(c, r, out));
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
  if (r.task) {
    // A task waits for the client's tasks/update. Each request gets a key
    // of its own for the task's life, so that an answer can only be to it.
    r.task->inputs = value(json::object{});
    value shown(json::object{});
    for (auto& [key, req] : requests.as_object()) {
      auto minted = std::to_string(++r.task->keys) + "-" + key;
      r.task->inputs.set(minted, value::make_object({{"key", key}, {"request", req}}));
      shown.set(minted, req);
    }
    r.gathered = value(json::object{});
    r.awaiting = requests.size();
    r.state = std::move(state);
    return report_task(r, value::make_object({{"status", "input_required"}, {"inputRequests", std::move(shown)}}));
  }
  if (c.client().stateless) {
    auto result = value::make_object({{"resultType", "input_required"}, {"inputRequests", std::move(requests)}});
    if (!state.empty())
      result.set("requestState",
                 crypto::seal(env->state_keys().front(), c.client().identity + "\n" + r.context, state));
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
                           std::chrono::steady_clock::time_point received, call_context* call,
                           const answer_facts& facts) {
  auto now = std::chrono::steady_clock::now();
  if (facts.trace && facts.trace->recording)
    export_spans(method, name, code, received, now, call, facts);
  if (access_log::enabled())
    write_access(method, name, outcome, code, received, now, call, facts);
  auto& m = env->metrics;
  if (!m)
    return;
  m->counter("bulwark_requests_total", {{"method", method}, {"tool", name}, {"outcome", outcome}}).inc();
  if (code != 0) {
    bool caller = caused_by_caller(code);
    m->counter("bulwark_errors_total", {{"code", std::to_string(code)}, {"class", caller ? "caller" : "server"}}).inc();
    if (!caller)
      env->failures_total.fetch_add(1, std::memory_order_relaxed);
  }
  env->requests_total.fetch_add(1, std::memory_order_relaxed);
  auto took = now - received;
  auto seconds = std::chrono::duration<double>(took).count();
  m->histogram("bulwark_request_duration_seconds", {{"method", method}}).observe(seconds);
  // Per tool, for the names the catalog has (callers' mistakes name others).
  if (!name.empty() && method == "tools/call")
    m->histogram("bulwark_tool_duration_seconds", {{"tool", name}}).observe(seconds);
  if (env->latency)
    env->latency->observe(seconds);
  // A call a service's cached copy answered names the service but did not
  // wait on it.
  if (call && !call->upstream.empty() && call->upstream_wait.count() > 0) {
    using dseconds = std::chrono::duration<double>;
    m->histogram("bulwark_upstream_duration_seconds", {{"service", call->upstream}})
      .observe(dseconds(call->upstream_wait).count());
    // The wait lies within the call's duration; the clamp only guards the
    // histogram.
    auto own = std::max(took - call->upstream_wait, decltype(took)::zero());
    m->histogram("bulwark_gateway_overhead_seconds", {{"service", call->upstream}}).observe(dseconds(own).count());
  }
}

session_state::answer_facts session_state::call_facts(const call_context& c, const running& r, const outbound& out) {
  return answer_facts{
    &c.trace, out.http_status, r.bytes_in, r.bytes_out + out.body.size(), c.client().identity, c.client().remote, {}};
}

void session_state::record_answer(const inbound_ptr& in, std::string_view name, const char* outcome, int code,
                                  int status, std::size_t bytes_out, std::string_view requested) {
  record(in->message["method"].as_string(), name, outcome, code, in->received, nullptr,
         answer_facts{&in->trace, status, in->bytes, bytes_out, in->identity, in->remote, requested});
}

void session_state::export_spans(const std::string& method, std::string_view name, int code,
                                 std::chrono::steady_clock::time_point received,
                                 std::chrono::steady_clock::time_point now, call_context* call,
                                 const answer_facts& facts) {
  const auto& t = *facts.trace;
  std::string title = method;
  if (!name.empty())
    title.append(" ").append(name);
  auto request = trace::span::of(t, t.span, t.parent, title, trace::span_kind::server, received, now);
  request.with("mcp.method.name", method);
  if (!name.empty())
    request.with(method == "prompts/get" ? "gen_ai.prompt.name" : "gen_ai.tool.name", name);
  if (!rec->stateless)
    request.with("mcp.session.id", rec->id);
  if (facts.status != 0)
    request.with("http.response.status_code", facts.status);
  if (code != 0) {
    request.with("rpc.jsonrpc.error_code", code);
    request.failed("error " + std::to_string(code));
  }
  if (call && call->handler_span != 0) {
    auto handler = trace::span::of(t, call->handler_span, t.span,
                                   call->upstream.empty() ? "handler " + title : "gateway " + call->upstream,
                                   trace::span_kind::internal, call->handler_started, now);
    if (!call->upstream.empty())
      handler.with("bulwark.service", call->upstream);
    if (call->internal_failure)
      handler.failed("the handler failed");
    hold_span(handler);
  }
  hold_span(request);
}

void session_state::hold_span(const trace::span& s) {
  // Spans leave in batches of up to 64: the exporter gets one message for
  // many calls (a message per call cost a tenth of a busy session's
  // throughput), and what a quiet session holds leaves within
  // `span_hold` (the exporter waits longer than that for its own batch).
  // Each is encoded straight into the batch, which starts with a quarter
  // more room than the last one took.
  if (pending_spans.empty()) {
    pending_spans.json.reserve(pending_bytes + pending_bytes / 4);
    if (!flush_armed && self) {
      flush_armed = true;
      self->delayed_send(caf::actor_cast<session_actor>(self), span_hold, atom::flush_v);
    }
  }
  pending_spans.add(s);
  // Never more than the exporter takes in one export or holds at all (a
  // batch that does not fit its queue is dropped whole).
  std::size_t limit = 64;
  if (live)
    limit = std::min<std::size_t>({limit, (*live)->ops.telemetry.max_batch, (*live)->ops.telemetry.max_queue});
  if (pending_spans.count >= limit)
    flush_spans();
}

void session_state::flush_spans() {
  if (pending_spans.empty())
    return;
  pending_bytes = pending_spans.json.size();
  submit_spans(*env, std::exchange(pending_spans, trace::span_batch{}));
}

void session_state::write_access(const std::string& method, std::string_view name, const char* outcome, int code,
                                 std::chrono::steady_clock::time_point received,
                                 std::chrono::steady_clock::time_point now, const call_context* call,
                                 const answer_facts& facts) {
  access_log::entry e;
  char trace_id[32];
  if (facts.trace && facts.trace->valid()) {
    facts.trace->write_trace_id(trace_id);
    e.trace_id = std::string_view(trace_id, sizeof trace_id);
  }
  e.identity = facts.identity;
  e.remote = facts.remote;
  e.era = rec->stateless ? mcp::stateless_version
                         : (rec->protocol_version.empty() ? std::string_view("2025-11-25")
                                                          : std::string_view(rec->protocol_version));
  e.method = method;
  e.name = name.empty() ? facts.requested : name;
  if (call && name.empty() && call->method() == "resources/read")
    e.name = call->params()["uri"].as_string();
  std::string_view o = outcome;
  e.outcome = o == "ok" ? "result" : o == "tool_error" ? "isError" : "error";
  e.code = code;
  // Over stdio there is no HTTP status to tell.
  e.status = facts.identity == "stdio" ? 0 : facts.status;
  e.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(now - received).count();
  e.bytes_in = facts.bytes_in;
  e.bytes_out = facts.bytes_out;
  if (call) {
    e.service = call->upstream;
    if (call->cache)
      e.cache = call->cache;
    e.retries = call->retries;
  }
  access_log::write(e);
}

void session_state::reply(const inbound_ptr& in, json::value result, bool stateless) {
  if (stateless && !result.find("resultType"))
    result.set("resultType", "complete");
  outbound out;
  out.body = mcp::result_body(in->message["id"], result);
  record_answer(in, {}, "ok", 0, out.http_status, out.body.size());
  in->sink->deliver(std::move(out));
}

void session_state::reply_once_shared(const inbound_ptr& in) {
  outbound out;
  out.body = mcp::result_body(in->message["id"], value(json::object{}));
  shared_at = std::chrono::steady_clock::now();
  record_answer(in, {}, "ok", 0, out.http_status, out.body.size());
  publish_session(env, *rec, [sink = in->sink, out = std::move(out)]() mutable { sink->deliver(std::move(out)); });
}

bool session_state::lacks_scope(const inbound_ptr& in, const client_view& client, std::string_view kind,
                                const std::string& name) {
  if (!client.scopes)
    return false;
  auto settings = env->settings();
  const auto& rules = settings->ops.scopes;
  if (rules.empty())
    return false;
  auto missing = scope_rules::missing(rules.required(kind, name), *client.scopes);
  if (missing.empty())
    return false;
  std::string needed;
  for (auto& s : rules.required(kind, name))
    needed += (needed.empty() ? "" : " ") + s;
  value lacking(json::array{});
  for (auto& s : missing)
    lacking.push_back(s);
  // RFC 6750 §3.1 and the MCP authorization spec: the scopes the call
  // needs, so that a client can ask for them (step-up authorization).
  auto challenge =
    "Bearer error=\"insufficient_scope\", scope=\"" + needed + "\", resource_metadata=\"" + rules.metadata_url + "\"";
  audit::record({"scope.denied",
                 "denied",
                 in->identity,
                 in->remote,
                 std::string(kind) + ":" + name,
                 {},
                 value::make_object({{"required", needed}, {"missing", lacking}})});
  reply_error(
    in, error_code::insufficient_scope,
    "Forbidden: the access token lacks the scope " + needed + " that " + std::string(kind) + " " + name + " needs",
    value::make_object({{"requiredScopes", needed}, {"missingScopes", std::move(lacking)}}), 403, std::move(challenge));
  return true;
}

void session_state::reply_error(const inbound_ptr& in, error_code code, std::string message, json::value data,
                                int http_status, std::string challenge) {
  const auto& method = in->message["method"].as_string();
  const auto& named = in->message["params"]["name"];
  mcp::error_context ctx;
  ctx.method = method;
  if (named.is_string())
    ctx.name = named.as_string();
  if (!rec->stateless)
    ctx.session = rec->id;
  ctx.identity = in->identity;
  ctx.remote = in->remote;
  ctx.received = in->received;
  auto trace_id = in->trace.valid() ? in->trace.trace_id() : std::string();
  ctx.trace_id = trace_id;
  mcp::error_context_scope scope(ctx);
  // A tool or prompt the catalog has keeps its metric label (a name it
  // does not have would make the label set unbounded).
  std::string_view name;
  if (named.is_string() && (method == "tools/call" || method == "prompts/get")) {
    auto cat = env->current();
    if (method == "tools/call" ? cat->find_tool(named.as_string()) != nullptr
                               : cat->find_prompt(named.as_string()) != nullptr)
      name = named.as_string();
  }
  outbound out;
  out.body = mcp::error_body(in->message["id"], code, message, data);
  if (http_status != 0)
    out.http_status = http_status;
  if (out.http_status == 429 || out.http_status == 503)
    out.retry_after = mcp::retry_after_header(data);
  if (!challenge.empty())
    out.challenge = std::make_shared<const std::string>(std::move(challenge));
  record_answer(in, name, "error", static_cast<int>(code), out.http_status, out.body.size(),
                named.is_string() ? std::string_view(named.as_string()) : std::string_view());
  in->sink->deliver(std::move(out));
}

std::string session_state::next_event_id(uint64_t stream, const std::string& body, bool last) {
  auto& s = rec->streams[stream];
  auto seq = s.next_seq++;
  s.events.emplace_back(seq, body);
  while (s.events.size() > env->opts.replay_events)
    s.events.pop_front();
  if (env->redis)
    share_event(env, rec->id, stream, seq, body, last);
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
  r.bytes_out += body.size();
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
    out.event_id = next_event_id(r.stream, out.body, true);
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

} // namespace bulwark
