// JSON Web Tokens as OAuth 2.1 access tokens (RFC 7519, RFC 9068): the
// public keys of an authorization server (a JWK Set, RFC 7517) and the
// checks a resource server makes before it admits a bearer token.
//
// Only asymmetric signatures are accepted (RS256, ES256): a resource server
// holds no secret an attacker could sign with, and `alg: none` or HS* in a
// token's header are refused before any key is looked at.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "messages/json.hpp"

namespace bulwark::jwt {

/// A JWK Set that cannot be used; the message names the member's path
/// (`$.keys[1].n`).
class jwks_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// One verification key of a JWK Set.
struct public_key {
  std::string kid; ///< May be empty when the set has a single key.
  std::string alg; ///< "RS256" or "ES256": what the key's type admits.
  /// The OpenSSL key (an EVP_PKEY, freed with it); opaque here so that
  /// OpenSSL headers stay in one source file.
  std::shared_ptr<void> pkey;
};

/// The keys of a JWK Set. Keys Bulwark cannot verify with (other key types
/// and curves, `use` other than "sig", `alg` other than RS256/ES256) are
/// skipped and counted; a key of a supported type with bad members is an
/// error.
struct key_set {
  std::vector<public_key> keys;
  std::size_t skipped = 0;

  /// The key named `kid` (for a token without `kid`: the only key of the
  /// set, if there is exactly one); null when there is none.
  const public_key* find(std::string_view kid) const;
};

/// Parses JWK Set text (`{"keys":[...]}`). Throws jwks_error naming `origin`.
key_set parse_jwks(std::string_view text, const std::string& origin);

/// What a token must say to be admitted.
struct expectations {
  std::string issuer; ///< `iss`, compared exactly.
  std::string audience; ///< Must be `aud` or one of its members.
  std::chrono::seconds clock_skew{60}; ///< Leeway on `exp` and `nbf`.
};

/// What an admitted token said.
struct claims {
  std::string alg, kid;
  std::string issuer, subject;
  std::string scope; ///< The `scope` claim (space-separated), if any.
  json::value payload;
};

/// Verifies `token` (compact JWS) against `keys` and `expect` at `now`
/// (seconds since the epoch). Returns an empty string and fills `out` when
/// the token is admitted; otherwise why not, in words fit for the client
/// (never containing the token or any part of it).
std::string verify(std::string_view token, const key_set& keys, const expectations& expect, int64_t now, claims& out);

/// `uri` as RFC 8707 resources compare: scheme and host lower-cased, one
/// trailing '/' dropped.
std::string canonical_uri(std::string_view uri);

} // namespace bulwark::jwt
