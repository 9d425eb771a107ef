// An asynchronous HTTP/1.1 client for downstream MCP servers (Streamable
// HTTP), on Boost.Beast.
//
// One client talks to one endpoint URL through a bounded keep-alive pool.
// JSON answers come back whole; `text/event-stream` answers are decoded and
// handed over event by event as their bytes arrive, so progress
// notifications reach the caller before the final response. Every exchange
// ends with exactly one `done` call, whatever the server does.
//
// Beast stays out of this header (it is included by actor code): the I/O
// lives behind a pimpl in http_client.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/service.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace bulwark {

using http_header_list = std::vector<std::pair<std::string, std::string>>;

struct http_client_options {
  /// `http://` or `https://host[:port][/path]`; anything else makes the
  /// constructor throw std::invalid_argument naming the URL. So does a TLS
  /// file it cannot use.
  std::string url;
  /// For https URLs: what to trust, and a client certificate.
  service_tls tls;
  /// Sent with every request (e.g. Authorization).
  http_header_list headers;
  /// Keep-alive pool size; further requests wait in a FIFO queue.
  std::size_t max_connections = 8;
  /// To resolve and connect one new connection.
  std::chrono::milliseconds connect_timeout{5000};
  /// Larger non-SSE response bodies, and larger single SSE events, fail the
  /// exchange.
  std::size_t body_limit = 16 << 20;
};

struct http_response {
  /// 0 when no status line was received.
  int status = 0;
  /// Transport-level error (connect refused, timeout, reset, body too large,
  /// bad framing, cancelled, stopped); empty on success, whatever the status.
  std::string error;
  /// True once request bytes were (at least partly) written to a socket on
  /// the final attempt: the server may have acted on it, so a retry is not
  /// known to be safe.
  bool sent = false;
  /// The exchange's or the connect timeout expired.
  bool timed_out = false;
  /// The request could not be built (a method or header value HTTP does
  /// not allow): nothing was sent, and the fault is the caller's, not the
  /// server's.
  bool malformed = false;
  /// Response headers in arrival order, names lower-cased.
  http_header_list headers;
  /// Lower-cased media type without parameters, e.g. "application/json".
  std::string content_type;
  /// The whole body of a non-SSE response; empty for event streams and
  /// whenever `error` is set (never a partial body).
  std::string body;

  /// The first header named `lower_name` (lower case), or nullptr.
  const std::string* header(std::string_view lower_name) const;
};

class http_client {
public:
  /// One SSE event's data (several `data:` lines joined by "\n").
  using event_fn = std::function<void(std::string data)>;
  using done_fn = std::function<void(http_response)>;

  /// Runs all I/O on `io`, which the caller runs on some thread. Throws
  /// std::invalid_argument for an unsupported URL.
  http_client(boost::asio::io_context& io, http_client_options opts);
  /// Stops (see `stop`). Pending `done` callbacks still run on the
  /// io_context's thread afterwards, as long as the io_context runs.
  ~http_client();

  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Sends `method` ("POST", "GET", "DELETE") to the URL with `body`
  /// (Content-Type: application/json unless `extra_headers` name one) and
  /// `extra_headers` (the caller sets Accept; Host, Content-Length and
  /// Transfer-Encoding are the client's own and dropped from both lists).
  /// Requests queue FIFO while all `max_connections` are busy; a stream holds
  /// its connection until it ends. A `text/event-stream` answer
  /// calls `on_event` (may be empty) for each event with non-empty data as it
  /// arrives, and `done` with an empty body when the stream ends; any other
  /// answer calls `done` with the body. `done` is called exactly once in
  /// every case, including errors, timeouts, `cancel` and `stop`. `timeout`
  /// bounds the whole exchange, queueing included (0: none). Callbacks run on
  /// the io_context's thread. Thread-safe. Returns an id for `cancel`.
  uint64_t send(std::string method, std::string body, http_header_list extra_headers, event_fn on_event, done_fn done,
                std::chrono::milliseconds timeout);
  /// The same with a body in pieces, written one after another as they are
  /// (a trace export's batches: kilobytes that joining would copy).
  uint64_t send(std::string method, std::vector<std::string> body, http_header_list extra_headers, event_fn on_event,
                done_fn done, std::chrono::milliseconds timeout);

  /// Ends that exchange with error "cancelled" and closes its connection.
  /// Thread-safe; unknown or finished ids are ignored.
  void cancel(uint64_t id);

  /// Ends every exchange with error "stopped" and closes all connections;
  /// later `send` calls complete at once with error "stopped". Thread-safe;
  /// idempotent.
  void stop();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace bulwark
