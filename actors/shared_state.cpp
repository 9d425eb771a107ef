#include "actors/shared_state.hpp"

#include <algorithm>
#include <any>
#include <cmath>
#include <cstdlib>

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/gateway_router.hpp"
#include "actors/operations.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "messages/crypto.hpp"
#include "transport/redis_client.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

// -- the client and its subscriptions -----------------------------------------------------

namespace {

/// Tells the gateway's router, if there is one, to read the fleet's tool
/// pins again.
void reread_pins(const env_ptr& env) {
  if (auto router = env->names.get(gateway_router_name))
    caf::anon_send(caf::actor_cast<gateway_router_actor>(router), atom::pins_v);
}

/// The key that seals `requestState` on every instance: the first instance
/// to ask stores one, and every instance reads what is stored. One that
/// knew the key already stores that (a Redis emptied meanwhile keeps the
/// fleet's key). Redis is trusted with the fleet's state already; the key
/// is never logged.
void share_state_key(const env_ptr& env) {
  auto client = env->redis;
  if (!client)
    return;
  std::weak_ptr<runtime_env> weak = env;
  auto name = client->key("state-key");
  auto known = env->fleet_key();
  client->command(
    {"SET", name, known.empty() ? crypto::random_hex(32) : known, "NX"}, [weak, name](const redis_reply&) {
      auto env = weak.lock();
      if (!env || !env->redis)
        return;
      env->redis->command({"GET", name}, [weak](const redis_reply& r) {
        auto env = weak.lock();
        if (!env)
          return;
        if (r.type == redis_reply::kind::string && r.str.size() >= 32)
          env->adopt_fleet_key(r.str);
        else
          log::warn("the fleet's requestState key is not readable in Redis; this instance seals with its own",
                    value::make_object({{"reply", r.failed() ? r.str : std::string("not a key")}}));
      });
    });
}

} // namespace

