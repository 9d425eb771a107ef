// bulwark-loadgen: an HTTP load generator for MCP Streamable HTTP endpoints on
// loopback, for benchmarking Bulwark (and its echo ceiling) in both eras.
//
// Every connection is a keep-alive HTTP/1.1 connection that sends one request
// at a time (closed loop, or paced with --rate). 2025-era connections first
// initialize a session; 2026-era requests are stateless and carry the
// mirrored headers and the _meta protocol version.
//
// Closed loop: latency runs from the start of the write to the end of the
// response read, for requests that start after the warmup and before the end
// of the run. Paced (--rate, see send_schedule.hpp): every request has a due
// time, and latency runs from it to the end of the response read, for
// requests due after the warmup and before the end of the run. A connection
// that falls behind (a slow answer, a stall anywhere on the machine) sends
// the requests due meanwhile late, back to back, and counts them as behind
// schedule; requests still due when the run ends are counted as unsent.
// Nothing due is skipped or left uncounted.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "messages/json.hpp"
#include "messages/mcp.hpp"
#include "messages/text.hpp"
#include "tools/send_schedule.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = bulwark::json;
namespace text = bulwark::text;
using tcp = net::ip::tcp;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::string_view version_2025 = "2025-11-25";
constexpr std::string_view version_2026 = "2026-07-28";
constexpr auto request_timeout = 5s;
constexpr auto hard_stop_grace = 5s;
constexpr auto retry_backoff = 100ms;

// -- options -----------------------------------------------------------------------------------

struct options {
  std::string url = "http://127.0.0.1:8080/mcp";
  int connections = 8;
  double duration = 5;
  double warmup = 1;
  double rate = 0; ///< Total requests per second; 0 = closed loop.
  std::string op = "ping";
  std::string tool = "echo";
  std::string args = R"({"text":"hello"})";
  int era = 2025;
  bool json_output = false;
  std::string label;
  int threads = 1;
  std::vector<std::string> extra_headers; ///< "Name: value"
  std::string bind; ///< Source address of every connection (--bind); empty: the system's choice.
};

const char* usage_text = "usage: bulwark-loadgen [options]\n"
                         "  --url URL          http://127.0.0.1:PORT/mcp (loopback hosts only; default port 8080)\n"
                         "  --connections N    keep-alive connections (default 8)\n"
                         "  --duration S       measured seconds (default 5, max 600)\n"
                         "  --warmup S         seconds before measuring (default 1)\n"
                         "  --rate R           total requests/s, paced per connection (default: closed loop);\n"
                         "                     latency then counts from each request's due time, not its send\n"
                         "  --op ping|call     ping (2025) / server/discover (2026), or tools/call\n"
                         "  --tool NAME        tool for --op call (default echo)\n"
                         "  --args JSON        tool arguments object (default {\"text\":\"hello\"})\n"
                         "  --era 2025|2026    protocol era (default 2025)\n"
                         "  --threads N        I/O threads (default 1)\n"
                         "  --header 'K: V'    extra request header (repeatable), e.g. Mcp-Param-* headers\n"
                         "  --bind ADDR        connect from this loopback address (e.g. 127.0.0.2)\n"
                         "  --json             print one JSON object instead of a text line\n"
                         "  --label TEXT       label to put in the output\n"
                         "Output: one line of name=value pairs (or, with --json, one JSON object with the same\n"
                         "names): requests, errors, rps, p50_us p90_us p99_us p999_us max_us (successful\n"
                         "requests), errors_by. With --rate also, over the requests due in the measured window:\n"
                         "  due            requests due (= sent + unsent)\n"
                         "  behind         sent >= 100 us after their due time (a late connection catches up\n"
                         "                 back to back; nothing is skipped)\n"
                         "  unsent         due, but the run ended before they could be sent\n"
                         "  behind_pct     100 * (behind + unsent) / due: the share not sent on time\n"
                         "  max_behind_us  the largest send lag; lag_p50_us, lag_p99_us its quantiles over\n"
                         "                 sent requests (the part of each latency the generator added by\n"
                         "                 sending late)\n"
                         "  from_send_p50_us, from_send_p99_us  latency from the actual send instead, which\n"
                         "                 leaves out waits behind earlier answers (for comparison only)\n"
                         "Exit status: 0 when requests were made and none failed, 1 otherwise, 2 on bad usage.\n";

struct usage_error {
  std::string message;
};

double parse_double(const std::string& name, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || errno != 0 || *end != '\0' || !std::isfinite(d))
    throw usage_error{name + ": not a number: '" + s + "'"};
  return d;
}

long parse_int(const std::string& name, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || errno != 0 || *end != '\0')
    throw usage_error{name + ": not an integer: '" + s + "'"};
  return v;
}

