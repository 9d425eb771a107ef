#include "transport/http_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "actors/runtime.hpp"
#include "config/audit.hpp"
#include "config/log.hpp"
#include "messages/actors.hpp"
#include "messages/crypto.hpp"
#include "messages/mcp.hpp"
#include "messages/text.hpp"
#include "transport/auth.hpp"
#include "transport/io_scheduler.hpp"

namespace bulwark {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using request = http::request<http::string_body>;
/// Every connection runs on a strand of one io_context.
using strand_t = net::strand<net::io_context::executor_type>;

namespace {

// -- HTTP helpers ------------------------------------------------------------------

const char* reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

using text::trim;

using text::lower;

using text::iequals;

/// The MCP headers of a request, gathered in one pass (the first of a
/// repeated header wins). `params` holds `Mcp-Param-*` with lower-case suffixes.
struct mcp_header_set {
  std::optional<std::string> session_id, protocol_version, method, name;
  std::vector<std::pair<std::string, std::string>> params;
};

template <class Request>
mcp_header_set collect_mcp_headers(const Request& req) {
  mcp_header_set out;
  auto take = [](std::optional<std::string>& slot, std::string_view value) {
    if (!slot)
      slot.emplace(value);
  };
  for (auto& f : req) {
    auto name = sv(f.name_string());
    if (name.size() < 7 || !iequals(name.substr(0, 4), "mcp-"))
      continue;
    auto rest = name.substr(4);
    auto value = sv(f.value());
    if (iequals(rest, "session-id"))
      take(out.session_id, value);
    else if (iequals(rest, "protocol-version"))
      take(out.protocol_version, value);
    else if (iequals(rest, "method"))
      take(out.method, value);
    else if (iequals(rest, "name"))
      take(out.name, value);
    else if (rest.size() > 6 && iequals(rest.substr(0, 6), "param-")) {
      std::string suffix(rest.substr(6));
      for (auto& c : suffix)
        c = lower(c);
      out.params.emplace_back(std::move(suffix), std::string(value));
    }
  }
  return out;
}

/// True when an Accept header value admits `type` ("a/b").
bool accepts(std::string_view accept, std::string_view type) {
  auto slash = type.find('/');
  auto major = type.substr(0, slash);
  while (!accept.empty()) {
    auto comma = accept.find(',');
    auto item = trim(accept.substr(0, comma));
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    auto semi = item.find(';');
    auto range = trim(item.substr(0, semi));
    if (semi != std::string_view::npos) {
      // "q=0" refuses the type.
      auto params = item.substr(semi + 1);
      auto q = params.find("q=");
      if (q != std::string_view::npos) {
        auto qv = trim(params.substr(q + 2));
        if (!qv.empty() && qv.front() == '0' && qv.find_first_not_of("0.") == std::string_view::npos)
          continue;
      }
    }
    if (range == "*/*" || iequals(range, type))
      return true;
    if (range.size() == major.size() + 2 && iequals(range.substr(0, major.size()), major)
        && range.substr(major.size()) == "/*")
      return true;
  }
  return false;
}

/// Host part of a Host header or an origin's authority, without the port.
std::string_view host_only(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  auto colon = authority.find(':');
  return authority.substr(0, colon);
}

bool loopback_name(std::string_view host) {
  return iequals(host, "localhost") || host == "127.0.0.1" || host == "[::1]";
}

std::string http_error_body(error_code code, std::string_view message, const json::value& data = {}) {
  return mcp::error_body(json::value(), code, message, data);
}

} // namespace

// -- server state ------------------------------------------------------------------------

namespace {
class connection;
}

struct http_server::impl {
  runtime* rt;
  http_options opts;
  /// Our own io_context and threads, unless the actor system runs the fused
  /// scheduler, whose workers run the I/O.
  std::unique_ptr<net::io_context> own_ioc;
  std::vector<net::io_context*> iocs;
  std::size_t next_ioc = 0;
  std::optional<tcp::acceptor> acceptor;
  std::atomic<bool> draining{false};
  std::vector<std::thread> threads;
  std::map<std::string, http_route> routes;
  std::vector<std::pair<std::string, http_handler>> handlers; ///< (prefix, handler)
  std::atomic<bool> stopping{false};
  uint16_t bound_port = 0;
  /// Live connections (also their count), so that `stop` can close them on
  /// their strands.
  std::mutex live_mtx;
  std::map<const connection*, std::weak_ptr<connection>> live;
  /// Admitted connections per client address (refusals are not counted).
  std::map<std::string, std::size_t> per_address;
  /// Connections being refused right now: answered, then closed soon.
  std::size_t refusing = 0;

  impl(runtime* r, http_options o) : rt(r), opts(std::move(o)) {
    if (rt)
      iocs = fused_io_contexts(rt->system());
    if (iocs.empty()) {
      own_ioc = std::make_unique<net::io_context>(std::max(1, opts.threads));
      iocs.push_back(own_ioc.get());
    }
  }

