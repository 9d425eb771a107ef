#include "actors/cache.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
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

std::string invalidation_scope(const std::string& prefix) {
  auto first = prefix.find('\n');
  if (first == std::string::npos)
    return "all";
  auto second = prefix.find('\n', first + 1);
  if (second == std::string::npos)
    return "s:" + prefix.substr(0, first);
  return "m:" + prefix.substr(0, second);
}

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
  resize(max_entries_, max_bytes_);
}

void result_cache::resize(std::size_t max_entries, std::size_t max_bytes) {
  max_entries_ = max_entries;
  max_bytes_ = max_bytes;
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

/// The three scopes a key is in: every key, its service, its service and
/// method (keys are "service\nmethod\n..."), each as an invalidation of
/// that prefix names it.
std::array<std::string, 3> scopes_of(const std::string& key) {
  return {"all", invalidation_scope(key.substr(0, key.find('\n') + 1)), invalidation_scope(key)};
}

struct cache_state {
  static inline const char* name = "cache";
  std::unique_ptr<result_cache> cache;
  /// The second level, shared with other instances (null: memory only).
  std::shared_ptr<redis_client> shared;
  uint64_t shared_hits = 0, shared_misses = 0;
  /// The generation of each invalidation scope, as Redis has it (a missing
  /// scope is 0); shared copies are stored and looked up under the
  /// generations of their key's scopes, so that an invalidation is one
  /// increment and the older copies simply expire.
  std::unordered_map<std::string, int64_t> generations;
  /// False until they were read from Redis: until then only memory is used.
  bool generations_known = false, generations_loading = false;
  /// Scopes this instance is starting a new generation of (not answered
  /// yet): their keys skip Redis meanwhile.
  std::unordered_map<std::string, int> bumping;

  /// The generations `key`'s shared copy lives under ("" while they are not
  /// known or one is changing: skip Redis).
  std::string tag(const std::string& key) const {
    if (!shared || !shared->available())
      return {};
    if (!generations_known)
      return {};
    std::string out;
    for (auto& scope : scopes_of(key)) {
      if (bumping.count(scope))
        return {};
      auto i = generations.find(scope);
      if (!out.empty())
        out += '.';
      out += std::to_string(i == generations.end() ? 0 : i->second);
    }
    return out;
  }

  /// Takes a newer generation of `scope`.
  void advance(const std::string& scope, const std::string& gen) {
    auto g = std::strtoll(gen.c_str(), nullptr, 10);
    auto& mine = generations[scope];
    mine = std::max<int64_t>(mine, g);
  }
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

/// Starts a new generation of one invalidation scope: KEYS[1] is the hash
/// of generations, ARGV the scope, the hash's TTL (ms), the channel, this
/// instance and the prefix dropped. A generation is Redis's clock in ms (one
/// more than the previous when that is not older), so that it never repeats
/// even after the hash expired; the message tells the other instances.
const redis_script& bump_script() {
  static const redis_script script(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local g = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if now <= g then now = g + 1 end
local gen = string.format('%.0f', now)
redis.call('HSET', KEYS[1], ARGV[1], gen)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. '\n' .. gen .. '\n' .. ARGV[5])
return gen
)lua");
  return script;
}

/// Looks `key` up in Redis after a miss (or a stale copy) in memory; a copy
/// found there answers and is kept here too.
void shared_get(cache_pointer self, const std::string& tag, cache_lookup_ptr lookup, std::optional<cache_hit> local) {
  auto& st = self->state;
  auto me = caf::actor_cast<cache_actor>(self);
  const auto& key = lookup->key;
  st.shared->command({"GET", st.shared->key("cache:" + tag + ":" + key)}, [me, tag, lookup = std::move(lookup),
                                                                           local = std::move(local)](redis_reply r) {
    const auto& key = lookup->key;
    auto allow_stale = lookup->allow_stale;
    auto copy = r.type == redis_reply::kind::string ? decode_copy(r.str) : std::nullopt;
    bool usable = copy && copy->age_ms < copy->ttl_ms + copy->stale_ms && (allow_stale || copy->age_ms < copy->ttl_ms);
    caf::anon_send(me, atom::done_v, usable);
    if (!usable)
      return lookup->answer(local);
    bool stale = copy->age_ms >= copy->ttl_ms;
    lookup->answer(cache_hit{copy->result, milliseconds(copy->age_ms), stale});
    caf::anon_send(me, atom::put_v, key, std::move(copy->result), copy->ttl_ms, copy->stale_ms, copy->age_ms, tag);
  });
}

/// Reads every scope's generation; until the answer only memory is used.
/// (Also when Redis was not reachable yet: the next lookup or store tries
/// again.)
void load_generations(cache_pointer self) {
  auto& st = self->state;
  st.generations_known = false;
  st.generations_loading = true;
  auto me = caf::actor_cast<cache_actor>(self);
  st.shared->command({"HGETALL", st.shared->key("cache-generations")}, [me](redis_reply r) {
    if (r.type != redis_reply::kind::array)
      return caf::anon_send(me, atom::start_v, value()); // read again when next needed
    value gens(json::object{});
    for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2)
      gens.set(r.elements[i].str, r.elements[i + 1].str);
    caf::anon_send(me, atom::start_v, std::move(gens));
  });
}