/// Returns false for --help.
bool parse_args(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string val;
    bool has_inline = false;
    if (a.rfind("--", 0) == 0) {
      if (auto eq = a.find('='); eq != std::string::npos) {
        val = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_inline = true;
      }
    }
    auto next = [&]() -> std::string {
      if (has_inline)
        return val;
      if (i + 1 >= argc)
        throw usage_error{a + " needs a value"};
      return argv[++i];
    };
    if (a == "--help" || a == "-h")
      return false;
    else if (a == "--url")
      o.url = next();
    else if (a == "--connections" || a == "-c") {
      auto n = parse_int(a, next());
      if (n < 1 || n > 10000)
        throw usage_error{"--connections must be between 1 and 10000"};
      o.connections = static_cast<int>(n);
    } else if (a == "--duration" || a == "-d") {
      o.duration = parse_double(a, next());
      if (o.duration <= 0 || o.duration > 600)
        throw usage_error{"--duration must be > 0 and at most 600 seconds"};
    } else if (a == "--warmup") {
      o.warmup = parse_double(a, next());
      if (o.warmup < 0 || o.warmup > 600)
        throw usage_error{"--warmup must be between 0 and 600 seconds"};
    } else if (a == "--rate") {
      o.rate = parse_double(a, next());
      if (o.rate <= 0)
        throw usage_error{"--rate must be > 0"};
    } else if (a == "--op") {
      o.op = next();
      if (o.op != "ping" && o.op != "call")
        throw usage_error{"--op must be ping or call"};
    } else if (a == "--tool") {
      o.tool = next();
      if (o.tool.empty())
        throw usage_error{"--tool must not be empty"};
    } else if (a == "--args")
      o.args = next();
    else if (a == "--era") {
      auto e = next();
      if (e == "2025" || e == std::string(version_2025))
        o.era = 2025;
      else if (e == "2026" || e == std::string(version_2026))
        o.era = 2026;
      else
        throw usage_error{"--era must be 2025 or 2026"};
    } else if (a == "--json")
      o.json_output = true;
    else if (a == "--label")
      o.label = next();
    else if (a == "--threads") {
      auto n = parse_int(a, next());
      if (n < 1 || n > 64)
        throw usage_error{"--threads must be between 1 and 64"};
      o.threads = static_cast<int>(n);
    } else if (a == "--header") {
      auto h = next();
      auto colon = h.find(':');
      if (colon == std::string::npos || colon == 0 || !text::header_safe(h))
        throw usage_error{"--header wants 'Name: value' in printable ASCII"};
      o.extra_headers.push_back(std::move(h));
    } else if (a == "--bind") {
      o.bind = next();
      boost::system::error_code ec;
      auto addr = net::ip::make_address(o.bind, ec);
      if (ec || !addr.is_loopback())
        throw usage_error{"--bind wants a loopback address (127.0.0.0/8 or ::1): " + o.bind};
    } else
      throw usage_error{"unknown option: " + a};
  }
  return true;
}

// -- target ------------------------------------------------------------------------------------

struct target {
  std::string host; ///< As written, lower case: 127.0.0.1, localhost or [::1].
  std::string connect_host; ///< For the resolver (no brackets).
  uint16_t port = 80;
  std::string host_header; ///< host[:port]
  std::string path;
};

target parse_url(const std::string& url) {
  target t;
  const std::string scheme = "http://";
  if (text::lowered(url.substr(0, scheme.size())) != scheme)
    throw usage_error{"--url must start with http:// (no TLS): " + url};
  auto rest = url.substr(scheme.size());
  auto slash = rest.find_first_of("/?#");
  auto authority = rest.substr(0, slash);
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (auto hash = t.path.find('#'); hash != std::string::npos)
    t.path.erase(hash);
  if (t.path.empty() || t.path.front() != '/')
    t.path.insert(0, "/");
  for (unsigned char c : t.path)
    if (c <= 0x20 || c >= 0x7F)
      throw usage_error{"--url path has characters that need escaping"};
  if (authority.find('@') != std::string::npos)
    throw usage_error{"--url must not contain user information"};
  std::string port_str;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos)
      throw usage_error{"--url has an unterminated IPv6 literal"};
    t.host = text::lowered(authority.substr(0, close + 1));
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        throw usage_error{"--url has junk after the IPv6 literal"};
      port_str = after.substr(1);
    }
    t.connect_host = t.host.substr(1, t.host.size() - 2);
  } else {
    auto colon = authority.find(':');
    t.host = text::lowered(authority.substr(0, colon));
    if (colon != std::string::npos)
      port_str = authority.substr(colon + 1);
    t.connect_host = t.host;
  }
  if (t.host != "127.0.0.1" && t.host != "localhost" && t.host != "[::1]")
    throw usage_error{"refusing host '" + t.host
                      + "': only loopback targets (127.0.0.1, localhost, [::1]) are allowed"};
  if (!port_str.empty()) {
    auto p = parse_int("--url port", port_str);
    if (p < 1 || p > 65535)
      throw usage_error{"--url port out of range"};
    t.port = static_cast<uint16_t>(p);
  }
  t.host_header = t.host + (port_str.empty() ? std::string() : ":" + std::to_string(t.port));
  return t;
}

// -- helpers -----------------------------------------------------------------------------------

/// A header value: plain when safe, else the =?base64?...?= form MCP uses.
std::string header_value(std::string_view v) {
  bool edge_space = !v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t');
  if (text::header_safe(v) && !edge_space)
    return std::string(v);
  return "=?base64?" + bulwark::mcp::base64_encode(v) + "?=";
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && text::iequals(s.substr(0, prefix.size()), prefix);
}