std::shared_ptr<redis_client> make_shared_state(const env_ptr& env) {
  auto client = std::make_shared<redis_client>(env->opts.ops.redis, crypto::random_hex(8));
  std::weak_ptr<runtime_env> weak = env;
  auto me = client->instance();
  // Another instance dropped cached results ("instance\ngeneration\nprefix"):
  // drop them here too, and take the scope's new generation.
  client->subscribe("invalidate", [weak, me](const std::string& message) {
    auto first = message.find('\n');
    auto second = first == std::string::npos ? first : message.find('\n', first + 1);
    if (second == std::string::npos || message.compare(0, first, me) == 0)
      return;
    if (auto env = weak.lock())
      if (auto cache = env->names.get(cache_actor_name))
        caf::anon_send(caf::actor_cast<cache_actor>(cache), atom::drop_v, message.substr(second + 1),
                       message.substr(first + 1, second - first - 1));
  });
  // A session ended (DELETE) through another instance ends here too.
  client->subscribe("sessions", [weak, me](const std::string& message) {
    auto nl = message.find('\n');
    if (nl == std::string::npos || message.compare(0, nl, me) == 0)
      return;
    auto env = weak.lock();
    if (!env)
      return;
    auto name = names::session_prefix + message.substr(nl + 1);
    if (auto h = env->names.get(name)) {
      env->names.erase(name, h.address());
      caf::anon_send(caf::actor_cast<session_actor>(h), atom::end_v);
    }
  });
  // A client of a session subscribed or unsubscribed through another
  // instance ("instance\nsession\n+uri" or "-uri"): this instance's actor of
  // that session, if it has one, follows.
  client->subscribe("watches", [weak, me](const std::string& message) {
    auto first = message.find('\n');
    auto second = first == std::string::npos ? first : message.find('\n', first + 1);
    if (second == std::string::npos || second + 2 > message.size() || message.compare(0, first, me) == 0)
      return;
    auto env = weak.lock();
    if (!env)
      return;
    if (auto h = env->names.get(names::session_prefix + message.substr(first + 1, second - first - 1)))
      caf::anon_send(caf::actor_cast<session_actor>(h), atom::watch_v, message.substr(second + 2),
                     message[second + 1] == '+');
  });
  // A resource was updated on another instance ("instance\nuri"): this
  // instance's sessions that watch it are told.
  client->subscribe("updates", [weak, me](const std::string& message) {
    auto nl = message.find('\n');
    if (nl == std::string::npos || message.compare(0, nl, me) == 0)
      return;
    if (auto env = weak.lock())
      if (auto s = env->names.get(names::session_supervisor))
        caf::anon_send(caf::actor_cast<session_supervisor_actor>(s), atom::notify_v,
                       std::string("notifications/resources/updated"),
                       value::make_object({{"uri", message.substr(nl + 1)}}));
  });
  // Another instance's breaker opened or closed: this one's follows.
  client->subscribe("breakers", [weak, me](const std::string& message) {
    auto first = message.find('\n');
    auto second = first == std::string::npos ? first : message.find('\n', first + 1);
    if (second == std::string::npos || message.compare(0, first, me) == 0)
      return;
    auto env = weak.lock();
    if (!env)
      return;
    auto service = message.substr(first + 1, second - first - 1);
    if (auto b = env->names.get(breaker_name(service)))
      caf::anon_send(caf::actor_cast<breaker_actor>(b), atom::force_v, message.substr(second + 1), true);
  });
  // Other instances' degraded mode, for this one's health report.
  client->subscribe("degraded", [weak, me](const std::string& message) {
    auto nl = message.find('\n');
    if (nl == std::string::npos || message.compare(0, nl, me) == 0)
      return;
    value v;
    json::parse_error err;
    if (auto env = weak.lock(); env && json::parse(std::string_view(message).substr(nl + 1), v, err))
      env->peer_degraded(message.substr(0, nl), std::move(v));
  });
  // Another instance changed the fleet's tool pins: the router reads them.
  client->subscribe("pins", [weak, me](const std::string& message) {
    if (message == me)
      return;
    if (auto env = weak.lock())
      reread_pins(env);
  });
  // Breaker states published while this instance was starting or away.
  client->on_connected([weak] {
    auto env = weak.lock();
    if (!env)
      return;
    share_state_key(env);
    // Pins changed while this instance was away, and those it took meanwhile
    // go to the fleet.
    reread_pins(env);
    // Invalidations may have happened meanwhile: the cache's generations
    // are read again.
    if (auto cache = env->names.get(cache_actor_name))
      caf::anon_send(caf::actor_cast<cache_actor>(cache), atom::start_v);
    for (auto& service : env->service_names())
      if (auto b = env->names.get(breaker_name(service)))
        adopt_breaker(env, service, b);
  });
  // Invalidations sent while the subscription was down were missed: what
  // this instance holds in memory may be outdated, and so may its
  // generations.
  client->on_resubscribed([weak] {
    if (auto env = weak.lock())
      if (auto cache = env->names.get(cache_actor_name)) {
        caf::anon_send(caf::actor_cast<cache_actor>(cache), atom::drop_v, std::string(), true);
        caf::anon_send(caf::actor_cast<cache_actor>(cache), atom::start_v);
      }
  });
  return client;
}

// -- rate limits ----------------------------------------------------------------------------

