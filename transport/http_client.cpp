#include "transport/http_client.hpp"
#include "transport/io_scheduler.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "messages/text.hpp"

namespace bulwark {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

/// A response header block larger than this fails the exchange; so does a
/// chunk header line that never ends.
constexpr std::uint32_t header_limit = 64 << 10;
constexpr std::size_t read_size = 16 << 10;

// -- text helpers ------------------------------------------------------------

using text::lowered;

using text::iequals;

using text::trim;

/// RFC 9110 token characters (methods and header names).
bool is_token(std::string_view s) {
  if (s.empty())
    return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok)
      return false;
  }
  return true;
}

/// Header values must not smuggle line breaks into the request.
bool is_field_value(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// -- URL ---------------------------------------------------------------------

struct endpoint_url {
  bool tls = false; ///< https.
  std::string host; ///< Without brackets for IPv6 literals.
  std::string port; ///< Decimal.
  std::string authority; ///< As written: the Host header.
  std::string target; ///< Path and query, at least "/".
};

/// The URL is not repeated: its path or query may hold a token.
[[noreturn]] void bad_url(const std::string& /*url*/, std::string_view why) {
  throw std::invalid_argument("http_client: unsupported URL: " + std::string(why));
}

endpoint_url parse_url(const std::string& url) {
  endpoint_url out;
  std::string_view rest(url);
  auto take_scheme = [&](std::string_view scheme) {
    if (rest.size() < scheme.size() || !iequals(rest.substr(0, scheme.size()), scheme))
      return false;
    rest.remove_prefix(scheme.size());
    return true;
  };
  if (take_scheme("https://"))
    out.tls = true;
  else if (!take_scheme("http://"))
    bad_url(url, "only http:// and https://host[:port]/path URLs are supported");
  if (auto hash = rest.find('#'); hash != std::string_view::npos)
    rest = rest.substr(0, hash);
  auto end = rest.find_first_of("/?");
  auto authority = rest.substr(0, end);
  out.authority = std::string(authority);
  if (authority.empty())
    bad_url(url, "no host");
  if (authority.find('@') != std::string_view::npos)
    bad_url(url, "user information is not supported");
  std::string_view host, port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      bad_url(url, "unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        bad_url(url, "bad authority");
      port = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos)
      port = authority.substr(colon + 1);
  }
  if (host.empty())
    bad_url(url, "no host");
  if (port.empty()) {
    port = out.tls ? "443" : "80";
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos
        || std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)
      bad_url(url, "bad port");
  }
  out.host = std::string(host);
  out.port = std::string(port);
  if (end == std::string_view::npos)
    out.target = "/";
  else if (rest[end] == '?')
    out.target = "/" + std::string(rest.substr(end));
  else
    out.target = std::string(rest.substr(end));
  return out;
}

// -- TLS ---------------------------------------------------------------------

/// The reason of OpenSSL's latest error, or `fallback`.
std::string openssl_reason(std::string fallback) {
  unsigned long code = 0;
  unsigned long last;
  while ((last = ERR_get_error()) != 0)
    code = last;
  if (code == 0)
    return fallback;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

/// A client context for https URLs: TLS 1.2 or newer, the peer verified
/// against `o.ca_file` (else the system's trust store, which honours
/// SSL_CERT_FILE and SSL_CERT_DIR), and a client certificate when both of its
/// files are given. Throws std::invalid_argument naming a file it cannot use.
std::unique_ptr<ssl::context> tls_context(const service_tls& o) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(ssl::verify_peer);
  auto load = [](const std::string& what, const std::string& file, auto&& fn) {
    beast::error_code ec;
    fn(ec);
    if (ec)
      throw std::invalid_argument("http_client: cannot use " + what + " '" + file
                                  + "': " + openssl_reason(ec.message()));
  };
  if (!o.ca_file.empty())
    load("the CA file", o.ca_file, [&](beast::error_code& ec) { ctx->load_verify_file(o.ca_file, ec); });
  else
    ctx->set_default_verify_paths();
  if (o.cert_file.empty() != o.key_file.empty())
    throw std::invalid_argument("http_client: a client certificate needs both its certificate and key files");
  if (!o.cert_file.empty()) {
    load("the client certificate", o.cert_file,
         [&](beast::error_code& ec) { ctx->use_certificate_chain_file(o.cert_file, ec); });
    // Refused too when it is not the certificate's key.
    load("the client key", o.key_file,
         [&](beast::error_code& ec) { ctx->use_private_key_file(o.key_file, ssl::context::pem, ec); });
  }
  return ctx;
}

