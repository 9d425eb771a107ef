// Randomness and integrity for values Bulwark hands to clients (session ids
// and sealed `requestState`), and the base64url that JWTs are written in.
#pragma once

#include <string>
#include <string_view>

namespace bulwark::crypto {

/// `n` bytes from the kernel's CSPRNG, hex-encoded (2n visible ASCII chars).
std::string random_hex(std::size_t n);

/// HMAC-SHA256 of `data` under `key`, raw 32 bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);

/// SHA-256 of `data`, lower-case hex (64 chars).
std::string sha256_hex(std::string_view data);

/// Compares in time independent of where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

/// Base64url without padding (RFC 4648 §5), as JWTs and sealed values use.
std::string base64url_encode(std::string_view bytes);
/// Reverses `base64url_encode`; false on a character outside the alphabet
/// or a length no whole number of bytes has.
bool base64url_decode(std::string_view text, std::string& out);

/// Wraps `state` so that the client can neither read nor alter it, and it
/// opens only for the same `context` (AES-256-GCM under a key derived from
/// `key`, `context` as associated data, a random nonce): base64url of nonce,
/// ciphertext and tag.
std::string seal(std::string_view key, std::string_view context, std::string_view state);

/// Reverses `seal`; false when the token was altered or made for another
/// context or key.
bool unseal(std::string_view key, std::string_view context, std::string_view token, std::string& state);

} // namespace bulwark::crypto