  /// Refusals answered at once (each lives at most 2 s); more are closed.
  static constexpr std::size_t max_refusing = 64;
  void do_accept();
  /// Admits a new connection from `address`, or says why not.
  enum class admission { admitted, over_total, over_address, dropped };
  admission admit(const std::string& address);
  void forget(const connection* c, const std::string& address, bool counted, bool refused) {
    std::lock_guard<std::mutex> guard(live_mtx);
    live.erase(c);
    if (counted)
      if (auto i = per_address.find(address); i != per_address.end() && --i->second == 0)
        per_address.erase(i);
    if (refused && refusing > 0)
      --refusing;
  }
  std::size_t live_count() {
    std::lock_guard<std::mutex> guard(live_mtx);
    return live.size();
  }
};

namespace {

/// The reply channel of one request or stream on one connection.
class http_sink final : public reply_sink, public std::enable_shared_from_this<http_sink> {
public:
  http_sink(std::weak_ptr<connection> conn, strand_t ex, bool long_lived)
    : conn_(std::move(conn)), ex_(std::move(ex)), long_lived_(long_lived) {}

  ~http_sink() override;

  void deliver(outbound msg) override;

  bool open() const noexcept override {
    return !gone_.load(std::memory_order_acquire);
  }

  /// The connection reports the client gone.
  void client_gone() {
    gone_.store(true, std::memory_order_release);
    notify_closed();
  }

  bool long_lived() const noexcept {
    return long_lived_;
  }

private:
  void post(outbound msg, bool end_stream);

  std::weak_ptr<connection> conn_;
  strand_t ex_; // concrete, so that posting does not allocate for type erasure
  bool long_lived_;
  std::atomic<bool> gone_{false};
};

class connection : public std::enable_shared_from_this<connection> {
public:
  connection(tcp::socket sock, http_server::impl& server, std::string address, bool counted)
    : sock_(std::move(sock)), timer_(sock_.get_executor()), server_(server),
      address_(std::move(address)), counted_(counted) {}

  ~connection() {
    server_.forget(this, address_, counted_, refused_);
  }

  void start() {
    arm_timer(server_.opts.idle_timeout);
    do_read();
  }

  /// Answers a connection over a limit with 503 before it sends anything,
  /// then reads and drops what it sends until it closes (or 2 s pass).
  void start_refused(std::string message, std::size_t max, const char* limit) {
    refused_ = true;
    keep_alive_ = false;
    busy_ = true;
    respond(503,
            mcp::error_body(json::value(), error_code::overloaded, message,
                            json::value::make_object({{"limit", limit},
                                                      {"max", static_cast<unsigned long long>(max)},
                                                      {"retry_after_seconds", 1}})),
            "\r\nRetry-After: 1");
  }

  /// Runs on the strand: one message for the exchange `serial`.
  void on_outbound(uint64_t serial, outbound msg, bool end_stream);

  strand_t strand() {
    return *sock_.get_executor().target<strand_t>();
  }

  /// The peer as "address:port" (for the audit log), or empty.
  std::string remote_address() const {
    beast::error_code ec;
    auto ep = sock_.remote_endpoint(ec);
    if (ec)
      return {};
    auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
  }

  /// From any thread: closes the connection on its strand.
  void close_soon() {
    net::post(sock_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

  void close() {
    if (closed_)
      return;
    closed_ = true;
    beast::error_code ec;
    timer_.cancel();
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
    if (auto s = active_sink_.lock())
      s->client_gone();
  }

private:
  // -- reading ---------------------------------------------------------------------

  void do_read() {
    if (reading_ || closed_)
      return;
    // Back-pressure: stop reading while a request is in progress and enough
    // is buffered; the watch read resumes after the exchange ends.
    if (busy_ && buffer_.size() > server_.opts.header_limit + server_.opts.body_limit)
      return;
    reading_ = true;
    sock_.async_read_some(buffer_.prepare(16 * 1024),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            self->on_read(ec, n);
                          });
  }

  void on_read(beast::error_code ec, std::size_t n) {
    reading_ = false;
    if (ec) {
      close();
      return;
    }
    if (draining_) {
      // After a refusal: read and drop what the client still sends, so the
      // answer is not lost to a reset, until it closes or the timer fires.
      do_read_drain();
      return;
    }
    buffer_.commit(n);
    if (close_after_write_) {
      // A refusal is on its way out: nothing more is parsed.
      buffer_.consume(buffer_.size());
      do_read();
      return;
    }
    // The read timeout runs from a request's first byte to its last: a
    // client that sends its header a byte at a time gets no more time.
    if (!busy_ && !in_request_)
      begin_request();
    process();
    do_read();
  }

  void begin_request() {
    in_request_ = true;
    arm_timer(server_.opts.read_timeout);
  }

  void do_read_drain() {
    reading_ = true;
    sock_.async_read_some(net::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec,
                                                                              std::size_t n) {
      self->on_read(ec, n);
    });
  }

