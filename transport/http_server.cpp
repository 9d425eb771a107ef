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

#include "config/audit.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "messages/actors.hpp"
#include "messages/crypto.hpp"
#include "messages/mcp.hpp"
#include "messages/text.hpp"
#include "transport/auth.hpp"
#include "transport/endpoint.hpp"
#include "transport/http_request.hpp"
#include "transport/io_scheduler.hpp"

namespace bulwark {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using request = http_request;
/// Every connection runs on a strand of one io_context.
using strand_t = net::strand<net::io_context::executor_type>;

namespace {

// -- HTTP helpers ------------------------------------------------------------------

using text::trim;

using text::lower;

using text::iequals;

std::string http_error_body(error_code code, std::string_view message, const json::value& data = {}) {
  return mcp::error_body(json::value(), code, message, data);
}

} // namespace

std::string_view http_reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return {};
  }
}

namespace {

std::string_view reason_or_unknown(int status) {
  auto r = http_reason_phrase(status);
  return r.empty() ? std::string_view("Unknown") : r;
}

} // namespace

// -- server state ------------------------------------------------------------------------

namespace {
class connection;
}

struct http_server::impl {
  mcp_endpoint* rt;
  http_options opts;
  /// Our own io_context and threads, unless the actor system runs the fused
  /// scheduler, whose workers run the I/O.
  std::unique_ptr<net::io_context> own_ioc;
  std::vector<net::io_context*> iocs;
  std::size_t next_ioc = 0;
  std::optional<tcp::acceptor> acceptor;
  std::atomic<bool> draining{false};
  std::vector<std::thread> threads;
  std::map<std::string, http_request_route> routes;
  std::vector<std::pair<std::string, http_handler>> handlers; ///< (prefix, handler)
  std::atomic<bool> stopping{false};
  /// An accept handler may still run (and refer to this state): from
  /// `start` until the handler that sees the listener closed returns.
  std::atomic<bool> accepting{false};
  uint16_t bound_port = 0;
  /// Live connections (also their count), so that `stop` can close them on
  /// their strands.
  std::mutex live_mtx;
  std::map<const connection*, std::weak_ptr<connection>> live;
  /// Admitted connections per client address that no request has named a
  /// caller for yet (refusals are not counted): the coarse flood guard.
  std::map<std::string, std::size_t> per_address;
  /// Admitted connections per caller, "identity@address": once a request
  /// names its caller, a connection counts here and no longer per address,
  /// so one caller's flood takes its own share and not its neighbours'.
  std::map<std::string, std::size_t> per_caller;
  /// Connections being refused right now: answered, then closed soon.
  std::size_t refusing = 0;
  /// Connections ended because their client did not take its answers, by
  /// reason (none without a runtime, in echo mode).
  std::shared_ptr<metrics::registry> metrics;
  metrics::counter* slow_write_timeouts = nullptr;
  metrics::counter* slow_queue_overflows = nullptr;
  /// Connections refused by each connection limit.
  metrics::counter* refused_total = nullptr;
  metrics::counter* refused_address = nullptr;
  metrics::counter* refused_identity = nullptr;