namespace {

/// Token buckets, one hash per window: `t` tokens at `ts` ms (Redis time, so
/// that all instances share one clock). ARGV: mode ("lease" or "give"), the
/// longest wait allowed in ms (queue mode), the degraded-mode scale, the
/// tokens wanted (a lease) or given back, then (count, period ms) per key.
/// A lease that some bucket refuses changes nothing and answers {0, index of
/// that bucket, wait ms}; an admitted one takes the same number of tokens
/// from every bucket, at least one and at most as many as each holds (or
/// one that the call waits for, in queue mode), and answers {1, 0, longest
/// wait ms, tokens taken}. A bucket expires once it would be full again: a
/// full bucket and a missing one are the same.
const redis_script& bucket_script() {
  static const redis_script script(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local mode = ARGV[1]
local max_wait = tonumber(ARGV[2])
local scale = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local tokens, caps, rates = {}, {}, {}
local longest = 0
local fewest = amount
for i = 1, #KEYS do
  local count = tonumber(ARGV[3 + 2 * i])
  local per = tonumber(ARGV[4 + 2 * i])
  local cap = 0
  if count > 0 then cap = math.max(1, count * scale) end
  local rate = 0
  if per > 0 then rate = count * scale / per end
  local s = redis.call('HMGET', KEYS[i], 't', 'ts')
  local tok = cap
  if s[1] then
    tok = tonumber(s[1])
    local last = tonumber(s[2])
    if now > last then tok = tok + (now - last) * rate end
    tok = math.min(cap, tok)
  end
  tokens[i], caps[i], rates[i] = tok, cap, rate
  if mode == 'lease' then
    if tok < 1 then
      local wait = -1
      if rate > 0 then wait = (1 - tok) / rate end
      if wait < 0 or wait > max_wait then
        return {0, i, tostring(wait)}
      end
      longest = math.max(longest, wait)
      fewest = 1
    else
      fewest = math.min(fewest, math.floor(tok))
    end
  end
end
if fewest < 1 then fewest = 1 end
for i = 1, #KEYS do
  local tok = tokens[i] - fewest
  if mode ~= 'lease' then tok = math.min(caps[i], tokens[i] + amount) end
  redis.call('HSET', KEYS[i], 't', tostring(tok), 'ts', tostring(now))
  if rates[i] > 0 then
    redis.call('PEXPIRE', KEYS[i], math.ceil((caps[i] - tok) / rates[i]) + 1000)
  else
    redis.call('PEXPIRE', KEYS[i], 86400000)
  end
end
return {1, 0, tostring(longest), fewest}
)lua");
  return script;
}

/// The shared buckets one request passes, in the order the local limiter
/// checks them.
struct bucket_plan {
  struct level {
    std::string name; ///< user_quota, service, global
    std::string label; ///< "free tier", "service web", "global"
    rate_limit limit;
  };
  std::vector<std::string> keys;
  std::vector<level> levels; ///< Parallel to keys.
};

std::optional<bucket_plan> plan_for(const runtime_env& env, const admission_request& req) {
  const auto& cfg = env.buckets->config();
  const auto& r = *env.redis;
  bucket_plan p;
  auto add = [&](const std::string& name, const std::string& label, const std::vector<rate_limit>& windows,
                 const std::string& key) {
    for (std::size_t i = 0; i < windows.size(); ++i) {
      p.keys.push_back(r.key("rl:" + key + ":" + std::to_string(i) + ":" + std::to_string(windows[i].count) + "/"
                             + std::to_string(windows[i].per.count())));
      p.levels.push_back({name, label, windows[i]});
    }
  };
  if (!req.tier.empty()) {
    auto tier = cfg.tiers.find(req.tier);
    if (tier == cfg.tiers.end())
      return std::nullopt; // refused locally, with its own words
    add("user_quota", req.tier + " tier", tier->second, "key:" + req.tier + ":" + req.key);
  }
  if (!req.service.empty())
    if (auto s = cfg.services.find(req.service); s != cfg.services.end())
      add("service", "service " + req.service, s->second, "service:" + req.service);
  add("global", "global", cfg.global, "global");
  return p;
}

std::vector<std::string> script_args(const bucket_plan& p, const char* mode, milliseconds max_wait, double scale,
                                     long long amount) {
  std::vector<std::string> args{mode, std::to_string(max_wait.count()), std::to_string(scale), std::to_string(amount)};
  for (auto& l : p.levels) {
    args.push_back(std::to_string(l.limit.count));
    args.push_back(std::to_string(l.limit.per.count()));
  }
  return args;
}

milliseconds ceil_ms(double ms) {
  return milliseconds(ms > 0 ? static_cast<milliseconds::rep>(std::ceil(ms - 1e-6)) : 0);
}

/// The name of the lease of a request's plan: what chooses its buckets (so
/// that a token is spent without making the plan).
std::string lease_name(const admission_request& r) {
  std::string out;
  out.reserve(r.tier.size() + r.key.size() + r.service.size() + 2);
  out.append(r.tier).push_back('\n');
  out.append(r.service).push_back('\n');
  out.append(r.key);
  return out;
}

/// Gives the tokens of leases whose time is up back to the shared buckets
/// (at most four times a second).
void return_expired_leases(const env_ptr& env, steady_clock::time_point now, double scale) {
  for (auto& [name, left] : env->leases->expired(now)) {
    auto plan = std::any_cast<bucket_plan>(&left.plan);
    if (plan && left.tokens > 0)
      env->redis->eval(bucket_script(), plan->keys, script_args(*plan, "give", milliseconds(0), scale, left.tokens),
                       [](redis_reply) {});
  }
}

} // namespace

