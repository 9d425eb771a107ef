// What several Bulwark instances share through Redis (`redis.url`): rate-limit
// buckets, cache invalidations, the 2025-era session directory, breaker
// states. Every function here hands its Redis work to the client's I/O
// thread and reports back through a callback or a message, so no actor waits;
// when Redis is unavailable the callers use their local state instead.
#pragma once

#include <any>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "actors/tool_pins.hpp"
#include "messages/actors.hpp"

namespace bulwark {

class redis_client;

/// The Redis client of `env`'s runtime, with the subscriptions that carry
/// other instances' cache invalidations and breaker states to this one's
/// actors. Not started yet.
std::shared_ptr<redis_client> make_shared_state(const env_ptr& env);

// -- rate limits ----------------------------------------------------------------------

/// Decides `ticket` with the shared buckets at degraded-mode `scale`: with a
/// token of this instance's lease for its buckets, at once; else with one
/// Lua script, atomic across instances, that also leases more tokens
/// (`lease_book`). The verdict goes to the ticket's session
/// (admission_ticket::answer). When Redis fails for this call, the ticket goes back to `limiter`
/// marked `local`. False (nothing sent) for a request the shared buckets do
/// not cover (an unknown tier): decide it locally.
bool shared_admit(const env_ptr& env, const admission_ticket_ptr& ticket, double scale, const caf::actor& limiter);

/// Tokens this instance took from the shared buckets ahead of its calls, so
/// that most calls are decided without a Redis round trip. A lease belongs
/// to one plan (the buckets one kind of call passes: its caller's windows,
/// its service's, the global ones) and holds as many tokens of each: at
/// most `size_for` (a sixteenth of the smallest limit, at most 64, at least
/// one, so that a small limit is decided in Redis call by call). A lease
/// lasts `life`; what it did not spend is given back then. Tokens are taken
/// from Redis before they are spent, so the instances together never admit
/// more than a limit; a lease only lends a limit's tokens to one instance
/// for a moment. Thread-safe: the limiter spends, the Redis thread keeps.
class lease_book {
public:
  using clock = std::chrono::steady_clock;
  static constexpr long long max_lease = 64;
  static constexpr std::chrono::milliseconds life{1000};

  struct lease {
    long long tokens = 0;
    clock::time_point until;
    std::any plan; ///< What giving its tokens back needs.
  };

  /// Tokens to ask for at once, for a plan of these limits.
  static long long size_for(const std::vector<rate_limit>& limits, double scale);

