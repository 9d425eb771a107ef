#include "actors/operations.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <memory>

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/metrics.hpp"
#include "actors/shared_state.hpp"
#include "config/api_keys.hpp"
#include "config/log.hpp"
#include "transport/http_client.hpp"
#include "transport/redis_client.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

key_settings resolve_key(const operations_options& ops, const std::string& identity) {
  if (identity.rfind("key:", 0) == 0) {
    auto hash = identity.substr(4);
    key_settings k;
    if (auto entry = ops.api_keys ? ops.api_keys->find(hash) : nullptr) {
      k.tier = entry->tier;
      k.prio = entry->prio;
      k.policy = entry->policy;
    } else if (auto i = ops.keys.find(hash); i != ops.keys.end()) {
      k = i->second;
    }
    if (k.tier.empty())
      k.tier = ops.default_tier;
    return k;
  }
  return key_settings{ops.anonymous_tier, std::nullopt, nullptr};
}

// -- rate limiter -----------------------------------------------------------------------

namespace {

struct limiter_state {
  static inline const char* name = "limiter";
  env_ptr env;
  std::optional<settings_view> settings;
  caf::actor_clock::time_point last_sweep{};
};

} // namespace

limiter_actor spawn_limiter(caf::actor_system& sys, env_ptr env) {
  return sys.spawn([env](limiter_actor::stateful_pointer<limiter_state> self) -> limiter_actor::behavior_type {
    self->state.env = env;
    self->state.settings.emplace(*env);
    const auto& ops = (*self->state.settings)->ops;
    // A restarted limiter finds the buckets as they were, in the current
    // mode, under the current generation's limits.
    if (env->generation.load() > 1)
      env->buckets->reconfigure(ops.limits, self->clock().now());
    env->buckets->set_scale(env->degraded.load() ? ops.health.degraded_budget_scale : 1.0);
    self->delayed_send(self, seconds(60), atom::sweep_v);
    return {
      [self](atom::admit, const admission_ticket_ptr& t) {
        auto& env = *self->state.env;
        // Several instances: the buckets in Redis decide, unless it is away.
        if (!t->local && env.redis && env.redis->available()
            && shared_admit(self->state.env, t, env.buckets->scale(), caf::actor_cast<caf::actor>(self)))
          return;
        auto now = self->clock().now();
        // Many distinct keys (a flood of made-up bearer tokens) must not grow
        // the buckets without bound: forget full ones, then refuse newcomers.
        const auto max_tracked_keys = (*self->state.settings)->ops.max_tracked_callers;
        if (!t->request.tier.empty() && env.buckets->keys() >= max_tracked_keys) {
          if (now - self->state.last_sweep >= seconds(1)) {
            env.buckets->sweep(now);
            self->state.last_sweep = now;
          }
          if (env.buckets->keys() >= max_tracked_keys && env.buckets->key_tokens(t->request.key, now).empty()) {
            admission busy;
            busy.refused_by = "global";
            busy.limit = "too many distinct callers at once (" + std::to_string(max_tracked_keys) + ")";
            busy.retry_after = seconds(1);
            if (env.metrics)
              env.metrics->counter("bulwark_rate_limit_refusals_total", {{"limit", "global"}}).inc();
            return t->reply(busy);
          }
        }
        auto verdict = env.buckets->check(t->request, now);
        if (!verdict.admitted && env.metrics)
          env.metrics->counter("bulwark_rate_limit_refusals_total", {{"limit", verdict.refused_by}}).inc();
        t->reply(verdict);
      },
      [self](atom::refund, const admission_request& r) {
        auto& env = self->state.env;
        if (env->redis && env->redis->available())
          return shared_refund(env, r, env->buckets->scale());
        env->buckets->refund(r, self->clock().now());
      },
      [self](atom::degrade, bool on) {
        auto& env = *self->state.env;
        env.buckets->set_scale(on ? (*self->state.settings)->ops.health.degraded_budget_scale : 1.0);
      },
      [self](atom::reload) {
        auto& env = *self->state.env;
        const auto& ops = (*self->state.settings)->ops;
        auto scale = env.buckets->scale();
        env.buckets->set_scale(1.0);
        env.buckets->reconfigure(ops.limits, self->clock().now());
        env.buckets->set_scale(scale < 1.0 ? ops.health.degraded_budget_scale : 1.0);
      },
      [self](atom::sweep) {
        self->state.env->buckets->sweep(self->clock().now());
        self->delayed_send(self, seconds(60), atom::sweep_v);
      },
      [self](atom::get) {
        auto& env = *self->state.env;
        auto now = self->clock().now();
        auto status = env.buckets->status(now);
        value usage(json::object{});
        for (auto& [svc, limits] : env.buckets->config().services)
          usage.set(svc, env.buckets->usage(svc, now));
        status.set("usage", std::move(usage));
        // With Redis, these local buckets decide only while it is away.
        status.set("shared", env.redis && env.redis->available());
        status.set("mailbox", static_cast<unsigned long long>(self->mailbox().size()));
        return status;
      },
    };
  });
}

