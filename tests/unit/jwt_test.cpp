// JWK Sets and JWT access tokens: keys made and tokens signed here with
// OpenSSL, checked by messages/jwt.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "messages/crypto.hpp"
#include "messages/json.hpp"
#include "messages/jwt.hpp"
#include "transport/auth.hpp"

using namespace bulwark;

namespace {

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

std::string bn_bytes(const BIGNUM* bn, int width = 0) {
  std::string out(static_cast<std::size_t>(width ? width : BN_num_bytes(bn)), '\0');
  if (width)
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), width);
  else
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

/// A key pair and its public JWK.
struct signer {
  pkey_ptr key{nullptr, EVP_PKEY_free};
  json::value jwk;
  bool ec = false;

  static signer rsa(const std::string& kid, unsigned bits = 2048) {
    signer s;
    s.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
    BIGNUM *n = nullptr, *e = nullptr;
    EVP_PKEY_get_bn_param(s.key.get(), OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(s.key.get(), OSSL_PKEY_PARAM_RSA_E, &e);
    s.jwk = json::value::make_object({{"kty", "RSA"},
                                      {"kid", kid},
                                      {"n", crypto::base64url_encode(bn_bytes(n))},
                                      {"e", crypto::base64url_encode(bn_bytes(e))}});
    BN_free(n);
    BN_free(e);
    return s;
  }

  static signer p256(const std::string& kid) {
    signer s;
    s.ec = true;
    s.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    unsigned char point[65];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(s.key.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len);
    REQUIRE(len == 65);
    auto raw = std::string(reinterpret_cast<char*>(point), len);
    s.jwk = json::value::make_object({{"kty", "EC"},
                                      {"crv", "P-256"},
                                      {"kid", kid},
                                      {"x", crypto::base64url_encode(raw.substr(1, 32))},
                                      {"y", crypto::base64url_encode(raw.substr(33, 32))}});
    return s;
  }

  std::string sign(std::string_view input) const {
    auto* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get());
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    if (!ec)
      return sig;
    // DER to the r||s that JWS uses.
    auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    auto* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    auto raw = bn_bytes(ECDSA_SIG_get0_r(es), 32) + bn_bytes(ECDSA_SIG_get0_s(es), 32);
    ECDSA_SIG_free(es);
    return raw;
  }

  std::string token(const json::value& claims, std::string alg = "", std::string kid = "") const {
    if (alg.empty())
      alg = ec ? "ES256" : "RS256";
    if (kid.empty())
      kid = jwk["kid"].as_string();
    auto input = crypto::base64url_encode(json::dump(json::value::make_object({{"alg", alg}, {"kid", kid}}))) + "."
                 + crypto::base64url_encode(json::dump(claims));
    return input + "." + crypto::base64url_encode(sign(input));
  }
};

std::string jwks_text(std::initializer_list<json::value> keys) {
  return json::dump(json::value::make_object({{"keys", json::value(json::array(keys))}}));
}

constexpr int64_t t0 = 1'800'000'000;

json::value claims(int64_t exp = t0 + 300) {
  return json::value::make_object({{"iss", "https://as.example"},
                                   {"aud", "https://rs.example/mcp"},
                                   {"sub", "alice"},
                                   {"exp", exp},
                                   {"scope", "mcp:tools"}});
}

jwt::expectations expect() {
  jwt::expectations e;
  e.issuer = "https://as.example";
  e.audience = "https://rs.example/mcp";
  e.clock_skew = std::chrono::seconds(60);
  return e;
}

std::string check(const std::string& token, const jwt::key_set& keys, int64_t now = t0) {
  jwt::claims out;
  return jwt::verify(token, keys, expect(), now, out);
}

} // namespace

TEST_CASE("base64url decoding refuses what no bytes encode", "[jwt]") {
  std::string out;
  CHECK(crypto::base64url_decode(crypto::base64url_encode("any carnal pleas"), out));
  CHECK(out == "any carnal pleas");
  CHECK_FALSE(crypto::base64url_decode("abcde", out)); // 4n+1 characters
  CHECK_FALSE(crypto::base64url_decode("ab+/", out)); // the other alphabet
  CHECK_FALSE(crypto::base64url_decode("ab==", out)); // padding
}

