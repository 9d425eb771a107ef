#include "actors/breaker.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/gateway_calls.hpp"
#include "actors/shared_state.hpp"
#include "actors/telemetry.hpp"
#include "config/log.hpp"
#include "messages/crypto.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
  }
  return "closed";
}

std::string breaker_name(const std::string& service) {
  return "breaker/" + service;
}

std::string service_supervisor_name(const std::string& service) {
  return "service/" + service;
}

std::string connector_name(const std::string& service) {
  return "connector/" + service;
}

// -- state machine ------------------------------------------------------------------

int64_t circuit_breaker::slice_of(clock::time_point now) const {
  auto width = std::max<clock::duration::rep>(1, std::chrono::duration_cast<clock::duration>(s_.window).count()
                                                   / static_cast<clock::duration::rep>(window_buckets));
  return static_cast<int64_t>(now.time_since_epoch().count() / width);
}

void circuit_breaker::prune(clock::time_point now) {
  auto current = slice_of(now);
  for (auto& b : buckets_)
    if (b.slice >= 0 && current - b.slice >= static_cast<int64_t>(window_buckets)) {
      window_calls_ -= b.calls;
      window_failures_ -= b.failures;
      b = bucket{};
    }
}

void circuit_breaker::clear_window() {
  buckets_.fill(bucket{});
  window_calls_ = window_failures_ = 0;
}

void circuit_breaker::move_to(clock::time_point now, breaker_state to, std::string why) {
  last_ = transition{state_, to, std::move(why)};
  state_ = to;
  ++transitions_;
  probes_in_flight_ = 0;
  probe_successes_ = 0;
  if (to == breaker_state::open)
    opened_at_ = now;
  if (to == breaker_state::closed) {
    consecutive_ = 0;
    clear_window();
  }
}

circuit_breaker::admission circuit_breaker::admit(clock::time_point now) {
  if (held_)
    return state_ == breaker_state::open ? admission{false, false, duration_cast<milliseconds>(s_.open_duration)}
                                         : admission{true, false, milliseconds(0)};
  if (state_ == breaker_state::open) {
    auto waited = now - opened_at_;
    if (waited < s_.open_duration) {
      auto left = duration_cast<milliseconds>(s_.open_duration - waited);
      return {false, false, std::max(left, milliseconds(1))};
    }
    move_to(now, breaker_state::half_open, "open duration elapsed");
  }
  if (state_ == breaker_state::half_open) {
    if (probes_in_flight_ >= s_.half_open_probes)
      return {false, false, milliseconds(100)};
    ++probes_in_flight_;
    return {true, true, milliseconds(0)};
  }
  return {true, false, milliseconds(0)};
}

void circuit_breaker::release(bool probe) {
  if (probe && state_ == breaker_state::half_open && probes_in_flight_ > 0)
    --probes_in_flight_;
}

void circuit_breaker::record(clock::time_point now, bool success, bool probe) {
  if (held_)
    return; // an operator decides
  if (state_ == breaker_state::half_open) {
    if (!probe)
      return; // admitted before the breaker opened; says nothing about now
    if (probes_in_flight_ > 0)
      --probes_in_flight_;
    if (!success) {
      move_to(now, breaker_state::open, "a half-open probe failed");
      return;
    }
    if (++probe_successes_ >= s_.successes_to_close)
      move_to(now, breaker_state::closed, std::to_string(probe_successes_) + " half-open probe(s) succeeded");
    return;
  }
  if (state_ == breaker_state::open)
    return; // a straggler from before it opened
  prune(now);
  auto slice = slice_of(now);
  auto& b = buckets_[static_cast<std::size_t>(slice) % window_buckets];
  if (b.slice != slice)
    b = bucket{slice, 0, 0}; // pruned already, or never used
  ++b.calls;
  ++window_calls_;
  if (!success) {
    ++b.failures;
    ++window_failures_;
  }
  if (success) {
    consecutive_ = 0;
    return;
  }
  ++consecutive_;
  if (consecutive_ >= s_.consecutive_failures) {
    move_to(now, breaker_state::open, std::to_string(consecutive_) + " consecutive failures");
    return;
  }
  if (window_calls_ >= s_.minimum_calls) {
    double rate = static_cast<double>(window_failures_) / static_cast<double>(window_calls_);
    if (rate >= s_.failure_rate)
      move_to(now, breaker_state::open,
              std::to_string(window_failures_) + " of " + std::to_string(window_calls_) + " calls failed within "
                + std::to_string(s_.window.count()) + " s");
  }
}

