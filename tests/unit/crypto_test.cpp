// Crypto: sealed requestState and the keys a fleet seals it with,
// base64url and session ids.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "actors/env.hpp"
#include "messages/crypto.hpp"

using namespace bulwark;

TEST_CASE("sealed requestState detects tampering and context changes", "[crypto]") {
  std::string key = "k3y";
  auto token = crypto::seal(key, "tools/call\nx", "round-1");
  std::string state;
  CHECK(crypto::unseal(key, "tools/call\nx", token, state));
  CHECK(state == "round-1");
  CHECK_FALSE(crypto::unseal(key, "tools/call\ny", token, state));
  CHECK_FALSE(crypto::unseal(key, "tools/call\nx", token + "-TAMPERED", state));
  CHECK_FALSE(crypto::unseal("other", "tools/call\nx", token, state));
  auto flipped = token;
  flipped[0] = flipped[0] == 'A' ? 'B' : 'A';
  CHECK_FALSE(crypto::unseal(key, "tools/call\nx", flipped, state));
  auto last = token;
  last.back() = last.back() == 'A' ? 'B' : 'A';
  CHECK_FALSE(crypto::unseal(key, "tools/call\nx", last, state));
  CHECK_FALSE(crypto::unseal(key, "tools/call\nx", "", state));
}

TEST_CASE("base64url decoding takes only the canonical text of some bytes", "[crypto]") {
  std::string out;
  // "QQ" is 'A' (0x41): 12 bits, the last 4 zero. "QR" sets one of them.
  CHECK(crypto::base64url_decode("QQ", out));
  CHECK(out == "A");
  CHECK_FALSE(crypto::base64url_decode("QR", out));
  // "QUE" is "AA": 18 bits, the last 2 zero. "QUF" sets one.
  CHECK(crypto::base64url_decode("QUE", out));
  CHECK(out == "AA");
  CHECK_FALSE(crypto::base64url_decode("QUF", out));
  CHECK(crypto::base64url_decode("QUFB", out));
  CHECK(out == "AAA");
  // Every token's last character, changed, fails to unseal.
  for (int i = 0; i < 64; ++i) {
    auto token = crypto::seal("k3y", "ctx", std::string(static_cast<std::size_t>(i), 'x'));
    auto last = token;
    last.back() = last.back() == 'A' ? 'B' : 'A';
    std::string state;
    CHECK_FALSE(crypto::unseal("k3y", "ctx", last, state));
  }
}

TEST_CASE("sealed requestState cannot be read by the client", "[crypto]") {
  std::string key = "k3y";
  std::string secret = "parking-token-0123456789\n{\"id\":7}";
  auto a = crypto::seal(key, "ctx", secret);
  auto b = crypto::seal(key, "ctx", secret);
  CHECK(a != b); // a fresh nonce each time
  std::string raw;
  REQUIRE(crypto::base64url_decode(a, raw));
  CHECK(raw.find("parking-token") == std::string::npos);
  CHECK(a.find(crypto::base64url_encode("parking-token")) == std::string::npos);
  std::string state;
  CHECK(crypto::unseal(key, "ctx", b, state));
  CHECK(state == secret);
}

TEST_CASE("session ids are 128-bit and visible ASCII", "[crypto]") {
  auto a = crypto::random_hex(16);
  auto b = crypto::random_hex(16);
  CHECK(a.size() == 32);
  CHECK(a != b);
  for (char c : a)
    CHECK((c >= 0x21 && c <= 0x7E));
}

TEST_CASE("a fleet's state keys: the configured one seals and the one before a rotation still opens", "[crypto]") {
  runtime_env env;
  auto seal_with = [&](const std::string& state) { return crypto::seal(env.state_keys().front(), "ctx", state); };
  auto opens = [&](const std::string& token) {
    std::string out;
    auto keys = env.state_keys();
    return std::any_of(keys.begin(), keys.end(), [&](auto& k) { return crypto::unseal(k, "ctx", token, out); });
  };
  // Alone: this process's own key.
  auto own = seal_with("a");
  CHECK(opens(own));
  // The fleet's key arrives from Redis: it seals from now on, and what the
  // own key sealed meanwhile still opens here.
  env.adopt_fleet_key(std::string(64, 'f'));
  auto fleet = seal_with("b");
  std::string opened;
  CHECK(crypto::unseal(std::string(64, 'f'), "ctx", fleet, opened));
  CHECK(opens(own));
  // A configured key wins; after a rotation the previous one still opens,
  // and one that is neither does not.
  env.configure_state_keys(std::string(32, 'A'), {});
  auto before = seal_with("c");
  env.configure_state_keys(std::string(32, 'B'), std::string(32, 'A'));
  CHECK(opens(before));
  CHECK(opens(seal_with("d")));
  CHECK_FALSE(opens(fleet));
  env.configure_state_keys(std::string(32, 'C'), std::string(32, 'B'));
  CHECK_FALSE(opens(before));
}
