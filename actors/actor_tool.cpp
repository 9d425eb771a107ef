#include "actors/actor_tool.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/env.hpp"
#include "actors/runtime.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "messages/mcp.hpp"

namespace bulwark {

using json::value;
using std::chrono::milliseconds;

namespace {

double seconds_of(milliseconds d) {
  return static_cast<double>(d.count()) / 1000.0;
}

/// What every call of one actor-backed tool shares.
struct actor_tool_state {
  std::string tool;
  tool_actor_lookup lookup;
  actor_tool_options opts;
  /// Where the calls' requests run; its clock is the breaker's clock, so
  /// that a simulated system moves both.
  caf::actor_system* sys;
  std::shared_ptr<metrics::registry> metrics;

  std::mutex mtx;
  circuit_breaker breaker; ///< Guarded by `mtx`.

  actor_tool_state(std::string name, tool_actor_lookup find, actor_tool_options o, runtime& rt)
      : tool(std::move(name)),
        lookup(std::move(find)),
        opts(o),
        sys(&rt.system()),
        metrics(rt.environment()->metrics),
        breaker(o.breaker) {}

  circuit_breaker::clock::time_point now() const { return sys->clock().now(); }

  /// Logs and publishes a transition the last breaker operation made
  /// (`before`: the transition count before it). Holds `mtx`.
  void note_transition(uint64_t before) {
    if (breaker.transitions() == before)
      return;
    auto& t = breaker.last_transition();
    log::write(t.to == breaker_state::open ? log_level::warning : log_level::info, "breaker transition",
               value::make_object({{"tool", tool},
                                   {"from", std::string(to_string(t.from))},
                                   {"to", std::string(to_string(t.to))},
                                   {"why", t.why}}));
    if (metrics)
      metrics->gauge("bulwark_actor_tool_breaker_state", {{"tool", tool}}).set(static_cast<double>(t.to));
  }

  circuit_breaker::admission admit(breaker_state& state) {
    std::lock_guard<std::mutex> guard(mtx);
    auto before = breaker.transitions();
    auto adm = breaker.admit(now());
    note_transition(before);
    state = breaker.state();
    return adm;
  }

  /// Records how an admitted call ended; returns the breaker's state after.
  breaker_state record(bool success, bool probe) {
    std::lock_guard<std::mutex> guard(mtx);
    auto before = breaker.transitions();
    breaker.record(now(), success, probe);
    note_transition(before);
    return breaker.state();
  }

  void release(bool probe) {
    std::lock_guard<std::mutex> guard(mtx);
    breaker.release(probe);
  }

