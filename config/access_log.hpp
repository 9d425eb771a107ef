// The access log: one JSON line per answered request (`log.access`), to
// stderr or a file, apart from the diagnostic log. Successful requests may
// be sampled (`log.accessSampleRatio`); errors are always written. What a
// caller sent (the name of a refused request, a resource URI) is redacted
// like the diagnostic log's text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bulwark::access_log {

struct settings {
  /// "stderr", a file path (appended to), or empty: no access log.
  std::string target;
  /// Share of successful requests written (errors always are).
  double sample_ratio = 1.0;
};

/// Starts writing to `s.target` (or stops, when it is empty); replaces the
/// previous target. Throws std::runtime_error when a file cannot be opened.
void open(const settings& s);

/// True while an access log is open: only then is an entry worth building.
bool enabled() noexcept;

/// One answered request.
struct entry {
  std::string_view trace_id;
  std::string_view identity; ///< As the session knows it; shortened like the audit log's.
  std::string_view era; ///< The protocol version the request was served in.
  std::string_view method;
  std::string_view name; ///< Tool, prompt or resource URI, if any.
  std::string_view service; ///< The downstream service that answered, if any.
  std::string_view outcome; ///< "result", "isError" or "error".
  int code = 0; ///< The JSON-RPC error code of an error (0: none).
  int status = 0; ///< HTTP status of the answer; 0 over stdio.
  int64_t duration_us = 0;
  std::size_t bytes_in = 0, bytes_out = 0;
  std::string_view cache; ///< "fresh", "stale" or "miss" when the cache was asked.
  uint32_t retries = 0; ///< Attempts at the service beyond the first.
  std::string_view remote;
};

/// Writes `e` (unless it is a successful one the sampling leaves out).
void write(const entry& e);

} // namespace bulwark::access_log