  impl(mcp_endpoint* r, http_options o) : rt(r), opts(std::move(o)) {
    if (rt) {
      iocs = fused_io_contexts(rt->system());
      metrics = rt->metric_registry();
      slow_write_timeouts = &metrics->counter("bulwark_http_slow_readers_total", {{"reason", "write_timeout"}});
      slow_queue_overflows = &metrics->counter("bulwark_http_slow_readers_total", {{"reason", "queue_limit"}});
      refused_total = &metrics->counter("bulwark_http_connection_refusals_total", {{"limit", "connections"}});
      refused_address =
        &metrics->counter("bulwark_http_connection_refusals_total", {{"limit", "connectionsPerAddress"}});
      refused_identity =
        &metrics->counter("bulwark_http_connection_refusals_total", {{"limit", "connectionsPerIdentity"}});
    }
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
  void forget(const connection* c, const std::string& address, bool counted, std::string& caller, bool refused) {
    std::lock_guard<std::mutex> guard(live_mtx);
    live.erase(c);
    release_locked(address, counted, caller);
    if (refused && refusing > 0)
      --refusing;
  }
  /// Counts a connection from `address` for the caller `identity` (it
  /// leaves its address's count, or its former caller's). False when that
  /// caller holds its share already: then the connection counts nowhere
  /// (it is answered and closed).
  bool attribute(const std::string& address, bool& counted, std::string& caller, const std::string& identity) {
    auto key = caller_key(identity, address);
    std::lock_guard<std::mutex> guard(live_mtx);
    auto& held = per_caller[key];
    if (held >= opts.max_connections_per_identity) {
      release_locked(address, counted, caller);
      return false;
    }
    ++held;
    release_locked(address, counted, caller);
    caller = identity;
    return true;
  }
  /// Under `live_mtx`: gives back the count a connection holds.
  void release_locked(const std::string& address, bool& counted, std::string& caller) {
    if (counted)
      if (auto i = per_address.find(address); i != per_address.end() && --i->second == 0)
        per_address.erase(i);
    counted = false;
    if (!caller.empty())
      if (auto i = per_caller.find(caller_key(caller, address)); i != per_caller.end() && --i->second == 0)
        per_caller.erase(i);
    caller.clear();
  }
  /// An address holds no '@', so the key's last '@' splits it unambiguously.
  static std::string caller_key(const std::string& identity, const std::string& address) {
    std::string key;
    key.reserve(identity.size() + 1 + address.size());
    return key.append(identity).append(1, '@').append(address);
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

  bool open() const noexcept override { return !gone_.load(std::memory_order_acquire); }

  /// The connection reports the client gone.
  void client_gone() {
    gone_.store(true, std::memory_order_release);
    notify_closed();
  }

  bool long_lived() const noexcept { return long_lived_; }

private:
  void post(outbound msg, bool end_stream);

  std::weak_ptr<connection> conn_;
  strand_t ex_; // concrete, so that posting does not allocate for type erasure
  bool long_lived_;
  std::atomic<bool> gone_{false};
};

class connection : public std::enable_shared_from_this<connection> {
  using clock = std::chrono::steady_clock;

public:
  connection(tcp::socket sock, http_server::impl& server, std::string address, bool counted)
      : sock_(std::move(sock)),
        timer_(sock_.get_executor()),
        server_(server),
        address_(std::move(address)),
        counted_(counted) {}

  ~connection() { server_.forget(this, address_, counted_, caller_, refused_); }

  void start() {
    beast::error_code ec;
    sock_.non_blocking(true, ec); // `do_write` sends without blocking
    arm_timer(server_.opts.idle_timeout);
    do_read();
  }

  /// Answers a connection over a limit with 503 before it sends anything,
  /// then reads and drops what it sends until it closes (or 2 s pass).
  void start_refused(std::string message, std::size_t max, const char* limit) {
    refused_ = true;
    keep_alive_ = false;
    busy_ = true;
    respond_over_limit(std::move(message), max, limit);
  }

  /// 503 with -32004 for a connection over a connection limit: `limit` (at
  /// most `max`) in its data, and Retry-After: 1.
  void respond_over_limit(std::string message, std::size_t max, const char* limit) {
    respond(
      503,
      mcp::error_body(json::value(), error_code::overloaded, message,
                      json::value::make_object(
                        {{"limit", limit}, {"max", static_cast<unsigned long long>(max)}, {"retry_after_seconds", 1}})),
      "\r\nRetry-After: 1");
  }

  /// Runs on the strand: one message for the exchange `serial`.
  void on_outbound(uint64_t serial, outbound msg, bool end_stream);

  strand_t strand() { return *sock_.get_executor().target<strand_t>(); }

