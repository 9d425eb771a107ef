// The one table of JSON-RPC error codes that Bulwark answers with.
//
// Codes from JSON-RPC 2.0 and the MCP specification keep their meaning; our
// own codes live in the implementation-defined range -32000..-32019. The
// README's error table is this list.
#pragma once

#include <cstdint>
#include <string_view>

namespace bulwark {

enum class error_code : int32_t {
  // -- JSON-RPC 2.0 ----------------------------------------------------------
  parse_error = -32700, ///< The body is not valid JSON.
  invalid_request = -32600, ///< Valid JSON, but not a JSON-RPC 2.0 request.
  method_not_found = -32601, ///< No such method (in this protocol era).
  invalid_params = -32602, ///< A parameter is missing or has the wrong shape.
  internal_error = -32603, ///< A bug or an unexpected failure inside Bulwark.

  // -- MCP 2026-07-28 ----------------------------------------------------------
  header_mismatch = -32020, ///< Mcp-* headers disagree with the body.
  missing_client_capability = -32021, ///< The request needs a capability the client lacks.
  unsupported_protocol_version = -32022, ///< The requested protocol version is not served.

  // -- Bulwark (-32000..-32019) ------------------------------------------------
  server_error = -32000, ///< Generic server-side failure without more detail.
  deadline_exceeded = -32001, ///< The request's deadline passed before an answer.
  actor_restarted = -32003, ///< The actor serving the request stopped; safe to retry.
  overloaded = -32004, ///< Admission refused (queue full, rate limited); see retry_after.
  service_unavailable = -32005, ///< A downstream is unavailable (breaker open, gone).
  request_cancelled = -32006, ///< The client cancelled the request.
  shutting_down = -32007, ///< The server is stopping and takes no new work.
  session_limit = -32008, ///< Too many sessions or concurrent requests.
  denied_by_policy = -32009, ///< A gateway policy rule denies this call (named in the error).
  rate_limited = -32010, ///< A rate limit refused the call; data names it and retry_after_seconds.
  unauthorized = -32011, ///< The request carries no valid API key (auth.mode "keys").
  insufficient_scope = -32012, ///< The caller's OAuth token lacks a scope the tool, prompt or resource needs.
};

/// Describes one entry of the error table.
struct error_info {
  error_code code;
  std::string_view name;
  int http_status; ///< Status used when the error is the whole HTTP answer.
  std::string_view meaning;
};

/// Every code Bulwark answers with, in table order.
const error_info* error_table(std::size_t& count) noexcept;

/// The entry for `code`; a generic entry for codes outside the table.
const error_info& describe(error_code code) noexcept;

/// The HTTP status of an answer that is the error alone (not part of an
/// event stream): 429 and 503 for refusals in both eras (a proxy or client
/// slows down or asks elsewhere), 400 and 404 for protocol refusals of
/// 2026-07-28 (`stateless`), else 200.
int whole_answer_status(error_code code, bool stateless) noexcept;

/// Whether an error answer is the caller's doing (a malformed or unknown
/// request, bad arguments, a missing capability, its own quota or policy, a
/// cancellation) rather than a failure of Bulwark or a service. Codes
/// outside the table (a service's own) count as failures, except the
/// JSON-RPC ones above. Error counters and the `error_rate` alert keep the
/// two apart: one client's bad arguments page nobody.
bool caused_by_caller(int32_t code) noexcept;

constexpr int32_t to_int(error_code c) noexcept {
  return static_cast<int32_t>(c);
}

} // namespace bulwark