// -- lease_book ---------------------------------------------------------------------------

long long lease_book::size_for(const std::vector<rate_limit>& limits, double scale) {
  long long size = max_lease;
  for (auto& l : limits)
    size = std::min(size, static_cast<long long>(std::floor(static_cast<double>(l.count) * scale / 16)));
  return std::max<long long>(1, size);
}

bool lease_book::spend(const std::string& name, clock::time_point now) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = leases_.find(name);
  if (i == leases_.end() || i->second.tokens < 1 || now >= i->second.until)
    return false;
  --i->second.tokens;
  return true;
}

void lease_book::keep(const std::string& name, long long tokens, std::any plan, clock::time_point now) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto& l = leases_[name];
  if (now >= l.until) {
    // What an expired lease still held is given back by `expired` first.
    if (l.tokens > 0)
      due_.push_back({name, l});
    l.tokens = 0;
  }
  l.tokens += tokens;
  l.until = now + life;
  l.plan = std::move(plan);
}

bool lease_book::give_back(const std::string& name, clock::time_point now) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = leases_.find(name);
  if (i == leases_.end() || now >= i->second.until)
    return false;
  ++i->second.tokens;
  return true;
}

std::vector<std::pair<std::string, lease_book::lease>> lease_book::expired(clock::time_point now) {
  std::vector<std::pair<std::string, lease>> out;
  // Looked at without the lock on every call: a sweep is rare.
  auto at = now.time_since_epoch().count();
  if (at - last_sweep_.load(std::memory_order_relaxed) < sweep_every.count())
    return out;
  std::lock_guard<std::mutex> guard(mtx_);
  last_sweep_.store(at, std::memory_order_relaxed);
  out.swap(due_);
  for (auto i = leases_.begin(); i != leases_.end();) {
    if (now >= i->second.until) {
      if (i->second.tokens > 0)
        out.emplace_back(i->first, std::move(i->second));
      i = leases_.erase(i);
    } else {
      ++i;
    }
  }
  return out;
}

std::size_t lease_book::size() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return leases_.size();
}

bool shared_admit(const env_ptr& env, const admission_ticket_ptr& ticket, double scale, const caf::actor& limiter) {
  // A token leased before: no round trip.
  auto now = steady_clock::now();
  return_expired_leases(env, now, scale);
  auto name = lease_name(ticket->request);
  if (env->leases->spend(name, now)) {
    admission ok;
    ok.admitted = true;
    ticket->answer(ok);
    return true;
  }
  auto plan = plan_for(*env, ticket->request);
  if (!plan)
    return false;
  if (plan->keys.empty()) {
    admission ok;
    ok.admitted = true;
    ticket->answer(ok);
    return true;
  }
  std::vector<rate_limit> limits;
  for (auto& l : plan->levels)
    limits.push_back(l.limit);
  auto want = lease_book::size_for(limits, scale);
  auto args = script_args(*plan, "lease", ticket->request.max_wait, scale, want);
  std::weak_ptr<runtime_env> weak = env;
  auto keys = plan->keys;
  env->redis->eval(
    bucket_script(), keys, args,
    [weak, ticket, plan = std::move(*plan), name = std::move(name), scale, limiter](redis_reply r) mutable {
      auto env = weak.lock();
      if (!env)
        return;
      if (r.failed() || r.type != redis_reply::kind::array || r.elements.size() < 3) {
        // Decided here after all, with this instance's buckets.
        ticket->local = true;
        caf::anon_send(caf::actor_cast<limiter_actor>(limiter), atom::admit_v, ticket);
        return;
      }
      admission a;
      auto wait = std::strtod(r.elements[2].str.c_str(), nullptr);
      if (r.elements[0].integer == 1) {
        a.admitted = true;
        a.delay = ceil_ms(wait);
        // This call takes one token; the rest is spent here by the next
        // calls of the same kind, without a round trip.
        auto taken = r.elements.size() > 3 ? r.elements[3].integer : 1;
        if (taken > 1)
          env->leases->keep(name, taken - 1, std::any(std::move(plan)), steady_clock::now());
      } else {
        const auto& levels = plan.levels;
        auto index = static_cast<std::size_t>(std::max<long long>(1, r.elements[1].integer)) - 1;
        const auto& l = levels.at(std::min(index, levels.size() - 1));
        a.refused_by = l.name;
        a.limit = l.label + ": " + describe(l.limit, scale);
        a.retry_after = std::max(wait >= 0 ? ceil_ms(wait) : l.limit.per, milliseconds(1));
        if (env->metrics)
          env->metrics->counter("bulwark_rate_limit_refusals_total", {{"limit", a.refused_by}}).inc();
      }
      ticket->answer(a);
    });
  return true;
}

