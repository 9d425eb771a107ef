#include "messages/jwt.hpp"

#include <algorithm>
#include <cctype>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "messages/crypto.hpp"
#include "messages/text.hpp"

namespace bulwark::jwt {

namespace {

using json::value;

template <class T, void (*Free)(T*)>
struct deleter {
  void operator()(T* p) const noexcept { Free(p); }
};
using bignum = std::unique_ptr<BIGNUM, deleter<BIGNUM, BN_free>>;
using param_builder = std::unique_ptr<OSSL_PARAM_BLD, deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using params = std::unique_ptr<OSSL_PARAM, deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using pkey_ctx = std::unique_ptr<EVP_PKEY_CTX, deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using md_ctx = std::unique_ptr<EVP_MD_CTX, deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using ecdsa_sig = std::unique_ptr<ECDSA_SIG, deleter<ECDSA_SIG, ECDSA_SIG_free>>;

[[noreturn]] void bad(const std::string& origin, const std::string& path, const std::string& why) {
  throw jwks_error("JWK Set " + origin + ": " + path + ": " + why);
}

/// A base64url member of a JWK, decoded.
std::string member_bytes(const value& jwk, const char* name, const std::string& origin, const std::string& path) {
  auto* m = jwk.find(name);
  if (!m || !m->is_string() || m->as_string().empty())
    bad(origin, path + "." + name, "is required (a base64url string)");
  std::string out;
  if (!crypto::base64url_decode(m->as_string(), out))
    bad(origin, path + "." + name, "is not base64url");
  return out;
}

bignum to_bignum(std::string_view bytes) {
  return bignum(
    BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr));
}

std::shared_ptr<void> from_params(const char* type, const OSSL_PARAM* p) {
  pkey_ctx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1
      || EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(p)) != 1)
    return nullptr;
  return std::shared_ptr<void>(key, [](void* k) { EVP_PKEY_free(static_cast<EVP_PKEY*>(k)); });
}

/// An RSA public key from `n` and `e`; at least 2048 bits.
std::shared_ptr<void> rsa_key(const value& jwk, const std::string& origin, const std::string& path) {
  auto n_bytes = member_bytes(jwk, "n", origin, path);
  auto e_bytes = member_bytes(jwk, "e", origin, path);
  auto n = to_bignum(n_bytes);
  auto e = to_bignum(e_bytes);
  if (!n || !e)
    bad(origin, path, "cannot read n and e");
  if (BN_num_bits(n.get()) < 2048)
    bad(origin, path + ".n", "an RSA key must have at least 2048 bits");
  param_builder bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1
      || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1)
    bad(origin, path, "cannot build the RSA key");
  params p(OSSL_PARAM_BLD_to_param(bld.get()));
  auto key = p ? from_params("RSA", p.get()) : nullptr;
  if (!key)
    bad(origin, path, "not a usable RSA public key");
  return key;
}

/// A P-256 public key from `x` and `y` (32 bytes each); the point must be
/// on the curve.
std::shared_ptr<void> ec_key(const value& jwk, const std::string& origin, const std::string& path) {
  auto x = member_bytes(jwk, "x", origin, path);
  auto y = member_bytes(jwk, "y", origin, path);
  if (x.size() != 32 || y.size() != 32)
    bad(origin, path, "x and y of a P-256 key must be 32 bytes each");
  std::string point = "\x04" + x + y;
  param_builder bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1
      || OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
    bad(origin, path, "cannot build the EC key");
  params p(OSSL_PARAM_BLD_to_param(bld.get()));
  auto key = p ? from_params("EC", p.get()) : nullptr;
  if (!key)
    bad(origin, path, "not a point on P-256");
  pkey_ctx check(EVP_PKEY_CTX_new_from_pkey(nullptr, static_cast<EVP_PKEY*>(key.get()), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1)
    bad(origin, path, "not a point on P-256");
  return key;
}

const std::string& str_member(const value& v, std::string_view name) {
  return v[name].as_string();
}

/// Decodes a base64url JSON object of a token.
bool decode_object(std::string_view part, value& out) {
  std::string raw;
  json::parse_error err;
  if (!crypto::base64url_decode(part, raw) || !json::parse(raw, out, err, 16))
    return false;
  return out.is_object();
}

/// JWS ES256 signatures are r||s (32 bytes each); EVP wants DER.
bool ecdsa_der(std::string_view raw, std::string& der) {
  if (raw.size() != 64)
    return false;
  ecdsa_sig sig(ECDSA_SIG_new());
  auto r = to_bignum(raw.substr(0, 32));
  auto s = to_bignum(raw.substr(32));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
    return false;
  r.release();
  s.release();
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0)
    return false;
  der.resize(static_cast<std::size_t>(len));
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  return i2d_ECDSA_SIG(sig.get(), &p) == len;
}

