// The audit log: an append-only file of JSON lines recording who did what
// to whom, apart from the operational log. Authentication failures, gateway
// policy denials, API keys created and revoked (`bulwark keys`, a separate
// process appending to the same file), admin actions and their refusals.
//
// The file is opened with O_APPEND and rotated by size (file -> file.1 ->
// ... -> file.N); an advisory lock on the open file makes the size check,
// the rotation and the write one step for every process that shares it, and
// a process whose file was rotated away by another reopens the path.
#pragma once

#include <cstdint>
#include <string>

#include "messages/json.hpp"

namespace bulwark::audit {

/// `audit.*` of the configuration.
struct settings {
  std::string file; ///< Empty: no audit log.
  std::uint64_t max_bytes = 10 << 20; ///< A write that would pass it rotates first.
  int max_files = 5; ///< Rotated files kept (file.1 .. file.N).
};

/// One entry: who (identity, remote address), what (event, target,
/// outcome), the trace id of the error answered, if any, and details.
struct entry {
  std::string event; ///< "auth.failure", "policy.denied", "key.created", ...
  std::string outcome; ///< "denied", "refused", "ok", "failed".
  std::string identity; ///< "key:<sha256>", "oauth:<sha256>", "anonymous", "cli:<user>", ...
  std::string remote; ///< The peer's address and port, when known.
  std::string target; ///< What it was about (a tool, a key's name, an action).
  std::string trace_id;
  json::value detail; ///< More, as an object (redacted like the log).
};

/// Opens the audit log for this process (creating it, mode 0600). Throws
/// std::system_error when the file cannot be opened.
void open(const settings& s);

/// Whether an audit log is open.
bool enabled() noexcept;

/// Appends `e` (stamped RFC 3339 UTC with milliseconds, redacted), when an
/// audit log is open. Thread-safe; a failed write is reported on the log
/// and never thrown.
void record(const entry& e);

/// Shortens an identity for the record: the hash of "key:<sha256>" or
/// "oauth:<sha256>" to its first 12 hex digits (enough to tell callers
/// apart and to find a key with `bulwark keys list`).
std::string_view short_identity(std::string_view identity);

} // namespace bulwark::audit