void shared_refund(const env_ptr& env, const admission_request& request, double scale) {
  // Into the lease it may have come from, while that lasts.
  if (env->leases->give_back(lease_name(request), steady_clock::now()))
    return;
  auto plan = plan_for(*env, request);
  if (!plan || plan->keys.empty())
    return;
  env->redis->eval(bucket_script(), plan->keys, script_args(*plan, "give", milliseconds(0), scale, 1),
                   [](redis_reply) {});
}

// -- the session directory -------------------------------------------------------------------

bool recent_misses::contains(const std::string& id, clock::time_point now) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = map_.find(id);
  if (i == map_.end())
    return false;
  if (now < i->second.until)
    return true;
  map_.erase(i);
  return false;
}

void recent_misses::add(const std::string& id, clock::time_point now) {
  if (capacity_ == 0)
    return;
  std::lock_guard<std::mutex> guard(mtx_);
  auto seq = next_++;
  map_[id] = miss{now + ttl_, seq};
  order_.emplace_back(id, seq);
  // The oldest go first; entries forgotten or added again since are skipped.
  while (map_.size() > capacity_ || order_.size() > 2 * capacity_) {
    auto& [old, old_seq] = order_.front();
    if (auto i = map_.find(old); i != map_.end() && i->second.seq == old_seq)
      map_.erase(i);
    order_.pop_front();
  }
}

void recent_misses::forget(const std::string& id) {
  std::lock_guard<std::mutex> guard(mtx_);
  map_.erase(id);
}

std::size_t recent_misses::size() {
  std::lock_guard<std::mutex> guard(mtx_);
  return map_.size();
}

namespace {

std::string session_key(const redis_client& r, const std::string& id) {
  return r.key("session:" + id);
}

milliseconds session_ttl(const runtime_env& env) {
  auto ttl =
    env.opts.ops.redis.session_ttl.count() > 0 ? env.opts.ops.redis.session_ttl : env.opts.session_idle_timeout;
  return duration_cast<milliseconds>(ttl);
}

bool shared(const env_ptr& env) {
  return env && env->redis && env->redis->available();
}

} // namespace

void publish_session(const env_ptr& env, const session_record& rec, std::function<void()> then) {
  // A session made here is known here, whatever was asked before.
  if (env && env->unknown_sessions && !rec.stateless)
    env->unknown_sessions->forget(rec.id);
  if (!shared(env) || rec.stateless || !rec.initialized) {
    if (then)
      then();
    return;
  }
  auto& r = *env->redis;
  auto key = session_key(r, rec.id);
  value watched(json::array{});
  for (auto& uri : rec.subscriptions.uris())
    watched.push_back(uri);
  r.command({"HSET", key, "identity", rec.identity, "version", rec.protocol_version, "capabilities",
             json::dump(rec.client_capabilities), "clientInfo", json::dump(rec.client_info), "logLevel",
             std::string(to_string(rec.min_level)), "subscriptions", json::dump(watched)},
            [](redis_reply) {});
  // Commands are answered in order: the second answer means both are done.
  r.command({"PEXPIRE", key, std::to_string(session_ttl(*env).count())}, [then = std::move(then)](redis_reply) {
    if (then)
      then();
  });
}