// -- priority queue worker -----------------------------------------------------------------

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

  void publish_depth() {
    if (!env->metrics)
      return;
    if (!depth_gauges[0]) {
      static const char* prios[] = {"critical", "high", "normal", "low"};
      for (int i = 0; i < 4; ++i)
        depth_gauges[i] = &env->metrics->gauge("bulwark_queue_depth", {{"priority", prios[i]}});
    }
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
    st.busy[w->lane]++;
    st.running.emplace(*id, std::make_pair(w->lane, now));
    // Reports to this queue: a restarted queue does not know the call (its
    // slots start free), so nothing is lost when this one is gone.
    auto finished = [q = caf::actor_cast<queue_actor>(self), id = *id, start = steady_clock::now()] {
      auto took = duration_cast<microseconds>(steady_clock::now() - start).count();
      caf::anon_send(q, atom::done_v, id, static_cast<int64_t>(took));
    };
    w->run(std::move(finished));
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
      [self](atom::done, uint64_t id, int64_t micros) {
        auto& st = self->state;
        auto i = st.running.find(id);
        if (i == st.running.end())
          return; // Started by an earlier incarnation of the queue.
        auto& busy = st.busy[i->second.first];
        if (busy > 0)
          --busy;
        st.running.erase(i);
        st.core.record_service_time(microseconds(micros));
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
          entries.push_back(value::make_object({{"id", static_cast<unsigned long long>(id)},
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
      [self](atom::position, const std::string& owner, const value& request_id, const json_reply& reply) {
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
        reply(value::make_object({{"queued", std::move(out)},
                                   {"depth", value::make_object({{"critical", static_cast<unsigned long long>(d[0])},
                                                                 {"high", static_cast<unsigned long long>(d[1])},
                                                                 {"normal", static_cast<unsigned long long>(d[2])},
                                                                 {"low", static_cast<unsigned long long>(d[3])}})},
                                   {"averageServiceMs", st.core.average_service_time().count() / 1000.0}}));
      },
    };
  });
}

// -- alert manager ------------------------------------------------------------------------

namespace {

struct alert_state {
  static inline const char* name = "alerts";

  env_ptr env;
  std::unique_ptr<alert_rules> rules;
  std::unique_ptr<http_client> webhook;
  webhook_settings webhook_cfg; /// What `webhook` was made from.
  std::unique_ptr<circuit_breaker> webhook_breaker;
  struct delivery {
    std::string body;
    uint32_t attempt = 0;
    bool probe = false;
  };
  std::map<uint64_t, delivery> deliveries;
  uint64_t next_delivery = 0;
  uint64_t delivered = 0, failed = 0, dropped = 0;
  std::string last_error;
};

using alert_pointer = alert_actor::stateful_pointer<alert_state>;

void deliver(alert_pointer self, uint64_t id) {
  auto& st = self->state;
  auto d = st.deliveries.find(id);
  if (d == st.deliveries.end() || !st.webhook)
    return;
  auto admission = st.webhook_breaker->admit(self->clock().now());
  if (!admission.allowed) {
    ++st.dropped;
    log::warn("alert webhook breaker is open; the alert stays in the history only",
              value::make_object({{"url", st.webhook_cfg.url}}));
    st.deliveries.erase(d);
    return;
  }
  d->second.probe = admission.probe;
  ++d->second.attempt;
  auto handle = caf::actor_cast<alert_actor>(self);
  st.webhook->send("POST", d->second.body, {{"Accept", "application/json"}}, {},
                   [handle, id](http_response r) {
                     caf::anon_send(handle, atom::done_v, id, static_cast<int32_t>(r.status), r.error);
                   },
                   st.webhook_cfg.timeout);
}

} // namespace

/// Takes the current generation's alert rules and webhook. The webhook's
/// client is made anew only when where or how it connects changed, so that
/// deliveries in flight finish.
void configure_alerts(alert_pointer self) {
  auto& st = self->state;
  auto settings = st.env->settings();
  const auto& ops = settings->ops;
  st.rules = std::make_unique<alert_rules>(ops.alerts);
  const auto& wh = ops.webhook;
  bool same_client = st.webhook && wh.url == st.webhook_cfg.url && wh.headers == st.webhook_cfg.headers
                     && wh.tls.ca_file == st.webhook_cfg.tls.ca_file
                     && wh.tls.cert_file == st.webhook_cfg.tls.cert_file
                     && wh.tls.key_file == st.webhook_cfg.tls.key_file;
  st.webhook_cfg = wh;
  if (same_client)
    return;
  st.webhook.reset();
  if (wh.url.empty() || !st.env->io)
    return;
  http_client_options o;
  o.url = wh.url;
  o.headers = wh.headers;
  o.max_connections = 2;
  o.tls = wh.tls;
  try {
    st.webhook = std::make_unique<http_client>(*st.env->io, o);
  } catch (const std::exception& e) {
    // A CA file or key that is no PEM: alerts still reach the log and
    // the admin sessions.
    st.last_error = e.what();
    log::error("alert webhook disabled", value::make_object({{"url", o.url}, {"error", e.what()}}));
  }
}

alert_actor spawn_alert_manager(caf::actor_system& sys, env_ptr env) {
  return sys.spawn([env](alert_pointer self) -> alert_actor::behavior_type {
    auto& st = self->state;
    st.env = env;
    breaker_settings bs;
    bs.consecutive_failures = 3;
    bs.open_duration = milliseconds(30000);
    st.webhook_breaker = std::make_unique<circuit_breaker>(bs);
    configure_alerts(self);
    return {
      [self](atom::sample, const health_sample& s) {
        auto& st = self->state;
        for (auto& a : st.rules->evaluate(s)) {
          auto fields = a.to_json();
          log::write(a.severity == "critical" ? log_level::critical : log_level::warning, "alert", fields);
          if (st.env->metrics)
            st.env->metrics->counter("bulwark_alerts_total", {{"rule", a.rule}}).inc();
          if (auto sessions = st.env->names.get(names::session_supervisor)) {
            auto params = value::make_object({{"level", a.severity == "critical" ? "critical" : "warning"},
                                               {"logger", "bulwark.alerts"},
                                               {"data", fields},
                                               {"_meta", value::make_object({{"io.bulwark/audience", "admin"}})}});
            self->send(caf::actor_cast<session_supervisor_actor>(sessions), atom::notify_v,
                       std::string("notifications/message"), std::move(params));
          }
          if (st.webhook) {
            auto id = ++st.next_delivery;
            st.deliveries[id] = alert_state::delivery{json::dump(value::make_object({{"alert", fields},
                                                                                   {"server", st.env->opts.server_name}})),
                                                      0, false};
            deliver(self, id);
          }
        }
      },
      [self](atom::retry, uint64_t id) { deliver(self, id); },
      [self](atom::reload) { configure_alerts(self); },
      [self](atom::done, uint64_t id, int32_t status, const std::string& error) {
        auto& st = self->state;
        auto d = st.deliveries.find(id);
        if (d == st.deliveries.end())
          return;
        bool ok = error.empty() && status >= 200 && status < 300;
        st.webhook_breaker->record(self->clock().now(), ok, d->second.probe);
        if (ok) {
          ++st.delivered;
          st.deliveries.erase(d);
          return;
        }
        st.last_error = error.empty() ? "HTTP " + std::to_string(status) : error;
        auto& wh = st.webhook_cfg;
        if (d->second.attempt >= wh.attempts) {
          ++st.failed;
          log::error("alert webhook delivery failed", value::make_object({{"url", wh.url},
                                                                          {"attempts", static_cast<long long>(d->second.attempt)},
                                                                          {"error", st.last_error}}));
          st.deliveries.erase(d);
          return;
        }
        auto delay = wh.base_delay * (1LL << std::min<uint32_t>(d->second.attempt - 1, 10));
        self->delayed_send(self, delay, atom::retry_v, id);
      },
      [self](atom::get) {
        auto& st = self->state;
        auto status = st.rules->status();
        // The latest alerts, newest last (the whole history is bounded too).
        value recent(json::array{});
        const auto& history = st.rules->history();
        auto from = history.size() > 100 ? history.size() - 100 : 0;
        for (auto i = from; i < history.size(); ++i)
          recent.push_back(history[i].to_json());
        status.set("historySize", static_cast<unsigned long long>(history.size()));
        status.set("history", std::move(recent));
        status.set("webhook", value::make_object({{"configured", static_cast<bool>(st.webhook)},
                                                  {"breaker", std::string(to_string(st.webhook_breaker->state()))},
                                                  {"delivered", static_cast<unsigned long long>(st.delivered)},
                                                  {"failed", static_cast<unsigned long long>(st.failed)},
                                                  {"dropped", static_cast<unsigned long long>(st.dropped)},
                                                  {"pending", static_cast<unsigned long long>(st.deliveries.size())},
                                                  {"lastError", st.last_error}}));
        status.set("mailbox", static_cast<unsigned long long>(self->mailbox().size()));
        return status;
      },
    };
  });
}

} // namespace bulwark
