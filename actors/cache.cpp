#include "actors/cache.hpp"

#include <algorithm>
#include <vector>

#include <caf/all.hpp>

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

void write_canonical(std::string& out, const value& v) {
  if (v.is_object()) {
    std::vector<const std::pair<std::string, value>*> members;
    for (auto& m : v.as_object())
      members.push_back(&m);
    std::sort(members.begin(), members.end(), [](auto* a, auto* b) { return a->first < b->first; });
    out += '{';
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i)
        out += ',';
      json::write_string(out, members[i]->first);
      out += ':';
      write_canonical(out, members[i]->second);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    bool first = true;
    for (auto& x : v.as_array()) {
      if (!first)
        out += ',';
      first = false;
      write_canonical(out, x);
    }
    out += ']';
  } else {
    json::write(out, v);
  }
}

} // namespace

std::string canonical_json(const value& v) {
  std::string out;
  write_canonical(out, v);
  return out;
}

void result_cache::erase(std::list<entry>::iterator it) {
  bytes_ -= it->bytes;
  map_.erase(it->key);
  lru_.erase(it);
}

std::optional<cache_hit> result_cache::get(const std::string& key, clock::time_point now, bool allow_stale) {
  auto i = map_.find(key);
  if (i == map_.end()) {
    ++misses;
    return std::nullopt;
  }
  auto it = i->second;
  if (now >= it->stale_until) {
    erase(it);
    ++misses;
    return std::nullopt;
  }
  bool stale = now >= it->fresh_until;
  if (stale && !allow_stale) {
    ++misses;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it);
  ++(stale ? stale_hits : hits);
  return cache_hit{it->result, duration_cast<milliseconds>(now - it->stored), stale};
}

void result_cache::put(const std::string& key, value result, milliseconds ttl, milliseconds max_stale,
                       clock::time_point now) {
  if (auto i = map_.find(key); i != map_.end())
    erase(i->second);
  std::string text;
  json::write(text, result);
  auto size = text.size() + key.size();
  if (size > max_bytes_)
    return; // never fits
  lru_.push_front(entry{key, std::move(result), size, now, now + ttl, now + ttl + max_stale});
  map_[key] = lru_.begin();
  bytes_ += size;
  while (!lru_.empty() && (map_.size() > max_entries_ || bytes_ > max_bytes_)) {
    erase(std::prev(lru_.end()));
    ++evictions;
  }
}

std::size_t result_cache::invalidate(const std::string& prefix) {
  std::size_t n = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    if (it->key.compare(0, prefix.size(), prefix) == 0) {
      erase(it);
      ++n;
    }
    it = next;
  }
  return n;
}

namespace {

struct cache_state {
  static inline const char* name = "cache";
  std::unique_ptr<result_cache> cache;
};

cache_actor::behavior_type cache_behavior(cache_actor::stateful_pointer<cache_state> self, std::size_t max_entries,
                                          std::size_t max_bytes) {
  // A restarted cache comes back empty: the services answer again.
  self->state.cache = std::make_unique<result_cache>(max_entries, max_bytes);
  return {
    [self](atom::get, const std::string& key, bool allow_stale, cache_reply& reply) {
      reply(self->state.cache->get(key, self->clock().now(), allow_stale));
    },
    [self](atom::put, const std::string& key, value& result, int64_t ttl_ms, int64_t stale_ms) {
      self->state.cache->put(key, std::move(result), milliseconds(ttl_ms), milliseconds(stale_ms),
                             self->clock().now());
    },
    [self](atom::drop, const std::string& prefix) { self->state.cache->invalidate(prefix); },
    [self](atom::get) -> value {
      auto& c = *self->state.cache;
      auto lookups = c.hits + c.stale_hits + c.misses;
      return value::make_object({{"mailbox", static_cast<unsigned long long>(self->mailbox().size())},
                                 {"entries", static_cast<unsigned long long>(c.size())},
                                 {"bytes", static_cast<unsigned long long>(c.bytes())},
                                 {"hits", static_cast<unsigned long long>(c.hits)},
                                 {"staleHits", static_cast<unsigned long long>(c.stale_hits)},
                                 {"misses", static_cast<unsigned long long>(c.misses)},
                                 {"evictions", static_cast<unsigned long long>(c.evictions)},
                                 {"hitRate", lookups ? static_cast<double>(c.hits) / static_cast<double>(lookups) : 0.0}});
    },
  };
}

} // namespace

cache_actor spawn_cache(caf::actor_system& sys, std::size_t max_entries, std::size_t max_bytes) {
  return sys.spawn(cache_behavior, max_entries, max_bytes);
}

} // namespace bulwark