/// Why a TLS handshake failed, in words an operator can act on.
std::string handshake_error(ssl::stream<tcp::socket&>& tls, beast::error_code ec) {
  auto verify = SSL_get_verify_result(tls.native_handle());
  if (verify != X509_V_OK)
    return std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
  return ec.message();
}

// -- SSE ---------------------------------------------------------------------

/// Decodes `text/event-stream` bytes into event data (WHATWG HTML,
/// "interpreting an event stream"): lines end with LF, CRLF or CR; `data`
/// fields accumulate; a blank line dispatches; comments and the other fields
/// are dropped. Events whose data is empty are skipped.
class sse_decoder {
public:
  explicit sse_decoder(std::size_t limit) : limit_(limit) {}

  /// Calls `emit(std::string)` per complete event; false when one event
  /// grows beyond the limit.
  template <class Emit>
  bool feed(const char* p, std::size_t n, Emit&& emit) {
    const char* end = p + n;
    while (p < end) {
      if (skip_lf_) {
        skip_lf_ = false;
        if (*p == '\n') {
          ++p;
          continue;
        }
      }
      auto eol = std::find_if(p, end, [](char c) { return c == '\n' || c == '\r'; });
      line_.append(p, eol);
      if (line_.size() + data_.size() > limit_)
        return false;
      if (eol == end)
        break;
      skip_lf_ = *eol == '\r';
      p = eol + 1;
      on_line(emit);
      line_.clear();
    }
    return true;
  }

private:
  template <class Emit>
  void on_line(Emit& emit) {
    std::string_view line(line_);
    if (line.empty()) {
      if (!data_.empty())
        data_.pop_back(); // the LF after the last data line
      if (!data_.empty())
        emit(std::move(data_));
      data_.clear();
      return;
    }
    if (line.front() == ':')
      return;
    auto colon = line.find(':');
    auto field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
    }
    if (field == "data") {
      data_.append(value);
      data_.push_back('\n');
    }
    // `event`, `id` and `retry` do not matter to a JSON-RPC client.
  }

  std::size_t limit_;
  std::string line_; ///< The incomplete line.
  std::string data_; ///< The event's data lines, each followed by LF.
  bool skip_lf_ = false;
};

// -- exchanges and connections ----------------------------------------------

struct exchange;

struct connection {
  explicit connection(net::io_context& io) : sock(io), resolver(io), timer(io) {}

  void close() {
    beast::error_code ec;
    timer.cancel();
    resolver.cancel();
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
  }

  tcp::socket sock;
  /// Over `sock`, for https; declared after it, so it goes first.
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;
  tcp::resolver resolver;
  net::steady_timer timer; ///< Bounds resolving, connecting and the TLS handshake.
  beast::flat_buffer buf;
  std::optional<http::response_parser<http::buffer_body>> parser;
  std::string out; ///< The request bytes being written.
  const exchange* owner = nullptr; ///< The exchange it carries, if any.
  bool reused = false; ///< It carried an exchange before.
  std::array<char, read_size> chunk;
};

using connection_ptr = std::shared_ptr<connection>;

struct exchange {
  uint64_t id = 0;
  std::string method;
  std::string body;
  std::vector<std::string> more_body; ///< Pieces sent after `body`, as they are.
  std::size_t body_size = 0;
  http_header_list headers;
  http_client::event_fn on_event;
  http_client::done_fn done;
  std::chrono::milliseconds timeout{0};
  /// When it times out (max: never).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  http_response resp;
  /// Set while the exchange holds a pool slot (connecting or on the wire).
  connection_ptr conn;
  bool finished = false;
  bool queued = false;
  bool retried = false;
  bool got_bytes = false; ///< A response byte arrived on this attempt.
  bool sse = false;
  std::optional<sse_decoder> events;
};

using exchange_ptr = std::shared_ptr<exchange>;

} // namespace

const std::string* http_response::header(std::string_view lower_name) const {
  for (auto& [name, value] : headers)
    if (name == lower_name)
      return &value;
  return nullptr;
}

// -- the client ----------------------------------------------------------------