  void arm_timer(std::chrono::seconds d) {
    timer_.expires_after(d);
    timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec)
        return;
      if (auto self = weak.lock())
        self->on_timer();
    });
  }

  void on_timer() {
    if (busy_ || closed_)
      return;
    if (in_request_ && !draining_ && !close_after_write_) {
      // Part of a request came, not all of it in time: say so, then close.
      in_request_ = false;
      return fail(408, "the request did not arrive within "
                         + std::to_string(server_.opts.read_timeout.count()) + " s");
    }
    close();
  }

  /// Parses complete requests out of the buffer while idle.
  void process() {
    while (!busy_ && !closed_ && !close_after_write_ && buffer_.size() > 0) {
      if (!parser_) {
        auto data = buffer_.data();
        std::string_view bytes(static_cast<const char*>(data.data()), data.size());
        // Resume the search where the last one stopped: a header that
        // arrives a byte at a time is scanned once, not once per byte.
        auto end = bytes.find("\r\n\r\n", scanned_ > 3 ? scanned_ - 3 : 0);
        if (end == std::string_view::npos) {
          scanned_ = bytes.size();
          if (bytes.size() > server_.opts.header_limit)
            fail(431, "the request header block exceeds its limit");
          return;
        }
        scanned_ = 0;
        if (end + 4 > server_.opts.header_limit)
          return fail(431, "the request header block exceeds its limit");
        // Obsolete line folding: a header line that starts with white space.
        for (std::size_t i = 0; i + 1 < end; ++i)
          if (bytes[i] == '\n' && (bytes[i + 1] == ' ' || bytes[i + 1] == '\t'))
            return fail(400, "obsolete header line folding is not accepted");
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(server_.opts.header_limit));
        parser_->body_limit(server_.opts.body_limit);
        parser_->eager(true);
        header_checked_ = false;
      }
      beast::error_code ec;
      auto used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more)
        return;
      if (ec) {
        if (ec == http::error::body_limit)
          return fail(413, "the request body exceeds " + std::to_string(server_.opts.body_limit)
                             + " bytes");
        if (ec == http::error::header_limit)
          return fail(431, "the request header block exceeds its limit");
        return fail(400, "malformed HTTP request: " + ec.message());
      }
      if (parser_->is_header_done() && !header_checked_) {
        header_checked_ = true;
        if (!check_framing())
          return;
      }
      if (!parser_->is_done()) {
        if (used == 0)
          return;
        continue;
      }
      auto req = parser_->release();
      parser_.reset();
      handle(std::move(req));
    }
  }

  bool check_framing() {
    auto& req = parser_->get();
    auto cl = req.count(http::field::content_length);
    auto te = req.find(http::field::transfer_encoding);
    if (cl > 1) {
      fail(400, "more than one Content-Length header");
      return false;
    }
    if (req.count(http::field::transfer_encoding) > 1) {
      fail(400, "more than one Transfer-Encoding header");
      return false;
    }
    if (te != req.end()) {
      if (cl > 0) {
        fail(400, "Transfer-Encoding together with Content-Length is not accepted");
        return false;
      }
      if (!iequals(trim(sv(te->value())), "chunked")) {
        fail(400, "unsupported transfer coding: only chunked is accepted");
        return false;
      }
    }
    if (auto expect = req.find(http::field::expect); expect != req.end()) {
      if (iequals(trim(sv(expect->value())), "100-continue"))
        write_raw("HTTP/1.1 100 Continue\r\n\r\n");
    }
    return true;
  }

  // -- routing ------------------------------------------------------------------------

  void handle(request req);
  /// By HTTP method, once the session (if any) is known here.
  void route(request& req);
  void handle_post(request& req);
  void handle_get(request& req);
  void handle_delete(request& req);
  void handle_preflight(const request& req);
  bool check_origin(const request& req);
  /// The request's Origin when it is one of `http.allowedOrigins`.
  std::optional<std::string_view> cors_origin(const request& req) const;

  // -- writing ------------------------------------------------------------------------

  void fail(int status, std::string message) {
    keep_alive_ = false;
    // Nothing after a refused request is parsed: the connection closes.
    parser_.reset();
    buffer_.consume(buffer_.size());
    respond(status, http_error_body(error_code::invalid_request, message), {});
  }

  /// Writes a whole response; reading resumes after it.
  void respond(int status, std::string body, std::string_view extra_headers,
               std::string_view content_type = "application/json") {
    std::string out;
    out.reserve(160 + body.size());
    out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(reason(status));
    out.append("\r\nServer: bulwark");
    if (!body.empty() || status >= 200) {
      if (!body.empty())
        out.append("\r\nContent-Type: ").append(content_type);
      out.append("\r\nContent-Length: ").append(std::to_string(body.size()));
    }
    if (!keep_alive_)
      out.append("\r\nConnection: close");
    out.append(cors_headers_);
    out.append(extra_headers);
    out.append("\r\n\r\n");
    out.append(body);
    write_raw(std::move(out));
    finish_exchange();
  }

  void start_sse(std::string_view extra_headers) {
    std::string out;
    out.append("HTTP/1.1 200 OK\r\nServer: bulwark\r\nContent-Type: text/event-stream\r\n"
               "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked");
    if (!keep_alive_)
      out.append("\r\nConnection: close");
    out.append(cors_headers_);
    out.append(extra_headers);
    out.append("\r\n\r\n");
    write_raw(std::move(out));
    streaming_ = true;
  }

  void write_chunk(std::string_view payload) {
    char size[20];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
    std::string out;
    out.reserve(payload.size() + 24);
    out.append(size, static_cast<std::size_t>(n));
    out.append(payload);
    out.append("\r\n");
    write_raw(std::move(out));
  }

  void write_event(const outbound& msg) {
    std::string ev;
    ev.reserve(msg.body.size() + 40);
    if (!msg.event_id.empty())
      ev.append("id: ").append(msg.event_id).append("\n");
    ev.append("event: message\ndata: ").append(msg.body).append("\n\n");
    write_chunk(ev);
  }

  void end_sse() {
    write_raw("0\r\n\r\n");
    streaming_ = false;
    finish_exchange();
  }

  void finish_exchange() {
    busy_ = false;
    long_lived_ = false;
    cors_headers_.clear();
    active_serial_ = 0;
    active_sink_.reset();
    pending_headers_.clear();
    if (!keep_alive_) {
      close_after_write_ = true;
      if (!writing_)
        close();
      return;
    }
    in_request_ = false;
    if (buffer_.size() == 0)
      return arm_timer(server_.opts.idle_timeout);
    begin_request();
    // Pipelined requests waiting in the buffer run now.
    net::post(sock_.get_executor(), [self = shared_from_this()] {
      self->process();
      self->do_read();
    });
  }

  void write_raw(std::string bytes) {
    if (closed_)
      return;
    writes_.push_back(std::move(bytes));
    if (!writing_)
      do_write();
  }

  void do_write() {
    writing_ = true;
    net::async_write(sock_, net::buffer(writes_.front()),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_write(ec);
                     });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (ec) {
      close();
      return;
    }
    writes_.pop_front();
    if (!writes_.empty())
      return do_write();
    if (close_after_write_ && !draining_) {
      // Half-close: the client reads our answer, then sees EOF.
      draining_ = true;
      beast::error_code ignored;
      sock_.shutdown(tcp::socket::shutdown_send, ignored);
      busy_ = false;
      arm_timer(std::chrono::seconds(2));
      if (!reading_)
        do_read_drain();
    }
  }

  tcp::socket sock_;
  net::steady_timer timer_;
  http_server::impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool header_checked_ = false;
  bool reading_ = false;
  bool closed_ = false;
  bool busy_ = false;         ///< A request is being answered.
  bool streaming_ = false;    ///< SSE headers are out.
  bool sse_allowed_ = true;   ///< The client accepts text/event-stream.
  bool long_lived_ = false;   ///< GET or listen stream: no final response.
  bool keep_alive_ = true;
  bool close_after_write_ = false;
  bool writing_ = false;
  bool draining_ = false;
  bool in_request_ = false; ///< Part of a request has come; the read timeout runs.
  bool refused_ = false;    ///< Answered over a connection limit.
  std::size_t scanned_ = 0; ///< Bytes searched for the header's end so far.
  std::string address_;     ///< The client's address.
  bool counted_ = false;    ///< Counted in the server's per-address table.
  /// CORS headers for the current request's allowed origin (else empty).
  std::string cors_headers_;
  std::array<char, 4096> drain_buf_;
  uint64_t active_serial_ = 0;
  std::weak_ptr<http_sink> active_sink_;
  std::string pending_headers_; ///< Extra headers for the eventual response.
  std::deque<std::string> writes_;
  /// Who sent the current MCP request: "key:<sha256>" or "anonymous".
  std::string identity_;
};

