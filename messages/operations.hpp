// Values the operational actors exchange: a call asking the rate limiter
// for admission and its verdict, and the health sample the alert rules
// look at. Plain data; the actors and the pure state machines behind them
// (actors/limiter.hpp, actors/alerts.hpp) both use them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bulwark {

// -- admission ------------------------------------------------------------------------

/// One call asking to be admitted.
struct admission_request {
  /// Who pays: a user, an API key, a session.
  std::string key;
  /// The key's tier; empty means the key has no per-key limit.
  std::string tier;
  /// The downstream service; empty when the call is not a service call.
  std::string service;
  /// Above zero the call may be admitted with a delay of up to this long
  /// instead of being refused (queue mode).
  std::chrono::milliseconds max_wait{0};
};

/// The limiter's verdict.
struct admission {
  bool admitted = false;
  /// The level that refused: "user_quota", "service" or "global".
  std::string refused_by;
  /// The refusing limit in words, e.g. "free tier: 10 per minute".
  std::string limit;
  /// When a retry can succeed (at least 1 ms); zero when retrying cannot
  /// help (an unknown tier).
  std::chrono::milliseconds retry_after{0};
  /// Admitted, but the call must wait this long before it runs (queue mode).
  std::chrono::milliseconds delay{0};
  /// Neither admitted nor refused: the limiter stopped before it decided
  /// (see admission_ticket). The call is answered "retry".
  bool undecided = false;
};

// -- health ---------------------------------------------------------------------------

/// The sums of a sliding window of requests and cache lookups.
struct window_totals {
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t lookups = 0;
  uint64_t hits = 0;
};

/// What the rules look at: one snapshot of Bulwark's health.
struct health_sample {
  /// Drives the cooldowns.
  std::chrono::steady_clock::time_point now;
  /// Stamped on the alerts.
  std::chrono::system_clock::time_point wall;
  /// Sums of the sliding window at `now`.
  window_totals window;
  /// The span `window` covers, for the messages.
  std::chrono::milliseconds window_span{std::chrono::minutes(5)};
  /// Service -> fraction of its rate budget used.
  std::map<std::string, double> upstream_usage;
  double p95_latency_seconds = 0;
  /// Services whose breaker is open.
  std::vector<std::string> open_breakers;
  /// Fraction of the request queue in use.
  double queue_fill = 0;
  /// "service:tool" of tool definition changes held by pinning.
  std::vector<std::string> held_tools;
};

} // namespace bulwark
