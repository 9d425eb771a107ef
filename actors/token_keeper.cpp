#include "actors/token_keeper.hpp"

#include <algorithm>

namespace bulwark {

using namespace std::chrono;

token_keeper::token_keeper(service_auth auth, std::string service_url)
    : auth_(std::move(auth)),
      service_url_(std::move(service_url)),
      client_id_(auth_.client_id),
      client_secret_(auth_.client_secret) {}

token_keeper::slot* token_keeper::find(const std::string& caller) {
  if (caller.empty())
    return &own_;
  auto i = callers_.find(caller);
  return i == callers_.end() ? nullptr : &i->second;
}

token_keeper::slot& token_keeper::at(const std::string& caller, clock::time_point now) {
  if (auto* s = find(caller))
    return *s;
  if (callers_.size() >= max_callers) {
    // Expired and idle slots go first, then any idle one.
    auto idle = [](const slot& s) { return !s.fetching && s.waiting.empty(); };
    for (auto i = callers_.begin(); i != callers_.end();)
      i = idle(i->second) && !i->second.usable(now) ? callers_.erase(i) : std::next(i);
    if (callers_.size() >= max_callers)
      if (auto i = std::find_if(callers_.begin(), callers_.end(), [&](auto& e) { return idle(e.second); });
          i != callers_.end())
        callers_.erase(i);
  }
  return callers_[caller];
}

std::optional<token_keeper::start> token_keeper::begin(const std::string& caller, clock::time_point now) {
  auto& s = at(caller, now);
  if (s.fetching)
    return std::nullopt;
  s.fetching = true;
  s.serial = ++serial_;
  ++requests_;
  start out;
  out.serial = s.serial;
  std::string id_error, secret_error;
  auto id = client_id_.get(id_error);
  auto secret = client_secret_.get(secret_error);
  if (!id || !secret) {
    out.refused.error = "its client credentials cannot be read";
    out.refused.detail =
      "auth." + std::string(id ? "clientSecret" : "clientId") + ": " + (id ? secret_error : id_error);
    return out;
  }
  out.request = caller.empty() ? client_credentials_request(auth_, service_url_, *id, *secret)
                               : token_exchange_request(auth_, service_url_, *id, *secret, caller);
  return out;
}

bool token_keeper::take(const std::string& caller, uint64_t serial, token_grant& g, clock::time_point now,
                        std::deque<held_exchange>& held) {
  auto* s = find(caller);
  if (!s || !s->fetching || s->serial != serial)
    return false;
  s->fetching = false;
  held = std::move(s->waiting);
  s->waiting.clear();
  if (!g.access_token.empty()) {
    s->token = std::move(g.access_token);
    s->obtained = now;
    s->error.clear();
    s->caller_refused = false;
    s->failed_until = {};
    s->expires = s->renew_at = clock::time_point::max();
    if (g.lifetime.count() > 0) {
      // Renewed a tenth of its lifetime (at most a minute) before it ends,
      // so that no exchange waits for a token.
      auto ahead = std::min<milliseconds>(seconds(60), g.lifetime / 10);
      s->expires = now + g.lifetime;
      s->renew_at = now + (g.lifetime - ahead);
    }
    return true;
  }
  ++failures_;
  s->error = g.error;
  s->failed_until = now + failure_memory;
  s->caller_refused = !caller.empty() && g.status >= 400 && g.status < 500 && g.status != 429;
  if (s->usable(now)) {
    // A renewal failed: the token still serves; ask again soon.
    s->renew_at =
      now + std::clamp(duration_cast<milliseconds>(s->expires - now) / 2, milliseconds(100), milliseconds(5000));
  }
  return true;
}

void token_keeper::refused(const std::string& caller, clock::time_point sent) {
  auto* s = find(caller);
  if (s && sent >= s->obtained)
    s->token.clear();
}

json::value token_keeper::status(clock::time_point now) const {
  auto v = json::value::make_object({{"state", own_.usable(now) ? "valid"
                                               : own_.fetching  ? "fetching"
                                                                : "none"},
                                     {"requests", static_cast<unsigned long long>(requests_)},
                                     {"failures", static_cast<unsigned long long>(failures_)},
                                     {"error", own_.error},
                                     {"callers", static_cast<unsigned long long>(callers_.size())}});
  if (own_.usable(now) && own_.expires != clock::time_point::max())
    v.set("expiresInSeconds", static_cast<long long>(duration_cast<seconds>(own_.expires - now).count()));
  return v;
}

} // namespace bulwark
