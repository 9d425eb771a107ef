#include "actors/limiter.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

/// Token arithmetic drifts by a few ulps; a bucket this close to its
/// capacity counts as full.
constexpr double epsilon = 1e-9;

double nanos(milliseconds d) {
  return static_cast<double>(d.count()) * 1e6;
}

/// Rounds up to whole milliseconds, forgiving half a nanosecond of drift.
milliseconds ceil_ms(double ns) {
  auto ms = std::ceil((ns - 0.5) / 1e6);
  return milliseconds(ms > 0 ? static_cast<milliseconds::rep>(ms) : 0);
}

double rounded(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

value limit_json(const rate_limit& l) {
  return value::make_object({{"count", static_cast<unsigned long long>(l.count)},
                             {"perMs", static_cast<long long>(l.per.count())},
                             {"text", describe(l)}});
}

} // namespace

std::string describe(const rate_limit& limit) {
  auto ms = limit.per.count();
  auto text = std::to_string(limit.count) + " per ";
  switch (ms) {
    case 1000:
      return text + "second";
    case 60'000:
      return text + "minute";
    case 3'600'000:
      return text + "hour";
    case 86'400'000:
      return text + "day";
    default:
      break;
  }
  if (ms > 0 && ms % 3'600'000 == 0)
    return text + std::to_string(ms / 3'600'000) + " hours";
  if (ms > 0 && ms % 60'000 == 0)
    return text + std::to_string(ms / 60'000) + " minutes";
  if (ms > 0 && ms % 1000 == 0)
    return text + std::to_string(ms / 1000) + " s";
  return text + std::to_string(ms) + " ms";
}

// -- bucket arithmetic --------------------------------------------------------------

rate_buckets::rate_buckets(limiter_config cfg) : cfg_(std::move(cfg)) {
  // Full buckets last touched at the clock's epoch: any `now` finds them full.
  for (auto& [name, limits] : cfg_.services)
    if (!limits.empty())
      services_.emplace(name, fresh(limits, clock::time_point{}));
  global_ = fresh(cfg_.global, clock::time_point{});
}

double rate_buckets::capacity(const bucket& b) const noexcept {
  if (b.limit.count == 0)
    return 0;
  // A tightened budget still lets one call through now and then.
  return std::max(1.0, static_cast<double>(b.limit.count) * scale_);
}

double rate_buckets::tokens_at(const bucket& b, clock::time_point now) const noexcept {
  if (now <= b.last)
    return b.tokens;
  auto cap = capacity(b);
  if (b.limit.per.count() <= 0)
    return cap;
  // Multiply before dividing: whole periods then give whole tokens exactly.
  auto elapsed = static_cast<double>(duration_cast<nanoseconds>(now - b.last).count());
  auto gained = elapsed * static_cast<double>(b.limit.count) * scale_ / nanos(b.limit.per);
  return std::min(cap, b.tokens + gained);
}

void rate_buckets::refill(bucket& b, clock::time_point now) const noexcept {
  if (now <= b.last)
    return;
  b.tokens = tokens_at(b, now);
  b.last = now;
}

double rate_buckets::nanos_until(const bucket& b, double tokens) const noexcept {
  if (b.tokens >= tokens || b.limit.per.count() <= 0)
    return 0;
  if (b.limit.count == 0)
    return std::numeric_limits<double>::infinity();
  auto ns = (tokens - b.tokens) * nanos(b.limit.per) / (static_cast<double>(b.limit.count) * scale_);
  // The clock counts whole nanoseconds: less than half of one is drift.
  return ns < 0.5 ? 0 : ns;
}

rate_buckets::windows rate_buckets::fresh(const std::vector<rate_limit>& limits, clock::time_point now) const {
  windows ws;
  ws.reserve(limits.size());
  for (auto& l : limits) {
    bucket b{l, 0, now};
    b.tokens = capacity(b);
    ws.push_back(b);
  }
  return ws;
}

std::string describe(const rate_limit& limit, double scale) {
  auto text = describe(limit);
  if (scale < 1.0)
    text += " (at " + std::to_string(static_cast<int>(std::lround(scale * 100))) + "% while degraded)";
  return text;
}

std::string rate_buckets::scaled_text(const rate_limit& limit) const {
  return describe(limit, scale_);
}

void rate_buckets::give_back(windows& ws, clock::time_point now) const {
  for (auto& b : ws) {
    refill(b, now);
    b.tokens = std::min(capacity(b), b.tokens + 1);
  }
}

// -- admission ------------------------------------------------------------------------

admission rate_buckets::check(const admission_request& req, clock::time_point now) {
  struct level {
    const char* name;
    std::string label;
    windows* buckets;
  };
  std::vector<level> levels;
  levels.reserve(3);

  // The key level. A refused call must leave no trace, so remember what the
  // key looked like before.
  bool new_key = false;
  std::optional<key_state> key_before;
  if (!req.tier.empty()) {
    auto tier = cfg_.tiers.find(req.tier);
    if (tier == cfg_.tiers.end()) {
      ++counters_.refused_user_quota;
      admission refused;
      refused.refused_by = "user_quota";
      refused.limit = "unknown tier " + req.tier;
      return refused; // retry_after stays 0: waiting does not help
    }
    if (!tier->second.empty()) {
      auto [i, inserted] = keys_.try_emplace(req.key);
      new_key = inserted;
      if (!inserted && i->second.tier != req.tier)
        key_before = i->second;
      // A key that changed tier starts over with its new tier's budget.
      if (inserted || i->second.tier != req.tier)
        i->second = key_state{req.tier, fresh(tier->second, now)};
      levels.push_back({"user_quota", req.tier + " tier", &i->second.buckets});
    }
  }
  if (!req.service.empty()) {
    if (auto s = services_.find(req.service); s != services_.end())
      levels.push_back({"service", "service " + req.service, &s->second});
  }
  if (!global_.empty())
    levels.push_back({"global", "global", &global_});

  auto max_wait = req.max_wait > milliseconds(0) ? nanos(req.max_wait) : 0.0;
  std::vector<std::pair<bucket*, bucket>> taken; // (bucket, its state before)
  double longest = 0;
  for (auto& l : levels) {
    for (auto& b : *l.buckets) {
      auto before = b;
      refill(b, now);
      auto wait = nanos_until(b, 1.0);
      if (wait > max_wait) {
        admission refused;
        refused.refused_by = l.name;
        refused.limit = l.label + ": " + scaled_text(b.limit);
        refused.retry_after = std::isfinite(wait) ? ceil_ms(wait) : b.limit.per;
        refused.retry_after = std::max(refused.retry_after, milliseconds(1));
        b = before;
        for (auto i = taken.rbegin(); i != taken.rend(); ++i)
          *i->first = i->second;
        if (new_key)
          keys_.erase(req.key);
        else if (key_before)
          keys_[req.key] = std::move(*key_before);
        if (refused.refused_by == "user_quota")
          ++counters_.refused_user_quota;
        else if (refused.refused_by == "service")
          ++counters_.refused_service;
        else
          ++counters_.refused_global;
        return refused;
      }
      taken.emplace_back(&b, before);
      b.tokens -= 1; // below zero in queue mode: a debt repaid by `wait`
      longest = std::max(longest, wait);
    }
  }
  admission ok;
  ok.admitted = true;
  ok.delay = ceil_ms(longest);
  ++counters_.admitted;
  if (ok.delay > milliseconds(0))
    ++counters_.delayed;
  return ok;
}

void rate_buckets::refund(const admission_request& req, clock::time_point now) {
  if (!req.tier.empty()) {
    // A key swept since was full anyway; a key that changed tier was reset.
    if (auto k = keys_.find(req.key); k != keys_.end() && k->second.tier == req.tier)
      give_back(k->second.buckets, now);
  }
  if (!req.service.empty()) {
    if (auto s = services_.find(req.service); s != services_.end())
      give_back(s->second, now);
  }
  give_back(global_, now);
}

// -- degraded mode --------------------------------------------------------------------

void rate_buckets::set_scale(double factor) {
  if (!(factor > 0))
    factor = 1e-3;
  scale_ = std::clamp(factor, 1e-3, 1.0);
  auto clamp_all = [this](windows& ws) {
    for (auto& b : ws)
      b.tokens = std::min(b.tokens, capacity(b));
  };
  for (auto& [key, k] : keys_)
    clamp_all(k.buckets);
  for (auto& [name, ws] : services_)
    clamp_all(ws);
  clamp_all(global_);
}

// -- reconfiguration ------------------------------------------------------------------

rate_buckets::windows rate_buckets::carried(const windows& ws, const std::vector<rate_limit>& limits,
                                            clock::time_point now) const {
  auto out = fresh(limits, now);
  for (auto& b : out)
    for (auto& old : ws)
      if (old.limit.per == b.limit.per) {
        b.tokens = std::min(tokens_at(old, now), capacity(b));
        break;
      }
  return out;
}

void rate_buckets::reconfigure(limiter_config cfg, clock::time_point now) {
  std::map<std::string, windows> services;
  for (auto& [name, limits] : cfg.services) {
    if (limits.empty())
      continue;
    auto old = services_.find(name);
    services.emplace(name, old == services_.end() ? fresh(limits, now) : carried(old->second, limits, now));
  }
  services_ = std::move(services);
  global_ = carried(global_, cfg.global, now);
  for (auto i = keys_.begin(); i != keys_.end();) {
    auto tier = cfg.tiers.find(i->second.tier);
    if (tier == cfg.tiers.end() || tier->second.empty()) {
      i = keys_.erase(i);
      continue;
    }
    i->second.buckets = carried(i->second.buckets, tier->second, now);
    ++i;
  }
  cfg_ = std::move(cfg);
}

// -- inspection -------------------------------------------------------------------------

double rate_buckets::usage(const std::string& service, clock::time_point now) const {
  auto s = services_.find(service);
  if (s == services_.end())
    return 0;
  double used = 0;
  for (auto& b : s->second) {
    auto cap = capacity(b);
    auto u = cap > 0 ? 1.0 - tokens_at(b, now) / cap : 1.0;
    used = std::max(used, std::clamp(u, 0.0, 1.0));
  }
  return used;
}

std::vector<double> rate_buckets::key_tokens(const std::string& key, clock::time_point now) const {
  std::vector<double> out;
  if (auto k = keys_.find(key); k != keys_.end())
    for (auto& b : k->second.buckets)
      out.push_back(tokens_at(b, now));
  return out;
}

std::vector<double> rate_buckets::service_tokens(const std::string& service, clock::time_point now) const {
  std::vector<double> out;
  if (auto s = services_.find(service); s != services_.end())
    for (auto& b : s->second)
      out.push_back(tokens_at(b, now));
  return out;
}

std::vector<double> rate_buckets::global_tokens(clock::time_point now) const {
  std::vector<double> out;
  for (auto& b : global_)
    out.push_back(tokens_at(b, now));
  return out;
}

void rate_buckets::sweep(clock::time_point now) {
  for (auto i = keys_.begin(); i != keys_.end();) {
    bool full = std::all_of(i->second.buckets.begin(), i->second.buckets.end(),
                            [&](const bucket& b) { return tokens_at(b, now) >= capacity(b) - epsilon; });
    i = full ? keys_.erase(i) : std::next(i);
  }
}

json::value rate_buckets::status(clock::time_point now) const {
  auto buckets_json = [&](const windows& ws) {
    auto list = value::make_array();
    for (auto& b : ws) {
      auto entry = limit_json(b.limit);
      entry.set("capacity", rounded(capacity(b)));
      entry.set("tokens", rounded(tokens_at(b, now)));
      list.push_back(std::move(entry));
    }
    return list;
  };
  auto tiers = value::make_object();
  for (auto& [name, limits] : cfg_.tiers) {
    auto list = value::make_array();
    for (auto& l : limits)
      list.push_back(limit_json(l));
    tiers.set(name, std::move(list));
  }
  auto services = value::make_object();
  for (auto& [name, ws] : services_)
    services.set(name, buckets_json(ws));
  return value::make_object(
    {{"scale", scale_},
     {"tiers", std::move(tiers)},
     {"services", std::move(services)},
     {"global", buckets_json(global_)},
     {"keys", static_cast<unsigned long long>(keys_.size())},
     {"admitted", static_cast<unsigned long long>(counters_.admitted)},
     {"delayed", static_cast<unsigned long long>(counters_.delayed)},
     {"refusals", value::make_object({{"user_quota", static_cast<unsigned long long>(counters_.refused_user_quota)},
                                      {"service", static_cast<unsigned long long>(counters_.refused_service)},
                                      {"global", static_cast<unsigned long long>(counters_.refused_global)}})}});
}

} // namespace bulwark