TEST_CASE("a JWK Set yields RSA and P-256 keys and skips what cannot verify", "[jwt]") {
  auto r = signer::rsa("r1");
  auto e = signer::p256("e1");
  auto oct = json::value::make_object({{"kty", "oct"}, {"k", "c2VjcmV0"}, {"kid", "h"}});
  auto enc = r.jwk;
  enc.set("use", "enc");
  enc.set("kid", "r-enc");
  auto ps = e.jwk;
  ps.set("alg", "ES384");
  ps.set("kid", "e-384");
  auto set = jwt::parse_jwks(jwks_text({r.jwk, e.jwk, oct, enc, ps}), "test");
  REQUIRE(set.keys.size() == 2);
  CHECK(set.skipped == 3);
  REQUIRE(set.find("r1"));
  CHECK(set.find("r1")->alg == "RS256");
  CHECK(set.find("e1")->alg == "ES256");
  CHECK_FALSE(set.find("h"));
  CHECK_FALSE(set.find("")); // two keys: a token must say which
  auto single = jwt::parse_jwks(jwks_text({e.jwk}), "test");
  CHECK(single.find("") == &single.keys.front());
}

TEST_CASE("bad JWKs are refused with the member's path", "[jwt]") {
  auto r = signer::rsa("r1");
  auto e = signer::p256("e1");
  auto message = [](const std::string& text) -> std::string {
    try {
      jwt::parse_jwks(text, "f.json");
    } catch (const jwt::jwks_error& err) {
      return err.what();
    }
    return "accepted";
  };
  CHECK_THAT(message("{"), Catch::Contains("f.json") && Catch::Contains("not JSON"));
  CHECK_THAT(message("{}"), Catch::Contains("$.keys"));
  auto no_n = r.jwk;
  no_n.erase("n");
  CHECK_THAT(message(jwks_text({no_n})), Catch::Contains("$.keys[0].n"));
  CHECK_THAT(message(jwks_text({signer::rsa("small", 1024).jwk})), Catch::Contains("2048"));
  auto short_x = e.jwk;
  short_x.set("x", "AAAA");
  CHECK_THAT(message(jwks_text({short_x})), Catch::Contains("32 bytes"));
  auto off_curve = e.jwk;
  std::string y;
  REQUIRE(crypto::base64url_decode(e.jwk["y"].as_string(), y));
  y[31] = static_cast<char>(y[31] ^ 1);
  off_curve.set("y", crypto::base64url_encode(y));
  CHECK_THAT(message(jwks_text({off_curve})), Catch::Contains("not a point on P-256"));
  CHECK_THAT(message(jwks_text({r.jwk, r.jwk})), Catch::Contains("$.keys[1].kid") && Catch::Contains("twice"));
  CHECK_THAT(message(jwks_text({json::value::make_object({{"n", "AQAB"}})})), Catch::Contains("$.keys[0].kty"));
}

TEST_CASE("RS256 and ES256 tokens verify; their claims come out", "[jwt]") {
  auto r = signer::rsa("r1");
  auto e = signer::p256("e1");
  auto keys = jwt::parse_jwks(jwks_text({r.jwk, e.jwk}), "test");
  for (auto* s : {&r, &e}) {
    jwt::claims out;
    REQUIRE(jwt::verify(s->token(claims()), keys, expect(), t0, out).empty());
    CHECK(out.alg == (s->ec ? "ES256" : "RS256"));
    CHECK(out.issuer == "https://as.example");
    CHECK(out.subject == "alice");
    CHECK(out.scope == "mcp:tools");
  }
}