bool signature_valid(const public_key& key, std::string_view signing_input, std::string_view sig) {
  std::string der;
  if (key.alg == "ES256") {
    if (!ecdsa_der(sig, der))
      return false;
    sig = der;
  }
  md_ctx ctx(EVP_MD_CTX_new());
  return ctx
         && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, static_cast<EVP_PKEY*>(key.pkey.get())) == 1
         && EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size())
              == 1;
}

/// A NumericDate claim; false when present but not a number.
bool numeric_date(const value& payload, std::string_view name, bool& present, int64_t& out) {
  auto* v = payload.find(name);
  present = v != nullptr;
  if (!v)
    return true;
  if (!v->is_number())
    return false;
  out = v->is_integer() ? v->as_int() : static_cast<int64_t>(v->as_double());
  return true;
}

} // namespace

const public_key* key_set::find(std::string_view kid) const {
  if (kid.empty())
    return keys.size() == 1 ? &keys.front() : nullptr;
  for (auto& k : keys)
    if (k.kid == kid)
      return &k;
  return nullptr;
}

key_set parse_jwks(std::string_view text, const std::string& origin) {
  value doc;
  json::parse_error err;
  if (!json::parse(text, doc, err))
    throw jwks_error("JWK Set " + origin + ": not JSON: " + err.message);
  if (!doc.is_object() || !doc["keys"].is_array())
    bad(origin, "$.keys", "is required (an array of JWKs)");
  key_set set;
  std::size_t i = 0;
  for (auto& jwk : doc["keys"].as_array()) {
    auto path = "$.keys[" + std::to_string(i++) + "]";
    if (!jwk.is_object())
      bad(origin, path, "must be an object");
    auto& kty = str_member(jwk, "kty");
    auto& alg = str_member(jwk, "alg");
    auto& use = str_member(jwk, "use");
    if (jwk.find("kid") && !jwk["kid"].is_string())
      bad(origin, path + ".kid", "must be a string");
    if (kty.empty())
      bad(origin, path + ".kty", "is required");
    public_key key;
    key.kid = str_member(jwk, "kid");
    if (kty == "RSA")
      key.alg = "RS256";
    else if (kty == "EC" && str_member(jwk, "crv") == "P-256")
      key.alg = "ES256";
    // Encryption keys, other algorithms and other curves: not for us.
    if (key.alg.empty() || (!use.empty() && use != "sig") || (!alg.empty() && alg != key.alg)) {
      ++set.skipped;
      continue;
    }
    key.pkey = key.alg == "RS256" ? rsa_key(jwk, origin, path) : ec_key(jwk, origin, path);
    if (!key.kid.empty() && set.find(key.kid))
      bad(origin, path + ".kid", "\"" + key.kid + "\" appears twice");
    set.keys.push_back(std::move(key));
  }
  return set;
}

