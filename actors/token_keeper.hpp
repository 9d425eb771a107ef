// The OAuth tokens of one downstream service (`auth.type`
// clientCredentials or tokenExchange): Bulwark's own token and, with token
// exchange, one per caller. A slot holds a token until shortly before it
// expires, asks the endpoint once for all the exchanges that wait for it
// (single flight), and remembers a failure for a second so that calls do
// not each ask again. The service's connector owns the keeper and sends
// the requests it makes; nothing here does I/O.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/secrets.hpp"
#include "messages/json.hpp"
#include "messages/service.hpp"
#include "transport/token_request.hpp"

namespace bulwark {

/// An exchange with the service held until its token comes.
struct held_exchange {
  int64_t id; ///< The request's id; -1 for a message nothing waits on.
  std::string method, body, name;
  std::vector<std::pair<std::string, std::string>> extra;
};

class token_keeper {
public:
  using clock = std::chrono::steady_clock;

  /// Callers whose exchanged tokens are kept at most; idle ones give way.
  static constexpr std::size_t max_callers = 10000;
  /// How long a failed request answers for the calls after it.
  static constexpr std::chrono::milliseconds failure_memory{1000};

  struct slot {
    std::string token; ///< Empty: none yet, or the service refused it.
    clock::time_point expires = clock::time_point::max();
    clock::time_point obtained{};
    /// When it is renewed ahead of its expiry (max: when it is refused).
    clock::time_point renew_at = clock::time_point::max();
    bool fetching = false;
    uint64_t serial = 0; ///< Of the request in flight: older answers are ignored.
    std::string error; ///< Why the last request failed.
    /// The endpoint refused to exchange the caller's token (a 4xx answer):
    /// the caller's doing, not the service's.
    bool caller_refused = false;
    clock::time_point failed_until{};
    std::deque<held_exchange> waiting;

    bool usable(clock::time_point now) const noexcept { return !token.empty() && now < expires; }
    /// The last request failed a moment ago and none is in flight.
    bool failing(clock::time_point now) const noexcept { return !fetching && now < failed_until; }
  };

  token_keeper(service_auth auth, std::string service_url);

  /// Bulwark's own slot (`caller` empty) or the slot of the caller whose
  /// access token is `caller`, made on first use.
  slot& at(const std::string& caller, clock::time_point now);

  /// Starts a request for the slot's token unless one is in flight:
  /// nothing when one is; else the request with its serial, or (when the
  /// client's secrets cannot be read) a failed grant to `take` at once.
  struct start {
    uint64_t serial = 0;
    std::optional<token_request> request;
    token_grant refused;
  };
  std::optional<start> begin(const std::string& caller, clock::time_point now);

  /// The endpoint's answer to request `serial` for the slot: false when it
  /// is stale (a newer request was made, or the slot gave way). The slot
  /// takes the token and its renewal time, or the failure; `held` gets the
  /// exchanges that waited for it.
  bool take(const std::string& caller, uint64_t serial, token_grant& g, clock::time_point now,
            std::deque<held_exchange>& held);

  /// The service refused the slot's token on a request that left at
  /// `sent`: the token is dropped, unless a newer one came since.
  void refused(const std::string& caller, clock::time_point sent);

  const service_auth& auth() const noexcept { return auth_; }
  const slot& own() const noexcept { return own_; }
  std::size_t callers() const noexcept { return callers_.size(); }

  /// For the connector's status: the own token's state, requests,
  /// failures, the last error, callers kept (never a token).
  json::value status(clock::time_point now) const;

private:
  slot* find(const std::string& caller);

  service_auth auth_;
  std::string service_url_;
  secrets::secret_value client_id_, client_secret_;
  slot own_;
  std::unordered_map<std::string, slot> callers_;
  uint64_t serial_ = 0, requests_ = 0, failures_ = 0;
};

} // namespace bulwark