void circuit_breaker::force(clock::time_point now, breaker_state to, std::string why, bool hold) {
  held_ = hold && to != breaker_state::half_open;
  move_to(now, to, std::move(why));
}

void circuit_breaker::release(clock::time_point now) {
  if (!held_)
    return;
  held_ = false;
  if (state_ == breaker_state::open)
    move_to(now, breaker_state::half_open, "released by an operator");
}

// -- handing calls over ---------------------------------------------------------------------

namespace {

downstream_outcome breaker_gone(const std::string& service) {
  auto o = downstream_outcome::without_answer(
    downstream_outcome::kind::failure, error_code::actor_restarted,
    "the circuit breaker of service " + service + " restarted before the call reached it; retry", false);
  o.retry_after = milliseconds(1000);
  o.data = value::make_object({{"service", service}});
  return o;
}

} // namespace

void send_call(const breaker_actor& breaker, const downstream_call_ptr& call) {
  if (!breaker)
    return call->complete(breaker_gone(call->service));
  caf::anon_send(breaker, atom::call_v, call, make_handoff([call] { call->complete(breaker_gone(call->service)); }));
}

// -- the actor ------------------------------------------------------------------------------

namespace {

struct breaker_actor_state {
  static inline const char* name = "breaker";

  env_ptr env;
  service_config svc;
  std::unique_ptr<circuit_breaker> cb;
  std::mt19937_64 rng{std::random_device{}()};

  struct attempt {
    downstream_call_ptr call;
    uint32_t number = 0; ///< 1 for the first try.
    bool probe = false;
    bool in_flight = false;
    bool reached = false; ///< Some attempt reached the service.
    std::chrono::nanoseconds waited{0}; ///< On the service, over the attempts so far.
    /// The attempt under way: its span and start (while the trace records).
    uint64_t span = 0;
    std::chrono::steady_clock::time_point started{};
    /// Spans recorded of the call here (queue wait, attempts), exported
    /// when it ends.
    trace::span_batch spans;
  };
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, attempt> attempts;

  /// A downstream call that waits for the client's answer to its service's
  /// request (sampling, elicitation, roots), under the token the client
  /// quotes in its `requestState`.
  struct parked_input {
    downstream_call_ptr call;
    caf::actor connector; ///< Which sends the answer down (untyped: see connector_actor).
  };
  std::map<std::string, parked_input> parked;
  uint64_t calls = 0, failures = 0, fast_failures = 0, retries = 0, timeouts = 0;

