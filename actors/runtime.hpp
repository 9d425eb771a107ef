// Public API: Bulwark's actors inside a CAF actor system.
//
// A host program (or Bulwark's own `main`) creates a runtime on its
// `caf::actor_system`, registers tools, resources and prompts, starts it, and
// mounts transports that feed client messages to `dispatch`. Stopping the
// runtime stops Bulwark's actors and leaves the actor system running.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "messages/catalog.hpp"
#include "messages/settings.hpp"
#include "messages/sink.hpp"
#include "transport/endpoint.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace bulwark {

struct inbound;
namespace metrics {
class traffic_history;
} // namespace metrics
using inbound_ptr = std::shared_ptr<inbound>;

/// How a supervisor restarts its children.
enum class restart_strategy : uint8_t {
  one_for_one, ///< Only the child that stopped.
  rest_for_one ///< That child and every child started after it (they depend on it).
};

inline const char* to_string(restart_strategy s) noexcept {
  return s == restart_strategy::rest_for_one ? "rest-for-one" : "one-for-one";
}

/// Health of the runtime's actors as seen by its supervisors.
struct runtime_status {
  uint64_t sessions = 0; ///< Live 2025-era sessions.
  uint64_t restarts = 0; ///< Actor restarts since start.
  uint64_t escalations = 0; ///< Restart-intensity breaches.
  bool running = false;
};

struct runtime_env;

class runtime final : public mcp_endpoint {
public:
  runtime(caf::actor_system& sys, runtime_options opts = {});
  ~runtime() override;

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  // -- catalog -----------------------------------------------------------------------

  /// Registers definitions. After `start`, each change replaces the shared
  /// catalog and sends list_changed notifications.
  void add_tool(tool_spec t);
  void add_resource(resource_spec r);
  void add_resource_template(resource_template_spec t);
  void add_prompt(prompt_spec p);
  bool remove_tool(const std::string& name);
  /// Replaces every definition registered under `group` (the specs' `group`)
  /// with these, in one catalog change, and notifies list changes (the
  /// gateway's downstream tools, resources and prompts).
  void set_group(const std::string& group, std::vector<tool_spec> tools, std::vector<resource_spec> resources,
                 std::vector<resource_template_spec> templates, std::vector<prompt_spec> prompts);
  catalog_ptr current_catalog() const override;

  /// Tells subscribed clients that the resource at `uri` changed.
  void notify_resource_updated(const std::string& uri);

  // -- lifecycle ----------------------------------------------------------------------

  /// Adds a long-lived actor (before `start`), registered under `name` and
  /// restarted when it dies, by the root supervisor or by `supervisor`: one
  /// added with `add_supervisor`, or "operations-supervisor".
  void add_supervised(std::string name, std::function<caf::actor(caf::actor_system&)> spawn,
                      std::string supervisor = {});
  /// Adds a supervisor under the root (before `start`) for children that
  /// belong together; with rest-for-one, a child's restart also restarts the
  /// children added after it.
  void add_supervisor(std::string name, restart_strategy strategy);
  /// After `start`: adds a supervisor under the root with these children,
  /// started in order (a reload added a downstream service). One of the
  /// same name is stopped and replaced.
  void start_group(std::string name, restart_strategy strategy,
                   std::vector<std::pair<std::string, std::function<caf::actor(caf::actor_system&)>>> children);
  /// After `start`: stops a supervisor and its children for good (a reload
  /// removed their service). Calls they hold are answered with errors.
  void stop_group(const std::string& name);
  /// A new configuration generation (a reload, validated by the caller):
  /// what may change while running takes effect in the actors that own it;
  /// rate-limit buckets keep their levels.
  void reconfigure(runtime_options opts);
  /// The current generation's settings and its number (1 at start).
  std::shared_ptr<const runtime_options> settings() const override;
  uint64_t generation() const noexcept;
  /// Spawns the supervision tree. Throws when already running.
  void start();
  /// Stops Bulwark's actors; in-flight requests get an error answer.
  void stop();
  bool running() const noexcept;

  // -- transports ------------------------------------------------------------------------

  /// Routes one client message to its session actor. Never blocks.
  void dispatch(inbound_ptr msg) override;
  /// True when a 2025-era session with this id is live.
  bool has_session(const std::string& id) const;
  /// Opens a 2025-era standalone SSE stream; false for an unknown session.
  bool open_stream(const std::string& session_id, sink_ptr sink, std::string last_event_id) override;
  /// Ends a 2025-era session; false for an unknown one.
  bool end_session(const std::string& id);
  /// The same, for a caller: a session is bound to the identity that
  /// initialized it, and to anyone else it is as unknown as an ended one.
  bool has_session(const std::string& id, const std::string& identity) const override;
  bool open_stream(const std::string& session_id, const std::string& identity, sink_ptr sink,
                   std::string last_event_id) override;
  bool end_session(const std::string& id, const std::string& identity) override;
  /// False when session `id`'s POST answers that are streams leave no room
  /// for a GET stream under `max_streams` (a new GET stream replaces the
  /// session's previous one, so that one does not count).
  bool stream_allowed(const std::string& id) const override;
  /// Several instances (`redis.url`): true when session `id` is not live
  /// here but may be in the shared directory; `take_over_session` then
  /// starts its actor here (when it exists) and calls `done` on some thread.
  /// Whose it is is checked afterwards, as for any session.
  bool session_elsewhere(const std::string& id) const override;
  void take_over_session(const std::string& id, std::function<void()> done) override;

  // -- introspection -------------------------------------------------------------------------

  runtime_status status() const;
  /// The health supervisor's latest report, as `/health` serves it:
  /// `status` (healthy, degraded or unhealthy), `ready`, `reasons`,
  /// `degraded` and `components`. Null until the first check, one
  /// `ops.health.interval` after `start`; after `stop`, the last report.
  json::value health() const;
  /// Every metric in the Prometheus text format, as `/metrics` serves it.
  std::string metrics_text() const;
  /// The same metrics as JSON, as `/metrics.json` serves them.
  json::value metrics_json() const;
  /// Graceful shutdown: marks the runtime as draining (readiness fails, calls
  /// cut off later are answered with shutting_down) and returns how many
  /// calls are still in flight; call again to poll.
  int64_t drain();
  /// Registry names of the live supervised actors (sessions included).
  std::vector<std::string> actor_names() const;
  /// Kills the named actor (`exit_reason::kill`, as a crash would); its
  /// supervisor restarts it. False for an unknown name.
  bool kill_actor(const std::string& name);
  /// What Bulwark's actors share (for actors added with `add_supervised`).
  std::shared_ptr<runtime_env> environment() const;
  /// The current handle of a supervised actor, by registry name (null if none).
  caf::actor find(const std::string& name) const;
  const runtime_options& options() const noexcept;
  caf::actor_system& system() noexcept override;
  std::shared_ptr<metrics::registry> metric_registry() const override;
  /// The last 15 minutes of requests/s, errors/s and latency, overall and
  /// per service (the admin page's charts).
  std::shared_ptr<const metrics::traffic_history> traffic_history() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace bulwark