// -- sink ----------------------------------------------------------------------------------------

http_sink::~http_sink() {
  if (answered())
    return;
  // Released without a final answer: the actor holding it stopped. Requests
  // get an error, streams end.
  outbound msg;
  if (!long_lived_ && (request_id().is_string() || request_id().is_number())) {
    msg.body = abandoned_body();
    msg.http_status = 503;
    mark_answered();
    post(std::move(msg), false);
  } else {
    mark_answered();
    post(std::move(msg), true);
  }
}

void http_sink::deliver(outbound msg) {
  if (answered())
    return;
  if (msg.what == outbound::kind::response && !mark_answered())
    return;
  post(std::move(msg), false);
}

void http_sink::post(outbound msg, bool end_stream) {
  auto conn = conn_.lock();
  if (!conn)
    return;
  net::post(ex_, [conn, serial = serial(), m = std::move(msg), end_stream]() mutable {
    conn->on_outbound(serial, std::move(m), end_stream);
  });
}

// -- exchange ----------------------------------------------------------------------------------------

void connection::on_outbound(uint64_t serial, outbound msg, bool end_stream) {
  if (closed_ || serial != active_serial_)
    return;
  if (end_stream) {
    if (streaming_)
      end_sse();
    else
      respond(204, {}, pending_headers_);
    return;
  }
  if (msg.silent) {
    if (streaming_)
      end_sse();
    else
      respond(204, {}, pending_headers_);
    return;
  }
  std::string headers = pending_headers_;
  if (!msg.session_id.empty())
    headers.append("\r\nMcp-Session-Id: ").append(msg.session_id);
  if (msg.what == outbound::kind::response && !long_lived_) {
    if (streaming_) {
      write_event(msg);
      end_sse();
    } else {
      respond(msg.http_status, std::move(msg.body), headers);
    }
    return;
  }
  // A notification or request before the final answer: switch to SSE.
  if (!sse_allowed_)
    return; // The client cannot receive it; the final answer still comes.
  if (!streaming_)
    start_sse(headers);
  write_event(msg);
  if (msg.what == outbound::kind::response)
    end_sse();
}

