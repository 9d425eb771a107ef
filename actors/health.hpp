// The health supervisor: gathers the health of Bulwark's components
// (breakers, connectors, queue, cache, rate limiter, restart storms) into
// healthy / degraded / unhealthy with reasons, switches degraded mode on and
// off with hysteresis, and publishes what `/health`, `/ready` and
// `/metrics` serve.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/json.hpp"
#include "messages/settings.hpp"

namespace bulwark {

class http_server;
class runtime;
namespace metrics {
class traffic_history;
} // namespace metrics
struct runtime_env;

/// Healthy < degraded < unhealthy.
enum class health_level : uint8_t { healthy, degraded, unhealthy };

const char* to_string(health_level l) noexcept;

/// What one check saw.
struct health_inputs {
  bool core_up = true; ///< The session supervisor and stateless session are registered.
  std::map<std::string, std::string> breakers; ///< service -> closed|open|half_open
  std::map<std::string, std::string> connectors; ///< service -> ready|starting|down
  std::map<std::string, std::string> service_problems; ///< service -> why it is not ready
  std::vector<std::string> unresponsive; ///< components that did not answer the last check
  double queue_fill = 0; ///< 0..1
  uint64_t recent_restarts = 0; ///< actor restarts within the storm window
  uint64_t recent_escalations = 0; ///< restart-intensity breaches within that window
  std::vector<std::string> escalations; ///< what the latest of them said
  /// Why the Redis that instances share state through is unavailable (empty:
  /// it is available, or none is configured).
  std::string shared_state_problem;
};

struct health_verdict {
  health_level level = health_level::healthy;
  std::vector<std::string> reasons;
};

/// Classifies one check. Downstream trouble makes Bulwark degraded, never
/// unhealthy: restarting Bulwark would not mend a service. Unhealthy means
/// Bulwark's own core cannot take requests.
health_verdict assess(const health_inputs& in, const health_thresholds& t);

/// Degraded mode with hysteresis: on after `enter_checks` troubled checks in
/// a row, off once checks stayed clean for `exit_after`. An operator may
/// force it either way until the force is cleared.
class degraded_switch {
public:
  using clock = std::chrono::steady_clock;

  degraded_switch(uint32_t enter_checks, std::chrono::milliseconds exit_after)
      : enter_checks_(enter_checks == 0 ? 1 : enter_checks), exit_after_(exit_after) {}

  /// Records one check; true when the mode changed.
  bool update(clock::time_point now, bool trouble);
  /// Forces the mode (nullopt: automatic again); true when the mode changed.
  bool force(std::optional<bool> on);

  /// New thresholds (a reload); the mode and what led to it stay.
  void retune(uint32_t enter_checks, std::chrono::milliseconds exit_after) noexcept {
    enter_checks_ = enter_checks == 0 ? 1 : enter_checks;
    exit_after_ = exit_after;
  }

  bool on() const noexcept { return forced_ ? *forced_ : on_; }
  std::optional<bool> forced() const noexcept { return forced_; }
  uint64_t switches() const noexcept { return switches_; }

private:
  uint32_t enter_checks_;
  std::chrono::milliseconds exit_after_;
  bool on_ = false;
  std::optional<bool> forced_;
  uint32_t troubled_ = 0;
  std::optional<clock::time_point> clean_since_;
  uint64_t switches_ = 0;
};

/// Registry name of the health supervisor.
inline const std::string health_actor_name = "health";

/// Spawns the health supervisor over the configured `services`; with
/// `history`, each check that ends one of its steps adds a point to it.
health_actor spawn_health(caf::actor_system& sys, env_ptr env, health_settings settings,
                          std::vector<std::string> services,
                          std::shared_ptr<metrics::traffic_history> history = nullptr);

/// Mounts `/health`, `/health/live`, `/health/ready`, `/ready`, `/metrics`
/// and `/metrics.json` on `server`, served from what the health supervisor
/// last published (never blocking on an actor). On the MCP listener
/// (`admin_listener` false) a caller off loopback without the admin token
/// gets only the status of the health routes; `/metrics` demands the
/// metrics token when one is set, and is left out there when configured
/// for the admin listener only.
/// Sets the metrics that are read rather than kept up to date (sessions,
/// uptime, the Redis client's counts) before a scrape.
void refresh_read_metrics(const runtime_env& env);

void add_operator_routes(http_server& server, runtime& rt, bool admin_listener = false);

} // namespace bulwark
