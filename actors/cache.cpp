#include "actors/cache.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

#include <caf/all.hpp>

#include "transport/redis_client.hpp"

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
                       clock::time_point now, milliseconds age) {
  if (auto i = map_.find(key); i != map_.end())
    erase(i->second);
  std::string text;
  json::write(text, result);
  auto size = text.size() + key.size();
  if (size > max_bytes_)
    return; // never fits
  auto stored = now - age;
  lru_.push_front(entry{key, std::move(result), size, stored, stored + ttl, stored + ttl + max_stale});
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
  /// The second level, shared with other instances (null: memory only).
  std::shared_ptr<redis_client> shared;
  uint64_t shared_hits = 0, shared_misses = 0;
};

using cache_pointer = cache_actor::stateful_pointer<cache_state>;

int64_t wall_ms() {
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// A copy in Redis: "<stored at, wall ms> <ttl ms> <max stale ms>\n<result>".
std::string encode_copy(const value& result, int64_t ttl_ms, int64_t stale_ms) {
  auto text = std::to_string(wall_ms()) + " " + std::to_string(ttl_ms) + " " + std::to_string(stale_ms) + "\n";
  json::write(text, result);
  return text;
}

struct shared_copy {
  value result;
  int64_t age_ms = 0, ttl_ms = 0, stale_ms = 0;
};

std::optional<shared_copy> decode_copy(const std::string& text) {
  auto nl = text.find('\n');
  if (nl == std::string::npos)
    return std::nullopt;
  long long stored = 0, ttl = 0, stale = 0;
  if (std::sscanf(text.c_str(), "%lld %lld %lld", &stored, &ttl, &stale) != 3)
    return std::nullopt;
  shared_copy c;
  json::parse_error err;
  if (!json::parse(std::string_view(text).substr(nl + 1), c.result, err))
    return std::nullopt;
  c.age_ms = std::max<int64_t>(0, wall_ms() - stored);
  c.ttl_ms = ttl;
  c.stale_ms = stale;
  return c;
}

/// Deletes every key matching ARGV[1] (a glob).
const redis_script& unlink_script() {
  static const redis_script script(R"lua(
local cursor = '0'
local n = 0
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    redis.call('UNLINK', k)
    n = n + 1
  end
until cursor == '0'
return n
)lua");
  return script;
}

std::string glob_escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\')
      out += '\\';
    out += c;
  }
  return out;
}

/// Looks `key` up in Redis after a miss (or a stale copy) in memory; a copy
/// found there answers and is kept here too.
void shared_get(cache_pointer self, const std::string& key, bool allow_stale, cache_reply reply,
                std::optional<cache_hit> local) {
  auto& st = self->state;
  auto me = caf::actor_cast<cache_actor>(self);
  st.shared->command({"GET", st.shared->key("cache:" + key)},
                     [me, key, allow_stale, reply = std::move(reply), local = std::move(local)](redis_reply r) {
                       auto copy = r.type == redis_reply::kind::string ? decode_copy(r.str) : std::nullopt;
                       bool usable = copy && copy->age_ms < copy->ttl_ms + copy->stale_ms
                                     && (allow_stale || copy->age_ms < copy->ttl_ms);
                       caf::anon_send(me, atom::done_v, usable);
                       if (!usable)
                         return reply(local);
                       bool stale = copy->age_ms >= copy->ttl_ms;
                       reply(cache_hit{copy->result, milliseconds(copy->age_ms), stale});
                       caf::anon_send(me, atom::put_v, key, std::move(copy->result), copy->ttl_ms, copy->stale_ms,
                                      copy->age_ms);
                     });
}

cache_actor::behavior_type cache_behavior(cache_pointer self, std::size_t max_entries, std::size_t max_bytes,
                                          std::shared_ptr<redis_client> shared) {
  // A restarted cache comes back empty: the services answer again.
  self->state.cache = std::make_unique<result_cache>(max_entries, max_bytes);
  self->state.shared = std::move(shared);
  return {
    [self](atom::get, const std::string& key, bool allow_stale, cache_reply& reply) {
      auto& st = self->state;
      auto hit = st.cache->get(key, self->clock().now(), allow_stale);
      if ((hit && !hit->stale) || !st.shared || !st.shared->available())
        return reply(std::move(hit));
      shared_get(self, key, allow_stale, std::move(reply), std::move(hit));
    },
    [self](atom::put, const std::string& key, value& result, int64_t ttl_ms, int64_t stale_ms) {
      auto& st = self->state;
      if (st.shared && st.shared->available() && ttl_ms + stale_ms > 0) {
        auto life = std::min<int64_t>(ttl_ms + stale_ms, st.shared->settings().cache_max_ttl.count());
        st.shared->command({"SET", st.shared->key("cache:" + key), encode_copy(result, ttl_ms, stale_ms), "PX",
                            std::to_string(life)},
                           [](redis_reply) {});
      }
      st.cache->put(key, std::move(result), milliseconds(ttl_ms), milliseconds(stale_ms), self->clock().now());
    },
    [self](atom::put, const std::string& key, value& result, int64_t ttl_ms, int64_t stale_ms, int64_t age_ms) {
      self->state.cache->put(key, std::move(result), milliseconds(ttl_ms), milliseconds(stale_ms),
                             self->clock().now(), milliseconds(age_ms));
    },
    [self](atom::drop, const std::string& prefix) {
      auto& st = self->state;
      st.cache->invalidate(prefix);
      if (st.shared && st.shared->available()) {
        st.shared->eval(unlink_script(), {}, {glob_escaped(st.shared->key("cache:" + prefix)) + "*"},
                        [](redis_reply) {});
        st.shared->publish("invalidate", st.shared->instance() + "\n" + prefix);
      }
    },
    [self](atom::drop, const std::string& prefix, bool) { self->state.cache->invalidate(prefix); },
    [self](atom::done, bool found) { ++(found ? self->state.shared_hits : self->state.shared_misses); },
    [self](atom::get) -> value {
      auto& st = self->state;
      auto& c = *st.cache;
      auto lookups = c.hits + c.stale_hits + c.misses;
      auto status = value::make_object({{"mailbox", static_cast<unsigned long long>(self->mailbox().size())},
                                        {"entries", static_cast<unsigned long long>(c.size())},
                                        {"bytes", static_cast<unsigned long long>(c.bytes())},
                                        {"hits", static_cast<unsigned long long>(c.hits)},
                                        {"staleHits", static_cast<unsigned long long>(c.stale_hits)},
                                        {"misses", static_cast<unsigned long long>(c.misses)},
                                        {"evictions", static_cast<unsigned long long>(c.evictions)},
                                        {"hitRate", lookups ? static_cast<double>(c.hits) / static_cast<double>(lookups) : 0.0}});
      if (st.shared)
        status.set("shared", value::make_object({{"available", st.shared->available()},
                                                 {"hits", static_cast<unsigned long long>(st.shared_hits)},
                                                 {"misses", static_cast<unsigned long long>(st.shared_misses)}}));
      return status;
    },
  };
}

} // namespace

cache_actor spawn_cache(caf::actor_system& sys, std::size_t max_entries, std::size_t max_bytes,
                        std::shared_ptr<redis_client> shared) {
  return sys.spawn(cache_behavior, max_entries, max_bytes, std::move(shared));
}

} // namespace bulwark