struct http_client::impl : std::enable_shared_from_this<impl> {
  impl(net::io_context& ctx, http_client_options o) : io(ctx), opts(std::move(o)), url(parse_url(opts.url)) {
    opts.max_connections = std::max<std::size_t>(1, opts.max_connections);
    if (url.tls)
      tls_ctx = tls_context(opts.tls);
  }

  /// The peer as errors name it: scheme and authority, never the path or
  /// query (a webhook's may carry its token).
  std::string shown_url() const { return (url.tls ? "https://" : "http://") + url.authority; }

  net::io_context& io;
  http_client_options opts;
  endpoint_url url;
  std::unique_ptr<ssl::context> tls_ctx; ///< For https URLs.
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> stop_requested{false};

  // Everything below belongs to the io_context's thread.
  bool stopped = false;
  /// Connections carrying or opening an exchange.
  std::size_t busy = 0;
  std::vector<connection_ptr> idle;
  std::deque<exchange_ptr> waiting;
  std::map<uint64_t, exchange_ptr> live;
  /// One timer for all exchanges' deadlines, set for the earliest of them
  /// (or earlier): an exchange that ends in time costs no timer operation.
  net::steady_timer sweeper{io};
  std::chrono::steady_clock::time_point sweep_at = std::chrono::steady_clock::time_point::max();

  // -- admission ---------------------------------------------------------------

  /// Starts `ex` on the io_context's thread; returns its id.
  uint64_t launch(exchange_ptr ex) {
    auto id = ex->id;
    // From an actor's turn on the thread that runs the client's io_context
    // (the connector's usual case), none of its handlers is running: start
    // now.
    if (actor_turn_io() == &io)
      start(ex);
    else
      net::post(io, [self = shared_from_this(), ex = std::move(ex)] { self->start(ex); });
    return id;
  }

  void start(const exchange_ptr& ex) {
    if (stopped || stop_requested.load(std::memory_order_acquire))
      return finish(ex, "stopped");
    ex->resp.malformed = true;
    if (!is_token(ex->method))
      return finish(ex, "invalid request method '" + ex->method + "'");
    for (auto* list : {&opts.headers, &ex->headers})
      for (auto& [name, value] : *list)
        if (!is_token(name) || !is_field_value(value))
          return finish(ex, "invalid request header '" + name + "'");
    ex->resp.malformed = false;
    live.emplace(ex->id, ex);
    if (ex->timeout.count() > 0) {
      ex->deadline = std::chrono::steady_clock::now() + ex->timeout;
      if (ex->deadline < sweep_at)
        arm_sweeper(ex->deadline);
    }
    assign(ex);
  }

