// What every Bulwark actor shares: options, the current catalog, the
// registry and the supervision counters. Owned by the runtime; actors hold a
// shared_ptr so it outlives them.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "actors/limiter.hpp"
#include "actors/registry.hpp"
#include "actors/runtime.hpp"
#include "messages/actors.hpp"
#include "messages/catalog.hpp"
#include "messages/crypto.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace bulwark {

class redis_client;
class recent_misses;
class lease_book;

namespace metrics {
class registry;
class histogram;
} // namespace metrics

/// What operators see of one supervised actor (the admin API's actor tree).
struct actor_info {
  std::string kind; ///< session, breaker, connector, queue, ...
  std::string parent; ///< Its supervisor.
  uint32_t restarts = 0;
  std::string last_exit; ///< Why its previous incarnation stopped.
  std::chrono::steady_clock::time_point started;
  bool running = false;
  /// Messages waiting in its mailbox when it last looked (-1: not reported).
  int64_t mailbox = -1;
};

/// What operators see of one supervisor (the admin API's tree).
struct supervisor_info {
  std::string parent; ///< Empty for the root.
  restart_strategy strategy = restart_strategy::one_for_one;
  uint32_t max_restarts = 0;
  std::chrono::seconds window{0};
  std::chrono::milliseconds backoff_initial{0}, backoff_max{0};
  std::vector<std::string> children;
  /// Over its intensity: backing off (the root) or stopped and reported up.
  bool escalated = false;
};

/// A supervisor that exceeded its restart intensity.
struct escalation_record {
  std::string supervisor;
  std::string child; ///< The child whose restart broke the intensity.
  std::string reason; ///< For operators: what happened and what follows.
  std::chrono::steady_clock::time_point at;
};

struct runtime_env {
  /// The settings the runtime started with. What a reload may change is
  /// read from `settings()` instead; everything else is the same in every
  /// generation (a reload that changes it is refused).
  runtime_options opts;
  registry names;

