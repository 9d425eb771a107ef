// Who may use the MCP endpoint (`auth.mode`). The HTTP transport asks an
// authenticator about every request to the MCP path before anything else
// happens to it; each mode is one implementation. Without one (mode
// "none") every caller is admitted, as `anonymous` or by its bearer key.
#pragma once

#include <memory>
#include <string>
#include <string_view>

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
};

class authenticator {
public:
  virtual ~authenticator() = default;

  /// Judges a request by its `Authorization` header (empty when absent).
  /// Runs on I/O threads for every MCP request: quick, and never waiting on
  /// an actor.
  virtual auth_verdict check(std::string_view authorization) const = 0;
};

/// The token of an `Authorization: Bearer TOKEN` value (the scheme in any
/// case), or empty.
std::string_view bearer_token(std::string_view authorization) noexcept;

/// `auth.mode` "keys": a bearer API key that is live in `keys`.
std::shared_ptr<const authenticator> key_authenticator(std::shared_ptr<key_store> keys,
                                                       std::string realm = "bulwark");

} // namespace bulwark