void retract_session(const env_ptr& env, const std::string& id) {
  if (!shared(env))
    return;
  env->redis->command({"DEL", session_key(*env->redis, id)}, [](redis_reply) {});
  env->redis->publish("sessions", env->redis->instance() + "\n" + id);
}

void share_subscription(const env_ptr& env, const std::string& id, const std::string& uri, bool on) {
  if (!shared(env))
    return;
  env->redis->publish("watches", env->redis->instance() + "\n" + id + "\n" + (on ? "+" : "-") + uri);
}

void share_resource_update(const env_ptr& env, const std::string& uri) {
  if (!shared(env))
    return;
  env->redis->publish("updates", env->redis->instance() + "\n" + uri);
}

namespace {

std::string events_key(const redis_client& r, const std::string& id, uint64_t stream) {
  return r.key("events:" + id + ":" + std::to_string(stream));
}

} // namespace

void share_event(const env_ptr& env, const std::string& id, uint64_t stream, uint64_t seq, const std::string& body,
                 bool last) {
  auto keep = env ? env->opts.replay_events : 0;
  if (!shared(env) || keep == 0)
    return;
  auto& r = *env->redis;
  auto key = events_key(r, id, stream);
  // "seq flag\nbody": the flag says whether the event ends a POST's stream.
  r.command({"RPUSH", key, std::to_string(seq) + (last ? " E\n" : " N\n") + body}, [](redis_reply) {});
  r.command({"LTRIM", key, "-" + std::to_string(keep), "-1"}, [](redis_reply) {});
  r.command({"PEXPIRE", key, std::to_string(session_ttl(*env).count())}, [](redis_reply) {});
}

void shared_events(const env_ptr& env, const std::string& id, uint64_t stream, std::function<void(json::value)> done) {
  if (!shared(env))
    return done(value(json::array{}));
  env->redis->command(
    {"LRANGE", events_key(*env->redis, id, stream), "0", "-1"}, [done = std::move(done)](const redis_reply& r) {
      value events(json::array{});
      for (auto& e : r.elements) {
        auto space = e.str.find(' ');
        auto nl = e.str.find('\n');
        if (e.type != redis_reply::kind::string || space == std::string::npos || nl != space + 2)
          continue;
        events.push_back(
          value::make_object({{"seq", static_cast<unsigned long long>(std::strtoull(e.str.c_str(), nullptr, 10))},
                              {"last", e.str[space + 1] == 'E'},
                              {"body", e.str.substr(nl + 1)}}));
      }
      done(std::move(events));
    });
}

void lookup_session(const env_ptr& env, const std::string& id, std::function<void(session_record_ptr)> done) {
  if (!shared(env) || id.empty() || id.size() > 128)
    return done(nullptr);
  std::weak_ptr<recent_misses> misses = env->unknown_sessions;
  env->redis->command({"HMGET", session_key(*env->redis, id), "identity", "version", "capabilities", "clientInfo",
                       "logLevel", "subscriptions"},
                      [id, misses, watches = env->watches, done = std::move(done)](redis_reply r) {
                        if (r.type != redis_reply::kind::array || r.elements.size() != 6
                            || r.elements[0].type != redis_reply::kind::string) {
                          // Not there (rather than Redis failing): not asked again for a while.
                          if (r.type == redis_reply::kind::array)
                            if (auto m = misses.lock())
                              m->add(id, recent_misses::clock::now());
                          return done(nullptr);
                        }
                        auto rec = std::make_shared<session_record>();
                        rec->id = id;
                        rec->identity = r.elements[0].str;
                        rec->protocol_version = r.elements[1].str;
                        json::parse_error err;
                        if (!json::parse(r.elements[2].str, rec->client_capabilities, err))
                          rec->client_capabilities = value(json::object{});
                        if (!json::parse(r.elements[3].str, rec->client_info, err))
                          rec->client_info = value();
                        // What the client set on the instance it used before
                        // (absent in entries of older versions).
                        if (auto level = parse_log_level(r.elements[4].str))
                          rec->min_level = *level;
                        value watched;
                        if (json::parse(r.elements[5].str, watched, err) && watched.is_array())
                          for (auto& uri : watched.as_array()) {
                            // Within the same bounds as on the instance that
                            // took them; one over them is left out.
                            bool added = false;
                            if (uri.is_string() && !uri.as_string().empty())
                              rec->subscriptions.insert(watches, uri.as_string(), rec->identity, added);
                          }
                        rec->initialized = true;
                        done(std::move(rec));
                      });
}

