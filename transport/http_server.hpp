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
#include <optional>
#include <memory>
#include <string>
#include <vector>

namespace bulwark {

class runtime;
class authenticator;

struct http_options {
  std::string address = "127.0.0.1";
  uint16_t port = 8080; ///< 0 picks a free port.
  std::string path = "/mcp"; ///< Empty: no MCP endpoint (an admin-only listener).
  std::size_t body_limit = 1 << 20;   ///< Larger bodies get 413.
  std::size_t header_limit = 16 << 10; ///< Larger header blocks get 431.
  std::size_t max_connections = 1024;
  /// Connections from one client address that no request has yet named a
  /// caller for (new ones, and those whose requests went elsewhere than the
  /// MCP path); more are answered with 503 and closed at once. A coarse
  /// flood guard: it is checked before anything is read.
  std::size_t max_connections_per_address = 512;
  /// Connections one identity holds from one client address, counted from
  /// its first request on the MCP path (the identity is known then); a
  /// request that would take more is answered with 503 and its connection
  /// closed. (HTTP/1.1 runs one request per connection at a time, so this
  /// also bounds one caller's stateless requests in flight.) A caller that
  /// floods an address with connections uses up its own share, not the
  /// address: other callers from the same host are still served.
  std::size_t max_connections_per_identity = 512;
  std::chrono::seconds read_timeout{30};  ///< To receive one whole request.
  std::chrono::seconds idle_timeout{120}; ///< Keep-alive between requests.
  /// A write the client takes no byte of for this long ends the connection
  /// (and the SSE stream on it) with a reset. While bytes wait for the
  /// client, the idle and read timeouts wait too.
  std::chrono::seconds write_timeout{30};
  /// Bytes of answers waiting for the client to take them, per connection
  /// (an SSE stream is one connection's answer). A write that would queue
  /// more ends the connection with a reset; one answer larger than this
  /// still goes out when nothing else waits.
  std::size_t write_queue_limit = 4 << 20;
  std::chrono::seconds sse_keepalive{15}; ///< Comment lines on quiet streams.
  /// Origins allowed besides loopback ones (exact `scheme://host[:port]`).
  std::vector<std::string> allowed_origins;
  /// `Access-Control-Max-Age` of preflight answers to allowed origins.
  int cors_max_age = 600;
  /// Host names allowed besides loopback ones (without port).
  std::vector<std::string> allowed_hosts;
  /// Check Host and Origin against loopback names (DNS-rebinding defence).
  bool check_origin = true;
  int threads = 1;
  /// Who may use the MCP path (`auth.mode`); null admits everyone, named
  /// by their bearer key or as `anonymous`. Other paths are not asked.
  std::shared_ptr<const authenticator> auth;
  /// Answer every POST with an empty result on the I/O thread, bypassing the
  /// actors: the ceiling the benchmark compares the real path against.
  bool echo_mode = false;
};

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
  std::string method;        ///< "GET", "POST", ...
  std::string path;          ///< Without the query.
  std::string authorization; ///< The Authorization header (empty if none).
  std::string remote;        ///< The peer as "address:port" (empty if unknown).
  std::string body;          ///< Empty for a GET route.
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
  http_server(runtime* rt, http_options opts);
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
  /// Graceful shutdown, first step: stops accepting; requests on open
  /// connections get 503 with -32007 (shutting_down) and the connection
  /// closes; answers already under way still go out.
  void drain();
  /// Stops accepting, closes connections and joins the I/O threads.
  void stop();

  uint16_t port() const noexcept;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace bulwark