bool connection::check_origin(const request& req) {
  if (!server_.opts.check_origin)
    return true;
  auto allowed_host = [&](std::string_view host) {
    if (loopback_name(host))
      return true;
    for (auto& h : server_.opts.allowed_hosts)
      if (iequals(h, host))
        return true;
    return false;
  };
  if (auto host = req.find(http::field::host); host != req.end()) {
    if (!allowed_host(host_only(trim(sv(host->value())))))
      return false;
  }
  if (auto origin = req.find(http::field::origin); origin != req.end()) {
    auto o = trim(sv(origin->value()));
    for (auto& allowed : server_.opts.allowed_origins)
      if (o == allowed)
        return true;
    auto scheme = o.find("://");
    if (scheme == std::string_view::npos)
      return false;
    return loopback_name(host_only(o.substr(scheme + 3)));
  }
  return true;
}

void connection::handle(request req) {
  keep_alive_ = req.keep_alive();
  busy_ = true;
  in_request_ = false;
  timer_.cancel();
  cors_headers_.clear();
  auto target = std::string_view(req.target().data(), req.target().size());
  auto path = target.substr(0, target.find('?'));
  if (!check_origin(req))
    return respond(403, http_error_body(error_code::invalid_request,
                                        "Host or Origin is not allowed for this server"),
                   {});
  if (path != server_.opts.path) {
    if (req.method() == http::verb::get) {
      if (auto r = server_.routes.find(std::string(path)); r != server_.routes.end()) {
        auto reply = r->second();
        return respond(reply.status, std::move(reply.body), reply.headers, reply.content_type);
      }
    }
    for (auto& [prefix, handler] : server_.handlers) {
      if (path.substr(0, prefix.size()) != prefix)
        continue;
      http_request_view view;
      view.method = std::string(sv(req.method_string()));
      view.path = std::string(path);
      if (auto auth = req.find(http::field::authorization); auth != req.end())
        view.authorization = std::string(sv(auth->value()));
      view.remote = remote_address();
      view.body = std::move(req.body());
      auto reply = handler(view);
      return respond(reply.status, std::move(reply.body), reply.headers, reply.content_type);
    }
    return respond(404, http_error_body(error_code::invalid_request,
                                        server_.opts.path.empty() ? std::string("not found")
                                                                  : "no MCP endpoint here; use " + server_.opts.path),
                   {});
  }
  if (req.method() == http::verb::options)
    return handle_preflight(req);
  if (auto origin = cors_origin(req)) {
    cors_headers_.append("\r\nAccess-Control-Allow-Origin: ").append(*origin);
    cors_headers_.append("\r\nVary: Origin\r\nAccess-Control-Expose-Headers: Mcp-Session-Id, "
                         "WWW-Authenticate, Retry-After");
  }
  if (server_.draining.load()) {
    keep_alive_ = false;
    return respond(503, http_error_body(error_code::shutting_down, "the server is shutting down; retry later"), {});
  }
  std::string_view authorization;
  if (auto auth = req.find(http::field::authorization); auth != req.end())
    authorization = sv(auth->value());
  if (server_.opts.auth) {
    auto verdict = server_.opts.auth->check(authorization);
    if (!verdict.ok) {
      auto trace = mcp::new_trace_id();
      audit::record({"auth.failure", "denied", "unauthenticated", remote_address(), std::string(path), trace,
                     json::value::make_object({{"reason", verdict.message},
                                               {"presented", verdict.credential_present},
                                               {"method", std::string(sv(req.method_string()))}})});
      return respond(401, mcp::error_body(json::value(), error_code::unauthorized, verdict.message,
                                          json::value::make_object({{"traceId", trace}})),
                     "\r\nWWW-Authenticate: " + verdict.challenge);
    }
    identity_ = std::move(verdict.identity);
  } else if (auto token = bearer_token(authorization); !token.empty()) {
    identity_ = "key:" + crypto::sha256_hex(token);
  } else {
    identity_ = "anonymous";
  }
  // Several instances: a session created on another one is taken over
  // from the shared directory before the request is looked at.
  if (auto sid = req.find("mcp-session-id"); sid != req.end()) {
    std::string id(trim(sv(sid->value())));
    if (server_.rt->session_elsewhere(id)) {
      auto held = std::make_shared<request>(std::move(req));
      server_.rt->take_over_session(id, [self = shared_from_this(), held] {
        net::post(self->sock_.get_executor(), [self, held] {
          if (!self->closed_)
            self->route(*held);
        });
      });
      return;
    }
  }
  route(req);
}