/// `key`'s generations in the shared cache ("": skip Redis), reading them
/// first when they are not known yet.
std::string shared_tag(cache_pointer self, const std::string& key) {
  auto& st = self->state;
  if (st.shared && st.shared->available() && !st.generations_known && !st.generations_loading)
    load_generations(self);
  return st.tag(key);
}

cache_actor::behavior_type cache_behavior(cache_pointer self, std::size_t max_entries, std::size_t max_bytes,
                                          std::shared_ptr<redis_client> shared) {
  // A restarted cache comes back empty: the services answer again.
  self->state.cache = std::make_unique<result_cache>(max_entries, max_bytes);
  self->state.shared = std::move(shared);
  if (self->state.shared)
    load_generations(self);
  return {
    [self](atom::reload, std::size_t max_entries, std::size_t max_bytes) {
      self->state.cache->resize(max_entries, max_bytes);
    },
    [self](atom::get, cache_lookup_ptr& lookup) {
      auto& st = self->state;
      auto hit = st.cache->get(lookup->key, self->clock().now(), lookup->allow_stale);
      if ((hit && !hit->stale) || !st.shared || !st.shared->available())
        return lookup->answer(std::move(hit));
      auto tag = shared_tag(self, lookup->key);
      if (tag.empty())
        return lookup->answer(std::move(hit));
      shared_get(self, tag, std::move(lookup), std::move(hit));
    },
    [self](atom::put, const std::string& key, value& result, int64_t ttl_ms, int64_t stale_ms) {
      auto& st = self->state;
      if (auto tag = ttl_ms + stale_ms > 0 ? shared_tag(self, key) : std::string(); !tag.empty()) {
        auto life = std::min<int64_t>(ttl_ms + stale_ms, st.shared->settings().cache_max_ttl.count());
        st.shared->command({"SET", st.shared->key("cache:" + tag + ":" + key), encode_copy(result, ttl_ms, stale_ms),
                            "PX", std::to_string(life)},
                           [](redis_reply) {});
      }
      st.cache->put(key, std::move(result), milliseconds(ttl_ms), milliseconds(stale_ms), self->clock().now());
    },
    [self](atom::put, const std::string& key, value& result, int64_t ttl_ms, int64_t stale_ms, int64_t age_ms,
           const std::string& tag) {
      // Not when the key's scope was invalidated while the copy was on its way.
      if (self->state.tag(key) != tag)
        return;
      self->state.cache->put(key, std::move(result), milliseconds(ttl_ms), milliseconds(stale_ms), self->clock().now(),
                             milliseconds(age_ms));
    },
    [self](atom::drop, const std::string& prefix) {
      auto& st = self->state;
      st.cache->invalidate(prefix);
      if (st.shared && st.shared->available()) {
        // One new generation for the scope the prefix is in: the copies
        // stored under the old one are no longer looked up anywhere.
        auto scope = invalidation_scope(prefix);
        ++st.bumping[scope];
        auto me = caf::actor_cast<cache_actor>(self);
        st.shared->eval(bump_script(), {st.shared->key("cache-generations")},
                        {scope, std::to_string(st.shared->settings().cache_max_ttl.count()),
                         st.shared->key("invalidate"), st.shared->instance(), prefix},
                        [me, scope](redis_reply r) {
                          caf::anon_send(me, atom::done_v, scope,
                                         r.type == redis_reply::kind::string ? r.str : std::string());
                        });
      }
    },
    [self](atom::drop, const std::string& prefix, bool) { self->state.cache->invalidate(prefix); },
    [self](atom::drop, const std::string& prefix, const std::string& gen) {
      self->state.cache->invalidate(prefix);
      self->state.advance(invalidation_scope(prefix), gen);
    },
    [self](atom::done, const std::string& scope, const std::string& gen) {
      auto& st = self->state;
      if (auto i = st.bumping.find(scope); i != st.bumping.end() && --i->second <= 0)
        st.bumping.erase(i);
      if (!gen.empty())
        st.advance(scope, gen);
    },
    [self](atom::start) {
      if (self->state.shared)
        load_generations(self);
    },
    [self](atom::start, const value& gens) {
      auto& st = self->state;
      st.generations_loading = false;
      if (!gens.is_object())
        return;
      for (auto& [scope, gen] : gens.as_object())
        st.advance(scope, gen.as_string());
      st.generations_known = true;
    },
    [self](atom::done, bool found) { ++(found ? self->state.shared_hits : self->state.shared_misses); },
    [self](atom::get) -> value {
      auto& st = self->state;
      auto& c = *st.cache;
      auto lookups = c.hits + c.stale_hits + c.misses;
      auto status =
        value::make_object({{"mailbox", static_cast<unsigned long long>(self->mailbox().size())},
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
                                                 {"generationsKnown", st.generations_known},
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