  void count_failure(const char* reason) {
    if (metrics)
      metrics->counter("bulwark_actor_tool_failures_total", {{"tool", tool}, {"reason", reason}}).inc();
  }
};

using state_ptr = std::shared_ptr<actor_tool_state>;

/// The CallToolResult for an actor's reply (see `tool_actor`).
value call_result(value reply) {
  if (reply.is_object() && reply["content"].is_array())
    return reply;
  if (reply.is_string())
    return mcp::text_result(reply.as_string());
  auto result = mcp::text_result(json::dump(reply));
  if (reply.is_object())
    result.set("structuredContent", std::move(reply));
  return result;
}

/// A failure of the actor (not of the call): counts against the breaker and
/// answers the call with `code`.
void fail_call(const state_ptr& st, const call_ptr& c, bool probe, error_code code, const char* reason,
               std::string message) {
  auto state = st->record(false, probe);
  st->count_failure(reason);
  auto retry_after = state == breaker_state::open ? st->opts.breaker.open_duration : st->opts.retry_after;
  auto data = value::make_object({{"tool", st->tool},
                                  {"reason", reason},
                                  {"breaker", std::string(to_string(state))},
                                  {"retry_after_seconds", seconds_of(retry_after)}});
  c->resume([code, message = std::move(message), data = std::move(data)](const call_ptr& call) mutable {
    call->fail(code, std::move(message), std::move(data));
  });
}

/// Whether `err` says the request never got an answer because the actor is
/// unreachable (as opposed to an error the actor answered with).
bool actor_unreachable(const caf::error& err) {
  return err == caf::sec::request_receiver_down || err == caf::sec::cannot_forward_to_invalid_actor
         || err == caf::sec::no_route_to_receiving_node;
}

void run_call(const state_ptr& st, const call_ptr& c) {
  breaker_state state;
  auto adm = st->admit(state);
  if (!adm.allowed) {
    st->count_failure("breaker_open");
    return c->fail(error_code::service_unavailable,
                   "tool " + st->tool + " is unavailable: its circuit breaker is " + std::string(to_string(state)),
                   value::make_object({{"tool", st->tool},
                                       {"reason", "breaker_open"},
                                       {"breaker", std::string(to_string(state))},
                                       {"retry_after_seconds", seconds_of(adm.retry_after)}}));
  }
  auto probe = adm.probe;
  auto handle = st->lookup ? st->lookup() : tool_actor{};
  if (!handle)
    return fail_call(st, c, probe, error_code::service_unavailable, "no_actor",
                     "no actor is running for tool " + st->tool);
  // Exactly one of the reply, the error and a cancellation settles the
  // breaker admission.
  auto settled = std::make_shared<std::atomic<bool>>(false);
  auto asker = st->sys->spawn([st, c, probe, handle, settled, args = c->arguments()](caf::event_based_actor* self) {
    self->request(handle, st->opts.timeout, atom::call_v, st->tool, args)
      .then(
        [st, c, probe, settled](value& reply) {
          if (settled->exchange(true))
            return;
          st->record(true, probe);
          c->resume(
            [reply = std::move(reply)](const call_ptr& call) mutable { call->finish(call_result(std::move(reply))); });
        },
        [st, c, probe, settled](caf::error& err) {
          if (settled->exchange(true))
            return;
          if (err == caf::sec::request_timeout)
            return fail_call(st, c, probe, error_code::deadline_exceeded, "timeout",
                             "the actor of tool " + st->tool + " did not answer within "
                               + std::to_string(st->opts.timeout.count()) + " ms");
          if (actor_unreachable(err))
            return fail_call(st, c, probe, error_code::service_unavailable, "actor_down",
                             "the actor of tool " + st->tool + " is down");
          // The actor refused the call: a tool error for the client, and an
          // answer (the actor works) for the breaker.
          st->record(true, probe);
          auto text = "tool " + st->tool + " failed: " + st->sys->render(err);
          c->resume([text = std::move(text)](const call_ptr& call) mutable {
            call->finish(mcp::text_result(std::move(text), true));
          });
        });
  });
  // The client gave up: free the admission and stop waiting for the actor.
  c->on_cancel([st, probe, settled, asker] {
    if (!settled->exchange(true))
      st->release(probe);
    caf::anon_send_exit(asker, caf::exit_reason::user_shutdown);
  });
}

} // namespace

tool_spec actor_tool(runtime& rt, std::string name, std::string description, json::value input_schema,
                     tool_actor_lookup lookup, actor_tool_options opts) {
  auto st = std::make_shared<actor_tool_state>(name, std::move(lookup), opts, rt);
  if (st->metrics) {
    st->metrics->describe("bulwark_actor_tool_breaker_state",
                          "Circuit breaker per actor-backed tool: 0 closed, 1 open, 2 half-open.",
                          metrics::kind::gauge);
    st->metrics->describe("bulwark_actor_tool_failures_total",
                          "Failed calls of actor-backed tools, by reason (actor_down, no_actor, timeout, "
                          "breaker_open).",
                          metrics::kind::counter);
    st->metrics->gauge("bulwark_actor_tool_breaker_state", {{"tool", st->tool}}).set(0);
  }
  tool_spec t;
  t.name = std::move(name);
  t.description = std::move(description);
  t.input_schema = std::move(input_schema);
  t.handler = [st](const call_ptr& c) { run_call(st, c); };
  return t;
}

tool_spec actor_tool(runtime& rt, std::string name, std::string description, json::value input_schema,
                     tool_actor handle, actor_tool_options opts) {
  return actor_tool(
    rt, std::move(name), std::move(description), std::move(input_schema),
    [handle = std::move(handle)] { return handle; }, opts);
}

} // namespace bulwark
