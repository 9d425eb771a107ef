// Settings of the operational actors: the rate limiter, the priority queue,
// the cache's bounds, the health supervisor and the alert manager. Plain
// data, filled by the config layer (or a host program) and handed to the
// runtime in `runtime_options::ops`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "actors/alerts.hpp"
#include "actors/limiter.hpp"
#include "actors/queue.hpp"
#include "messages/service.hpp"

namespace bulwark {

class key_store;

/// A configured API key (by the SHA-256 of the key, never the key itself).
struct key_settings {
  std::string tier;                ///< Empty: the default tier for keys.
  std::optional<priority> prio;    ///< Default priority of its calls.
  /// The key's own gateway policy (key file); null: the gateway's.
  std::shared_ptr<const access_policy> policy;
};

struct health_thresholds {
  double queue_fill = 0.8;     ///< Fuller than this is degraded.
  uint64_t restart_storm = 10; ///< This many actor restarts within the storm window is degraded.
};

struct health_settings {
  std::chrono::milliseconds interval{1000};    ///< Between checks.
  uint32_t enter_checks = 1;                   ///< Troubled checks in a row that switch degraded mode on.
  std::chrono::milliseconds exit_after{10000}; ///< Clean for this long switches it off.
  std::chrono::seconds storm_window{60};
  health_thresholds thresholds;
  /// Degraded mode multiplies rate budgets by this (tightens them).
  double degraded_budget_scale = 0.5;
};

/// Where alerts go besides the log.
struct webhook_settings {
  std::string url; ///< Empty: no webhook.
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{5000};
  uint32_t attempts = 3;
  std::chrono::milliseconds base_delay{500};
  service_tls tls; ///< For an https:// URL, as a service's `tls`.
};

/// Shared state of several instances through Redis (`redis` config section).
/// Without a URL every instance keeps its state in memory alone.
struct redis_settings {
  /// `redis://HOST:PORT/DB`; empty: no Redis.
  std::string url;
  /// Prepended to every key and channel, so that deployments can share a server.
  std::string key_prefix = "bulwark:";
  std::chrono::milliseconds connect_timeout{500};
  /// A command without an answer for this long counts as Redis unreachable.
  std::chrono::milliseconds command_timeout{500};
  /// While Redis is unreachable, how often a reconnection is tried.
  std::chrono::milliseconds retry_interval{1000};
  /// Session directory entries live this long after their last use (0: the
  /// sessions' idle timeout).
  std::chrono::seconds session_ttl{0};
  /// Upper bound of any cached copy's life in Redis (fresh plus stale).
  std::chrono::milliseconds cache_max_ttl{86400000};
  /// Published breaker states expire after this long without a refresh.
  std::chrono::milliseconds breaker_ttl{60000};
};

struct operations_options {
  // -- rate limits --
  limiter_config limits = default_limiter_config();
  /// Known keys by the SHA-256 (hex) of the key.
  std::map<std::string, key_settings> keys;
  /// The key file's live keys (`auth.mode` "keys"); an entry there wins over
  /// `keys`. Null without a key file.
  std::shared_ptr<key_store> api_keys;
  /// Tier of a bearer key not listed in `keys`.
  std::string default_tier = "free";
  /// Tier of callers without a key (empty: no per-caller limit). Binding a
  /// server without authentication to loopback is what makes this safe.
  std::string anonymous_tier;
  /// Park limited calls (up to `max_limit_wait`) instead of refusing them.
  bool queue_on_limit = false;
  std::chrono::milliseconds max_limit_wait{30000};
  /// Distinct callers with buckets at most (a flood of keys must not grow
  /// memory): beyond it, idle ones are forgotten and newcomers refused.
  std::size_t max_tracked_callers = 100000;

  // -- priority queue (downstream calls) --
  queue_config queue;
  /// Calls running at once per downstream service; more wait in the queue.
  uint32_t max_concurrent_per_service = 64;
  /// Priority per exposed tool name (beats the key's and the service's).
  std::map<std::string, priority> tool_priorities;

  // -- cache --
  std::size_t cache_entries = 10000;
  std::size_t cache_bytes = 64 << 20;

  // -- health and alerts --
  health_settings health;
  alert_config alerts = default_alert_config();
  webhook_settings webhook;
  /// Identities ("key:<sha256>") whose 2025-era sessions get alerts as log
  /// notifications.
  std::vector<std::string> admin_identities;

  // -- shared state (several instances) --
  redis_settings redis;

  // -- admin API --
  /// SHA-256 (hex) of the admin token; empty: views only, no actions.
  std::string admin_token_sha256;

  // -- metrics --
  /// SHA-256 (hex) of the token `/metrics` and `/metrics.json` demand as
  /// `Authorization: Bearer`; empty: they are open.
  std::string metrics_token_sha256;
  /// Served on the admin listener only (with `admin.port`), not on the MCP
  /// one.
  bool metrics_on_admin_only = false;
};

} // namespace bulwark
