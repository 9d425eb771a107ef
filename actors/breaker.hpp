// The circuit breaker of one downstream service: a state machine (testable
// with any clock) and the actor in front of the service's connector that uses
// it, retries with back-off and jitter, and falls back when the service
// cannot answer. The actor is also its calls' listener: it passes their
// notifications, input requests and outcomes on to the client calls they
// belong to, and keeps the calls that wait for client input.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"
#include "messages/service.hpp"

namespace bulwark {

enum class breaker_state : uint8_t { closed, open, half_open };

std::string_view to_string(breaker_state s) noexcept;

/// CLOSED -> OPEN after `consecutive_failures` failures in a row, or when the
/// failure share over the sliding window reaches `failure_rate` with at
/// least `minimum_calls` calls in it. OPEN fails fast for `open_duration`,
/// then HALF_OPEN admits `half_open_probes` calls at a time: a failed probe
/// opens it again, `successes_to_close` successful probes close it. An
/// operator may hold it open or closed: it stays so, whatever the calls
/// do, until released.
class circuit_breaker {
public:
  using clock = std::chrono::steady_clock;

  explicit circuit_breaker(breaker_settings s) : s_(s) {}

  struct admission {
    bool allowed = false;
    bool probe = false; ///< Admitted as a half-open probe.
    std::chrono::milliseconds retry_after{0};
  };

  /// Asks to let one call through at `now`.
  admission admit(clock::time_point now);
  /// Reports how an admitted call ended.
  void record(clock::time_point now, bool success, bool probe);
  /// Gives back an admission that was not used (e.g. the call was cancelled).
  void release(bool probe);

  /// Forces a state; counts as a transition. A `hold` (an operator's open
  /// or closed) keeps it there until `release`: an open breaker refuses
  /// every call, a closed one lets every call through, and outcomes move
  /// neither.
  void force(clock::time_point now, breaker_state to, std::string why, bool hold = false);
  /// Ends an operator's hold: a held-open breaker half-opens (the next call
  /// probes the service), a held-closed one counts failures again.
  void release(clock::time_point now);

  breaker_state state() const noexcept { return state_; }
  /// An operator holds the state.
  bool held() const noexcept { return held_; }
  uint64_t transitions() const noexcept { return transitions_; }
  uint32_t consecutive_failures() const noexcept { return consecutive_; }
  std::size_t window_calls() const noexcept { return window_calls_; }
  /// Set after each transition: from, to, why (for the log).
  struct transition {
    breaker_state from, to;
    std::string why;
  };
  const transition& last_transition() const noexcept { return last_; }

private:
  void move_to(clock::time_point now, breaker_state to, std::string why);
  void prune(clock::time_point now);

  breaker_settings s_;
  breaker_state state_ = breaker_state::closed;
  bool held_ = false;
  clock::time_point opened_at_{};
  uint32_t consecutive_ = 0;
  uint32_t probes_in_flight_ = 0;
  uint32_t probe_successes_ = 0;
  /// The sliding window in `window_buckets` slices: memory and time per
  /// call stay constant whatever the call rate (the window slides by one
  /// slice, 1/64 of it, at a time).
  static constexpr std::size_t window_buckets = 64;
  struct bucket {
    int64_t slice = -1; ///< Which slice of time it counts (-1: unused).
    uint64_t calls = 0, failures = 0;
  };
  std::array<bucket, window_buckets> buckets_{};
  uint64_t window_calls_ = 0, window_failures_ = 0;
  int64_t slice_of(clock::time_point now) const;
  void clear_window();
  uint64_t transitions_ = 0;
  transition last_{breaker_state::closed, breaker_state::closed, {}};
};

/// Registry names of a service's actors.
std::string breaker_name(const std::string& service);
std::string connector_name(const std::string& service);
/// The rest-for-one supervisor over a service's connector and breaker.
std::string service_supervisor_name(const std::string& service);

/// Hands `call` to `breaker`, the way every call reaches a breaker. A call
/// that no breaker takes (`breaker` is null, or gone, or killed before it
/// takes the message) ends at once as not having reached the service
/// (actor_restarted), instead of waiting for an answer that never comes.
void send_call(const breaker_actor& breaker, const downstream_call_ptr& call);

/// Spawns the breaker actor of `svc`; it finds the connector by name. A
/// `restarted` breaker starts half-open.
breaker_actor spawn_breaker(caf::actor_system& sys, env_ptr env, service_config svc, bool restarted);

} // namespace bulwark
