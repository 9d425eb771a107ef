#include "actors/limiter_actor.hpp"

#include <optional>

#include <caf/all.hpp>

#include "actors/limiter.hpp"
#include "actors/shared_state.hpp"
#include "config/api_keys.hpp"
#include "config/metrics.hpp"
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
            return t->answer(busy);
          }
        }
        auto verdict = env.buckets->check(t->request, now);
        if (!verdict.admitted && env.metrics)
          env.metrics->counter("bulwark_rate_limit_refusals_total", {{"limit", verdict.refused_by}}).inc();
        t->answer(verdict);
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

} // namespace bulwark
