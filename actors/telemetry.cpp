#include "actors/telemetry.hpp"

#include <deque>
#include <memory>

#include <unistd.h>

#include <caf/all.hpp>

#include "config/log.hpp"
#include "config/metrics.hpp"
#include "config/secrets.hpp"
#include "transport/http_client.hpp"
#include "transport/redis_client.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

struct telemetry_state {
  static inline const char* name = "telemetry";

  env_ptr env;
  telemetry_settings cfg; ///< What `client` was made from.
  std::unique_ptr<http_client> client;
  /// `cfg.headers`: references are read per export (a rotated file counts
  /// from the next one) and anew on each reload.
  secrets::secret_headers headers;
  trace::resource resource;
  /// Batches waiting for export (as sessions, breakers and connectors
  /// sent them) and the spans they hold.
  std::deque<trace::span_batch> queue;
  std::size_t queued = 0;
  bool exporting = false; ///< One export request at a time.
  bool timer_armed = false;
  uint64_t exported = 0, dropped_full = 0, dropped_failed = 0, requests = 0, failed_requests = 0;
  std::string last_error;

  void count_dropped(uint64_t n, const char* reason) {
    if (env->metrics && n > 0)
      env->metrics->counter("bulwark_trace_spans_dropped_total", {{"reason", reason}}).inc(n);
  }
  metrics::gauge* queue_gauge = nullptr; ///< bulwark_trace_queue_spans
  void note_queue() {
    if (!queue_gauge && env->metrics)
      queue_gauge = &env->metrics->gauge("bulwark_trace_queue_spans");
    if (queue_gauge)
      queue_gauge->set(static_cast<double>(queued));
  }
};

using telemetry_pointer = telemetry_actor::stateful_pointer<telemetry_state>;

/// Takes the current generation's telemetry settings. The client is made
/// anew only when where or how it connects changed.
void configure(telemetry_pointer self) {
  auto& st = self->state;
  auto settings = st.env->settings();
  const auto& t = settings->ops.telemetry;
  st.resource.service_name = t.service_name;
  st.resource.service_version = settings->server_version;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0)
    host[0] = '\0';
  st.resource.instance_id = st.env->redis ? st.env->redis->instance()
                                          : std::string(host) + ":" + std::to_string(static_cast<long long>(getpid()));
  bool same_client = st.client && t.endpoint == st.cfg.endpoint && t.headers == st.cfg.headers;
  st.cfg = t;
  st.headers = secrets::secret_headers(t.headers);
  if (same_client)
    return;
  st.client.reset();
  if (t.endpoint.empty() || !st.env->io) {
    st.count_dropped(st.queued, "disabled");
    st.queue.clear();
    st.queued = 0;
    st.note_queue();
    return;
  }
  http_client_options o;
  auto base = t.endpoint;
  while (!base.empty() && base.back() == '/')
    base.pop_back();
  o.url = base + "/v1/traces";
  o.headers = st.headers.fixed();
  o.max_connections = 1;
  try {
    st.client = std::make_unique<http_client>(*st.env->io, o);
    st.last_error.clear();
  } catch (const std::exception& e) {
    st.last_error = e.what();
    log::error("trace export disabled", value::make_object({{"url", o.url}, {"error", e.what()}}));
  }
}

void arm(telemetry_pointer self) {
  auto& st = self->state;
  if (st.timer_armed || st.queue.empty())
    return;
  st.timer_armed = true;
  self->delayed_send(self, st.cfg.interval, atom::flush_v);
}

