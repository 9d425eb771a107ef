// Structured logs: one JSON object per line on stderr (stdout stays free for
// the stdio transport). Fields are JSON values, so nothing needs escaping by
// the caller.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "messages/catalog.hpp"
#include "messages/json.hpp"

namespace bulwark::log {

/// Sets up the process-wide JSON-lines logger at `min` level.
void init(log_level min = log_level::info);
void set_level(log_level min);

/// Redaction, applied to every line before it is written: bearer tokens,
/// JWTs, API keys of well-known shapes, e-mail addresses and the values of
/// fields whose names name a secret (password, token, secret, apiKey,
/// authorization, cookie, credential, ...) become "[REDACTED…]", in field
/// values and inside free text alike. `extra_keys` adds names (matched
/// case-insensitively as substrings); `patterns` adds ECMAScript regular
/// expressions whose matches are replaced. Throws std::invalid_argument for
/// a pattern that does not compile.
void set_redaction(std::vector<std::string> extra_keys, std::vector<std::string> patterns);

/// `text` with secrets replaced (what `write` does to every string).
std::string redact_text(std::string_view text);
/// `v` with secret-named fields and secrets inside strings replaced.
json::value redact(const json::value& v);

/// Fractional digits of a UTC timestamp.
enum class time_digits { seconds, millis, micros };

/// Appends `t` as RFC 3339 UTC: "2025-01-31T12:00:00Z", "...:00.123Z" or
/// "...:00.123456Z" (times before 1970 included).
void append_utc(std::string& out, std::chrono::system_clock::time_point t, time_digits digits);

/// Room enough for any time `write_utc` writes.
inline constexpr std::size_t utc_room = 32;
/// Writes `t` as `append_utc` appends it, at `out` (`utc_room` bytes);
/// returns where it ends.
char* write_utc(char* out, std::chrono::system_clock::time_point t, time_digits digits);

/// `t` as RFC 3339 UTC (see `append_utc`).
std::string utc(std::chrono::system_clock::time_point t, time_digits digits);

/// Writes `{"ts":...,"level":...,"msg":...,<fields>}`, redacted.
void write(log_level lvl, std::string_view msg, const json::value& fields = {});

inline void debug(std::string_view msg, const json::value& fields = {}) {
  write(log_level::debug, msg, fields);
}
inline void info(std::string_view msg, const json::value& fields = {}) {
  write(log_level::info, msg, fields);
}
inline void warn(std::string_view msg, const json::value& fields = {}) {
  write(log_level::warning, msg, fields);
}
inline void error(std::string_view msg, const json::value& fields = {}) {
  write(log_level::error, msg, fields);
}

} // namespace bulwark::log