  ~breaker_actor_state() {
    // Whatever ended this actor, every call it held gets an answer.
    for (auto& [id, a] : attempts)
      if (a.call) {
        bool reached = a.in_flight || a.reached;
        a.call->complete(downstream_outcome::without_answer(
          downstream_outcome::kind::failure, error_code::actor_restarted,
          "the breaker of service " + svc.name
            + (reached ? " stopped while the call was at the service: it may have run"
                       : " stopped before the call reached the service; retry"),
          reached));
      }
  }
};

using breaker_pointer = breaker_actor::stateful_pointer<breaker_actor_state>;

void log_transition(breaker_actor_state& st, bool shared = false) {
  auto& t = st.cb->last_transition();
  // Several instances open and close a service's breaker together (half-open
  // probing stays each instance's own).
  if (!shared && t.to != breaker_state::half_open)
    publish_breaker(st.env, st.svc.name, std::string(to_string(t.to)));
  auto level = t.to == breaker_state::open ? log_level::warning : log_level::info;
  log::write(level, "breaker transition",
             value::make_object({{"service", st.svc.name},
                                 {"from", std::string(to_string(t.from))},
                                 {"to", std::string(to_string(t.to))},
                                 {"why", t.why}}));
}

downstream_outcome cancelled_by_client() {
  return downstream_outcome::without_answer(downstream_outcome::kind::cancelled, error_code::request_cancelled,
                                            "cancelled by the client", false);
}

void finish(breaker_actor_state& st, uint64_t id, downstream_outcome o) {
  auto i = st.attempts.find(id);
  if (i == st.attempts.end())
    return;
  auto call = std::move(i->second.call);
  o.reached = o.reached || i->second.reached;
  o.waited = i->second.waited;
  o.attempts = i->second.number;
  submit_spans(*st.env, std::move(i->second.spans));
  st.attempts.erase(i);
  if (o.unanswered())
    ++st.failures; // the caller falls back (stale copy, static message, error)
  if (o.what == downstream_outcome::kind::timeout)
    ++st.timeouts;
  call->complete(std::move(o));
}

void try_call(breaker_pointer self, uint64_t id);

/// After an attempt failed: try again later, or give up.
void after_failure(breaker_pointer self, uint64_t id, downstream_outcome o) {
  auto& st = self->state;
  auto i = st.attempts.find(id);
  if (i == st.attempts.end())
    return;
  auto& a = i->second;
  auto& r = st.svc.settings.retry;
  a.reached = a.reached || o.reached;
  bool may_repeat = !o.reached || a.call->idempotent;
  auto now = steady_clock::now();
  if (a.number >= r.attempts || !may_repeat || a.call->cancelled || now >= a.call->deadline
      || o.what == downstream_outcome::kind::timeout) {
    if (!may_repeat && a.number < r.attempts)
      o.data = value::make_object(
        {{"retried", false}, {"why", "the call reached the service and the tool is not idempotent"}});
    return finish(st, id, std::move(o));
  }
  // Exponential back-off with jitter, at least what the service asked for.
  auto base = r.base_delay.count() * (1LL << std::min<uint32_t>(a.number - 1, 20));
  auto delay = std::min<long long>(base, r.max_delay.count());
  std::uniform_real_distribution<double> jitter(1.0 - r.jitter, 1.0 + r.jitter);
  delay = static_cast<long long>(static_cast<double>(delay) * jitter(st.rng));
  delay = std::max<long long>(delay, o.retry_after.count());
  if (now + milliseconds(delay) >= a.call->deadline)
    return finish(st, id, std::move(o));
  ++st.retries;
  self->delayed_send(self, milliseconds(delay), atom::retry_v, id);
}

void try_call(breaker_pointer self, uint64_t id) {
  auto& st = self->state;
  auto i = st.attempts.find(id);
  if (i == st.attempts.end())
    return;
  auto& a = i->second;
  if (a.call->cancelled)
    return finish(st, id, cancelled_by_client());
  auto adm = st.cb->admit(steady_clock::now());
  if (!adm.allowed) {
    ++st.fast_failures;
    auto o = downstream_outcome::without_answer(downstream_outcome::kind::failure, error_code::service_unavailable,
                                                "service " + st.svc.name + " is unavailable: its circuit breaker is "
                                                  + std::string(to_string(st.cb->state()))
                                                  + (st.cb->held() ? " (held so by an operator)" : ""),
                                                false);
    o.retry_after = adm.retry_after;
    o.data = value::make_object({{"service", st.svc.name},
                                 {"breaker", std::string(to_string(st.cb->state()))},
                                 {"forced", st.cb->held()},
                                 {"retry_after_seconds", static_cast<double>(adm.retry_after.count()) / 1000.0}});
    return finish(st, id, std::move(o)); // fail fast: no retry against an open breaker
  }
  a.number++;
  a.probe = adm.probe;
  a.in_flight = true;
  if (a.call->trace.recording) {
    a.span = trace::new_span_id();
    a.started = steady_clock::now();
    a.call->attempt_span = a.span;
  }
  auto connector = st.env->names.get(connector_name(st.svc.name));
  if (!connector) {
    a.in_flight = false;
    st.cb->release(a.probe);
    auto o = downstream_outcome::without_answer(downstream_outcome::kind::failure, error_code::service_unavailable,
                                                "service " + st.svc.name + " is restarting", false);
    o.retry_after = milliseconds(1000);
    return after_failure(self, id, std::move(o));
  }
  // A connector that is gone, or killed before it takes the call, never
  // sees it: the handoff reports the attempt unsent, and it is retried or
  // answered like any attempt that did not reach the service.
  auto lost = make_handoff([me = caf::actor_cast<breaker_actor>(self), id, service = st.svc.name] {
    caf::anon_send(me, atom::done_v, id,
                   downstream_outcome::without_answer(
                     downstream_outcome::kind::failure, error_code::actor_restarted,
                     "the connector of service " + service + " restarted before the call reached it", false));
  });
  self->send(caf::actor_cast<connector_actor>(connector), atom::call_v, id, a.call, caf::actor_cast<caf::actor>(self),
             std::move(lost));
}

breaker_actor::behavior_type breaker_behavior(breaker_pointer self, env_ptr env, service_config svc, bool restarted) {
  auto& st = self->state;
  st.env = std::move(env);
  st.svc = std::move(svc);
  st.cb = std::make_unique<circuit_breaker>(st.svc.settings.breaker);
  // A restarted breaker lost what it knew about the service: it starts
  // half-open, so the first calls probe the service instead of trusting it.
  if (restarted) {
    st.cb->force(steady_clock::now(), breaker_state::half_open,
                 "restarted: it no longer knows how the service is doing");
    log_transition(st);
  } else {
    // A new instance joins its peers' view of the service.
    adopt_breaker(st.env, st.svc.name, caf::actor_cast<caf::actor>(self));
  }
  return {
    [self](atom::call, downstream_call_ptr& call, handoff_ptr& handed) {
      if (handed)
        handed->take(); // answered from here on: by finish() or this state's destructor
      auto& st = self->state;
      ++st.calls;
      auto id = st.next_id++;
      auto& a = st.attempts.emplace(id, breaker_actor_state::attempt{}).first->second;
      a.call = call;
      if (call->trace.recording && call->enqueued != steady_clock::time_point{})
        a.spans.add(trace::span::of(call->trace, trace::new_span_id(), call->parent_span, "queue wait",
                                    trace::span_kind::internal, call->enqueued, steady_clock::now())
                      .with("bulwark.service", st.svc.name));
      auto before = st.cb->transitions();
      try_call(self, id);
      if (st.cb->transitions() != before)
        log_transition(st);
    },
    [self](atom::done, uint64_t id, downstream_outcome& o) {
      auto& st = self->state;
      auto i = st.attempts.find(id);
      if (i == st.attempts.end() || !i->second.in_flight)
        return;
      i->second.in_flight = false;
      i->second.waited += o.waited;
      if (auto& a = i->second; a.span != 0) {
        auto s = trace::span::of(a.call->trace, a.span, a.call->parent_span, "attempt " + std::to_string(a.number),
                                 trace::span_kind::internal, a.started, steady_clock::now());
        s.with("bulwark.service", st.svc.name).with("bulwark.attempt", static_cast<long long>(a.number));
        if (o.unanswered())
          s.failed(o.message);
        a.spans.add(s);
        a.span = 0;
      }
      auto before = st.cb->transitions();
      if (o.what != downstream_outcome::kind::cancelled)
        st.cb->record(steady_clock::now(), !o.unanswered(), i->second.probe);
      else
        st.cb->release(i->second.probe);
      if (st.cb->transitions() != before)
        log_transition(st);
      if (o.unanswered())
        return after_failure(self, id, std::move(o));
      finish(st, id, std::move(o));
    },
    [self](atom::retry, uint64_t id) {
      auto& st = self->state;
      auto before = st.cb->transitions();
      try_call(self, id);
      if (st.cb->transitions() != before)
        log_transition(st);
    },
    // Operators: hold the breaker open or closed, half-open it once, or
    // release it ("auto").
    [self](atom::force, const std::string& to) {
      auto& st = self->state;
      auto before = st.cb->transitions();
      if (to == "auto") {
        bool was = st.cb->held();
        st.cb->release(steady_clock::now());
        if (was)
          log::info("breaker released by an operator", value::make_object({{"service", st.svc.name}}));
      } else {
        auto state = to == "open"        ? breaker_state::open
                     : to == "half_open" ? breaker_state::half_open
                                         : breaker_state::closed;
        st.cb->force(steady_clock::now(), state, "forced by an operator", state != breaker_state::half_open);
      }
      if (st.cb->transitions() != before)
        log_transition(st);
    },
    [self](atom::force, const std::string& to, bool) {
      auto& st = self->state;
      auto state = to == "open" ? breaker_state::open : breaker_state::closed;
      // An operator's hold is this instance's own.
      if (st.cb->state() == state || st.cb->held())
        return;
      st.cb->force(steady_clock::now(), state, "another instance's breaker is " + to);
      log_transition(st, true);
    },
    [self](atom::cancel, downstream_call_ptr& call) {
      auto& st = self->state;
      call->cancelled = true;
      for (auto& [id, a] : st.attempts) {
        if (a.call != call)
          continue;
        if (a.in_flight) {
          if (auto c = st.env->names.get(connector_name(st.svc.name)))
            self->send(caf::actor_cast<connector_actor>(c), atom::cancel_v, id);
        } else {
          // Waiting for a retry: end it now.
          finish(st, id, cancelled_by_client());
        }
        return;
      }
    },
    [self](atom::reload, const service_config_ptr& next) {
      auto& st = self->state;
      const auto& was = st.svc.settings.breaker;
      const auto& now = next->settings.breaker;
      bool same = was.consecutive_failures == now.consecutive_failures && was.failure_rate == now.failure_rate
                  && was.window == now.window && was.minimum_calls == now.minimum_calls
                  && was.open_duration == now.open_duration && was.half_open_probes == now.half_open_probes
                  && was.successes_to_close == now.successes_to_close;
      st.svc = *next;
      if (same)
        return;
      // New thresholds judge from a clean slate. Calls in flight report to
      // the new breaker (a probe's slot does not carry over). An operator's
      // hold stays.
      auto held = st.cb->held() ? std::optional<breaker_state>(st.cb->state()) : std::nullopt;
      st.cb = std::make_unique<circuit_breaker>(st.svc.settings.breaker);
      for (auto& [id, a] : st.attempts)
        a.probe = false;
      if (held) {
        st.cb->force(steady_clock::now(), *held, "forced by an operator", true);
        log::info("breaker thresholds changed; the operator's hold stays",
                  value::make_object({{"service", st.svc.name}, {"state", std::string(to_string(*held))}}));
        return;
      }
      publish_breaker(st.env, st.svc.name, "closed");
      log::info("breaker thresholds changed; the breaker starts closed",
                value::make_object({{"service", st.svc.name}}));
    },
    [self](atom::notify, const downstream_call_ptr& dc, std::string& method, value& params) {
      if (dc->target)
        relay_notification(dc->target, method, params);
    },
    [self](atom::park, const downstream_call_ptr& dc, std::string& method, value& params, value& request_id,
           caf::actor& connector) {
      auto& st = self->state;
      if (dc->completed() || !dc->target)
        return; // over already (timed out, cancelled): its outcome is on its way
      // Calls whose time is up no longer wait: their entries go, so the map
      // stays bounded by the calls that can still be answered.
      auto now = steady_clock::now();
      for (auto i = st.parked.begin(); i != st.parked.end();)
        i = i->second.call->deadline < now ? st.parked.erase(i) : std::next(i);
      auto token = crypto::random_hex(16);
      st.parked.emplace(token, breaker_actor_state::parked_input{dc, connector});
      relay_input_request(dc->target, token, method, params, request_id, connector);
    },
    [self](atom::answer, std::string& token, std::string& body, call_ptr& c) {
      auto& st = self->state;
      auto i = st.parked.find(token);
      if (i == st.parked.end() || i->second.call->completed()) {
        c->resume([](const call_ptr& c) {
          c->fail(error_code::invalid_params, "the service call this input belongs to has ended; call the tool again");
        });
        return;
      }
      auto p = std::move(i->second);
      st.parked.erase(i);
      // The downstream call reports to the call that carries the answer.
      p.call->target = c;
      c->resume([dc = p.call, env = st.env](const call_ptr& c) {
        c->on_cancel([dc, env] {
          if (auto breaker = env->names.get(breaker_name(dc->service)))
            caf::anon_send(caf::actor_cast<breaker_actor>(breaker), atom::cancel_v, dc);
        });
      });
      if (p.connector)
        self->send(caf::actor_cast<connector_actor>(p.connector), atom::answer_v, std::move(body));
    },
    [self](atom::done, const downstream_call_ptr& dc, downstream_outcome& o, const handoff_ptr& handed) {
      handed->take();
      auto& st = self->state;
      for (auto i = st.parked.begin(); i != st.parked.end();)
        i = i->second.call == dc ? st.parked.erase(i) : std::next(i);
      // Let go of the client's call: its cancel hook holds this downstream
      // call, so keeping it would be a cycle.
      if (auto to = std::exchange(dc->target, nullptr))
        relay_outcome(*dc, to, std::move(o));
    },
    [self](atom::get) -> value {
      auto& st = self->state;
      return value::make_object({{"service", st.svc.name},
                                 {"mailbox", static_cast<unsigned long long>(self->mailbox().size())},
                                 {"state", std::string(to_string(st.cb->state()))},
                                 {"forced", st.cb->held()},
                                 {"transitions", static_cast<unsigned long long>(st.cb->transitions())},
                                 {"calls", static_cast<unsigned long long>(st.calls)},
                                 {"failures", static_cast<unsigned long long>(st.failures)},
                                 {"fastFailures", static_cast<unsigned long long>(st.fast_failures)},
                                 {"retries", static_cast<unsigned long long>(st.retries)},
                                 {"timeouts", static_cast<unsigned long long>(st.timeouts)},
                                 {"inFlight", static_cast<unsigned long long>(st.attempts.size())}});
    },
  };
}

} // namespace

breaker_actor spawn_breaker(caf::actor_system& sys, env_ptr env, service_config svc, bool restarted) {
  return sys.spawn(breaker_behavior, std::move(env), std::move(svc), restarted);
}

} // namespace bulwark