  void arm_sweeper(std::chrono::steady_clock::time_point at) {
    sweep_at = at;
    sweeper.expires_at(at);
    sweeper.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec)
        return;
      if (auto self = weak.lock())
        self->sweep();
    });
  }

  /// Times out the exchanges whose deadline passed; waits for the next one.
  void sweep() {
    sweep_at = std::chrono::steady_clock::time_point::max();
    if (stopped)
      return;
    auto now = std::chrono::steady_clock::now();
    std::vector<exchange_ptr> due;
    auto next = std::chrono::steady_clock::time_point::max();
    for (auto& [id, ex] : live) {
      if (ex->deadline <= now)
        due.push_back(ex);
      else
        next = std::min(next, ex->deadline);
    }
    for (auto& ex : due) {
      if (ex->finished)
        continue;
      ex->resp.timed_out = true;
      finish(ex, "timed out after " + std::to_string(ex->timeout.count()) + " ms");
    }
    // Exchanges started by the callbacks above armed the sweeper themselves.
    if (next < sweep_at)
      arm_sweeper(next);
  }

  /// Puts the exchange on an idle connection, a new one, or in the queue.
  void assign(const exchange_ptr& ex) {
    if (!idle.empty()) {
      auto conn = std::move(idle.back());
      idle.pop_back();
      ++busy;
      attach(conn, ex);
      write_request(conn, ex);
    } else if (busy < opts.max_connections) {
      ++busy;
      open(std::make_shared<connection>(io), ex);
    } else {
      ex->queued = true;
      waiting.push_back(ex);
    }
  }

  void pump() {
    while (!stopped && !waiting.empty() && (!idle.empty() || busy < opts.max_connections)) {
      auto ex = std::move(waiting.front());
      waiting.pop_front();
      ex->queued = false;
      assign(ex);
    }
  }

  void attach(const connection_ptr& conn, const exchange_ptr& ex) {
    conn->owner = ex.get();
    ex->conn = conn;
    ex->got_bytes = false;
    ex->resp.sent = false;
  }

  /// Handlers of a connection that no longer carries the exchange (it
  /// finished, or moved to a fresh connection) do nothing.
  static bool current(const connection_ptr& conn, const exchange_ptr& ex) {
    return !ex->finished && conn->owner == ex.get() && ex->conn == conn;
  }

  // -- connecting --------------------------------------------------------------

  void open(const connection_ptr& conn, const exchange_ptr& ex) {
    attach(conn, ex);
    auto self = shared_from_this();
    conn->timer.expires_after(opts.connect_timeout);
    conn->timer.async_wait([self, conn, ex](beast::error_code ec) {
      if (ec || !current(conn, ex))
        return;
      ex->resp.timed_out = true;
      self->finish(ex, "connecting to " + self->shown_url() + " timed out after "
                         + std::to_string(self->opts.connect_timeout.count()) + " ms");
    });
    beast::error_code ec;
    auto address = net::ip::make_address(url.host, ec);
    if (!ec) {
      tcp::endpoint ep(address, static_cast<unsigned short>(std::stoul(url.port)));
      conn->sock.async_connect(ep, [self, conn, ex](beast::error_code ec) { self->on_connect(conn, ex, ec); });
      return;
    }
    conn->resolver.async_resolve(
      url.host, url.port, [self, conn, ex](beast::error_code ec, tcp::resolver::results_type results) {
        if (!current(conn, ex))
          return;
        if (ec)
          return self->finish(ex, "cannot resolve " + self->url.host + ": " + ec.message());
        net::async_connect(conn->sock, results, [self, conn, ex](beast::error_code ec, const tcp::endpoint&) {
          self->on_connect(conn, ex, ec);
        });
      });
  }

  void on_connect(const connection_ptr& conn, const exchange_ptr& ex, beast::error_code ec) {
    if (!current(conn, ex))
      return;
    if (ec) {
      conn->timer.cancel();
      return finish(ex, "cannot connect to " + shown_url() + ": " + ec.message());
    }
    conn->sock.set_option(tcp::no_delay(true), ec);
    conn->sock.non_blocking(true, ec);
    if (!tls_ctx) {
      conn->timer.cancel();
      return write_request(conn, ex);
    }
    // The connect timer goes on bounding the handshake.
    conn->tls = std::make_unique<ssl::stream<tcp::socket&>>(conn->sock, *tls_ctx);
    // The certificate must name the URL's host; Server Name Indication is
    // for host names only (RFC 6066).
    auto* native = conn->tls->native_handle();
    auto* param = SSL_get0_param(native);
    beast::error_code addr_ec;
    net::ip::make_address(url.host, addr_ec);
    bool named = addr_ec ? X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0) == 1
                             && SSL_set_tlsext_host_name(native, url.host.c_str()) == 1
                         : X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) == 1;
    if (!named)
      return finish(ex, "cannot check TLS certificates for the host '" + url.host + "'");
    conn->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this(), conn, ex](beast::error_code ec) {
      if (!current(conn, ex))
        return;
      conn->timer.cancel();
      if (ec)
        return self->finish(ex,
                            "TLS handshake with " + self->shown_url() + " failed: " + handshake_error(*conn->tls, ec));
      self->write_request(conn, ex);
    });
  }

  // -- one exchange on the wire ----------------------------------------------------

  /// The handler for the (rest of the) request written.
  auto written(const connection_ptr& conn, const exchange_ptr& ex) {
    return [self = shared_from_this(), conn, ex](beast::error_code ec, std::size_t n) {
      if (!current(conn, ex))
        return;
      if (n > 0)
        ex->resp.sent = true;
      if (ec) {
        if (can_retry(conn, ex))
          return self->retry(conn, ex);
        return self->finish(ex, "cannot send the request: " + ec.message());
      }
      self->read(conn, ex);
    };
  }

  void write_request(const connection_ptr& conn, const exchange_ptr& ex) {
    // The head is written here; without TLS, the body goes out from the
    // exchange as it is (a trace export's body is many kilobytes), in the
    // same writes.
    auto& out = conn->out;
    out.clear();
    out.append(ex->method).append(" ").append(url.target).append(" HTTP/1.1\r\nHost: ");
    out.append(url.authority).append("\r\n");
    bool has_content_type = false;
    for (auto* list : {&opts.headers, &ex->headers})
      for (auto& [name, value] : *list) {
        // Framing is ours to set.
        if (iequals(name, "host") || iequals(name, "content-length") || iequals(name, "transfer-encoding"))
          continue;
        has_content_type = has_content_type || iequals(name, "content-type");
        out.append(name).append(": ").append(value).append("\r\n");
      }
    if (ex->body_size > 0 && !has_content_type)
      out.append("Content-Type: application/json\r\n");
    if (ex->body_size > 0 || ex->method == "POST" || ex->method == "PUT")
      out.append("Content-Length: ").append(std::to_string(ex->body_size)).append("\r\n");
    out.append("\r\n");

    conn->buf.consume(conn->buf.size());
    fresh_parser(*conn);
    if (conn->tls) {
      // TLS writes the first buffer of a sequence per record: one buffer,
      // one record.
      out.append(ex->body);
      for (auto& piece : ex->more_body)
        out.append(piece);
      return net::async_write(*conn->tls, net::buffer(out), written(conn, ex));
    }
    if (ex->more_body.empty())
      return write_parts(conn, ex, std::array<net::const_buffer, 2>{net::buffer(out), net::buffer(ex->body)});
    std::vector<net::const_buffer> parts{net::buffer(out), net::buffer(ex->body)};
    for (auto& piece : ex->more_body)
      parts.push_back(net::buffer(piece));
    write_parts(conn, ex, std::move(parts));
  }

  /// Writes the request's head and body (`parts`, which point into the
  /// connection and the exchange) to a plain socket.
  template <class Buffers>
  void write_parts(const connection_ptr& conn, const exchange_ptr& ex, Buffers parts) {
    // The socket is non-blocking: send what it takes now, and wait for a
    // handler only for the rest.
    beast::error_code ec;
    auto now = conn->sock.write_some(parts, ec);
    if (ec == net::error::would_block || ec == net::error::try_again)
      ec = {};
    if (now > 0)
      ex->resp.sent = true;
    if (ec) {
      if (can_retry(conn, ex))
        return retry(conn, ex);
      return finish(ex, "cannot send the request: " + ec.message());
    }
    if (now == conn->out.size() + ex->body_size)
      return read(conn, ex);
    for (auto& part : parts) {
      auto taken = std::min(now, part.size());
      part += taken;
      now -= taken;
    }
    net::async_write(conn->sock, parts, written(conn, ex));
  }

  static void fresh_parser(connection& conn) {
    conn.parser.emplace();
    conn.parser->header_limit(header_limit);
    // Body sizes are checked here, per kind of body. Not boost::none: Beast
    // 1.74 compares a Content-Length against the optional and then refuses
    // every body.
    conn.parser->body_limit(std::numeric_limits<std::uint64_t>::max());
  }

  /// A reused keep-alive connection that dies before any response byte was
  /// stale: the server closed it before it saw our request.
  static bool can_retry(const connection_ptr& conn, const exchange_ptr& ex) {
    return conn->reused && !ex->retried && !ex->got_bytes;
  }

  void retry(const connection_ptr& conn, const exchange_ptr& ex) {
    ex->retried = true;
    conn->owner = nullptr;
    conn->close();
    ex->conn.reset();
    open(std::make_shared<connection>(io), ex); // keeps the pool slot
  }

  void read(const connection_ptr& conn, const exchange_ptr& ex) {
    auto on_read = [self = shared_from_this(), conn, ex](beast::error_code ec, std::size_t n) {
      if (!current(conn, ex))
        return;
      if (ec)
        return self->on_read_error(conn, ex, ec);
      conn->buf.commit(n);
      ex->got_bytes = true;
      self->parse(conn, ex);
    };
    if (conn->tls)
      conn->tls->async_read_some(conn->buf.prepare(read_size), std::move(on_read));
    else
      conn->sock.async_read_some(conn->buf.prepare(read_size), std::move(on_read));
  }

  void on_read_error(const connection_ptr& conn, const exchange_ptr& ex, beast::error_code ec) {
    if (!ex->got_bytes && can_retry(conn, ex))
      return retry(conn, ex);
    auto& parser = *conn->parser;
    // A TLS server that closes without close_notify ends the stream as a
    // plain one would; a body it truncates that way still fails below.
    if (ec == ssl::error::stream_truncated)
      ec = net::error::eof;
    if (ec != net::error::eof)
      return finish(ex, "connection error: " + ec.message());
    if (!ex->got_bytes)
      return finish(ex, "the server closed the connection without answering");
    if (!parser.is_header_done())
      return finish(ex, "the server closed the connection within the response header");
    // A body delimited by the end of the connection ends here.
    beast::error_code eof_ec;
    parser.put_eof(eof_ec);
    if (eof_ec || !parser.is_done())
      return finish(ex, "the server closed the connection within the response body");
    complete(conn, ex);
  }

  /// Feeds buffered bytes to the parser: header first, then the body in
  /// `chunk`-sized pieces, each handed on at once.
  void parse(const connection_ptr& conn, const exchange_ptr& ex) {
    for (;;) {
      auto& parser = *conn->parser;
      beast::error_code ec;
      if (!parser.is_header_done()) {
        auto used = parser.put(conn->buf.data(), ec);
        conn->buf.consume(used);
        if (ec == http::error::need_more)
          return read(conn, ex);
        if (ec == http::error::header_limit)
          return finish(ex, "the response header block exceeds " + std::to_string(header_limit) + " bytes");
        if (ec)
          return finish(ex, "malformed response: " + ec.message());
        if (!parser.is_header_done())
          return read(conn, ex);
        auto status = parser.get().result_int();
        if (status >= 100 && status < 200 && status != 101) {
          // An interim response (e.g. 103 Early Hints): the real one follows.
          fresh_parser(*conn);
          continue;
        }
        on_header(conn, ex);
        if (ex->finished)
          return;
        continue;
      }
      if (parser.is_done())
        return complete(conn, ex);
      if (conn->buf.size() == 0)
        return read(conn, ex);
      if (conn->buf.size() > header_limit)
        return finish(ex, "malformed response: a chunk header exceeds " + std::to_string(header_limit) + " bytes");
      auto& body = parser.get().body();
      body.data = conn->chunk.data();
      body.size = conn->chunk.size();
      auto used = parser.put(conn->buf.data(), ec);
      conn->buf.consume(used);
      auto produced = conn->chunk.size() - body.size;
      if (produced > 0) {
        on_body(ex, conn->chunk.data(), produced);
        if (ex->finished)
          return;
      }
      if (ec == http::error::need_buffer)
        continue;
      if (ec == http::error::need_more) {
        if (parser.is_done())
          return complete(conn, ex);
        return read(conn, ex);
      }
      if (ec)
        return finish(ex, "malformed response body: " + ec.message());
      if (used == 0 && produced == 0 && !parser.is_done())
        return read(conn, ex);
    }
  }

  void on_header(const connection_ptr& conn, const exchange_ptr& ex) {
    auto& parser = *conn->parser;
    auto& msg = parser.get();
    auto& resp = ex->resp;
    resp.status = msg.result_int();
    for (auto& f : msg)
      resp.headers.emplace_back(lowered(text::view(f.name_string())), std::string(text::view(f.value())));
    if (auto ct = msg.find(http::field::content_type); ct != msg.end()) {
      auto value = text::view(ct->value());
      resp.content_type = lowered(trim(value.substr(0, value.find(';'))));
    }
    ex->sse = resp.content_type == "text/event-stream";
    if (ex->sse) {
      ex->events.emplace(opts.body_limit);
      return;
    }
    if (auto length = parser.content_length(); length && *length > opts.body_limit)
      finish(ex, "the response body (" + std::to_string(*length) + " bytes) exceeds the limit of "
                   + std::to_string(opts.body_limit) + " bytes");
  }

  void on_body(const exchange_ptr& ex, const char* data, std::size_t n) {
    if (ex->sse) {
      bool ok = ex->events->feed(data, n, [&](std::string event) {
        if (ex->on_event)
          ex->on_event(std::move(event));
      });
      if (!ok)
        finish(ex, "an SSE event exceeds the limit of " + std::to_string(opts.body_limit) + " bytes");
      return;
    }
    if (ex->resp.body.size() + n > opts.body_limit)
      return finish(ex, "the response body exceeds the limit of " + std::to_string(opts.body_limit) + " bytes");
    ex->resp.body.append(data, n);
  }

  void complete(const connection_ptr& conn, const exchange_ptr& ex) {
    auto& parser = *conn->parser;
    // Stray bytes after the response mean the framing cannot be trusted.
    bool reuse = !ex->sse && ex->resp.status != 101 && parser.keep_alive() && conn->buf.size() == 0;
    finish(ex, {}, reuse);
  }

  // -- ending ------------------------------------------------------------------

  /// Ends the exchange once: frees or closes its connection, lets a queued
  /// exchange in, and calls `done`.
  void finish(const exchange_ptr& ex, std::string error, bool reuse = false) {
    if (ex->finished)
      return;
    ex->finished = true;
    live.erase(ex->id);
    if (!error.empty()) {
      ex->resp.error = std::move(error);
      ex->resp.body.clear(); // never a partial body
    }
    if (ex->queued) {
      waiting.erase(std::find(waiting.begin(), waiting.end(), ex));
      ex->queued = false;
    }
    if (auto conn = std::move(ex->conn)) {
      conn->owner = nullptr;
      conn->timer.cancel();
      conn->parser.reset();
      --busy;
      if (reuse && !stopped) {
        conn->reused = true;
        idle.push_back(std::move(conn));
      } else {
        conn->close();
      }
    }
    pump();
    auto done = std::move(ex->done);
    auto resp = std::move(ex->resp);
    ex->on_event = nullptr;
    ex->events.reset();
    if (done)
      done(std::move(resp));
  }

  void cancel(uint64_t id) {
    if (auto i = live.find(id); i != live.end()) {
      auto ex = i->second;
      finish(ex, "cancelled");
    }
  }

  void stop_now() {
    if (stopped)
      return;
    stopped = true;
    sweeper.cancel();
    // Queued ones first, so that freed slots do not start them.
    auto queued = std::vector<exchange_ptr>(waiting.begin(), waiting.end());
    for (auto& ex : queued)
      finish(ex, "stopped");
    auto active = live;
    for (auto& [id, ex] : active)
      finish(ex, "stopped");
    for (auto& conn : idle)
      conn->close();
    idle.clear();
  }
};

