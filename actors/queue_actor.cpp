#include "actors/queue_actor.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <optional>

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/queue.hpp"
#include "config/metrics.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

struct queue_state {
  static inline const char* name = "queue";

  env_ptr env;
  priority_queue_core core;
  /// Calls running at once per service (`queue.maxConcurrentPerService`).
  std::size_t max_concurrent = 1;

  /// Takes the current generation's queue settings.
  void configure() {
    auto settings = env->settings();
    auto cfg = settings->ops.queue;
    max_concurrent = std::max<std::size_t>(1, settings->ops.max_concurrent_per_service);
    cfg.concurrency = max_concurrent;
    core.reconfigure(cfg);
  }
  std::map<uint64_t, queued_work_ptr> waiting; ///< Queued, by id.
  std::map<uint64_t, std::pair<std::string, caf::actor_clock::time_point>> running; ///< id -> (lane, start)
  std::map<std::string, uint32_t> busy; ///< lane -> running calls
  std::optional<caf::actor_clock::time_point> armed; ///< Next timer.

  ~queue_state() {
    // Nothing queued is dropped silently: the callers get an error to retry.
    for (auto& [id, w] : waiting)
      w->refuse(error_code::actor_restarted, "the request queue restarted before the call ran; retry",
                value::make_object({{"retry_after_seconds", 1}}));
  }

  std::array<metrics::gauge*, 4> depth_gauges{};
  metrics::gauge* capacity_gauge = nullptr;

  void publish_depth() {
    if (!env->metrics)
      return;
    if (!depth_gauges[0]) {
      static const char* prios[] = {"critical", "high", "normal", "low"};
      for (int i = 0; i < 4; ++i)
        depth_gauges[i] = &env->metrics->gauge("bulwark_queue_depth", {{"priority", prios[i]}});
      capacity_gauge = &env->metrics->gauge("bulwark_queue_capacity");
    }
    capacity_gauge->set(static_cast<double>(core.config().capacity));
    auto d = core.depth();
    for (int i = 0; i < 4; ++i)
      depth_gauges[i]->set(static_cast<double>(d[i]));
  }
};

using queue_pointer = queue_actor::stateful_pointer<queue_state>;

void reject(queue_state& st, uint64_t id, error_code code, std::string message, value data) {
  auto i = st.waiting.find(id);
  if (i == st.waiting.end())
    return;
  auto w = std::move(i->second);
  st.waiting.erase(i);
  w->refuse(code, std::move(message), std::move(data));
}

/// Starts what may run now and arms the timer for what waits.
void pump(queue_pointer self) {
  auto& st = self->state;
  auto now = self->clock().now();
  for (auto id : st.core.expire(now))
    reject(st, id, error_code::deadline_exceeded, "the call's deadline passed while it waited in the queue", {});
  auto limit = st.max_concurrent;
  auto can_run = [&](const std::string& lane) { return st.busy[lane] < limit; };
  while (auto id = st.core.pop(now, can_run)) {
    auto i = st.waiting.find(*id);
    if (i == st.waiting.end())
      continue;
    auto w = std::move(i->second);
    st.waiting.erase(i);
    auto call = w->take();
    if (!call)
      continue;
    st.busy[w->lane]++;
    st.running.emplace(*id, std::make_pair(w->lane, now));
    // The breaker of the moment the call's turn comes: one that restarted
    // while the call waited took no calls of its predecessor's. The call's
    // entry reports its end to this queue (atom::done): a restarted queue
    // does not know the call (its slots start free), so nothing is lost
    // when this one is gone.
    send_call(caf::actor_cast<breaker_actor>(st.env->names.get(breaker_name(w->lane))), call);
  }
  st.publish_depth();
  std::optional<caf::actor_clock::time_point> next = st.core.next_ready(now);
  if (auto d = st.core.next_deadline(); d && (!next || *d < *next))
    next = d;
  if (next && (!st.armed || *next < *st.armed)) {
    st.armed = next;
    auto wait = std::max<steady_clock::duration>(milliseconds(1), *next - now);
    self->delayed_send(self, duration_cast<milliseconds>(wait) + milliseconds(1), atom::timer_v);
  }
}

} // namespace