// -- breakers and degraded mode ----------------------------------------------------------------

void publish_breaker(const env_ptr& env, const std::string& service, const std::string& state) {
  if (!shared(env))
    return;
  auto& r = *env->redis;
  r.command({"SET", r.key("breaker:" + service), state, "PX", std::to_string(r.settings().breaker_ttl.count())},
            [](redis_reply) {});
  r.publish("breakers", r.instance() + "\n" + service + "\n" + state);
}

void adopt_breaker(const env_ptr& env, const std::string& service, const caf::actor& breaker) {
  if (!shared(env))
    return;
  env->redis->command({"GET", env->redis->key("breaker:" + service)}, [breaker](redis_reply r) {
    if (r.type == redis_reply::kind::string && (r.str == "open" || r.str == "closed"))
      caf::anon_send(caf::actor_cast<breaker_actor>(breaker), atom::force_v, r.str, true);
  });
}

void publish_degraded(const env_ptr& env, bool on, const std::vector<std::string>& reasons) {
  if (!shared(env))
    return;
  value why(json::array{});
  for (auto& r : reasons)
    why.push_back(r);
  env->redis->publish("degraded", env->redis->instance() + "\n"
                                    + json::dump(value::make_object({{"degraded", on}, {"reasons", std::move(why)}})));
}

// -- tool-definition pins -------------------------------------------------------------------

namespace {

/// Sets a pin's field (KEYS[1] the hash, ARGV: the field, the state line it
/// is expected to have, empty for none, and the new text) only when it
/// holds that state: answers 1 when written, 0 when another instance
/// wrote first.
const redis_script& pin_script() {
  static const redis_script script(R"lua(
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local expected = ARGV[2]
if expected == '' then
  if cur then return 0 end
elseif not cur or string.sub(cur, 1, #expected + 1) ~= expected .. '\n' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
)lua");
  return script;
}

} // namespace

void read_shared_pins(const env_ptr& env, const gateway_router_actor& router) {
  auto& r = *env->redis;
  r.command({"HGETALL", r.key("pins")}, [router](redis_reply reply) {
    value fleet;
    if (reply.type == redis_reply::kind::array) {
      fleet = value(json::object{});
      for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2)
        fleet.set(reply.elements[i].str, std::move(reply.elements[i + 1].str));
    }
    caf::anon_send(router, atom::pins_v, std::move(fleet));
  });
}

void write_shared_pins(const env_ptr& env, std::vector<pin_write> writes, const gateway_router_actor& router) {
  if (writes.empty())
    return;
  struct outcome {
    std::atomic<std::size_t> left{0};
    std::atomic<bool> written{false}, lost{false};
  };
  auto result = std::make_shared<outcome>();
  result->left = writes.size();
  std::weak_ptr<runtime_env> weak = env;
  auto key = env->redis->key("pins");
  for (auto& w : writes)
    env->redis->eval(pin_script(), {key}, {w.field, w.expected, w.text}, [result, router, weak](redis_reply r) {
      if (r.type == redis_reply::kind::integer)
        (r.integer == 1 ? result->written : result->lost) = true;
      // (A failed command leaves the pin in this instance's book; it goes
      // to Redis when the router reads the fleet's pins again, once Redis
      // is back.)
      if (--result->left > 0)
        return;
      if (result->lost)
        caf::anon_send(router, atom::pins_v);
      if (auto env = weak.lock(); env && env->redis && result->written)
        env->redis->publish("pins", env->redis->instance());
    });
}

} // namespace bulwark