/// The data of the last event with data lines in an SSE body.
std::string last_sse_data(std::string_view body) {
  std::string last, current;
  bool has_current = false;
  while (!body.empty()) {
    auto nl = body.find('\n');
    auto line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.empty()) {
      if (has_current)
        last = std::move(current);
      current.clear();
      has_current = false;
      continue;
    }
    if (line.substr(0, 5) == "data:") {
      auto d = line.substr(5);
      if (!d.empty() && d.front() == ' ')
        d.remove_prefix(1);
      if (has_current)
        current += '\n';
      current.append(d);
      has_current = true;
    }
  }
  if (has_current)
    last = std::move(current);
  return last;
}

using response = http::response<http::string_body>;

/// Empty when `res` is a successful JSON-RPC response to `id`; else why not
/// (a key for the error breakdown).
std::string classify(const response& res, uint64_t id) {
  int status = res.result_int();
  std::string_view body(res.body().data(), res.body().size());
  auto ct_it = res.find(http::field::content_type);
  std::string_view ctype =
    ct_it == res.end() ? std::string_view{} : std::string_view(ct_it->value().data(), ct_it->value().size());
  std::string sse;
  std::string_view payload = body;
  if (starts_with_ci(ctype, "text/event-stream")) {
    sse = last_sse_data(body);
    payload = sse;
  }
  json::value v;
  json::parse_error perr;
  bool parsed = !payload.empty() && json::parse(payload, v, perr) && v.is_object();
  auto rpc_code = [&]() -> std::optional<int64_t> {
    if (!parsed)
      return std::nullopt;
    auto* e = v.find("error");
    if (!e || !e->is_object())
      return std::nullopt;
    auto* c = e->find("code");
    if (!c || !c->is_integer())
      return std::nullopt;
    return c->as_int();
  };
  if (status != 200) {
    std::string k = "http_" + std::to_string(status);
    if (auto c = rpc_code())
      k += "_rpc_" + std::to_string(*c);
    return k;
  }
  if (!parsed)
    return payload.empty() ? "empty_body" : "bad_json";
  if (auto c = rpc_code())
    return "rpc_" + std::to_string(*c);
  if (v.find("error"))
    return "rpc_error";
  auto* idv = v.find("id");
  if (!idv || !idv->is_integer() || idv->as_int() != static_cast<int64_t>(id))
    return "id_mismatch";
  if (!v.find("result"))
    return "no_result";
  return {};
}

