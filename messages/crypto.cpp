#include "messages/crypto.hpp"

#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

namespace bulwark::crypto {

std::string random_hex(std::size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string raw(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    auto r = getrandom(raw.data() + got, n - got, 0);
    if (r < 0)
      throw std::runtime_error("getrandom failed");
    got += static_cast<std::size_t>(r);
  }
  std::string out;
  out.reserve(2 * n);
  for (unsigned char c : raw) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 0xF]);
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string sha256_hex(std::string_view data) {
  static constexpr char hex[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  out.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 0xF]);
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

namespace {

constexpr char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

} // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(b64url[(acc >> bits) & 63]);
    }
  }
  if (bits > 0)
    out.push_back(b64url[(acc << (6 - bits)) & 63]);
  return out;
}

bool base64url_decode(std::string_view text, std::string& out) {
  out.clear();
  // A length of 4n+1 cannot come from whole bytes.
  if (text.size() % 4 == 1)
    return false;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    else
      return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

namespace {

std::string mac(std::string_view key, std::string_view context, std::string_view state) {
  std::string data;
  data.reserve(context.size() + 1 + state.size());
  data.append(context);
  data.push_back('\n');
  data.append(state);
  return hmac_sha256(key, data);
}

} // namespace

std::string seal(std::string_view key, std::string_view context, std::string_view state) {
  return base64url_encode(state) + "." + base64url_encode(mac(key, context, state));
}

bool unseal(std::string_view key, std::string_view context, std::string_view token,
            std::string& state) {
  auto dot = token.find('.');
  if (dot == std::string_view::npos)
    return false;
  std::string tag;
  if (!base64url_decode(token.substr(0, dot), state) || !base64url_decode(token.substr(dot + 1), tag))
    return false;
  return constant_time_equal(tag, mac(key, context, state));
}

} // namespace bulwark::crypto
