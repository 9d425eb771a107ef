// Calls that run as tasks (the tasks extension, `io.modelcontextprotocol/tasks`,
// 2026-07-28): a call of a tool that supports tasks whose handler does not
// answer in its first run becomes a task. The task store keeps its record;
// the call goes on in this actor, and what its handler reports goes to the
// store instead of the request, which was answered with the task. Also the
// methods tasks/get, tasks/update and tasks/cancel.
#include "actors/session.hpp"

#include <caf/all.hpp>

#include "actors/task_store.hpp"
#include "config/log.hpp"

namespace bulwark {

using json::value;

namespace {

/// How long the store has to create a task before the call goes on as an
/// ordinary one.
constexpr std::chrono::seconds store_answer{5};

bool terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

} // namespace

void session_state::begin_task(running& r) {
  auto store = env->names.get(task_store_name);
  if (!store)
    return; // (no store now: the call is answered on its request)
  r.task = std::make_unique<running::task_part>();
  auto serial = r.call->tag;
  auto me = self;
  self
    ->request(caf::actor_cast<task_store_actor>(store), store_answer, atom::open_v, r.call->client().identity,
              caf::actor_cast<caf::actor>(self), serial)
    .then([me, serial](value& created) { me->state.task_created(serial, std::move(created)); },
          [me, serial](caf::error&) { me->state.task_created(serial, value()); });
}

void session_state::task_created(uint64_t serial, value created) {
  auto i = calls.find(serial);
  if (i == calls.end() || !i->second.task_creating())
    return;
  auto& r = i->second;
  auto early = std::exchange(r.task->early, value());
  if (created.is_null() || !created["taskId"].is_string()) {
    r.task.reset();
    if (const auto* refused = created.find("refused")) {
      // The caller holds as many tasks as it may: the call stops.
      r.call->mark_cancelled();
      const auto& e = *refused;
      outbound out;
      auto code = static_cast<error_code>(e["code"].as_int());
      out.body = mcp::error_body(r.id, code, e["message"].as_string(), e["data"]);
      out.http_status = describe(code).http_status;
      out.retry_after = mcp::retry_after_header(e["data"]);
      record(r.call->method(), call_name(r), "error", static_cast<int>(code), r.received, r.call.get(),
             call_facts(*r.call, r, out));
      return end_call(serial, std::move(out));
    }
    // The store did not answer: the call goes on, answered on its request.
    log::warn("the task store did not answer; the call is answered on its request",
              value::make_object({{"tool", std::string(call_name(r))}}));
    if (early.is_null())
      return;
    // What the handler reported meanwhile is the request's answer.
    const auto& status = early["status"].as_string();
    if (status == "completed")
      return on_finish(*r.call, early["result"]);
    if (status == "failed")
      return on_fail(*r.call, static_cast<error_code>(early["error"]["code"].as_int()),
                     early["error"]["message"].as_string(), early["error"]["data"]);
    r.call->mark_cancelled();
    return on_fail(*r.call, error_code::internal_error,
                   "the call asked for input as a task, and the task store did not answer", value());
  }
  r.task->at = running::task_part::phase::running;
  r.task->id = created["taskId"].as_string();
  // The request is answered with the task; the call goes on without it.
  auto result = value::make_object({{"resultType", "task"}});
  for (auto& [k, v] : created.as_object())
    result.set(k, v);
  outbound out;
  out.what = outbound::kind::response;
  out.body = mcp::result_body(r.id, result);
  record(r.call->method(), call_name(r), "task", 0, r.received, r.call.get(), call_facts(*r.call, r, out));
  r.sink->deliver(std::move(out));
  env->inflight--;
  if (!early.is_null())
    report_task(r, std::move(early));
}

void session_state::report_task(running& r, value state) {
  if (r.task_creating()) {
    r.task->early = std::move(state);
    return;
  }
  bool ended = terminal(state["status"].as_string());
  if (auto store = env->names.get(task_store_name))
    caf::anon_send(caf::actor_cast<task_store_actor>(store), atom::put_v, r.task->id, std::move(state));
  if (ended)
    end_task_call(r.call->tag);
}

void session_state::end_task_call(uint64_t serial) {
  auto i = calls.find(serial);
  if (i == calls.end())
    return;
  i->second.call->detach();
  calls.erase(i);
}

void session_state::task_answered(uint64_t serial, const value& responses) {
  auto i = calls.find(serial);
  if (i == calls.end() || !i->second.task_running() || i->second.awaiting == 0 || !responses.is_object())
    return;
  auto& r = i->second;
  // Answers to keys not outstanding (never issued, answered already) are
  // left alone.
  for (auto& [key, answer] : responses.as_object()) {
    const auto* pending = r.task->inputs.find(key);
    if (!pending)
      continue;
    r.gathered.set((*pending)["key"].as_string(), answer);
    r.task->inputs.erase(key);
    --r.awaiting;
  }
  if (r.awaiting > 0) {
    value shown(json::object{});
    for (auto& [key, pending] : r.task->inputs.as_object())
      shown.set(key, pending["request"]);
    return report_task(r, value::make_object({{"status", "input_required"}, {"inputRequests", std::move(shown)}}));
  }
  report_task(r, value::make_object({{"status", "working"}}));
  r.call->set_input(std::exchange(r.gathered, value()), std::move(r.state));
  run(r);
}

void session_state::task_cancelled(uint64_t serial) {
  auto i = calls.find(serial);
  if (i == calls.end() || !i->second.task)
    return;
  auto& r = i->second;
  r.call->mark_cancelled();
  report_task(r, value::make_object({{"status", "cancelled"}, {"statusMessage", "cancelled by the client"}}));
}

void session_state::do_task_method(const inbound_ptr& in, const std::string& method, const value& params,
                                   const client_view& client) {
  if (!mcp::declares_extension(client.capabilities, mcp::tasks_extension))
    return reply_error(in, error_code::missing_client_capability,
                       method + " needs the " + std::string(mcp::tasks_extension)
                         + " extension declared in the request's client capabilities",
                       mcp::extension_required(mcp::tasks_extension));
  const auto* id = params.find("taskId");
  if (!id || !id->is_string() || id->as_string().empty())
    return reply_error(in, error_code::invalid_params, "params.taskId must be a non-empty string", {}, 400);
  const auto* responses = params.find("inputResponses");
  if (method == "tasks/update" && (!responses || !responses->is_object()))
    return reply_error(in, error_code::invalid_params, "params.inputResponses must be an object", {}, 400);
  auto store = env->names.get(task_store_name);
  if (!store)
    return reply_error(in, error_code::actor_restarted, "the task store is restarting; retry",
                       value::make_object({{"retry_after_seconds", 1}}), 503);
  auto handle = caf::actor_cast<task_store_actor>(store);
  auto task = id->as_string();
  auto me = self;
  auto unknown = [me, in, task] {
    me->state.reply_error(in, error_code::invalid_params, "no task " + task + " (it may have expired)",
                          value::make_object({{"taskId", task}}), 400);
  };
  auto store_gone = [me, in](caf::error&) {
    me->state.reply_error(in, error_code::actor_restarted, "the task store did not answer; retry",
                          value::make_object({{"retry_after_seconds", 1}}), 503);
  };
  if (method == "tasks/get") {
    self->request(handle, store_answer, atom::get_v, task, client.identity)
      .then(
        [me, in, unknown](value& t) {
          if (t.is_null())
            return unknown();
          t.set("resultType", "complete");
          me->state.reply(in, std::move(t), true);
        },
        store_gone);
    return;
  }
  auto acked = [me, in, unknown](bool known) {
    if (!known)
      return unknown();
    me->state.reply(in, value(json::object{}), true);
  };
  if (method == "tasks/update")
    self->request(handle, store_answer, atom::answer_v, task, client.identity, *responses).then(acked, store_gone);
  else
    self->request(handle, store_answer, atom::cancel_v, task, client.identity).then(acked, store_gone);
}

} // namespace bulwark