  /// The peer as "address:port" (for logs, the audit log and handlers), or
  /// empty; asked of the socket once per connection.
  const std::string& remote_address() {
    if (!remote_.empty())
      return remote_;
    beast::error_code ec;
    auto ep = sock_.remote_endpoint(ec);
    if (ec)
      return remote_;
    auto a = ep.address();
    remote_ = (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
    return remote_;
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
    // What the client did not take goes now, not when the last handler
    // lets go of the connection; a write in flight keeps its buffer until
    // its handler runs.
    writes_.erase(writes_.begin() + (writing_ && !writes_.empty() ? 1 : 0), writes_.end());
    queued_ = 0;
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
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
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
    sock_.async_read_some(net::buffer(drain_buf_),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
  }

  // The connection's deadlines (idle, read or linger in `deadline_`, a
  // stalled write in `write_deadline_`) are time points; the timer is only
  // a wake-up that looks at them. Moving a deadline later, which every
  // request does twice and every write that makes progress once, costs
  // nothing: a wait that fires early waits again for what is left. A wait
  // is never set further out than the shortest timeout, so a new deadline
  // is never earlier than the pending wait, except for the short linger
  // after a refusal.
  void arm_timer(std::chrono::seconds d) {
    deadline_ = clock::now() + d;
    wake_by(deadline_);
  }

  void wake_by(clock::time_point t) {
    if (wait_until_ <= t)
      return;
    wait(std::min(t, clock::now() + shortest_timeout()));
  }

  void disarm_timer() {
    deadline_ = clock::time_point::max(); // a pending wait finds nothing due
  }

  std::chrono::seconds shortest_timeout() const {
    return std::min({server_.opts.read_timeout, server_.opts.idle_timeout, server_.opts.write_timeout});
  }

  void wait(clock::time_point until) {
    wait_until_ = until;
    timer_.expires_at(until);
    timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec)
        return;
      if (auto self = weak.lock())
        self->on_wake();
    });
  }

  void on_wake() {
    wait_until_ = clock::time_point::max();
    if (closed_)
      return;
    auto now = clock::now();
    // An event stream that said nothing for a while says that it lives:
    // a proxy with an idle timeout would cut it. (Not while bytes wait for
    // the client: those are its sign of life.)
    if (streaming_ && now >= keep_alive_at_ && queued_ == 0) {
      write_chunk(": keep-alive\n\n");
      if (closed_)
        return;
      keep_alive_at_ = now + server_.opts.sse_keep_alive;
    }
    // While bytes wait for the client, only the write's deadline counts: a
    // connection that is taking its answer is neither idle nor reading.
    auto due = queued_ > 0 ? write_deadline_ : deadline_;
    auto next = streaming_ ? std::min(due, keep_alive_at_) : due;
    if (next == clock::time_point::max())
      return;
    if (now < due)
      return wait(std::min(next, now + shortest_timeout()));
    if (queued_ > 0)
      return drop_slow_reader(slow_reader::write_timeout);
    deadline_ = clock::time_point::max();
    on_timer();
  }

  void on_timer() {
    if (busy_ || closed_)
      return;
    if (in_request_ && !draining_ && !close_after_write_) {
      // Part of a request came, not all of it in time: say so, then close.
      in_request_ = false;
      return fail(408, "the request did not arrive within " + std::to_string(server_.opts.read_timeout.count()) + " s");
    }
    close();
  }

  /// Parses complete requests out of the buffer while idle.
  void process() {
    while (!busy_ && !closed_ && !close_after_write_ && buffer_.size() > 0) {
      auto step = reader_.read(buffer_);
      if (reader_.take_continue())
        write_raw("HTTP/1.1 100 Continue\r\n\r\n");
      if (step == http_request_reader::step::need_more)
        return;
      if (step == http_request_reader::step::refused)
        return fail(reader_.refusal().status, reader_.refusal().message);
      handle(reader_.take());
    }
  }

  // -- routing ------------------------------------------------------------------------

  void handle(request req);
  /// By HTTP method, once the session (if any) is known here.
  void route(request& req);
  void handle_post(request& req);
  void handle_get(request& req);
  void handle_delete(request& req);
  void handle_preflight(const request& req);
  /// The request's Origin when it is one of `http.allowedOrigins`.
  std::optional<std::string_view> cors_origin(const request& req) const;

  // -- writing ------------------------------------------------------------------------

  enum class slow_reader { write_timeout, queue_limit };