  /// Spends one token of lease `name`; false when it has none (or is over).
  bool spend(const std::string& name, clock::time_point now);
  /// Adds `tokens` to lease `name`, which lasts `life` from `now`.
  void keep(const std::string& name, long long tokens, std::any plan, clock::time_point now);
  /// A refunded call's token goes back into lease `name`; false when it has
  /// none that lasts.
  bool give_back(const std::string& name, clock::time_point now);
  /// Removes the leases whose time is up and returns those with tokens left
  /// (at most every 250 ms; empty otherwise).
  std::vector<std::pair<std::string, lease>> expired(clock::time_point now);
  std::size_t size() const;

private:
  mutable std::mutex mtx_;
  std::unordered_map<std::string, lease> leases_;
  std::vector<std::pair<std::string, lease>> due_;
  /// When `expired` last looked (clock ticks), and how often it does.
  std::atomic<clock::rep> last_sweep_{0};
  static constexpr clock::duration sweep_every = std::chrono::milliseconds(250);
};

/// Gives an admitted call's tokens back to the shared buckets.
void shared_refund(const env_ptr& env, const admission_request& request, double scale);

// -- the session directory ---------------------------------------------------------------

/// Ids looked up a moment ago and not found, for `ttl`, at most `capacity`
/// of them (the oldest go first). Thread-safe: HTTP threads ask, the Redis
/// thread adds.
class recent_misses {
public:
  using clock = std::chrono::steady_clock;
  recent_misses(std::size_t capacity, std::chrono::milliseconds ttl) : capacity_(capacity), ttl_(ttl) {}
  /// True when `id` was added less than the TTL before `now`.
  bool contains(const std::string& id, clock::time_point now);
  void add(const std::string& id, clock::time_point now);
  /// `id` exists after all (created or ended here): ask again next time.
  void forget(const std::string& id);
  std::size_t size();

private:
  std::mutex mtx_;
  std::size_t capacity_;
  std::chrono::milliseconds ttl_;
  uint64_t next_ = 0;
  struct miss {
    clock::time_point until;
    uint64_t seq;
  };
  std::unordered_map<std::string, miss> map_;
  std::deque<std::pair<std::string, uint64_t>> order_; ///< Oldest first.
};

/// How long and how many unknown session ids an instance remembers.
inline constexpr std::size_t unknown_session_capacity = 10000;
inline constexpr std::chrono::milliseconds unknown_session_memory{5000};

/// Records (or refreshes) 2025-era session `rec` in the directory for the
/// session TTL, so that every instance knows it and its owner. `then` runs
/// once Redis has it (or has failed, or at once without Redis), on the Redis
/// thread or the caller's.
void publish_session(const env_ptr& env, const session_record& rec, std::function<void()> then = {});

/// Removes session `id` from the directory and ends its actors on the other
/// instances (DELETE).
void retract_session(const env_ptr& env, const std::string& id);

/// Looks session `id` up in the directory; `done` gets a record to start
/// its actor from (null: unknown there, or Redis unavailable), on the Redis
/// thread or at once. An id the directory does not have is remembered in
/// `env->unknown_sessions`.
void lookup_session(const env_ptr& env, const std::string& id, std::function<void(session_record_ptr)> done);

// -- what a session's clients see, on every instance -------------------------------------------------

/// Tells the other instances that a client of 2025-era session `id`
/// subscribed to `uri` (`on`) or unsubscribed: an instance that serves the
/// session too (its GET stream, say) follows.
void share_subscription(const env_ptr& env, const std::string& id, const std::string& uri, bool on);

/// Tells the other instances that resource `uri` was updated: each passes it
/// on to its own sessions that watch it.
void share_resource_update(const env_ptr& env, const std::string& uri);

/// Keeps event `seq` of stream `stream` of session `id` (`last`: the answer
/// that ends a POST's stream) for `Last-Event-ID` replay on any instance:
/// the latest `sessions.replayEvents` of each stream, for the session TTL.
void share_event(const env_ptr& env, const std::string& id, uint64_t stream, uint64_t seq, const std::string& body,
                 bool last);

/// The kept events of stream `stream` of session `id`, oldest first, as
/// `[{"seq", "body", "last"}]` (empty: none, or Redis unavailable), to
/// `done` on the Redis thread or at once.
void shared_events(const env_ptr& env, const std::string& id, uint64_t stream, std::function<void(json::value)> done);

// -- breakers and degraded mode --------------------------------------------------------------

/// Tells the other instances (and instances started later, for the breaker
/// TTL) that `service`'s breaker switched to `state`.
void publish_breaker(const env_ptr& env, const std::string& service, const std::string& state);

/// The state last published for `service`'s breaker, to `breaker` as a
/// shared force (nothing when there is none).
void adopt_breaker(const env_ptr& env, const std::string& service, const caf::actor& breaker);

/// Tells the other instances that this one switched degraded mode, and why.
void publish_degraded(const env_ptr& env, bool on, const std::vector<std::string>& reasons);

// -- tool-definition pins -------------------------------------------------------------------

/// Reads the fleet's tool pins (the hash `pins`) for `router`, which gets
/// them as (atom::pins, object of field -> text), or null when Redis could
/// not be read.
void read_shared_pins(const env_ptr& env, const gateway_router_actor& router);

/// Writes changed pins, each only over the state it was made from; when
/// one meets another state (another instance wrote first), `router` is
/// told to read the pins again (atom::pins). Once any was written, the
/// other instances are told to read them.
void write_shared_pins(const env_ptr& env, std::vector<pin_write> writes, const gateway_router_actor& router);

} // namespace bulwark
