// The MCP protocol's words: versions and eras, `_meta` keys, JSON-RPC framing
// and the checks that are the same for every transport.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/errors.hpp"
#include "messages/json.hpp"

namespace bulwark::mcp {

// -- versions ------------------------------------------------------------------

/// The stateless era's version (per-request `_meta`, no handshake).
inline constexpr std::string_view stateless_version = "2026-07-28";
/// The newest stateful version (initialize handshake, sessions).
inline constexpr std::string_view latest_stateful_version = "2025-11-25";

/// Versions negotiated through `initialize`, newest first.
const std::vector<std::string>& stateful_versions();
/// Every version served, newest first (as `supported` in -32022 errors).
const std::vector<std::string>& supported_versions();

bool is_stateful_version(std::string_view v) noexcept;
bool is_stateless_version(std::string_view v) noexcept;

// -- _meta keys (2026-07-28) ------------------------------------------------------

inline constexpr std::string_view meta_protocol_version = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view meta_client_capabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view meta_client_info = "io.modelcontextprotocol/clientInfo";
inline constexpr std::string_view meta_log_level = "io.modelcontextprotocol/logLevel";
inline constexpr std::string_view meta_server_info = "io.modelcontextprotocol/serverInfo";
inline constexpr std::string_view meta_subscription_id = "io.modelcontextprotocol/subscriptionId";
/// The tasks extension (SEP-2663): in `capabilities.extensions` of
/// server/discover, and of a request's client capabilities.
inline constexpr std::string_view tasks_extension = "io.modelcontextprotocol/tasks";

// -- JSON-RPC framing ----------------------------------------------------------------

/// What a parsed body is.
enum class message_kind : uint8_t { request, notification, response, invalid };

struct classified {
  message_kind kind = message_kind::invalid;
  std::string reason; ///< Why it is invalid (for -32600).
};

/// Checks the JSON-RPC 2.0 envelope of one message (not a batch).
classified classify(const json::value& msg);

/// `{"jsonrpc":"2.0","id":ID,"result":RESULT}`.
std::string result_body(const json::value& id, const json::value& result);
/// `{"jsonrpc":"2.0","id":ID,"error":{code,message,data}}`; a null id is
/// written as `null`. Every error gets a fresh trace id in `data.traceId`
/// (when `data` is an object or null), which the error observer receives
/// too, so that the log line of the error carries it. `data.detail` holds
/// internal details (exception text, a service's transport error): the
/// observer always gets it; the client only in development mode.
std::string error_body(const json::value& id, error_code code, std::string_view message, const json::value& data = {});

/// The `Retry-After` seconds for an error's `data` (its
/// `retry_after_seconds`, rounded up to whole seconds); 0: none known.
int retry_after_header(const json::value& data) noexcept;

/// The trace id of the request being answered on this thread (its error
/// context's), or else a fresh one: 32 hex digits, a W3C trace id, from a
/// per-thread generator (trace ids need to be unique, not secret). An
/// `error_body` whose `data` already has a `traceId` keeps it, so a caller
/// that records the id elsewhere (the audit log) makes it first.
std::string new_trace_id();

/// Called for every error body written (with its trace id and internal
/// detail, if any); set once at start-up (the server logs them).
using error_observer = void (*)(std::string_view trace_id, error_code code, std::string_view message,
                                std::string_view detail);
void set_error_observer(error_observer observer);

/// What the session knows of the request whose error is being answered:
/// the error observer's log line carries it. Set around the answer on the
/// session's thread with `error_context_scope`; views, valid while it is set.
struct error_context {
  std::string_view method;
  std::string_view name; ///< The tool or prompt, if any.
  std::string_view service; ///< The downstream service the call went to, if any.
  std::string_view session; ///< The 2025-era session id, if any.
  std::string_view identity;
  std::string_view remote; ///< The client's address, if known.
  std::chrono::steady_clock::time_point received{}; ///< When the request arrived.
  std::string_view trace_id; ///< The request's trace (32 hex digits), if known.
};

/// The context of the error being answered on this thread, or null.
const error_context* current_error_context() noexcept;

/// Makes `c` the current error context until it ends.
class error_context_scope {
public:
  explicit error_context_scope(const error_context& c) noexcept;
  ~error_context_scope();
  error_context_scope(const error_context_scope&) = delete;
  error_context_scope& operator=(const error_context_scope&) = delete;

private:
  const error_context* previous_;
};

/// `errors.mode`: whether internal details reach clients. In production
/// (the default) a client gets the typed error, a message and the trace id;
/// exception text, file paths, service addresses and transport errors stay
/// in the log line with the same trace id. Development adds them to the
/// error as `data.detail`.
enum class error_mode : uint8_t { production, development };
void set_error_mode(error_mode mode) noexcept;
error_mode current_error_mode() noexcept;

/// The error result of a tools/call whose handler failed unexpectedly
/// (threw something other than a tool_error): `isError` with a message that
/// names the trace id, plus `detail` in development mode. Reports it to the
/// error observer like an error body, as internal_error.
json::value internal_tool_failure(std::string_view tool, std::string_view detail);
/// `{"jsonrpc":"2.0","method":M,"params":P}`.
std::string notification_body(std::string_view method, const json::value& params);
/// `{"jsonrpc":"2.0","id":ID,"method":M,"params":P}`.
std::string request_body(const json::value& id, std::string_view method, const json::value& params);

/// The canonical text of a JSON-RPC id, usable as a map key.
std::string id_key(const json::value& id);

// -- HTTP request metadata (2026-07-28) -------------------------------------------------

/// Headers mirrored from the body; `std::nullopt` when absent.
struct mirrored_headers {
  std::optional<std::string> protocol_version;
  std::optional<std::string> method;
  std::optional<std::string> name;
  /// `Mcp-Param-*` headers, lower-cased suffix -> raw value.
  std::vector<std::pair<std::string, std::string>> params;
};

/// Decodes a header value that may use the `=?base64?...?=` sentinel.
/// Returns false for a malformed encoding.
bool decode_header_value(std::string_view raw, std::string& out);

/// A header value for `text` as the 2026-07-28 transport carries it: as is
/// when it is plain visible ASCII without edge whitespace, else wrapped as
/// `=?base64?...?=` (control characters, UTF-8, an empty value).
std::string encode_header_value(std::string_view text);

/// The body member the Mcp-Name header mirrors: `params.name` of tools/call
/// and prompts/get, `params.uri` of resources/read; null for other methods
/// or when the member is absent.
const json::value* mirrored_name(std::string_view method, const json::value& params);

/// Whether client `capabilities` declare `extension` (under `extensions`).
bool declares_extension(const json::value& capabilities, std::string_view extension);

/// `data` of a -32021 answer that names a missing extension:
/// {"requiredCapabilities": {"extensions": {NAME: {}}}}.
json::value extension_required(std::string_view extension);

/// Checks the mirrored headers of a stateless request against its body;
/// fills `why` and returns false on a mismatch (answered with -32020).
/// `tool_schema` is the called tool's input schema for `x-mcp-header` checks
/// (null when not a tools/call or unknown tool).
bool check_mirrored_headers(const mirrored_headers& h, const json::value& body, const json::value& tool_schema,
                            std::string& why);

/// The `Mcp-Param-*` headers a client sends for a tools/call: one per
/// `x-mcp-header` property of `tool_schema` present in `arguments`, as
/// (header name, value), the value base64-wrapped when it is not plain
/// visible ASCII.
std::vector<std::pair<std::string, std::string>> param_headers(const json::value& tool_schema,
                                                               const json::value& arguments);

// -- small helpers ---------------------------------------------------------------------------

/// Text content block `{"type":"text","text":...}`.
json::value text_content(std::string text);
/// A CallToolResult with one text block.
json::value text_result(std::string text, bool is_error = false);
/// A CompleteResult offering `values`: the first 100 of them (the most one
/// may carry), their total count, and whether there are more than it carries.
json::value completion_result(std::vector<std::string> values);

/// Standard base64 (with padding).
std::string base64_encode(std::string_view bytes);
/// Strict standard base64 decode; false on bad characters or padding.
bool base64_decode(std::string_view text, std::string& out);

} // namespace bulwark::mcp