std::string canonical_uri(std::string_view uri) {
  std::string out(uri);
  auto scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    auto host_end = out.find_first_of("/?#", scheme_end + 3);
    if (host_end == std::string::npos)
      host_end = out.size();
    for (std::size_t i = 0; i < host_end; ++i)
      out[i] = text::lower(out[i]);
  }
  if (out.size() > 1 && out.back() == '/')
    out.pop_back();
  return out;
}

std::string verify(std::string_view token, const key_set& keys, const expectations& expect, int64_t now, claims& out) {
  // Structure: three base64url parts.
  auto d1 = token.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return "the access token is malformed (not a JWT: three dot-separated parts expected)";
  value header, payload;
  if (!decode_object(token.substr(0, d1), header))
    return "the access token is malformed (its header is not base64url JSON)";

  // The algorithm, before any key: no unsigned tokens, no shared secrets.
  auto* alg = header.find("alg");
  if (!alg || !alg->is_string())
    return "the access token's header has no \"alg\"";
  out.alg = alg->as_string();
  if (text::iequals(out.alg, "none"))
    return "unsigned access tokens (alg \"none\") are not accepted";
  if (out.alg.size() > 2 && text::iequals(out.alg.substr(0, 2), "hs"))
    return "access tokens signed with a shared secret (" + out.alg + ") are not accepted";
  if (out.alg != "RS256" && out.alg != "ES256")
    return "the access token's algorithm is not supported (RS256 and ES256 are)";
  if (header.find("crit"))
    return "the access token names critical header extensions this server does not understand";
  if (auto* kid = header.find("kid"); kid && !kid->is_string())
    return "the access token's \"kid\" is not a string";
  out.kid = str_member(header, "kid");
  auto* key = keys.find(out.kid);
  if (!key)
    return out.kid.empty() ? "the access token names no key (\"kid\") and the key set has more than one"
                           : "the access token was signed with an unknown key (kid not in the key set)";
  if (key->alg != out.alg)
    return "the access token's algorithm does not match its key";

  std::string sig;
  if (!crypto::base64url_decode(token.substr(d2 + 1), sig) || sig.empty())
    return "the access token is malformed (its signature is not base64url)";
  if (!signature_valid(*key, token.substr(0, d2), sig))
    return "the access token's signature is not valid";

  // Claims, only once the signature holds.
  if (!decode_object(token.substr(d1 + 1, d2 - d1 - 1), payload))
    return "the access token is malformed (its payload is not base64url JSON)";
  if (!payload["iss"].is_string() || payload["iss"].as_string() != expect.issuer)
    return "the access token was issued by another issuer";
  auto want = canonical_uri(expect.audience);
  bool aud_ok = false;
  auto& aud = payload["aud"];
  if (aud.is_string())
    aud_ok = canonical_uri(aud.as_string()) == want;
  else if (aud.is_array())
    for (auto& a : aud.as_array())
      aud_ok = aud_ok || (a.is_string() && canonical_uri(a.as_string()) == want);
  if (!aud_ok)
    return "the access token is not meant for this resource (audience)";
  bool has_exp = false, has_nbf = false;
  int64_t exp = 0, nbf = 0;
  if (!numeric_date(payload, "exp", has_exp, exp) || !has_exp)
    return "the access token has no valid expiry (\"exp\")";
  if (!numeric_date(payload, "nbf", has_nbf, nbf))
    return "the access token's \"nbf\" is not a number";
  auto skew = static_cast<int64_t>(expect.clock_skew.count());
  if (now >= exp + skew)
    return "the access token has expired";
  if (has_nbf && now + skew < nbf)
    return "the access token is not valid yet (nbf)";
  if (!payload["sub"].is_string() || payload["sub"].as_string().empty())
    return "the access token has no subject (\"sub\")";
  out.issuer = payload["iss"].as_string();
  out.subject = payload["sub"].as_string();
  out.scope = str_member(payload, "scope");
  out.payload = std::move(payload);
  return {};
}

} // namespace bulwark::jwt
