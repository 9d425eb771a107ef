// The result cache: LRU with a time to live, bounded by entries and bytes.
// A copy stays usable as *stale* for a while after it expires; stale copies
// answer only when the service behind them cannot (degraded answers).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

class result_cache {
public:
  using clock = std::chrono::steady_clock;

  result_cache(std::size_t max_entries, std::size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}

  /// A fresh copy, or (with `allow_stale`) a stale one, of `key`.
  std::optional<cache_hit> get(const std::string& key, clock::time_point now, bool allow_stale);
  /// Stores `result`, already `age` old: fresh for `ttl`, then stale for
  /// `max_stale` (both counted from when it was first stored).
  void put(const std::string& key, json::value result, std::chrono::milliseconds ttl,
           std::chrono::milliseconds max_stale, clock::time_point now,
           std::chrono::milliseconds age = std::chrono::milliseconds(0));
  /// New bounds (a reload): the least recently used entries beyond them go.
  void resize(std::size_t max_entries, std::size_t max_bytes);
  /// Drops every entry whose key starts with `prefix`; returns how many.
  std::size_t invalidate(const std::string& prefix);

  std::size_t size() const noexcept { return map_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

  uint64_t hits = 0, misses = 0, stale_hits = 0, evictions = 0;

private:
  struct entry {
    std::string key;
    json::value result;
    std::size_t bytes = 0;
    clock::time_point stored, fresh_until, stale_until;
  };
  void erase(std::list<entry>::iterator it);

  std::size_t max_entries_, max_bytes_, bytes_ = 0;
  std::list<entry> lru_; ///< Most recently used first.
  std::unordered_map<std::string, std::list<entry>::iterator> map_;
};

/// The canonical text of a JSON value (object keys sorted), for cache keys.
std::string canonical_json(const json::value& v);

/// The invalidation scope a key prefix is in, as the shared cache counts
/// generations: "m:SERVICE\nMETHOD" for a prefix naming both, "s:SERVICE"
/// for one naming a service, "all" for anything shorter. A prefix deeper
/// than a method starts a new generation of its whole method.
std::string invalidation_scope(const std::string& prefix);

/// Registry name of the cache actor.
inline const std::string cache_actor_name = "cache";

/// (A call's lookup is sent by its session: see `look_up` in
/// actors/session.hpp.)

class redis_client;

/// With `shared` (several instances), the in-memory cache is the first level
/// and Redis the second: a copy stored through one instance answers on all,
/// and dropping entries drops them everywhere.
cache_actor spawn_cache(caf::actor_system& sys, std::size_t max_entries, std::size_t max_bytes,
                        std::shared_ptr<redis_client> shared = nullptr);

} // namespace bulwark
