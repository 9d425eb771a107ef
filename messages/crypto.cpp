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
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
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
  // The bits left over after the last whole byte are zero in a canonical
  // encoding (RFC 4648, 3.5). Accepting others would let two texts decode to
  // the same bytes: a sealed token whose last character changed must not
  // unseal.
  return (acc & ((1u << bits) - 1)) == 0;
}

namespace {

/// The AES-256 key for sealing: SHA-256 of the sealing key, so a key of any
/// length serves.
std::string aes_key(std::string_view key) {
  unsigned char digest[32];
  unsigned int n = 0;
  if (EVP_Digest(key.data(), key.size(), digest, &n, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(digest), n);
}

constexpr std::size_t nonce_size = 12;
constexpr std::size_t tag_size = 16;

struct cipher_ctx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~cipher_ctx() { EVP_CIPHER_CTX_free(ctx); }
};

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

} // namespace

// AES-256-GCM with a random nonce; `context` is the associated data, so a
// token made for another context (another caller, another call) does not
// open.
std::string seal(std::string_view key, std::string_view context, std::string_view state) {
  auto k = aes_key(key);
  std::string nonce(nonce_size, '\0');
  if (getrandom(nonce.data(), nonce.size(), 0) != static_cast<ssize_t>(nonce.size()))
    throw std::runtime_error("getrandom failed");
  std::string out = nonce;
  out.resize(nonce_size + state.size() + tag_size);
  auto* ct = reinterpret_cast<unsigned char*>(out.data()) + nonce_size;
  cipher_ctx c;
  int n = 0, total = 0;
  bool ok = c.ctx && EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, bytes(k), bytes(nonce)) == 1
            && EVP_EncryptUpdate(c.ctx, nullptr, &n, bytes(context), static_cast<int>(context.size())) == 1
            && EVP_EncryptUpdate(c.ctx, ct, &n, bytes(state), static_cast<int>(state.size())) == 1;
  total = n;
  ok = ok && EVP_EncryptFinal_ex(c.ctx, ct + total, &n) == 1;
  total += n;
  ok = ok && EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, tag_size, ct + total) == 1;
  if (!ok || static_cast<std::size_t>(total) != state.size())
    throw std::runtime_error("AES-256-GCM sealing failed");
  return base64url_encode(out);
}

bool unseal(std::string_view key, std::string_view context, std::string_view token, std::string& state) {
  std::string raw;
  if (!base64url_decode(token, raw) || raw.size() < nonce_size + tag_size)
    return false;
  auto k = aes_key(key);
  std::string_view all(raw);
  auto nonce = all.substr(0, nonce_size);
  auto ct = all.substr(nonce_size, all.size() - nonce_size - tag_size);
  std::string tag(all.substr(all.size() - tag_size));
  std::string plain(ct.size(), '\0');
  cipher_ctx c;
  int n = 0;
  bool ok = c.ctx && EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, bytes(k), bytes(nonce)) == 1
            && EVP_DecryptUpdate(c.ctx, nullptr, &n, bytes(context), static_cast<int>(context.size())) == 1
            && EVP_DecryptUpdate(c.ctx, reinterpret_cast<unsigned char*>(plain.data()), &n, bytes(ct),
                                 static_cast<int>(ct.size()))
                 == 1
            && EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, tag_size, tag.data()) == 1;
  int last = 0;
  ok = ok && EVP_DecryptFinal_ex(c.ctx, reinterpret_cast<unsigned char*>(plain.data()) + n, &last) == 1;
  if (!ok)
    return false;
  state = std::move(plain);
  return true;
}

} // namespace bulwark::crypto