void connection::route(request& req) {
  switch (req.method()) {
    case http::verb::post:
      return handle_post(req);
    case http::verb::get:
      return handle_get(req);
    case http::verb::delete_:
      return handle_delete(req);
    default:
      return respond(405, http_error_body(error_code::invalid_request,
                                          "method not allowed: use POST (or GET/DELETE with a "
                                          "2025-era session)"),
                     "\r\nAllow: POST, GET, DELETE, OPTIONS");
  }
}

std::optional<std::string_view> connection::cors_origin(const request& req) const {
  auto origin = req.find(http::field::origin);
  if (origin == req.end())
    return std::nullopt;
  auto o = trim(sv(origin->value()));
  for (auto& allowed : server_.opts.allowed_origins)
    if (o == allowed)
      return o;
  return std::nullopt;
}

void connection::handle_preflight(const request& req) {
  if (req.find(http::field::origin) == req.end())
    return respond(204, {}, "\r\nAllow: POST, GET, DELETE, OPTIONS");
  auto origin = cors_origin(req);
  if (!origin)
    return respond(403, http_error_body(error_code::invalid_request,
                                        "cross-origin requests from this Origin are not allowed "
                                        "(http.allowedOrigins)"),
                   {});
  // The 2026-07-28 mirrored headers include Mcp-Param-{Name}, one per
  // argument: echo those the browser asks for (CORS has no prefix wildcard).
  std::string allow_headers = "Content-Type, Authorization, Accept, Mcp-Session-Id, "
                              "MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";
  if (auto asked = req.find(http::field::access_control_request_headers); asked != req.end()) {
    auto list = sv(asked->value());
    while (!list.empty()) {
      auto comma = list.find(',');
      auto name = trim(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      });
      if (token && name.size() > 10 && iequals(name.substr(0, 10), "mcp-param-"))
        allow_headers.append(", ").append(name);
    }
  }
  std::string headers;
  headers.append("\r\nAccess-Control-Allow-Origin: ").append(*origin);
  headers.append("\r\nVary: Origin");
  headers.append("\r\nAccess-Control-Allow-Methods: POST, GET, DELETE, OPTIONS");
  headers.append("\r\nAccess-Control-Allow-Headers: ").append(allow_headers);
  headers.append("\r\nAccess-Control-Max-Age: ").append(std::to_string(server_.opts.cors_max_age));
  respond(204, {}, headers);
}