void append_uint(std::string& out, uint64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

// -- shared configuration ------------------------------------------------------------------------

struct plan {
  options opt;
  target tgt;
  std::vector<tcp::endpoint> endpoints;
  std::optional<net::ip::address> source; ///< --bind: connect from here.
  bool modern = false; ///< 2026 era.
  std::string method; ///< The measured method.
  std::string note; ///< E.g. ping replaced by server/discover.
  std::string common_head; ///< POST line, Host, Content-Type, Accept, extras.
  std::string op_head_2026; ///< common_head plus the 2026 mirrored headers.
  std::string delete_head; ///< DELETE line, Host, extras (2025 cleanup).
  std::string body_prefix = R"({"jsonrpc":"2.0","id":)";
  std::string op_suffix; ///< After the id, for the measured request.
  std::string init_suffix; ///< After the id, for initialize.
  std::string initialized_body = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
  clk::time_point t0, warm_end, stop_at, hard_stop;
  clk::duration interval{0}; ///< Per-connection pacing interval (--rate).
  std::size_t reserve_per_conn = 0;
  std::atomic<bool> warned_no_session{false};
};

struct stats {
  std::vector<uint64_t> lat_ns; ///< OK requests only.
  uint64_t requests = 0; ///< In the window: OK + errors.
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t warmup_requests = 0;
  uint64_t setup_errors = 0;
  uint64_t connects = 0;
  uint64_t sessions = 0;
  bulwark::loadgen::schedule_tally schedule; ///< Paced only; unsent added at the report.
  std::vector<uint64_t> lag_ns; ///< Send lag of measured paced requests.
  std::vector<uint64_t> from_send_ns; ///< Paced OK requests: latency from the send.
  std::map<std::string, uint64_t> errors_by;
  std::map<std::string, uint64_t> setup_errors_by;
};

// -- one connection ------------------------------------------------------------------------------

class conn : public std::enable_shared_from_this<conn> {
public:
  conn(plan& p, net::any_io_executor ex, int index, std::function<void()> on_done)
      : p_(p), ex_(ex), sock_(ex), pace_(ex), on_done_(std::move(on_done)) {
    st.lat_ns.reserve(p.reserve_per_conn);
    if (p.interval.count() > 0) {
      st.lag_ns.reserve(p.reserve_per_conn);
      st.from_send_ns.reserve(p.reserve_per_conn);
      schedule_ =
        bulwark::loadgen::send_schedule(p.t0 + p.interval * index / std::max(1, p.opt.connections), p.interval);
    }
  }

  /// Requests due in the measured window that were never sent (call after
  /// the loop has stopped).
  uint64_t unsent() const { return schedule_.untaken(p_.warm_end, p_.stop_at); }

  stats st;

  void start() {
    net::dispatch(ex_, [self = shared_from_this()] { self->do_connect(); });
  }

  /// Watchdog: abort the request or connect that passed its deadline.
  void check_deadline(clk::time_point now) {
    if (phase_ == phase::done || now < deadline_)
      return;
    timed_out_ = true;
    beast::error_code ec;
    sock_.close(ec);
  }

  /// Watchdog entry points, callable from any thread.
  void post_check(clk::time_point now) {
    net::post(ex_, [self = shared_from_this(), now] { self->check_deadline(now); });
  }
  void post_abort() {
    net::post(ex_, [self = shared_from_this()] { self->abort_now(); });
  }

  /// The hard stop: anything still in flight is an error.
  void abort_now() {
    if (phase_ == phase::done)
      return;
    if (phase_ == phase::running && deadline_ != clk::time_point::max() && in_window(measured_from_))
      count_error("unfinished_at_stop");
    done();
  }

private:
  enum class phase { connecting, init, initialized, running, deleting, done };

  /// Whether a request that started (closed loop) or was due (paced) at
  /// `start` is measured.
  bool in_window(clk::time_point start) const { return start >= p_.warm_end && start < p_.stop_at; }

  void count_error(const std::string& why) {
    st.requests++;
    st.errors++;
    st.errors_by[why]++;
  }

  void setup_error(const std::string& why) {
    st.setup_errors++;
    st.setup_errors_by[why]++;
  }

  void do_connect() {
    if (phase_ == phase::done)
      return;
    auto now = clk::now();
    if (now >= p_.stop_at)
      return done();
    phase_ = phase::connecting;
    beast::error_code ec;
    sock_.close(ec);
    buf_.consume(buf_.size());
    timed_out_ = false;
    deadline_ = now + request_timeout;
    if (p_.source) {
      // From a chosen source address: bind first, then one endpoint of its family.
      sock_.open(p_.endpoints.front().protocol(), ec);
      if (!ec)
        sock_.bind(tcp::endpoint(*p_.source, 0), ec);
      if (ec) {
        setup_error("bind: " + ec.message());
        return retry_later();
      }
      return sock_.async_connect(p_.endpoints.front(),
                                 [self = shared_from_this()](beast::error_code ec) { self->on_connect(ec); });
    }
    net::async_connect(sock_, p_.endpoints, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      self->on_connect(ec);
    });
  }

  void on_connect(beast::error_code ec) {
    if (phase_ == phase::done)
      return;
    deadline_ = clk::time_point::max();
    if (ec) {
      setup_error(timed_out_ ? "connect_timeout" : "connect: " + ec.message());
      return retry_later();
    }
    beast::error_code ignored;
    sock_.set_option(tcp::no_delay(true), ignored);
    st.connects++;
    proceed();
  }

  void retry_later() {
    beast::error_code ec;
    sock_.close(ec);
    if (clk::now() + retry_backoff >= p_.stop_at)
      return done();
    pace_.expires_after(retry_backoff);
    pace_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec)
        return self->done();
      self->do_connect();
    });
  }

  /// The next step on an open connection.
  void proceed() {
    if (phase_ == phase::done)
      return;
    if (!sock_.is_open())
      return do_connect();
    if (p_.modern || ready_)
      return next_request();
    if (!have_session_)
      return send(phase::init);
    send(phase::initialized);
  }

  void after_response(bool keep_alive) {
    if (!keep_alive) {
      beast::error_code ec;
      sock_.close(ec);
    }
    proceed();
  }

  void next_request() {
    auto now = clk::now();
    if (now >= p_.stop_at)
      return finish();
    if (schedule_.paced()) {
      // However late, the next request is the next one due (see send_schedule).
      auto due = schedule_.next_due();
      if (due >= p_.stop_at)
        return finish();
      if (due > now) {
        pace_.expires_at(due);
        return pace_.async_wait([self = shared_from_this()](beast::error_code ec) {
          if (ec || self->phase_ == phase::done)
            return self->done();
          self->send(phase::running);
        });
      }
    }
    send(phase::running);
  }

  void append_json_body(const std::string& suffix, uint64_t id) {
    char idbuf[24];
    auto r = std::to_chars(idbuf, idbuf + sizeof idbuf, id);
    std::size_t id_len = static_cast<std::size_t>(r.ptr - idbuf);
    out_ += "Content-Length: ";
    append_uint(out_, p_.body_prefix.size() + id_len + suffix.size());
    out_ += "\r\n\r\n";
    out_ += p_.body_prefix;
    out_.append(idbuf, id_len);
    out_ += suffix;
  }

  void send(phase ph) {
    phase_ = ph;
    out_.clear();
    cur_id_ = next_id_++;
    switch (ph) {
      case phase::init:
        out_ += p_.common_head;
        append_json_body(p_.init_suffix, cur_id_);
        break;
      case phase::initialized:
        out_ += p_.common_head;
        out_ += session_head_;
        out_ += "Content-Length: ";
        append_uint(out_, p_.initialized_body.size());
        out_ += "\r\n\r\n";
        out_ += p_.initialized_body;
        break;
      case phase::running:
        if (p_.modern) {
          out_ += p_.op_head_2026;
        } else {
          out_ += p_.common_head;
          out_ += session_head_;
        }
        append_json_body(p_.op_suffix, cur_id_);
        break;
      case phase::deleting:
        out_ += p_.delete_head;
        out_ += session_head_;
        out_ += "Content-Length: 0\r\n\r\n";
        break;
      default:
        return;
    }
    timed_out_ = false;
    req_start_ = clk::now();
    measured_from_ = req_start_;
    if (ph == phase::running && schedule_.paced()) {
      auto slot = schedule_.take(req_start_);
      measured_from_ = slot.due;
      if (in_window(slot.due)) {
        st.schedule.sent(slot);
        st.lag_ns.push_back(
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(slot.lag()).count()));
      }
    }
    deadline_ = req_start_ + request_timeout;
    net::async_write(sock_, net::buffer(out_),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    if (phase_ == phase::done)
      return;
    if (ec)
      return io_fail(ec);
    parser_.emplace();
    parser_->body_limit(64u << 20);
    http::async_read(sock_, buf_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void io_fail(beast::error_code ec) {
    deadline_ = clk::time_point::max();
    std::string why;
    if (timed_out_)
      why = "timeout";
    else if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset
             || ec == net::error::broken_pipe)
      why = "closed_by_server";
    else
      why = "io: " + ec.message();
    beast::error_code ignored;
    sock_.close(ignored);
    switch (phase_) {
      case phase::running:
        if (in_window(measured_from_))
          count_error(why);
        else if (measured_from_ < p_.warm_end)
          st.warmup_requests++;
        return do_connect();
      case phase::init:
      case phase::initialized:
        setup_error((phase_ == phase::init ? "initialize: " : "initialized: ") + why);
        return retry_later();
      case phase::deleting:
      default:
        return done();
    }
  }

  void on_read(beast::error_code ec) {
    if (phase_ == phase::done)
      return;
    auto end = clk::now();
    if (ec)
      return io_fail(ec);
    deadline_ = clk::time_point::max();
    const auto& res = parser_->get();
    int status = res.result_int();
    bool keep = res.keep_alive();
    switch (phase_) {
      case phase::running: {
        auto why = classify(res, cur_id_);
        if (in_window(measured_from_)) {
          st.requests++;
          if (why.empty()) {
            st.ok++;
            st.lat_ns.push_back(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(end - measured_from_).count()));
            if (schedule_.paced())
              st.from_send_ns.push_back(
                static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(end - req_start_).count()));
          } else {
            st.errors++;
            st.errors_by[why]++;
          }
        } else if (measured_from_ < p_.warm_end) {
          st.warmup_requests++;
        }
        if (!p_.modern && status == 404) {
          // The session is gone: start a new one.
          have_session_ = ready_ = false;
          session_head_.clear();
        }
        return after_response(keep);
      }
      case phase::init: {
        auto why = classify(res, cur_id_);
        if (!why.empty()) {
          setup_error("initialize: " + why);
          return retry_later();
        }
        std::string sid;
        if (auto it = res.find("Mcp-Session-Id"); it != res.end())
          sid = std::string(it->value().data(), it->value().size());
        sid = std::string(text::trim(sid));
        if (!text::header_safe(sid)) {
          setup_error("initialize: unusable Mcp-Session-Id");
          return retry_later();
        }
        session_head_.clear();
        if (!sid.empty()) {
          session_head_ += "Mcp-Session-Id: ";
          session_head_ += sid;
          session_head_ += "\r\n";
        } else if (!p_.warned_no_session.exchange(true)) {
          std::cerr << "bulwark-loadgen: warning: initialize returned no Mcp-Session-Id; "
                       "continuing without a session\n";
        }
        session_head_ += "MCP-Protocol-Version: ";
        session_head_ += version_2025;
        session_head_ += "\r\n";
        have_session_ = true;
        session_id_ = std::move(sid);
        st.sessions++;
        return after_response(keep);
      }
      case phase::initialized: {
        if (status == 202) {
          ready_ = true;
        } else if (status == 404) {
          setup_error("initialized: http_404");
          have_session_ = false;
          session_head_.clear();
          return retry_later();
        } else {
          // Not what the spec says, but retrying would not change it.
          setup_error("initialized: http_" + std::to_string(status) + " (expected 202)");
          ready_ = true;
        }
        return after_response(keep);
      }
      case phase::deleting:
      default:
        return done();
    }
  }

  /// After the run: end a 2025-era session politely, then close.
  void finish() {
    if (!p_.modern && have_session_ && !session_id_.empty() && sock_.is_open() && clk::now() < p_.hard_stop - 1s)
      return send(phase::deleting);
    done();
  }

  void done() {
    if (phase_ == phase::done)
      return;
    phase_ = phase::done;
    deadline_ = clk::time_point::max();
    beast::error_code ec;
    sock_.close(ec);
    pace_.cancel();
    if (on_done_)
      on_done_();
  }

  plan& p_;
  net::any_io_executor ex_;
  tcp::socket sock_;
  net::steady_timer pace_;
  std::function<void()> on_done_;
  beast::flat_buffer buf_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::string out_;
  std::string session_head_; ///< Mcp-Session-Id and MCP-Protocol-Version lines.
  std::string session_id_;
  bool have_session_ = false;
  bool ready_ = false;
  bool timed_out_ = false;
  phase phase_ = phase::connecting;
  uint64_t next_id_ = 1;
  uint64_t cur_id_ = 0;
  clk::time_point req_start_{}; ///< When the running request was written.
  clk::time_point measured_from_{}; ///< Its latency's start: req_start_, or its due time if paced.
  clk::time_point deadline_ = clk::time_point::max();
  bulwark::loadgen::send_schedule schedule_; ///< Unpaced without --rate.
};

