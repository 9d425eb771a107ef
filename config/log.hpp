// Structured logs: one JSON object per line on stderr (stdout stays free for
// the stdio transport). Fields are JSON values, so nothing needs escaping by
// the caller.
#pragma once

#include <string_view>

#include "messages/catalog.hpp"
#include "messages/json.hpp"

namespace bulwark::log {

/// Sets up the process-wide JSON-lines logger at `min` level.
void init(log_level min = log_level::info);
void set_level(log_level min);

/// Writes `{"ts":...,"level":...,"msg":...,<fields>}`.
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
