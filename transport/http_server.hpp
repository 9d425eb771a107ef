// Streamable HTTP transport (both MCP eras on one endpoint), on Boost.Beast.
//
// Bytes in, typed messages out: the server checks HTTP framing, origin, media
// types and the 2026-07-28 mirrored headers, parses the JSON-RPC body, and
// hands an `inbound` to the runtime. Answers come back through a reply sink
// that posts to the connection's strand and are written as one JSON response
// or as an SSE stream.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/settings.hpp"

namespace bulwark {

class mcp_endpoint;

/// The reason phrase of an HTTP status that Bulwark sends or meets ("Not
/// Found"); empty for one it does not name.
std::string_view http_reason_phrase(int status);

/// A plain HTTP response for extra routes (health, metrics, admin).
struct http_reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  /// Extra header lines, each as "\r\nName: value".
  std::string headers;
};

/// Handles GET requests to an extra path.
using http_route = std::function<http_reply()>;

/// A request to a path served by an `http_handler` or a request route.
struct http_request_view {
  std::string method; ///< "GET", "POST", ...
  std::string path; ///< Without the query.
  std::string authorization; ///< The Authorization header (empty if none).
  std::string remote; ///< The peer as "address:port" (empty if unknown).
  std::string body; ///< Empty for a GET route.
};

/// Handles GET requests to an extra path, seeing who asks.
using http_request_route = std::function<http_reply(const http_request_view&)>;

/// Whether `remote` ("address:port", "[v6]:port") is a loopback address.
bool is_loopback_peer(std::string_view remote);

/// Handles every method on the paths under a prefix.
using http_handler = std::function<http_reply(const http_request_view&)>;

class http_server {
public:
  /// `rt` may be null in echo mode.
  http_server(mcp_endpoint* rt, http_options opts);
  ~http_server();

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Adds a GET route (before `start`).
  void add_route(std::string path, http_route route);
  void add_route(std::string path, http_request_route route);
  /// What a GET of `req.path` gets from its extra route, as the listener
  /// would answer it; nullopt when no route serves that path.
  std::optional<http_reply> answer_get(const http_request_view& req) const;
  /// Serves every request whose path starts with `prefix` and has no exact
  /// GET route (before `start`).
  void add_handler(std::string prefix, http_handler handler);

  /// Binds and starts the I/O threads; returns the bound port. Throws on a
  /// bind failure.
  uint16_t start();
  /// Graceful shutdown: MCP requests get 503 with -32007 (shutting_down),
  /// their own id and `Retry-After`, and their connection closes; health
  /// and metrics routes are still served (so a balancer sees /ready fail)
  /// and answers already under way still go out. `stop` closes the
  /// listener.
  void drain();
  /// Stops accepting, closes connections and joins the I/O threads.
  void stop();

  uint16_t port() const noexcept;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace bulwark