// -- planning and reporting ----------------------------------------------------------------------

void build_plan(plan& p) {
  auto& o = p.opt;
  p.tgt = parse_url(o.url);
  p.modern = o.era == 2026;

  json::value args;
  json::parse_error perr;
  if (!json::parse(o.args, args, perr) || !args.is_object())
    throw usage_error{"--args must be a JSON object: " + (perr.message.empty() ? o.args : perr.message)};

  if (o.op == "call")
    p.method = "tools/call";
  else if (p.modern) {
    p.method = "server/discover";
    p.note = "ping is not a 2026-07-28 method; sent server/discover instead";
  } else
    p.method = "ping";

  std::string extras;
  for (auto& h : o.extra_headers)
    extras += h + "\r\n";
  p.common_head = "POST " + p.tgt.path + " HTTP/1.1\r\nHost: " + p.tgt.host_header
                  + "\r\nContent-Type: application/json\r\n"
                    "Accept: application/json, text/event-stream\r\n"
                  + extras;
  p.delete_head = "DELETE " + p.tgt.path + " HTTP/1.1\r\nHost: " + p.tgt.host_header
                  + "\r\nAccept: application/json, text/event-stream\r\n" + extras;

  json::value params;
  if (p.method == "tools/call") {
    params = json::value::make_object({{"name", o.tool}, {"arguments", args}});
  } else if (p.modern) {
    params = json::value::make_object();
  }
  if (p.modern) {
    params.set("_meta",
               json::value::make_object({{"io.modelcontextprotocol/protocolVersion", std::string(version_2026)},
                                         {"io.modelcontextprotocol/clientCapabilities", json::value::make_object()}}));
    p.op_head_2026 =
      p.common_head + "MCP-Protocol-Version: " + std::string(version_2026) + "\r\nMcp-Method: " + p.method + "\r\n";
    if (p.method == "tools/call")
      p.op_head_2026 += "Mcp-Name: " + header_value(o.tool) + "\r\n";
  }
  p.op_suffix = ",\"method\":";
  json::write_string(p.op_suffix, p.method);
  if (!params.is_null()) {
    p.op_suffix += ",\"params\":";
    json::write(p.op_suffix, params);
  }
  p.op_suffix += "}";

  auto init_params = json::value::make_object(
    {{"protocolVersion", std::string(version_2025)},
     {"capabilities", json::value::make_object()},
     {"clientInfo", json::value::make_object({{"name", "bulwark-loadgen"}, {"version", "0.1"}})}});
  p.init_suffix = ",\"method\":\"initialize\",\"params\":" + json::dump(init_params) + "}";

  if (o.rate > 0)
    p.interval = std::chrono::duration_cast<clk::duration>(
      std::chrono::duration<double>(static_cast<double>(o.connections) / o.rate));
  double expected = o.rate > 0 ? o.rate * o.duration * 1.1 : o.duration * 100000.0;
  expected = std::min(expected, 8.0e6);
  p.reserve_per_conn = static_cast<std::size_t>(expected / o.connections) + 256;
}