queue_actor spawn_queue(caf::actor_system& sys, env_ptr env) {
  return sys.spawn([env](queue_pointer self) -> queue_actor::behavior_type {
    auto& st = self->state;
    st.env = env;
    st.configure();
    st.core.set_shed_low(env->degraded.load());
    return {
      [self](atom::enqueue, const queued_work_ptr& w) {
        auto& st = self->state;
        auto now = self->clock().now();
        auto r = st.core.push(w->id, w->prio, w->lane, now, w->not_before, w->deadline);
        if (!r.accepted) {
          auto why = st.core.shed_low() && w->prio == priority::low
                       ? "degraded mode: low-priority work is shed; retry later"
                       : "the request queue is full";
          w->refuse(error_code::overloaded, why,
                    value::make_object({{"retry_after_seconds", std::max<double>(1, r.retry_after.count() / 1000.0)},
                                        {"priority", to_string(w->prio)}}));
          if (st.env->metrics)
            st.env->metrics->counter("bulwark_queue_refusals_total", {{"priority", to_string(w->prio)}}).inc();
          return;
        }
        st.waiting.emplace(w->id, w);
        if (r.shed)
          reject(st, *r.shed, error_code::overloaded, "shed from the full request queue for more urgent work",
                 value::make_object({{"retry_after_seconds", 1}}));
        pump(self);
      },
      [self](atom::done, uint64_t id) {
        auto& st = self->state;
        auto i = st.running.find(id);
        if (i == st.running.end())
          return; // Started by an earlier incarnation of the queue, or refused.
        auto& busy = st.busy[i->second.first];
        if (busy > 0)
          --busy;
        auto took = duration_cast<microseconds>(self->clock().now() - i->second.second);
        st.running.erase(i);
        st.core.record_service_time(took);
        pump(self);
      },
      [self](atom::cancel, uint64_t id) {
        auto& st = self->state;
        if (st.core.remove(id))
          reject(st, id, error_code::request_cancelled, "cancelled while queued", {});
        pump(self);
      },
      [self](atom::timer) {
        self->state.armed.reset();
        pump(self);
      },
      [self](atom::degrade, bool on) { self->state.core.set_shed_low(on); },
      [self](atom::reload) {
        self->state.configure();
        pump(self); // a higher concurrency may let waiting calls run now
      },
      [self](atom::get) {
        auto& st = self->state;
        auto now = self->clock().now();
        auto status = st.core.status(now);
        // The first waiting calls, with where they stand (for operators).
        value entries(json::array{});
        for (auto& [id, w] : st.waiting) {
          if (entries.size() >= 100)
            break;
          auto p = st.core.position(id, now, st.max_concurrent);
          if (!p)
            continue;
          entries.push_back(
            value::make_object({{"id", static_cast<unsigned long long>(id)},
                                {"requestId", w->request_id},
                                {"owner", w->owner.substr(0, 16)},
                                {"tool", w->label},
                                {"service", w->lane},
                                {"priority", to_string(p->prio)},
                                {"position", static_cast<unsigned long long>(p->position)},
                                {"estimatedWaitMs", static_cast<long long>(p->estimated_wait.count())}}));
        }
        status.set("entries", std::move(entries));
        value busy(json::object{});
        for (auto& [lane, n] : st.busy)
          busy.set(lane, static_cast<unsigned long long>(n));
        status.set("running", std::move(busy));
        status.set("maxConcurrentPerService", static_cast<unsigned long long>(st.max_concurrent));
        status.set("mailbox", static_cast<unsigned long long>(self->mailbox().size()));
        return status;
      },
      [self](atom::position, const std::string& owner, const value& request_id) -> value {
        auto& st = self->state;
        auto now = self->clock().now();
        value out(json::array{});
        for (auto& [id, w] : st.waiting) {
          if (w->owner != owner || (!request_id.is_null() && !(w->request_id == request_id)))
            continue;
          auto p = st.core.position(id, now, st.max_concurrent);
          if (!p)
            continue;
          out.push_back(value::make_object({{"requestId", w->request_id},
                                            {"tool", w->label},
                                            {"service", w->lane},
                                            {"priority", to_string(p->prio)},
                                            {"position", static_cast<unsigned long long>(p->position)},
                                            {"estimatedWaitMs", static_cast<long long>(p->estimated_wait.count())}}));
        }
        auto d = st.core.depth();
        return value::make_object({{"queued", std::move(out)},
                                   {"depth", value::make_object({{"critical", static_cast<unsigned long long>(d[0])},
                                                                 {"high", static_cast<unsigned long long>(d[1])},
                                                                 {"normal", static_cast<unsigned long long>(d[2])},
                                                                 {"low", static_cast<unsigned long long>(d[3])}})},
                                   {"averageServiceMs", st.core.average_service_time().count() / 1000.0}});
      },
    };
  });
}

} // namespace bulwark
