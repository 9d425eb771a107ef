#include "actors/alert_actor.hpp"

#include <map>
#include <memory>

#include <unistd.h>

#include <caf/all.hpp>

#include "actors/alerts.hpp"
#include "actors/breaker.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "config/secrets.hpp"
#include "transport/http_client.hpp"
#include "transport/redis_client.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

struct alert_state {
  static inline const char* name = "alerts";

  env_ptr env;
  std::unique_ptr<alert_rules> rules;
  std::unique_ptr<http_client> webhook;
  webhook_settings webhook_cfg; /// What `webhook` was made from.
  /// Its headers: references are read per delivery (a rotated file counts
  /// from the next one) and anew on each reload.
  secrets::secret_headers webhook_headers;
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

/// Which process sent an alert: its host, its pid and, in a fleet, its
/// instance id (as in what it shares through Redis).
value instance_of(const runtime_env& env) {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0)
    host[0] = '\0';
  auto out = value::make_object({{"host", std::string(host)}, {"pid", static_cast<long long>(getpid())}});
  if (env.redis)
    out.set("id", env.redis->instance());
  return out;
}

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
  http_header_list headers{{"Accept", "application/json"}};
  std::string error;
  st.webhook_headers.add_to(headers, error);
  if (!error.empty())
    log::warn("alert webhook's secret reference", value::make_object({{"error", error}}));
  st.webhook->send(
    "POST", d->second.body, std::move(headers), {},
    [handle, id](http_response r) {
      caf::anon_send(handle, atom::done_v, id, static_cast<int32_t>(r.status), r.error);
    },
    st.webhook_cfg.timeout);
}

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
                     && wh.tls.ca_file == st.webhook_cfg.tls.ca_file && wh.tls.cert_file == st.webhook_cfg.tls.cert_file
                     && wh.tls.key_file == st.webhook_cfg.tls.key_file;
  st.webhook_cfg = wh;
  st.webhook_headers = secrets::secret_headers(wh.headers);
  if (same_client)
    return;
  st.webhook.reset();
  if (wh.url.empty() || !st.env->io)
    return;
  http_client_options o;
  o.url = wh.url;
  o.headers = st.webhook_headers.fixed();
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

} // namespace

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
          auto level = a.resolved                 ? log_level::info
                       : a.severity == "critical" ? log_level::critical
                                                  : log_level::warning;
          log::write(level, a.resolved ? "alert resolved" : "alert", fields);
          if (st.env->metrics && !a.resolved)
            st.env->metrics->counter("bulwark_alerts_total", {{"rule", a.rule}}).inc();
          if (auto sessions = st.env->names.get(names::session_supervisor)) {
            auto params = value::make_object({{"level", std::string(to_string(level))},
                                              {"logger", "bulwark.alerts"},
                                              {"data", fields},
                                              {"_meta", value::make_object({{"io.bulwark/audience", "admin"}})}});
            self->send(caf::actor_cast<session_supervisor_actor>(sessions), atom::notify_v,
                       std::string("notifications/message"), std::move(params));
          }
          if (st.webhook) {
            auto id = ++st.next_delivery;
            st.deliveries[id] = alert_state::delivery{
              json::dump(value::make_object(
                {{"alert", fields}, {"server", st.env->opts.server_name}, {"instance", instance_of(*st.env)}})),
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
          ++st.dropped; // the webhook never got this alert
          log::error(
            "alert webhook delivery failed",
            value::make_object(
              {{"url", wh.url}, {"attempts", static_cast<long long>(d->second.attempt)}, {"error", st.last_error}}));
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