void connection::handle_post(request& req) {
  // Media types.
  auto ct = req.find(http::field::content_type);
  if (ct == req.end()
      || !iequals(trim(sv(ct->value()).substr(0, sv(ct->value()).find(';'))), "application/json"))
    return respond(415, http_error_body(error_code::invalid_request,
                                        "Content-Type must be application/json"),
                   {});
  auto accept_it = req.find(http::field::accept);
  std::string_view accept = accept_it == req.end() ? std::string_view("*/*")
                                                   : std::string_view(sv(accept_it->value()).data(),
                                                                      sv(accept_it->value()).size());
  if (!accepts(accept, "application/json") || !accepts(accept, "text/event-stream"))
    return respond(406, http_error_body(error_code::invalid_request,
                                        "Accept must list application/json and text/event-stream"),
                   {});
  sse_allowed_ = true;

  // Body: simdjson wants padding after the input.
  auto& body = req.body();
  json::value msg;
  json::parse_error perr;
  bool parsed;
  if (body.capacity() >= body.size() + json::padding()) {
    parsed = json::parse_padded(body, msg, perr);
  } else {
    body.reserve(body.size() + json::padding());
    parsed = json::parse_padded(body, msg, perr);
  }
  if (!parsed)
    return respond(400, mcp::error_body(json::value(), error_code::parse_error,
                                        "Parse error: " + perr.message),
                   {});
  auto cls = mcp::classify(msg);
  if (cls.kind == mcp::message_kind::invalid)
    return respond(400, mcp::error_body(msg["id"], error_code::invalid_request,
                                        "Invalid Request: " + cls.reason),
                   {});

  if (server_.opts.echo_mode) {
    if (cls.kind != mcp::message_kind::request)
      return respond(202, {}, {});
    return respond(200, mcp::result_body(msg["id"], json::value(json::object{})), {});
  }

  // Which era and which session.
  auto mcp_headers = collect_mcp_headers(req);
  auto& session_id = mcp_headers.session_id;
  auto& version_header = mcp_headers.protocol_version;
  const auto& method = msg["method"].as_string();
  const auto& meta_version = msg["params"]["_meta"][mcp::meta_protocol_version];
  auto& rt = *server_.rt;

  auto in = std::make_shared<inbound>();
  in->kind = cls.kind;
  in->identity = identity_;
  // Era: a live 2025-era session; else a 2026-07-28 version header or _meta
  // version; else a new session (initialize) or a refusal.
  bool modern_header = version_header && !mcp::is_stateful_version(trim(*version_header));
  std::string sid = session_id ? std::string(trim(*session_id)) : std::string();
  if (!sid.empty() && !modern_header && rt.has_session(sid, identity_)) {
    in->session_id = sid;
  } else if (modern_header || meta_version.is_string()) {
    in->stateless = true;
  } else if (!sid.empty()) {
    return respond(404, mcp::error_body(msg["id"], error_code::invalid_request,
                                        "session not found: it ended or never existed; "
                                        "initialize a new one"),
                   {});
  } else if (cls.kind == mcp::message_kind::request && method == "initialize") {
    // A new 2025-era session.
  } else {
    return respond(400, mcp::error_body(msg["id"], error_code::invalid_request,
                                        "Bad Request: Mcp-Session-Id header is required "
                                        "(initialize first, or send a 2026-07-28 request with "
                                        "_meta)"),
                   {});
  }

  if (in->stateless) {
    if (cls.kind == mcp::message_kind::response)
      return respond(400, mcp::error_body(msg["id"], error_code::invalid_request,
                                          "clients do not send responses in 2026-07-28"),
                     {});
    if (cls.kind == mcp::message_kind::notification)
      return respond(202, {}, {});
    // The mirrored headers must agree with the body.
    mcp::mirrored_headers mh;
    mh.protocol_version = version_header;
    mh.method = std::move(mcp_headers.method);
    mh.name = std::move(mcp_headers.name);
    mh.params = std::move(mcp_headers.params);
    static const json::value no_schema;
    const json::value* schema = &no_schema;
    std::shared_ptr<const catalog> cat;
    if (method == "tools/call") {
      cat = rt.current_catalog();
      if (auto* tool = cat->find_tool(msg["params"]["name"].as_string()))
        schema = &tool->input_schema;
    }
    std::string why;
    if (!mcp::check_mirrored_headers(mh, msg, *schema, why))
      return respond(400, mcp::error_body(msg["id"], error_code::header_mismatch,
                                          "Header mismatch: " + why),
                     {});
  }

  if (cls.kind != mcp::message_kind::request) {
    in->message = std::move(msg);
    rt.dispatch(std::move(in));
    return respond(202, {}, {});
  }

  auto sink = std::make_shared<http_sink>(weak_from_this(), strand(), false);
  sink->set_request_id(msg["id"]);
  active_serial_ = sink->serial();
  active_sink_ = sink;
  long_lived_ = method == "subscriptions/listen";
  in->sink = std::move(sink);
  in->message = std::move(msg);
  rt.dispatch(std::move(in));
}

void connection::handle_get(request& req) {
  auto sid = req.find("mcp-session-id");
  if (sid == req.end())
    return respond(405, http_error_body(error_code::invalid_request,
                                        "GET needs a 2025-era session (Mcp-Session-Id); "
                                        "2026-07-28 clients use POST subscriptions/listen"),
                   "\r\nAllow: POST, GET, DELETE");
  auto accept_it = req.find(http::field::accept);
  if (accept_it == req.end() || !accepts(sv(accept_it->value()), "text/event-stream"))
    return respond(406, http_error_body(error_code::invalid_request,
                                        "Accept must list text/event-stream"),
                   {});
  std::string id(trim(sv(sid->value())));
  std::string last_event;
  if (auto le = req.find("last-event-id"); le != req.end())
    last_event = std::string(trim(sv(le->value())));
  if (server_.rt->has_session(id, identity_) && !server_.rt->stream_allowed(id)) {
    auto max = server_.rt->options().max_streams;
    return respond(describe(error_code::session_limit).http_status,
                   http_error_body(error_code::session_limit,
                                   "too many SSE streams open in this session (at most "
                                     + std::to_string(max) + "); retry when one has ended",
                                   json::value::make_object({{"limit", "streams"},
                                                             {"max", static_cast<unsigned long long>(max)},
                                                             {"retry_after_seconds", 1}})),
                   "\r\nRetry-After: 1");
  }
  auto sink = std::make_shared<http_sink>(weak_from_this(), strand(), true);
  active_serial_ = sink->serial();
  active_sink_ = sink;
  long_lived_ = true;
  if (!server_.rt->open_stream(id, identity_, sink, std::move(last_event))) {
    active_serial_ = 0;
    active_sink_.reset();
    long_lived_ = false;
    return respond(404, http_error_body(error_code::invalid_request, "session not found"), {});
  }
  // Headers go out at once so the client sees the stream open.
  start_sse("\r\nMcp-Session-Id: " + id);
  write_chunk(": stream open\n\n");
}

void connection::handle_delete(request& req) {
  auto sid = req.find("mcp-session-id");
  if (sid == req.end())
    return respond(405, http_error_body(error_code::invalid_request,
                                        "DELETE needs a 2025-era session (Mcp-Session-Id)"),
                   "\r\nAllow: POST, GET, DELETE");
  if (!server_.rt->end_session(std::string(trim(sv(sid->value()))), identity_))
    return respond(404, http_error_body(error_code::invalid_request, "session not found"), {});
  respond(200, {}, {});
}

} // namespace