  std::atomic<uint64_t> restarts{0};
  std::atomic<uint64_t> escalations{0};
  std::atomic<uint64_t> sessions{0};
  /// Degraded mode, as the health supervisor last switched it.
  std::atomic<bool> degraded{false};
  /// Graceful shutdown has begun: no new work; what is left is answered
  /// with shutting_down.
  std::atomic<bool> draining{false};
  /// Tool calls, prompt gets and resource reads being worked on.
  std::atomic<int64_t> inflight{0};
  /// Answered requests, and error answers that were failures of Bulwark
  /// or a service (not the caller's doing: see caused_by_caller), since
  /// start (for alert windows).
  std::atomic<uint64_t> requests_total{0};
  std::atomic<uint64_t> failures_total{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  /// Counters, gauges and histograms (request paths update them directly).
  std::shared_ptr<metrics::registry> metrics;
  /// Latency of every answered request (health and alerts read it).
  std::shared_ptr<metrics::histogram> latency;
  /// Rate-limit buckets: owned here so that they survive the limiter.
  std::shared_ptr<rate_buckets> buckets;
  /// Resource URIs clients watch (the gateway subscribes services to them).
  std::shared_ptr<resource_watches> watches = std::make_shared<resource_watches>();
  /// Where operational actors do HTTP (alert webhooks).
  boost::asio::io_context* io = nullptr;
  /// State shared with other instances (`redis.url`); null: this instance
  /// keeps everything in memory alone.
  std::shared_ptr<redis_client> redis;
  /// Tokens taken from the shared buckets ahead of this instance's calls
  /// (with `redis`).
  std::shared_ptr<lease_book> leases;
  /// Session ids the shared directory did not have a moment ago (with
  /// `redis`): asked again only after a few seconds.
  std::shared_ptr<recent_misses> unknown_sessions;

  // -- settings, one immutable snapshot per configuration generation ---------

  /// Counts configuration generations (1: the settings at start).
  std::atomic<uint64_t> generation{0};

  /// The current generation's settings; `opts` itself until a runtime
  /// installed its first generation (an environment built by a test).
  std::shared_ptr<const runtime_options> settings() const {
    std::lock_guard<std::mutex> guard(settings_mtx_);
    if (!settings_)
      return std::shared_ptr<const runtime_options>(std::shared_ptr<const runtime_options>{}, &opts);
    return settings_;
  }

  /// Installs a new generation (a reload); actors pick it up through
  /// `settings_view` or when told with atom::reload.
  void install_settings(std::shared_ptr<const runtime_options> next) {
    std::lock_guard<std::mutex> guard(settings_mtx_);
    settings_ = std::move(next);
    generation.fetch_add(1, std::memory_order_release);
  }

  /// Downstream services of the current generation (the health supervisor
  /// watches them).
  std::vector<std::string> service_names() const {
    std::lock_guard<std::mutex> guard(settings_mtx_);
    return services_;
  }

  void set_service_names(std::vector<std::string> names) {
    std::lock_guard<std::mutex> guard(settings_mtx_);
    services_ = std::move(names);
  }

  // -- health, as the health supervisor last published it -------------------

  void publish_health(uint8_t level, bool ready, json::value report) {
    std::lock_guard<std::mutex> guard(health_mtx_);
    health_level_ = level;
    ready_ = ready;
    health_report_ = std::move(report);
  }

  /// (level, ready, report); the report is null before the first check.
  std::tuple<uint8_t, bool, json::value> health() const {
    std::lock_guard<std::mutex> guard(health_mtx_);
    return {health_level_, ready_, health_report_};
  }

  json::value health_report() const {
    std::lock_guard<std::mutex> guard(health_mtx_);
    return health_report_;
  }

  catalog_ptr current() const {
    std::lock_guard<std::mutex> guard(catalog_mtx_);
    return catalog_;
  }

  void replace(catalog_ptr c) {
    std::lock_guard<std::mutex> guard(catalog_mtx_);
    catalog_ = std::move(c);
  }

  // -- the actor tree, as the supervisors last saw it ---------------------------

  void actor_started(const std::string& name, const std::string& kind, const std::string& parent) {
    std::lock_guard<std::mutex> guard(actors_mtx_);
    auto& a = actors_[name];
    if (a.started != std::chrono::steady_clock::time_point{})
      ++a.restarts;
    a.kind = kind;
    a.parent = parent;
    a.started = std::chrono::steady_clock::now();
    a.running = true;
    a.mailbox = -1;
  }

  /// `gone`: it will not come back (a session that ended).
  void actor_stopped(const std::string& name, std::string reason, bool gone) {
    std::lock_guard<std::mutex> guard(actors_mtx_);
    if (gone) {
      actors_.erase(name);
      return;
    }
    if (auto i = actors_.find(name); i != actors_.end()) {
      i->second.last_exit = std::move(reason);
      i->second.running = false;
    }
  }

  std::map<std::string, actor_info> actor_tree() const {
    std::lock_guard<std::mutex> guard(actors_mtx_);
    return actors_;
  }

  /// An actor's own view of its mailbox (only an actor may look at it).
  void note_mailbox(const std::string& name, std::size_t waiting) {
    std::lock_guard<std::mutex> guard(actors_mtx_);
    if (auto i = actors_.find(name); i != actors_.end())
      i->second.mailbox = static_cast<int64_t>(waiting);
  }

  void supervisor_update(const std::string& name, supervisor_info info) {
    std::lock_guard<std::mutex> guard(actors_mtx_);
    supervisors_[name] = std::move(info);
  }

  void supervisor_escalated(const std::string& name, bool escalated) {
    std::lock_guard<std::mutex> guard(actors_mtx_);
    if (auto i = supervisors_.find(name); i != supervisors_.end())
      i->second.escalated = escalated;
  }

  /// A supervisor and its children left the tree for good.
  void supervisor_removed(const std::string& name) {
    std::lock_guard<std::mutex> guard(actors_mtx_);
    auto i = supervisors_.find(name);
    if (i == supervisors_.end())
      return;
    for (auto& child : i->second.children)
      actors_.erase(child);
    supervisors_.erase(i);
    actors_.erase(name);
  }

  std::map<std::string, supervisor_info> supervisors() const {
    std::lock_guard<std::mutex> guard(actors_mtx_);
    return supervisors_;
  }

  /// Records an escalation (the latest few are kept for health reasons).
  void escalate(escalation_record e) {
    escalations++;
    std::lock_guard<std::mutex> guard(actors_mtx_);
    escalation_log_.push_back(std::move(e));
    if (escalation_log_.size() > 32)
      escalation_log_.erase(escalation_log_.begin());
  }

  /// Escalations since `since`, oldest first.
  std::vector<escalation_record> escalations_since(std::chrono::steady_clock::time_point since) const {
    std::lock_guard<std::mutex> guard(actors_mtx_);
    std::vector<escalation_record> out;
    for (auto& e : escalation_log_)
      if (e.at >= since)
        out.push_back(e);
    return out;
  }

  // -- other instances (shared state) ------------------------------------------

  /// Another instance published its degraded mode (`{degraded, reasons}`).
  void peer_degraded(const std::string& instance, json::value state) {
    std::lock_guard<std::mutex> guard(health_mtx_);
    if (state["degraded"].is_bool() && state["degraded"].as_bool())
      peers_degraded_[instance] = std::move(state);
    else
      peers_degraded_.erase(instance);
  }

  /// The instances in degraded mode, as they last said, by instance id.
  std::map<std::string, json::value> peers_degraded() const {
    std::lock_guard<std::mutex> guard(health_mtx_);
    return peers_degraded_;
  }

  // -- session records (outlive session actors and their supervisor) ---------

  void put_session(session_record_ptr rec) {
    std::lock_guard<std::mutex> guard(sessions_mtx_);
    sessions_[rec->id] = std::move(rec);
  }

  /// The record of session `id`, or null.
  session_record_ptr find_session(const std::string& id) const {
    std::lock_guard<std::mutex> guard(sessions_mtx_);
    auto i = sessions_.find(id);
    return i == sessions_.end() ? nullptr : i->second;
  }

  void erase_session(const std::string& id) {
    std::lock_guard<std::mutex> guard(sessions_mtx_);
    sessions_.erase(id);
  }

  // -- sessions per identity -------------------------------------------------

  /// Takes one of `identity`'s session slots for session `id`; false when
  /// it holds `max` already.
  /// Why a session slot was refused.
  enum class slot_refusal { none, identity, total };

  /// Takes one of `identity`'s session slots for session `id`: refused when
  /// the identity holds `max` already, or all callers `total_max`.
  slot_refusal claim_session_slot(const std::string& id, const std::string& identity, std::size_t max,
                                  std::size_t total_max) {
    std::lock_guard<std::mutex> guard(sessions_mtx_);
    if (slot_owner_.size() >= total_max)
      return slot_refusal::total;
    auto& held = slots_[identity];
    if (held >= max) {
      if (held == 0)
        slots_.erase(identity);
      return slot_refusal::identity;
    }
    ++held;
    slot_owner_[id] = identity;
    return slot_refusal::none;
  }

  /// Gives session `id`'s slot back; a DELETE and the actor's end both
  /// call it, the first one counts.
  void release_session_slot(const std::string& id) {
    std::lock_guard<std::mutex> guard(sessions_mtx_);
    auto i = slot_owner_.find(id);
    if (i == slot_owner_.end())
      return;
    auto held = slots_.find(i->second);
    if (held != slots_.end() && --held->second == 0)
      slots_.erase(held);
    slot_owner_.erase(i);
  }

  std::vector<session_record_ptr> session_records() const {
    std::lock_guard<std::mutex> guard(sessions_mtx_);
    std::vector<session_record_ptr> out;
    out.reserve(sessions_.size());
    for (auto& [id, rec] : sessions_)
      out.push_back(rec);
    return out;
  }

  // -- the keys that seal `requestState` ------------------------------------------

  /// States are sealed with the first key and open with any: the configured
  /// key and the one before its rotation; else the key the fleet shares
  /// through Redis (once known) and this process's own, which sealed what
  /// was asked before the fleet's key arrived.
  std::vector<std::string> state_keys() const {
    std::lock_guard<std::mutex> guard(keys_mtx_);
    std::vector<std::string> out;
    auto add = [&out](const std::string& k) {
      if (!k.empty())
        out.push_back(k);
    };
    if (!configured_key_.empty()) {
      add(configured_key_);
      add(previous_key_);
    } else {
      add(fleet_key_);
      add(own_key_);
    }
    return out;
  }

  /// The keys of `sessions.stateKeyFile` and `sessions.previousStateKeyFile`
  /// (empty: none configured).
  void configure_state_keys(std::string current, std::string previous) {
    std::lock_guard<std::mutex> guard(keys_mtx_);
    configured_key_ = std::move(current);
    previous_key_ = std::move(previous);
  }

  /// The key the fleet shares through Redis.
  void adopt_fleet_key(std::string key) {
    std::lock_guard<std::mutex> guard(keys_mtx_);
    fleet_key_ = std::move(key);
  }

  /// Empty until Redis told it.
  std::string fleet_key() const {
    std::lock_guard<std::mutex> guard(keys_mtx_);
    return fleet_key_;
  }

private:
  mutable std::mutex keys_mtx_;
  std::string configured_key_, previous_key_, fleet_key_;
  std::string own_key_ = crypto::random_hex(32);
  mutable std::mutex settings_mtx_;
  std::shared_ptr<const runtime_options> settings_;
  std::vector<std::string> services_;
  mutable std::mutex actors_mtx_;
  std::map<std::string, actor_info> actors_;
  std::map<std::string, supervisor_info> supervisors_;
  std::vector<escalation_record> escalation_log_;
  mutable std::mutex health_mtx_;
  uint8_t health_level_ = 0;
  bool ready_ = false;
  json::value health_report_;
  std::map<std::string, json::value> peers_degraded_;
  mutable std::mutex sessions_mtx_;
  std::unordered_map<std::string, session_record_ptr> sessions_;
  std::unordered_map<std::string, std::size_t> slots_; ///< identity -> sessions held
  std::unordered_map<std::string, std::string> slot_owner_; ///< session id -> identity
  mutable std::mutex catalog_mtx_;
  catalog_ptr catalog_ = std::make_shared<const catalog>();
};

using env_ptr = std::shared_ptr<runtime_env>;

/// An actor's handle on the current settings: one relaxed atomic read per
/// use while the generation stays, a new snapshot when it moved.
class settings_view {
public:
  explicit settings_view(const runtime_env& env)
      : env_(&env), generation_(env.generation.load(std::memory_order_acquire)), current_(env.settings()) {}

  const runtime_options& operator*() {
    auto g = env_->generation.load(std::memory_order_acquire);
    if (g != generation_) {
      current_ = env_->settings();
      generation_ = g;
    }
    return *current_;
  }

  const runtime_options* operator->() { return &**this; }

private:
  const runtime_env* env_;
  uint64_t generation_;
  std::shared_ptr<const runtime_options> current_;
};

/// Registry names of the long-lived actors.
namespace names {
inline const std::string root_supervisor = "root-supervisor";
inline const std::string operations_supervisor = "operations-supervisor";
inline const std::string session_supervisor = "session-supervisor";
inline const std::string stateless_session = "stateless-session";
inline const std::string session_prefix = "session/";
} // namespace names

} // namespace bulwark
