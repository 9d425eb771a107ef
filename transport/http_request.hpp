// How the HTTP server judges the bytes a client sends, before any actor sees
// them: HTTP framing (Beast's parser with our limits, and the checks Beast
// 1.74 lacks), Host/Origin, media types, the JSON-RPC body, the protocol era
// and the 2026-07-28 mirrored headers. Pure functions of the bytes and the
// options, with no socket, so that the server and the fuzz target run the
// same code.
//
// Includes Beast: for transport/ only.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "messages/errors.hpp"
#include "messages/json.hpp"
#include "messages/mcp.hpp"
#include "transport/http_server.hpp"

namespace bulwark {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;

/// A request the server answers itself with an HTTP error status and a
/// JSON-RPC error body.
struct http_refusal {
  int status = 400;
  error_code code = error_code::invalid_request;
  std::string message;
  json::value id; ///< The request's id when its body was read; else null.

  /// The JSON-RPC error body of the answer.
  std::string body() const;
};

// -- framing -------------------------------------------------------------------

/// Takes requests off a connection's receive buffer, one at a time: the
/// header block limit and obsolete line folding (checked before Beast sees
/// the header), Beast's parser with the header and body limits, and the
/// framing Beast 1.74 lets through (repeated Content-Length, Transfer-Encoding
/// with Content-Length, codings other than chunked).
class http_request_reader {
public:
  enum class step {
    need_more, ///< The buffer holds no complete request yet.
    ready, ///< `take()` the request.
    refused, ///< `refusal()` says why; the connection answers and closes.
  };

  http_request_reader(std::size_t header_limit, std::size_t body_limit)
      : header_limit_(header_limit), body_limit_(body_limit) {}

  /// Consumes bytes of `buffer` until a request is complete, more bytes are
  /// needed or the request is refused.
  step read(boost::beast::flat_buffer& buffer);

  /// A request is partly read.
  bool in_progress() const noexcept { return parser_.has_value(); }

  /// The request whose header was just accepted asked for
  /// `Expect: 100-continue`; true once per request.
  bool take_continue() noexcept { return std::exchange(continue_, false); }

  /// The complete request (after `step::ready`).
  http_request take();

  /// Forgets a partly read request (after a refusal nothing more is read).
  void reset() noexcept;

  const http_refusal& refusal() const noexcept { return refusal_; }

private:
  step refuse(int status, std::string message);
  bool check_framing();

  std::size_t header_limit_;
  std::size_t body_limit_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  bool header_checked_ = false;
  bool continue_ = false;
  std::size_t scanned_ = 0; ///< Bytes searched for the header's end so far.
  http_refusal refusal_;
};

// -- the request ---------------------------------------------------------------

/// Host and Origin name this server (loopback names or the allowed lists):
/// the DNS-rebinding defence.
bool http_origin_allowed(const http_options& opts, const http_request& req);

/// True when an Accept header value admits `type` ("a/b").
bool http_accepts(std::string_view accept, std::string_view type);

/// The MCP headers of a request, gathered in one pass (the first of a
/// repeated header wins). `params` holds `Mcp-Param-*` with lower-case suffixes.
struct mcp_header_set {
  std::optional<std::string> session_id, protocol_version, method, name;
  std::vector<std::pair<std::string, std::string>> params;
};

mcp_header_set collect_mcp_headers(const http_request& req);

/// The JSON-RPC message of a POST to the MCP path.
struct http_post_message {
  json::value msg;
  mcp::classified cls;
};

/// Media types (Content-Type, Accept) and the body: parsed (padding the
/// body in place for simdjson) and classified. A refusal otherwise.
std::optional<http_refusal> judge_post_body(http_request& req, http_post_message& out);

/// What the transport needs to know of the runtime to place a message.
struct http_session_lookup {
  /// Whether `session_id` is a live 2025-era session of the caller.
  std::function<bool(const std::string& session_id)> has_session;
  /// The input schema of a tool, or null when there is no such tool.
  std::function<const json::value*(const std::string& tool)> tool_schema;
};

/// Where a POSTed message goes.
struct http_post_route {
  bool stateless = false;
  std::string session_id; ///< The live 2025-era session, if any.
  /// A 2026-07-28 notification: acknowledged (202) and not dispatched.
  bool acknowledge_only = false;
};

/// The protocol era and session of a POSTed message (a live session; else a
/// 2026-07-28 version header or `_meta` version; else `initialize`), and for
/// 2026-07-28 requests the mirrored headers against the body. A refusal
/// otherwise.
std::optional<http_refusal> judge_post_route(mcp_header_set& headers, const http_post_message& m,
                                             const http_session_lookup& lookup, http_post_route& out);

} // namespace bulwark