  /// The client does not take what it asked for: the connection ends with
  /// a reset, so that neither this process nor the kernel keeps its
  /// answers. Logged once (a connection closes once), and counted.
  void drop_slow_reader(slow_reader why, std::size_t more = 0) {
    if (closed_)
      return;
    bool over_limit = why == slow_reader::queue_limit;
    auto fields = json::value::make_object({{"reason", over_limit ? "queue_limit" : "write_timeout"},
                                            {"remote", remote_address()},
                                            {"queuedBytes", static_cast<unsigned long long>(queued_)}});
    if (over_limit) {
      fields.set("moreBytes", static_cast<unsigned long long>(more));
      fields.set("limitBytes", static_cast<unsigned long long>(server_.opts.write_queue_limit));
      log::warn("closed a connection whose client does not read: its answers would queue more than "
                "http.writeQueueLimitBytes",
                fields);
    } else {
      fields.set("timeoutSeconds", static_cast<long long>(server_.opts.write_timeout.count()));
      log::warn("closed a connection whose client does not read: it took no bytes within http.writeTimeoutSeconds",
                fields);
    }
    if (auto* count = over_limit ? server_.slow_queue_overflows : server_.slow_write_timeouts)
      count->inc();
    beast::error_code ignored;
    sock_.set_option(net::socket_base::linger(true, 0), ignored);
    close();
  }

  void fail(int status, std::string message) {
    keep_alive_ = false;
    // Nothing after a refused request is parsed: the connection closes.
    reader_.reset();
    buffer_.consume(buffer_.size());
    respond(status, http_error_body(error_code::invalid_request, message), {});
  }

  /// Writes a whole response; reading resumes after it.
  void respond(int status, std::string body, std::string_view extra_headers,
               std::string_view content_type = "application/json") {
    std::string out;
    out.reserve(160 + body.size());
    out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(reason_or_unknown(status));
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
    stream_spoke();
  }

  /// The stream sent something: its keep-alive comment waits a period.
  void stream_spoke() {
    if (server_.opts.sse_keep_alive.count() <= 0)
      return;
    keep_alive_at_ = clock::now() + server_.opts.sse_keep_alive;
    wake_by(keep_alive_at_);
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
    stream_spoke();
  }

  void end_sse() {
    write_raw("0\r\n\r\n");
    streaming_ = false;
    keep_alive_at_ = clock::time_point::max();
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
    // A client that asks (pipelined requests) or listens (an SSE stream)
    // without reading must not make the server hold ever more for it. One
    // answer larger than the limit still goes out when nothing else waits.
    if (queued_ > 0 && queued_ + bytes.size() > server_.opts.write_queue_limit)
      return drop_slow_reader(slow_reader::queue_limit, bytes.size());
    queued_ += bytes.size();
    writes_.push_back(std::move(bytes));
    if (!writing_)
      do_write();
  }

  /// The socket took `n` more bytes of the queue.
  void sent(std::size_t n) {
    queued_ -= n;
    write_offset_ += n;
    if (write_offset_ < writes_.front().size())
      return;
    write_offset_ = 0;
    writes_.pop_front();
  }

  void do_write() {
    bool progress = false;
    // On a connection that stays open, send what the socket takes now; only
    // the rest waits for a handler. (A closing connection always goes through
    // `on_write`, which half-closes it after the last byte.)
    if (keep_alive_ && !close_after_write_) {
      while (!writes_.empty()) {
        auto& front = writes_.front();
        beast::error_code ec;
        auto n = sock_.write_some(net::buffer(front.data() + write_offset_, front.size() - write_offset_), ec);
        if (ec == net::error::would_block || ec == net::error::try_again)
          break;
        if (ec)
          return close();
        progress = true;
        bool partial = write_offset_ + n < front.size();
        sent(n);
        if (partial)
          break;
      }
      if (writes_.empty())
        return all_sent();
    }
    // The write timeout runs from the last byte the socket took, or from
    // now when nothing was waiting.
    if (progress || write_deadline_ == clock::time_point::max()) {
      write_deadline_ = clock::now() + server_.opts.write_timeout;
      wake_by(write_deadline_);
    }
    writing_ = true;
    auto& front = writes_.front();
    // One step at a time rather than `async_write`, so that every byte the
    // client takes counts as progress.
    sock_.async_write_some(net::buffer(front.data() + write_offset_, front.size() - write_offset_),
                           [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_write(ec, n); });
  }

  /// The queue is empty: the write deadline ends, and the deadlines that
  /// waited for it count again (an idle connection's from now).
  void all_sent() {
    if (write_deadline_ == clock::time_point::max())
      return;
    write_deadline_ = clock::time_point::max();
    if (!busy_ && !in_request_ && !close_after_write_ && !closed_)
      arm_timer(server_.opts.idle_timeout);
    else
      wake_by(deadline_);
  }

