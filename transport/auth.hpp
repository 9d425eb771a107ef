// Who may use the MCP endpoint (`auth.mode`). The HTTP transport asks an
// authenticator about every request to the MCP path before anything else
// happens to it; each mode is one implementation. Without one (mode
// "none") every caller is admitted, as `anonymous` or by its bearer key.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "messages/jwt.hpp"
#include "messages/settings.hpp"

namespace bulwark {

class key_store;

/// What an authenticator says about one request.
struct auth_verdict {
  bool ok = false;
  /// Who is calling, when admitted ("key:<SHA-256 of the key>"); rate
  /// limits, private cache entries and session ownership go by it.
  std::string identity;
  /// When refused: the `WWW-Authenticate` value and the error message.
  std::string challenge;
  std::string message;
  /// When refused: whether the request carried a credential at all (the
  /// audit log tells missing credentials from bad ones).
  bool credential_present = false;
  /// When admitted: the bearer credential is an OAuth access token issued
  /// for Bulwark, which a service that acts for the caller may use
  /// (`passthrough`, token exchange). API keys never are.
  bool forwardable = false;
  /// When admitted with an OAuth token: its scopes (the `scope` claim and
  /// those `auth.oauth.claimScopes` grant).
  std::vector<std::string> scopes;
};

class authenticator {
public:
  virtual ~authenticator() = default;

  /// Judges a request by its `Authorization` header (empty when absent).
  /// Runs on I/O threads for every MCP request: quick, and never waiting on
  /// an actor.
  virtual auth_verdict check(std::string_view authorization) const = 0;
};

/// The authenticator of the configuration generation in force: a reload
/// installs the next one (a new key file, new OAuth settings). Requests
/// read it with one atomic load; every authenticator installed stays alive
/// until this one ends, so a request never holds one that is gone.
class switchable_authenticator : public authenticator {
public:
  explicit switchable_authenticator(std::shared_ptr<const authenticator> first) { set(std::move(first)); }

  void set(std::shared_ptr<const authenticator> next) {
    std::lock_guard<std::mutex> guard(mtx_);
    current_.store(next.get(), std::memory_order_release);
    kept_.push_back(std::move(next));
  }

  auth_verdict check(std::string_view authorization) const override {
    return current_.load(std::memory_order_acquire)->check(authorization);
  }

private:
  std::mutex mtx_;
  std::atomic<const authenticator*> current_{nullptr};
  std::vector<std::shared_ptr<const authenticator>> kept_;
};

/// The scopes an admitted token has: its `scope` claim's, then those each
/// "claim=value" rule of `claim_scopes` grants when the claim is that
/// string or an array holding it; each once.
std::vector<std::string> granted_scopes(const jwt::claims& claims,
                                        const std::map<std::string, std::vector<std::string>>& claim_scopes);

/// The token of an `Authorization: Bearer TOKEN` value (the scheme in any
/// case), or empty.
std::string_view bearer_token(std::string_view authorization) noexcept;

/// True when `authorization` is "Bearer T" for a token T whose SHA-256 (hex)
/// is `sha256`, compared in constant time; never for an empty `sha256`.
bool bearer_matches(const std::string& sha256, const std::string& authorization);

/// `auth.mode` "keys": a bearer API key that is live in `keys`.
std::shared_ptr<const authenticator> key_authenticator(std::shared_ptr<key_store> keys, std::string realm = "bulwark");

/// The RFC 9728 metadata document (JSON).
std::string resource_metadata(const oauth_settings& s);

/// An authenticator for `s`: reads the JWK Set now (throws
/// jwt::jwks_error when it cannot be used) and again whenever the file
/// changes (a set that no longer parses keeps the previous keys, logged).
/// Identities are "oauth:<SHA-256 of issuer, newline, subject>".
std::shared_ptr<const authenticator> oauth_authenticator(oauth_settings s);

} // namespace bulwark
