// Admission by rate: hierarchical token buckets per client key, per
// downstream service and for the whole gateway. A pure state machine driven
// by explicit time points, so tests need no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "messages/json.hpp"
#include "messages/operations.hpp"
#include "messages/settings.hpp"

namespace bulwark {

// -- configuration ------------------------------------------------------------------

/// Human text of a limit, e.g. "10 per minute" or "5 per 30 s".
std::string describe(const rate_limit& limit);

/// The same at a degraded-mode `scale` below 1, e.g. "10 per minute (at 50%
/// while degraded)".
std::string describe(const rate_limit& limit, double scale);

/// Refusals and admissions so far.
struct limiter_counters {
  uint64_t admitted = 0;
  /// Admitted with a delay (queue mode); included in `admitted`.
  uint64_t delayed = 0;
  uint64_t refused_user_quota = 0;
  uint64_t refused_service = 0;
  uint64_t refused_global = 0;
};

// -- the buckets --------------------------------------------------------------------

/// Token buckets at three levels: the key (one bucket per window of its
/// tier), the service, the gateway. A call takes one token from every bucket
/// of every level it passes; when a level refuses, the tokens taken before it
/// are restored, so a refused call leaves no trace.
///
/// In queue mode a bucket without a whole token may lend one (its tokens go
/// negative) if the debt is repaid within the call's `max_wait`; the call is
/// then admitted with the longest such wait as its delay.
///
/// Plain data: copyable, and meant to outlive the actor that drives it.
class rate_buckets {
public:
  using clock = std::chrono::steady_clock;

  /// Service and global buckets start full.
  explicit rate_buckets(limiter_config cfg = default_limiter_config());

  // -- admission ------------------------------------------------------------

  /// Asks to admit one call at `now`; takes its tokens when admitted.
  admission check(const admission_request& req, clock::time_point now);

  /// Gives back the tokens of a call admitted earlier that never ran (shed
  /// or cancelled while queued). Buckets never exceed their capacity.
  void refund(const admission_request& req, clock::time_point now);

  // -- degraded mode --------------------------------------------------------

  /// Multiplies every capacity and refill rate by `factor` (clamped into
  /// (0, 1]); tokens above the new capacity are dropped. A capacity never
  /// falls below one token. The time since a bucket was last touched refills
  /// at the new rate.
  void set_scale(double factor);
  double scale() const noexcept { return scale_; }

  // -- reconfiguration -------------------------------------------------------

  /// Takes new limits (a configuration reload) and keeps every bucket's
  /// level: a window of the same period keeps the tokens it holds (at most
  /// its new capacity), a new window starts full, a dropped one goes. Keys
  /// of a tier that went away are forgotten (their next call is refused as
  /// of an unknown tier, or admitted under the tier the key has then).
  void reconfigure(limiter_config cfg, clock::time_point now);

  // -- inspection -----------------------------------------------------------

  /// How much of the service's tightest window is used: 0 (full bucket) to
  /// 1 (empty or in debt); 0 for a service without limits.
  double usage(const std::string& service, clock::time_point now) const;

  /// Tokens left in each window (in configuration order) of a tracked key,
  /// a service or the global budget; negative while in debt; empty when
  /// there is no such bucket.
  std::vector<double> key_tokens(const std::string& key, clock::time_point now) const;
  std::vector<double> service_tokens(const std::string& service, clock::time_point now) const;
  std::vector<double> global_tokens(clock::time_point now) const;

  /// Forgets keys whose buckets have refilled completely: they behave the
  /// same as new ones, so memory follows the active keys only.
  void sweep(clock::time_point now);

  /// Keys with buckets.
  std::size_t keys() const noexcept { return keys_.size(); }

  const limiter_counters& counters() const noexcept { return counters_; }
  const limiter_config& config() const noexcept { return cfg_; }

  /// Limits, current tokens, tracked keys and refusals by level.
  json::value status(clock::time_point now) const;

private:
  struct bucket {
    rate_limit limit;
    double tokens = 0; ///< May be negative (debt) in queue mode.
    clock::time_point last{};
  };
  using windows = std::vector<bucket>;

  struct key_state {
    std::string tier;
    windows buckets;
  };

  double capacity(const bucket& b) const noexcept;
  double tokens_at(const bucket& b, clock::time_point now) const noexcept;
  void refill(bucket& b, clock::time_point now) const noexcept;
  /// Nanoseconds until `b` holds `tokens` tokens (from its current state).
  double nanos_until(const bucket& b, double tokens) const noexcept;
  windows fresh(const std::vector<rate_limit>& limits, clock::time_point now) const;
  std::string scaled_text(const rate_limit& limit) const;
  void give_back(windows& ws, clock::time_point now) const;
  /// `ws` refilled to `now` and carried over to `limits`.
  windows carried(const windows& ws, const std::vector<rate_limit>& limits, clock::time_point now) const;

  limiter_config cfg_;
  double scale_ = 1.0;
  std::unordered_map<std::string, key_state> keys_;
  std::map<std::string, windows> services_;
  windows global_;
  limiter_counters counters_;
};

} // namespace bulwark