// -- listener ----------------------------------------------------------------------------------------

void http_server::impl::do_accept() {
  auto& target = *iocs[next_ioc++ % iocs.size()];
  acceptor->async_accept(net::make_strand(target), [this](beast::error_code ec, tcp::socket sock) {
    if (stopping)
      return;
    if (!ec) {
      beast::error_code pec;
      auto peer = sock.remote_endpoint(pec);
      std::string address = pec ? std::string() : peer.address().to_string();
      auto verdict = admit(address);
      if (verdict == admission::dropped) {
        beast::error_code ignored;
        sock.close(ignored);
      } else {
        sock.set_option(tcp::no_delay(true), ec);
        bool admitted = verdict == admission::admitted;
        auto conn = std::make_shared<connection>(std::move(sock), *this, address, admitted);
        {
          std::lock_guard<std::mutex> guard(live_mtx);
          live.emplace(conn.get(), conn);
        }
        if (admitted)
          conn->start();
        else if (verdict == admission::over_total)
          conn->start_refused("the server has too many connections; retry later",
                              opts.max_connections, "connections");
        else
          conn->start_refused("too many connections from this address; close one or retry later",
                              opts.max_connections_per_address, "connectionsPerAddress");
      }
    }
    do_accept();
  });
}

http_server::impl::admission http_server::impl::admit(const std::string& address) {
  std::lock_guard<std::mutex> guard(live_mtx);
  auto held = per_address.find(address);
  bool over_total = live.size() - refusing >= opts.max_connections;
  bool over_address = held != per_address.end() && held->second >= opts.max_connections_per_address;
  if (!over_total && !over_address) {
    ++per_address[address];
    return admission::admitted;
  }
  // A refusal is answered, but only so many at once: beyond that, closed.
  if (refusing >= max_refusing)
    return admission::dropped;
  ++refusing;
  return over_total ? admission::over_total : admission::over_address;
}

http_server::http_server(runtime* rt, http_options opts)
  : impl_(std::make_unique<impl>(rt, std::move(opts))) {}

http_server::~http_server() {
  stop();
}

void http_server::add_handler(std::string prefix, http_handler handler) {
  impl_->handlers.emplace_back(std::move(prefix), std::move(handler));
}

void http_server::add_route(std::string path, http_route route) {
  impl_->routes[std::move(path)] = std::move(route);
}

uint16_t http_server::start() {
  auto& d = *impl_;
  auto addr = net::ip::make_address(d.opts.address);
  tcp::endpoint ep(addr, d.opts.port);
  d.acceptor.emplace(*d.iocs.front());
  d.acceptor->open(ep.protocol());
  d.acceptor->set_option(net::socket_base::reuse_address(true));
  d.acceptor->bind(ep);
  d.acceptor->listen(net::socket_base::max_listen_connections);
  d.bound_port = d.acceptor->local_endpoint().port();
  net::post(*d.iocs.front(), [&d] { d.do_accept(); });
  if (d.own_ioc)
    for (int i = 0; i < std::max(1, d.opts.threads); ++i)
      d.threads.emplace_back([&d] { d.own_ioc->run(); });
  return d.bound_port;
}

/// Closes the listening socket (on its I/O context).
void close_acceptor(http_server::impl& d) {
  net::post(*d.iocs.front(), [&d] {
    beast::error_code ec;
    if (d.acceptor)
      d.acceptor->close(ec);
  });
}

void http_server::drain() {
  if (!impl_ || impl_->draining.exchange(true))
    return;
  close_acceptor(*impl_);
}

void http_server::stop() {
  if (!impl_)
    return;
  auto& d = *impl_;
  if (d.stopping.exchange(true))
    return;
  close_acceptor(d);
  // Take the connections out under the lock, close them outside it: the last
  // reference may go here, and a connection's destructor takes the lock.
  std::vector<std::shared_ptr<connection>> open;
  {
    std::lock_guard<std::mutex> guard(d.live_mtx);
    for (auto& [ptr, weak] : d.live)
      if (auto conn = weak.lock())
        open.push_back(std::move(conn));
  }
  for (auto& conn : open)
    conn->close_soon();
  open.clear();
  // Connections end on their own threads; wait (bounded) until all are gone,
  // since they refer to this server.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (d.live_count() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (d.own_ioc) {
    d.own_ioc->stop();
    for (auto& t : d.threads)
      if (t.joinable())
        t.join();
    d.threads.clear();
  } else if (auto left = d.live_count(); left > 0) {
    // Handlers on the workers still refer to the server state: keep it.
    log::warn("connections outlived the HTTP server's stop; keeping its state",
              json::value::make_object({{"connections", static_cast<unsigned long long>(left)}}));
    (void)impl_.release();
  }
}

uint16_t http_server::port() const noexcept {
  return impl_ ? impl_->bound_port : 0;
}

} // namespace bulwark