/// Sends the oldest waiting spans (a batch at most), unless an export is
/// under way.
void export_batch(telemetry_pointer self) {
  auto& st = self->state;
  if (st.exporting || st.queue.empty() || !st.client)
    return;
  // Whole batches, up to `max_batch` spans (at least one batch).
  std::vector<trace::span_batch> batches;
  std::size_t n = 0;
  while (!st.queue.empty() && (batches.empty() || n + st.queue.front().count <= st.cfg.max_batch)) {
    n += st.queue.front().count;
    batches.push_back(std::move(st.queue.front()));
    st.queue.pop_front();
  }
  st.queued -= n;
  st.note_queue();
  st.exporting = true;
  ++st.requests;
  auto handle = caf::actor_cast<telemetry_actor>(self);
  http_header_list headers{{"Accept", "application/json"}};
  std::string error;
  st.headers.add_to(headers, error);
  if (!error.empty())
    log::warn("trace exporter's secret reference", value::make_object({{"error", error}}));
  st.client->send(
    "POST", trace::otlp_json_pieces(std::move(batches), st.resource), std::move(headers), {},
    [handle, n](http_response r) {
      caf::anon_send(handle, atom::exported_v, static_cast<uint64_t>(n), static_cast<int32_t>(r.status), r.error);
    },
    st.cfg.timeout);
}

} // namespace

void submit_spans(const runtime_env& env, trace::span_batch spans) {
  if (spans.empty())
    return;
  if (auto t = env.names.get(telemetry_actor_name))
    caf::anon_send(caf::actor_cast<telemetry_actor>(t), atom::spans_v, std::move(spans));
}

telemetry_actor spawn_telemetry(caf::actor_system& sys, env_ptr env) {
  return sys.spawn([env](telemetry_pointer self) -> telemetry_actor::behavior_type {
    self->state.env = env;
    configure(self);
    return {
      [self](atom::spans, trace::span_batch& spans) {
        auto& st = self->state;
        if (!st.client)
          return st.count_dropped(spans.count, "disabled");
        if (st.queued + spans.count > st.cfg.max_queue) {
          st.dropped_full += spans.count;
          st.count_dropped(spans.count, "queue_full");
        } else {
          st.queued += spans.count;
          st.queue.push_back(std::move(spans));
          st.note_queue();
        }
        if (st.queued >= st.cfg.max_batch)
          export_batch(self);
        arm(self);
      },
      [self](atom::flush) {
        auto& st = self->state;
        st.timer_armed = false;
        export_batch(self);
        arm(self);
      },
      [self](atom::exported, uint64_t n, int32_t status, const std::string& error) {
        auto& st = self->state;
        st.exporting = false;
        bool ok = error.empty() && status >= 200 && status < 300;
        if (ok) {
          st.exported += n;
          if (st.env->metrics)
            st.env->metrics->counter("bulwark_trace_spans_exported_total").inc(n);
        } else {
          ++st.failed_requests;
          st.dropped_failed += n;
          st.count_dropped(n, "export_failed");
          auto why = error.empty() ? "HTTP " + std::to_string(status) : error;
          // One line per change of the collector's trouble, not one per batch.
          if (why != st.last_error)
            log::warn(
              "trace export failed; its spans are dropped",
              value::make_object(
                {{"endpoint", st.cfg.endpoint}, {"error", why}, {"spans", static_cast<unsigned long long>(n)}}));
          st.last_error = std::move(why);
        }
        if (st.queued >= st.cfg.max_batch)
          export_batch(self);
        arm(self);
      },
      [self](atom::reload) { configure(self); },
      [self](atom::get) {
        auto& st = self->state;
        return value::make_object({{"endpoint", st.cfg.endpoint},
                                   {"exporting", static_cast<bool>(st.client)},
                                   {"sampleRatio", st.cfg.sample_ratio},
                                   {"queued", static_cast<unsigned long long>(st.queued)},
                                   {"maxQueue", static_cast<unsigned long long>(st.cfg.max_queue)},
                                   {"exported", static_cast<unsigned long long>(st.exported)},
                                   {"droppedQueueFull", static_cast<unsigned long long>(st.dropped_full)},
                                   {"droppedExportFailed", static_cast<unsigned long long>(st.dropped_failed)},
                                   {"requests", static_cast<unsigned long long>(st.requests)},
                                   {"failedRequests", static_cast<unsigned long long>(st.failed_requests)},
                                   {"lastError", st.last_error}});
      },
    };
  });
}

} // namespace bulwark