std::vector<tcp::endpoint> resolve(net::io_context& ioc, const target& t) {
  tcp::resolver r(ioc);
  beast::error_code ec;
  auto results = r.resolve(t.connect_host, std::to_string(t.port), ec);
  if (ec)
    throw usage_error{"cannot resolve " + t.connect_host + ": " + ec.message()};
  std::vector<tcp::endpoint> v4, v6;
  for (auto& e : results) {
    auto addr = e.endpoint().address();
    if (!addr.is_loopback())
      continue; // Never leave the machine, whatever the resolver says.
    (addr.is_v4() ? v4 : v6).push_back(e.endpoint());
  }
  v4.insert(v4.end(), v6.begin(), v6.end());
  if (v4.empty())
    throw usage_error{t.connect_host + " did not resolve to a loopback address"};
  return v4;
}

std::string format_seconds(double s) {
  char buf[32];
  if (std::floor(s) == s)
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  else
    std::snprintf(buf, sizeof buf, "%gs", s);
  return buf;
}

std::string text_value(const std::string& s) {
  bool plain = !s.empty();
  for (unsigned char c : s)
    if (c <= 0x20 || c == '"' || c >= 0x7F)
      plain = false;
  if (plain)
    return s;
  std::string out;
  json::write_string(out, s);
  return out;
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  plan p;
  net::io_context ioc(1);
  try {
    if (!parse_args(argc, argv, p.opt)) {
      std::cout << usage_text;
      return 0;
    }
    build_plan(p);
    p.endpoints = resolve(ioc, p.tgt);
    if (!p.opt.bind.empty()) {
      p.source = net::ip::make_address(p.opt.bind);
      auto other_family = [&](const tcp::endpoint& e) { return e.address().is_v4() != p.source->is_v4(); };
      p.endpoints.erase(std::remove_if(p.endpoints.begin(), p.endpoints.end(), other_family), p.endpoints.end());
      if (p.endpoints.empty())
        throw usage_error{"--bind " + p.opt.bind + ": the --url host has no address of that family"};
    }
  } catch (const usage_error& e) {
    std::cerr << "bulwark-loadgen: " << e.message << "\n" << usage_text;
    return 2;
  }
  auto& o = p.opt;
  if (!p.note.empty())
    std::cerr << "bulwark-loadgen: note: " << p.note << "\n";

  // A concurrency hint of 1 lets Asio skip locking on the default single thread.
  std::optional<net::io_context> mt_ioc;
  net::io_context* io = &ioc;
  if (o.threads > 1) {
    mt_ioc.emplace(o.threads);
    io = &*mt_ioc;
  }

  auto to_dur = [](double s) { return std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(s)); };
  p.t0 = clk::now();
  p.warm_end = p.t0 + to_dur(o.warmup);
  p.stop_at = p.warm_end + to_dur(o.duration);
  p.hard_stop = p.stop_at + hard_stop_grace;

  auto gstrand = net::make_strand(*io);
  net::steady_timer watchdog(gstrand), abort_timer(gstrand), hard_timer(gstrand);
  std::atomic<int> active{o.connections};
  std::atomic<bool> all_done{false};
  bool hard_stopped = false;

  std::vector<std::shared_ptr<conn>> conns;
  conns.reserve(static_cast<std::size_t>(o.connections));
  auto on_done = [&] {
    if (--active == 0) {
      all_done = true;
      net::post(gstrand, [&] {
        watchdog.cancel();
        abort_timer.cancel();
        hard_timer.cancel();
      });
    }
  };
  for (int i = 0; i < o.connections; ++i) {
    net::any_io_executor ex =
      o.threads > 1 ? net::any_io_executor(net::make_strand(*io)) : net::any_io_executor(io->get_executor());
    conns.push_back(std::make_shared<conn>(p, ex, i, on_done));
  }

  std::function<void()> tick;
  tick = [&] {
    watchdog.expires_after(100ms);
    watchdog.async_wait([&](beast::error_code ec) {
      if (ec || all_done)
        return;
      auto now = clk::now();
      for (auto& c : conns)
        c->post_check(now);
      tick();
    });
  };
  tick();

  // Shortly before the hard stop, end whatever is still running (counting
  // in-flight requests as errors); at the hard stop, stop the loop outright.
  abort_timer.expires_at(p.hard_stop - 300ms);
  abort_timer.async_wait([&](beast::error_code ec) {
    if (ec || all_done)
      return;
    for (auto& c : conns)
      c->post_abort();
  });
  hard_timer.expires_at(p.hard_stop);
  hard_timer.async_wait([&](beast::error_code ec) {
    if (ec || all_done)
      return;
    hard_stopped = true;
    io->stop();
  });

  for (auto& c : conns)
    c->start();

  std::vector<std::thread> threads;
  for (int i = 1; i < o.threads; ++i)
    threads.emplace_back([io] { io->run(); });
  io->run();
  io->stop();
  for (auto& t : threads)
    t.join();

  // -- merge and report ---------------------------------------------------------------------------
  stats total;
  std::size_t n_samples = 0;
  for (auto& c : conns)
    n_samples += c->st.lat_ns.size();
  total.lat_ns.reserve(n_samples);
  for (auto& c : conns) {
    auto& s = c->st;
    total.lat_ns.insert(total.lat_ns.end(), s.lat_ns.begin(), s.lat_ns.end());
    total.requests += s.requests;
    total.ok += s.ok;
    total.errors += s.errors;
    total.warmup_requests += s.warmup_requests;
    total.setup_errors += s.setup_errors;
    total.connects += s.connects;
    total.sessions += s.sessions;
    total.schedule.merge(s.schedule);
    total.schedule.not_sent(c->unsent());
    total.lag_ns.insert(total.lag_ns.end(), s.lag_ns.begin(), s.lag_ns.end());
    total.from_send_ns.insert(total.from_send_ns.end(), s.from_send_ns.begin(), s.from_send_ns.end());
    for (auto& [k, v] : s.errors_by)
      total.errors_by[k] += v;
    for (auto& [k, v] : s.setup_errors_by)
      total.setup_errors_by[k] += v;
  }
  std::sort(total.lat_ns.begin(), total.lat_ns.end());
  std::sort(total.lag_ns.begin(), total.lag_ns.end());
  std::sort(total.from_send_ns.begin(), total.from_send_ns.end());
  auto quantile_us = [](const std::vector<uint64_t>& sorted, double q) -> uint64_t {
    if (sorted.empty())
      return 0;
    auto n = sorted.size();
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(n)));
    rank = std::min(std::max<std::size_t>(rank, 1), n);
    return (sorted[rank - 1] + 500) / 1000;
  };
  auto pct_us = [&](double q) { return quantile_us(total.lat_ns, q); };
  double rps = static_cast<double>(total.requests) / o.duration;
  uint64_t p50 = pct_us(0.50), p90 = pct_us(0.90), p99 = pct_us(0.99), p999 = pct_us(0.999);
  uint64_t max_us = total.lat_ns.empty() ? 0 : (total.lat_ns.back() + 500) / 1000;
  std::string era = o.era == 2026 ? "2026" : "2025";
  const auto& sched = total.schedule;
  double behind_pct = std::round(sched.behind_share() * 100.0 * 100) / 100;
  auto max_behind_us = static_cast<uint64_t>(std::chrono::round<std::chrono::microseconds>(sched.max_lag).count());
  uint64_t lag_p50 = quantile_us(total.lag_ns, 0.50), lag_p99 = quantile_us(total.lag_ns, 0.99);
  uint64_t send_p50 = quantile_us(total.from_send_ns, 0.50), send_p99 = quantile_us(total.from_send_ns, 0.99);

  if (o.json_output) {
    json::value out = json::value::make_object();
    out.set("label", o.label);
    out.set("era", era);
    out.set("op", o.op);
    out.set("method", p.method);
    if (p.method == "tools/call")
      out.set("tool", o.tool);
    out.set("conns", o.connections);
    out.set("threads", o.threads);
    out.set("duration_s", o.duration);
    out.set("warmup_s", o.warmup);
    if (o.rate > 0)
      out.set("rate", o.rate);
    out.set("requests", total.requests);
    out.set("ok", total.ok);
    out.set("errors", total.errors);
    out.set("rps", std::round(rps * 10) / 10);
    out.set("p50_us", p50);
    out.set("p90_us", p90);
    out.set("p99_us", p99);
    out.set("p999_us", p999);
    out.set("max_us", max_us);
    if (o.rate > 0) {
      out.set("due", sched.due);
      out.set("behind", sched.behind);
      out.set("unsent", sched.unsent);
      out.set("behind_pct", behind_pct);
      out.set("max_behind_us", max_behind_us);
      out.set("lag_p50_us", lag_p50);
      out.set("lag_p99_us", lag_p99);
      out.set("from_send_p50_us", send_p50);
      out.set("from_send_p99_us", send_p99);
    }
    json::value eb = json::value::make_object();
    for (auto& [k, v] : total.errors_by)
      eb.set(k, v);
    out.set("errors_by", std::move(eb));
    out.set("setup_errors", total.setup_errors);
    json::value sb = json::value::make_object();
    for (auto& [k, v] : total.setup_errors_by)
      sb.set(k, v);
    out.set("setup_errors_by", std::move(sb));
    out.set("connects", total.connects);
    if (o.era == 2025)
      out.set("sessions", total.sessions);
    if (hard_stopped)
      out.set("hard_stopped", true);
    if (!p.note.empty())
      out.set("note", p.note);
    std::cout << json::dump(out) << std::endl;
  } else {
    std::string line;
    line += "label=" + text_value(o.label);
    line += " era=" + era;
    line += " op=" + o.op;
    line += " method=" + p.method;
    line += " conns=" + std::to_string(o.connections);
    line += " duration=" + format_seconds(o.duration);
    if (o.rate > 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", o.rate);
      line += std::string(" rate=") + buf;
    }
    line += " requests=" + std::to_string(total.requests);
    line += " errors=" + std::to_string(total.errors);
    line += " rps=" + std::to_string(static_cast<uint64_t>(std::llround(rps)));
    line += " p50_us=" + std::to_string(p50);
    line += " p90_us=" + std::to_string(p90);
    line += " p99_us=" + std::to_string(p99);
    line += " p999_us=" + std::to_string(p999);
    line += " max_us=" + std::to_string(max_us);
    if (o.rate > 0) {
      line += " due=" + std::to_string(sched.due);
      line += " behind=" + std::to_string(sched.behind);
      line += " unsent=" + std::to_string(sched.unsent);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", behind_pct);
      line += std::string(" behind_pct=") + buf;
      line += " max_behind_us=" + std::to_string(max_behind_us);
      line += " lag_p50_us=" + std::to_string(lag_p50);
      line += " lag_p99_us=" + std::to_string(lag_p99);
      line += " from_send_p50_us=" + std::to_string(send_p50);
      line += " from_send_p99_us=" + std::to_string(send_p99);
    }
    if (!total.errors_by.empty()) {
      std::string s;
      for (auto& [k, v] : total.errors_by)
        s += (s.empty() ? "" : ",") + k + ":" + std::to_string(v);
      line += " errors_by=" + text_value(s);
    }
    if (total.setup_errors > 0) {
      std::string s;
      for (auto& [k, v] : total.setup_errors_by)
        s += (s.empty() ? "" : ",") + k + ":" + std::to_string(v);
      line += " setup_errors=" + std::to_string(total.setup_errors) + " setup_errors_by=" + text_value(s);
    }
    if (hard_stopped)
      line += " hard_stopped=1";
    if (!p.note.empty())
      line += " note=" + text_value(p.note);
    std::cout << line << std::endl;
  }
  std::fflush(stdout);
  int rc = (total.requests > 0 && total.errors == 0) ? 0 : 1;
  // Skip tearing down sockets and handlers of a hard-stopped loop.
  std::_Exit(rc);
}