// -- public interface ------------------------------------------------------------

http_client::http_client(net::io_context& io, http_client_options opts)
    : impl_(std::make_shared<impl>(io, std::move(opts))) {}

http_client::~http_client() {
  stop();
}

namespace {

/// An exchange of `method` with `extra_headers`, its other parts set by the
/// caller.
exchange_ptr make_exchange(std::atomic<uint64_t>& ids, std::string method, http_header_list extra_headers,
                           http_client::event_fn on_event, http_client::done_fn done,
                           std::chrono::milliseconds timeout) {
  auto ex = std::make_shared<exchange>();
  ex->id = ids.fetch_add(1, std::memory_order_relaxed);
  ex->method = std::move(method);
  ex->headers = std::move(extra_headers);
  ex->on_event = std::move(on_event);
  ex->done = std::move(done);
  ex->timeout = timeout;
  return ex;
}

} // namespace

uint64_t http_client::send(std::string method, std::string body, http_header_list extra_headers, event_fn on_event,
                           done_fn done, std::chrono::milliseconds timeout) {
  auto ex = make_exchange(impl_->next_id, std::move(method), std::move(extra_headers), std::move(on_event),
                          std::move(done), timeout);
  ex->body_size = body.size();
  ex->body = std::move(body);
  return impl_->launch(std::move(ex));
}

uint64_t http_client::send(std::string method, std::vector<std::string> body, http_header_list extra_headers,
                           event_fn on_event, done_fn done, std::chrono::milliseconds timeout) {
  auto ex = make_exchange(impl_->next_id, std::move(method), std::move(extra_headers), std::move(on_event),
                          std::move(done), timeout);
  for (auto& piece : body)
    ex->body_size += piece.size();
  if (!body.empty()) {
    ex->body = std::move(body.front());
    body.erase(body.begin());
  }
  ex->more_body = std::move(body);
  return impl_->launch(std::move(ex));
}

void http_client::cancel(uint64_t id) {
  net::post(impl_->io, [self = impl_, id] { self->cancel(id); });
}

void http_client::stop() {
  if (impl_->stop_requested.exchange(true, std::memory_order_acq_rel))
    return;
  net::post(impl_->io, [self = impl_] { self->stop_now(); });
}

} // namespace bulwark