TEST_CASE("tokens are refused for their algorithm, key, signature and claims", "[jwt]") {
  auto r = signer::rsa("r1");
  auto e = signer::p256("e1");
  auto keys = jwt::parse_jwks(jwks_text({r.jwk, e.jwk}), "test");
  auto good = r.token(claims());
  auto d1 = good.find('.'), d2 = good.rfind('.');
  auto payload = good.substr(d1 + 1, d2 - d1 - 1);

  auto header = [](const char* h) { return crypto::base64url_encode(h); };
  CHECK_THAT(check(header(R"({"alg":"none"})") + "." + payload + ".", keys), Catch::Contains("unsigned"));
  CHECK_THAT(check(header(R"({"alg":"HS256","kid":"r1"})") + "." + payload + ".c2ln", keys),
             Catch::Contains("shared secret"));
  CHECK_THAT(check(header(R"({"alg":"PS256","kid":"r1"})") + "." + payload + ".c2ln", keys),
             Catch::Contains("not supported"));
  CHECK_THAT(check(header(R"({"kid":"r1"})") + "." + payload + ".c2ln", keys), Catch::Contains("\"alg\""));
  CHECK_THAT(check(r.token(claims(), "RS256", "r9"), keys), Catch::Contains("unknown key"));
  CHECK_THAT(check(e.token(claims(), "ES256", "r1"), keys), Catch::Contains("does not match"));
  CHECK_THAT(check(signer::rsa("r1").token(claims()), keys), Catch::Contains("signature is not valid"));
  // Another payload under the original signature.
  auto other = claims();
  other.set("sub", "mallory");
  CHECK_THAT(check(good.substr(0, d1) + "." + crypto::base64url_encode(json::dump(other)) + good.substr(d2), keys),
             Catch::Contains("signature is not valid"));
  // An ES256 signature of the wrong length.
  auto es = e.token(claims());
  CHECK_THAT(check(es.substr(0, es.rfind('.')) + ".AAAA", keys), Catch::Contains("signature is not valid"));
  for (const char* malformed : {"", "a", "a.b", "a.b.c.d", "!!.b.c"})
    CHECK_THAT(check(malformed, keys), Catch::Contains("malformed"));

  auto with = [&](const char* name, json::value v) {
    auto c = claims();
    if (v.is_null())
      c.erase(name);
    else
      c.set(name, std::move(v));
    return check(r.token(c), keys);
  };
  CHECK_THAT(with("iss", "https://evil.example"), Catch::Contains("issuer"));
  CHECK_THAT(with("iss", json::value()), Catch::Contains("issuer"));
  CHECK_THAT(with("aud", "https://rs.example/other"), Catch::Contains("audience"));
  CHECK_THAT(with("aud", json::value::make_array({"a", 1})), Catch::Contains("audience"));
  CHECK(with("aud", json::value::make_array({"https://x.example", "https://rs.example/mcp"})).empty());
  CHECK(with("aud", "HTTPS://RS.Example/mcp/").empty());
  CHECK_THAT(with("exp", json::value()), Catch::Contains("expiry"));
  CHECK_THAT(with("exp", "tomorrow"), Catch::Contains("expiry"));
  CHECK_THAT(with("nbf", "now"), Catch::Contains("nbf"));
  CHECK_THAT(with("sub", json::value()), Catch::Contains("subject"));
  CHECK_THAT(with("sub", ""), Catch::Contains("subject"));
}

TEST_CASE("exp and nbf allow the clock skew and not a second more", "[jwt]") {
  auto r = signer::rsa("r1");
  auto keys = jwt::parse_jwks(jwks_text({r.jwk}), "test");
  auto expiring = r.token(claims(t0));
  CHECK(check(expiring, keys, t0 + 59).empty());
  CHECK_THAT(check(expiring, keys, t0 + 60), Catch::Contains("expired"));
  auto c = claims(t0 + 1000);
  c.set("nbf", t0 + 100);
  auto early = r.token(c);
  CHECK_THAT(check(early, keys, t0 + 39), Catch::Contains("not valid yet"));
  CHECK(check(early, keys, t0 + 40).empty());
}

TEST_CASE("canonical URIs compare scheme and host without case, and no trailing slash", "[jwt]") {
  CHECK(jwt::canonical_uri("HTTPS://MCP.Example.com:8443/Path/") == "https://mcp.example.com:8443/Path");
  CHECK(jwt::canonical_uri("https://mcp.example.com") == "https://mcp.example.com");
  CHECK(jwt::canonical_uri("https://mcp.example.com/") == "https://mcp.example.com");
}

TEST_CASE("the protected resource metadata sits at the well-known path of the resource", "[jwt]") {
  oauth_settings s;
  s.issuer = "https://as.example";
  s.resource = "https://mcp.example.com:8443/public/mcp";
  s.jwks_file = "jwks.json";
  CHECK(check_oauth_settings(s).empty());
  CHECK(resource_metadata_path(s) == "/.well-known/oauth-protected-resource/public/mcp");
  CHECK(resource_metadata_url(s) == "https://mcp.example.com:8443/.well-known/oauth-protected-resource/public/mcp");
  json::value doc;
  json::parse_error err;
  REQUIRE(json::parse(resource_metadata(s), doc, err));
  CHECK(doc["resource"].as_string() == s.resource);
  CHECK(doc["authorization_servers"] == json::value::make_array({"https://as.example"}));
  CHECK(doc["bearer_methods_supported"] == json::value::make_array({"header"}));
  CHECK(doc.find("scopes_supported") == nullptr);
  s.resource = "https://mcp.example.com";
  CHECK(resource_metadata_path(s) == "/.well-known/oauth-protected-resource");
  s.resource = "mcp.example.com";
  CHECK_THAT(check_oauth_settings(s), Catch::Contains("$.auth.oauth.resource"));
  s.resource = "https://mcp.example.com/mcp#frag";
  CHECK_THAT(check_oauth_settings(s), Catch::Contains("fragment"));
  s.resource = "https://mcp.example.com/mcp";
  s.scopes_supported = {"a b"};
  CHECK_THAT(check_oauth_settings(s), Catch::Contains("scopesSupported"));
}