  void on_write(beast::error_code ec, std::size_t n) {
    writing_ = false;
    if (ec || closed_) {
      close();
      return;
    }
    sent(n);
    if (!writes_.empty()) {
      if (n > 0)
        write_deadline_ = clock::now() + server_.opts.write_timeout;
      return do_write();
    }
    all_sent();
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
  clock::time_point deadline_ = clock::time_point::max(); ///< When `on_timer` acts.
  clock::time_point wait_until_ = clock::time_point::max(); ///< The pending wait's end.
  /// When an event stream with nothing to say sends a comment.
  clock::time_point keep_alive_at_ = clock::time_point::max();
  http_server::impl& server_;
  beast::flat_buffer buffer_;
  http_request_reader reader_{server_.opts.header_limit, server_.opts.body_limit};
  bool reading_ = false;
  bool closed_ = false;
  bool busy_ = false; ///< A request is being answered.
  bool streaming_ = false; ///< SSE headers are out.
  bool sse_allowed_ = true; ///< The client accepts text/event-stream.
  bool long_lived_ = false; ///< GET or listen stream: no final response.
  bool keep_alive_ = true;
  bool close_after_write_ = false;
  bool writing_ = false;
  bool draining_ = false;
  bool in_request_ = false; ///< Part of a request has come; the read timeout runs.
  bool refused_ = false; ///< Answered over a connection limit.
  std::string address_; ///< The client's address.
  std::string remote_; ///< See remote_address.
  bool counted_ = false; ///< Counted in the server's per-address table.
  /// The identity this connection counts for in the server's per-caller
  /// table (with `address_`); empty before a request named one.
  std::string caller_;
  /// CORS headers for the current request's allowed origin (else empty).
  std::string cors_headers_;
  std::array<char, 4096> drain_buf_;
  uint64_t active_serial_ = 0;
  std::weak_ptr<http_sink> active_sink_;
  std::string pending_headers_; ///< Extra headers for the eventual response.
  std::deque<std::string> writes_;
  std::size_t write_offset_ = 0; ///< Bytes of `writes_.front()` already sent.
  std::size_t queued_ = 0; ///< Bytes in `writes_` the socket has not taken.
  /// While bytes are queued: when the client, taking none, is given up on.
  clock::time_point write_deadline_ = clock::time_point::max();
  /// Who sent the current MCP request: "key:<sha256>" or "anonymous".
  std::string identity_;
  /// The request's OAuth access token when the authenticator says it may go
  /// on to services that act for the caller (see auth_verdict::forwardable).
  std::shared_ptr<const std::string> credential_;
  std::shared_ptr<const std::vector<std::string>> scopes_; ///< Its scopes.
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
    msg.retry_after = 1;
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
  // From an actor's turn on the thread that runs this connection's I/O, no
  // handler of the connection can be running: hand the message over now.
  if (&ex_.get_inner_executor().context() == actor_turn_io())
    return conn->on_outbound(serial(), std::move(msg), end_stream);
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
  if (msg.retry_after > 0)
    headers.append("\r\nRetry-After: ").append(std::to_string(msg.retry_after));
  if (msg.challenge)
    headers.append("\r\nWWW-Authenticate: ").append(*msg.challenge);
  // A stream that ends before it began (a refused listen or GET) is a plain
  // answer, with its status: a client, or a gateway deciding whether to ask
  // again, must see the refusal as one.
  if (msg.what == outbound::kind::response && (!long_lived_ || !streaming_)) {
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

void connection::handle(request req) {
  keep_alive_ = req.keep_alive();
  busy_ = true;
  in_request_ = false;
  disarm_timer();
  cors_headers_.clear();
  auto target = std::string_view(req.target().data(), req.target().size());
  auto path = target.substr(0, target.find('?'));
  if (!http_origin_allowed(server_.opts, req))
    return respond(403, http_error_body(error_code::invalid_request, "Host or Origin is not allowed for this server"),
                   {});
  if (path != server_.opts.path) {
    if (req.method() == http::verb::get) {
      if (auto r = server_.routes.find(std::string(path)); r != server_.routes.end()) {
        http_request_view view;
        view.method = "GET";
        view.path = std::string(path);
        if (auto auth = req.find(http::field::authorization); auth != req.end())
          view.authorization = std::string(text::view(auth->value()));
        view.remote = remote_address();
        auto reply = r->second(view);
        return respond(reply.status, std::move(reply.body), reply.headers, reply.content_type);
      }
    }
    for (auto& [prefix, handler] : server_.handlers) {
      if (path.substr(0, prefix.size()) != prefix)
        continue;
      http_request_view view;
      view.method = std::string(text::view(req.method_string()));
      view.path = std::string(path);
      if (auto auth = req.find(http::field::authorization); auth != req.end())
        view.authorization = std::string(text::view(auth->value()));
      view.remote = remote_address();
      view.body = std::move(req.body());
      auto reply = handler(view);
      return respond(reply.status, std::move(reply.body), reply.headers, reply.content_type);
    }
    return respond(404,
                   http_error_body(error_code::invalid_request, server_.opts.path.empty()
                                                                  ? std::string("not found")
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
    // The listener stays open through a drain so that health checks see
    // /ready fail; a request is refused unserved, with its own id, and a
    // balancer may send it elsewhere at once.
    keep_alive_ = false;
    json::value message, id;
    json::parse_error err;
    if (json::parse(std::string_view(req.body()), message, err) && message.is_object()
        && (message["id"].is_string() || message["id"].is_number()))
      id = message["id"];
    return respond(503,
                   mcp::error_body(id, error_code::shutting_down, "the server is shutting down; retry elsewhere",
                                   json::value::make_object({{"retry_after_seconds", 1}})),
                   "\r\nRetry-After: 1");
  }
  std::string_view authorization;
  if (auto auth = req.find(http::field::authorization); auth != req.end())
    authorization = text::view(auth->value());
  if (server_.opts.auth) {
    auto verdict = server_.opts.auth->check(authorization);
    if (!verdict.ok) {
      auto trace = mcp::new_trace_id();
      audit::record({"auth.failure", "denied", "unauthenticated", remote_address(), std::string(path), trace,
                     json::value::make_object({{"reason", verdict.message},
                                               {"presented", verdict.credential_present},
                                               {"method", std::string(text::view(req.method_string()))}})});
      return respond(401,
                     mcp::error_body(json::value(), error_code::unauthorized, verdict.message,
                                     json::value::make_object({{"traceId", trace}})),
                     "\r\nWWW-Authenticate: " + verdict.challenge);
    }
    identity_ = std::move(verdict.identity);
    // The token goes with the request to services that act for the caller;
    // the same token again on this connection costs no copy.
    if (!verdict.forwardable) {
      credential_.reset();
      scopes_.reset();
    } else if (auto token = bearer_token(authorization); !credential_ || *credential_ != token) {
      credential_ = std::make_shared<const std::string>(token);
      scopes_ = std::make_shared<const std::vector<std::string>>(std::move(verdict.scopes));
    }
  } else if (credential_) {
    credential_.reset();
    scopes_.reset();
  }
  if (!server_.opts.auth) {
    // Without authentication a bearer string proves nothing: it names a
    // caller only when the configuration knows its hash (rateLimits.keys),
    // else anyone could become a new identity per request and so escape
    // the per-identity limits.
    identity_ = "anonymous";
    if (auto token = bearer_token(authorization); !token.empty() && server_.rt) {
      auto hash = crypto::sha256_hex(token);
      if (server_.rt->settings()->ops.keys.count(hash))
        identity_ = "key:" + hash;
    }
  }
  // The connection counts in its caller's share from now on; the same
  // caller asking again on it costs one comparison.
  if (identity_ != caller_ && !server_.attribute(address_, counted_, caller_, identity_)) {
    keep_alive_ = false;
    if (server_.refused_identity)
      server_.refused_identity->inc();
    auto max = server_.opts.max_connections_per_identity;
    return respond_over_limit("too many connections for this caller from this address (at most " + std::to_string(max)
                                + "); reuse one, close one or retry later",
                              max, "connectionsPerIdentity");
  }
  // Several instances: a session created on another one is taken over
  // from the shared directory before the request is looked at. (The echo
  // ceiling has no runtime and no sessions.)
  if (auto sid = req.find("mcp-session-id"); sid != req.end()) {
    std::string id(trim(text::view(sid->value())));
    if (server_.rt && server_.rt->session_elsewhere(id)) {
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
  // The echo ceiling has no sessions for GET or DELETE to name.
  if (server_.opts.echo_mode && req.method() != http::verb::post)
    return respond(405, http_error_body(error_code::invalid_request, "the echo ceiling answers POST only"),
                   "\r\nAllow: POST");
  switch (req.method()) {
    case http::verb::post:
      return handle_post(req);
    case http::verb::get:
      return handle_get(req);
    case http::verb::delete_:
      return handle_delete(req);
    default:
      return respond(405,
                     http_error_body(error_code::invalid_request, "method not allowed: use POST (or GET/DELETE with a "
                                                                  "2025-era session)"),
                     "\r\nAllow: POST, GET, DELETE, OPTIONS");
  }
}

std::optional<std::string_view> connection::cors_origin(const request& req) const {
  auto origin = req.find(http::field::origin);
  if (origin == req.end())
    return std::nullopt;
  auto o = trim(text::view(origin->value()));
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
    return respond(403,
                   http_error_body(error_code::invalid_request,
                                   "cross-origin requests from this Origin are not allowed "
                                   "(http.allowedOrigins)"),
                   {});
  // The 2026-07-28 mirrored headers include Mcp-Param-{Name}, one per
  // argument: echo those the browser asks for (CORS has no prefix wildcard).
  std::string allow_headers = "Content-Type, Authorization, Accept, Mcp-Session-Id, "
                              "MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";
  if (auto asked = req.find(http::field::access_control_request_headers); asked != req.end()) {
    auto list = text::view(asked->value());
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
  http_post_message m;
  if (auto refused = judge_post_body(req, m))
    return respond(refused->status, refused->body(), {});
  sse_allowed_ = true;
  auto& msg = m.msg;
  auto& cls = m.cls;

  if (server_.opts.echo_mode) {
    if (cls.kind != mcp::message_kind::request)
      return respond(202, {}, {});
    return respond(200, mcp::result_body(msg["id"], json::value(json::object{})), {});
  }

  // Which era and which session; for 2026-07-28, do the mirrored headers
  // agree with the body.
  auto mcp_headers = collect_mcp_headers(req);
  const auto& method = msg["method"].as_string();
  auto& rt = *server_.rt;
  std::shared_ptr<const catalog> cat;
  http_session_lookup lookup{[&](const std::string& sid) { return rt.has_session(sid, identity_); },
                             [&](const std::string& tool) -> const json::value* {
                               cat = rt.current_catalog();
                               auto* t = cat->find_tool(tool);
                               return t ? &t->input_schema : nullptr;
                             }};
  http_post_route route;
  if (auto refused = judge_post_route(mcp_headers, m, lookup, route))
    return respond(refused->status, refused->body(), {});
  if (route.acknowledge_only)
    return respond(202, {}, {});

  auto in = std::make_shared<inbound>();
  in->kind = cls.kind;
  in->identity = identity_;
  in->credential = credential_;
  in->scopes = scopes_;
  in->remote = remote_address();
  in->stateless = route.stateless;
  in->bytes = req.body().size();
  if (auto tp = req.find("traceparent"); tp != req.end()) {
    in->traceparent = std::string(tp->value());
    if (auto ts = req.find("tracestate"); ts != req.end())
      in->tracestate = std::string(ts->value());
  }
  in->session_id = std::move(route.session_id);

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
    return respond(405,
                   http_error_body(error_code::invalid_request, "GET needs a 2025-era session (Mcp-Session-Id); "
                                                                "2026-07-28 clients use POST subscriptions/listen"),
                   "\r\nAllow: POST, GET, DELETE");
  auto accept_it = req.find(http::field::accept);
  if (accept_it == req.end() || !http_accepts(text::view(accept_it->value()), "text/event-stream"))
    return respond(406, http_error_body(error_code::invalid_request, "Accept must list text/event-stream"), {});
  std::string id(trim(text::view(sid->value())));
  std::string last_event;
  if (auto le = req.find("last-event-id"); le != req.end())
    last_event = std::string(trim(text::view(le->value())));
  if (server_.rt->has_session(id, identity_) && !server_.rt->stream_allowed(id)) {
    auto max = server_.rt->settings()->max_streams;
    return respond(
      describe(error_code::session_limit).http_status,
      http_error_body(
        error_code::session_limit,
        "too many SSE streams open in this session (at most " + std::to_string(max) + "); retry when one has ended",
        json::value::make_object(
          {{"limit", "streams"}, {"max", static_cast<unsigned long long>(max)}, {"retry_after_seconds", 1}})),
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
    return respond(405,
                   http_error_body(error_code::invalid_request, "DELETE needs a 2025-era session (Mcp-Session-Id)"),
                   "\r\nAllow: POST, GET, DELETE");
  if (!server_.rt->end_session(std::string(trim(text::view(sid->value()))), identity_))
    return respond(404, http_error_body(error_code::invalid_request, "session not found"), {});
  respond(200, {}, {});
}

} // namespace

// -- listener ----------------------------------------------------------------------------------------

void http_server::impl::do_accept() {
  auto& target = *iocs[next_ioc++ % iocs.size()];
  acceptor->async_accept(net::make_strand(target), [this](beast::error_code ec, tcp::socket sock) {
    // Closed by drain or stop: the loop ends (retrying on a closed listener
    // would spin), and this is its last look at the server state.
    if (stopping || ec == net::error::operation_aborted || !acceptor->is_open()) {
      accepting.store(false);
      return;
    }
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
          conn->start_refused("the server has too many connections; retry later", opts.max_connections, "connections");
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
  if (auto* refused = over_total ? refused_total : refused_address)
    refused->inc();
  // A refusal is answered, but only so many at once: beyond that, closed.
  if (refusing >= max_refusing)
    return admission::dropped;
  ++refusing;
  return over_total ? admission::over_total : admission::over_address;
}

http_server::http_server(mcp_endpoint* rt, http_options opts) : impl_(std::make_unique<impl>(rt, std::move(opts))) {}

http_server::~http_server() {
  stop();
}

void http_server::add_handler(std::string prefix, http_handler handler) {
  impl_->handlers.emplace_back(std::move(prefix), std::move(handler));
}

bool is_loopback_peer(std::string_view remote) {
  auto host = remote;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  beast::error_code ec;
  auto address = net::ip::make_address(std::string(host), ec);
  if (ec)
    return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return address.to_v6().to_v4().is_loopback();
  return address.is_loopback();
}

std::optional<http_reply> http_server::answer_get(const http_request_view& req) const {
  auto r = impl_->routes.find(req.path);
  if (r == impl_->routes.end())
    return std::nullopt;
  return r->second(req);
}

void http_server::add_route(std::string path, http_route route) {
  add_route(std::move(path), [route = std::move(route)](const http_request_view&) { return route(); });
}

void http_server::add_route(std::string path, http_request_route route) {
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
  d.accepting.store(true);
  net::post(*d.iocs.front(), [&d] { d.do_accept(); });
  if (d.own_ioc)
    for (int i = 0; i < std::max(1, d.opts.threads); ++i)
      d.threads.emplace_back([&d] { d.own_ioc->run(); });
  return d.bound_port;
}

void http_server::drain() {
  if (impl_)
    impl_->draining = true;
}

void http_server::stop() {
  if (!impl_)
    return;
  auto& d = *impl_;
  if (d.stopping.exchange(true))
    return;
  // The listener closes on its I/O thread, and its last accept handler runs
  // there: both refer to this state, so wait (bounded) for them.
  auto listener_closed = std::make_shared<std::atomic<bool>>(!d.acceptor);
  if (d.acceptor)
    net::post(*d.iocs.front(), [&d, listener_closed] {
      beast::error_code ec;
      d.acceptor->close(ec);
      listener_closed->store(true);
    });
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
  while ((d.live_count() > 0 || !listener_closed->load() || d.accepting.load())
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (d.own_ioc) {
    d.own_ioc->stop();
    for (auto& t : d.threads)
      if (t.joinable())
        t.join();
    d.threads.clear();
  } else if (auto left = d.live_count(); left > 0 || !listener_closed->load() || d.accepting.load()) {
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
