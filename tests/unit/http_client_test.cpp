// The HTTP/1.1 client for downstream MCP servers: against our own server in
// echo mode, against a scripted raw server for streams and failures, and over
// TLS (https:// services) against a TLS server on loopback whose certificates
// are issued here, by a test CA, per test.
#include <catch2/catch.hpp>

#include <poll.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "messages/json.hpp"
#include "messages/text.hpp"
#include "tests/unit/io_loop.hpp"
#include "tests/unit/tls.hpp"
#include "transport/http_client.hpp"
#include "transport/http_server.hpp"

using namespace bulwark;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

const http_header_list mcp_headers = {{"Accept", "application/json, text/event-stream"},
                                      {"Content-Type", "application/json"}};
const std::string ping = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";

using test::io_loop;

/// What one exchange produced.
struct outcome {
  http_response resp;
  std::vector<std::string> events;
  std::vector<steady::time_point> event_times;
  int done_calls = 0;
};

/// Collects one exchange's callbacks (they run on the io thread).
struct collector {
  std::mutex mtx;
  outcome out;
  std::promise<void> finished;
  std::future<void> future = finished.get_future();

  http_client::event_fn on_event() {
    return [this](std::string data) {
      std::lock_guard<std::mutex> guard(mtx);
      out.events.push_back(std::move(data));
      out.event_times.push_back(steady::now());
    };
  }

  http_client::done_fn on_done() {
    return [this](http_response resp) {
      std::lock_guard<std::mutex> guard(mtx);
      out.resp = std::move(resp);
      if (++out.done_calls == 1)
        finished.set_value();
    };
  }

  bool wait(std::chrono::milliseconds limit = 5s) { return future.wait_for(limit) == std::future_status::ready; }

  outcome result() {
    std::lock_guard<std::mutex> guard(mtx);
    return out;
  }
};

outcome call(http_client& client, std::string method, std::string body, http_header_list headers = mcp_headers,
             std::chrono::milliseconds timeout = 5000ms) {
  collector c;
  client.send(std::move(method), std::move(body), std::move(headers), c.on_event(), c.on_done(), timeout);
  REQUIRE(c.wait());
  auto r = c.result();
  UNSCOPED_INFO("status " << r.resp.status << ", error: " << r.resp.error);
  return r;
}

// -- a scripted raw server ------------------------------------------------------

/// Serves connections one after another on its own thread, each with the
/// next script (the last one repeats). Every wait is bounded.
class raw_server {
public:
  class conn;
  using script = std::function<void(conn&)>;

  /// One accepted connection, with bounded blocking helpers.
  class conn {
  public:
    conn(tcp::socket s, raw_server& server) : sock(std::move(s)), server_(server) {}

    /// Reads one request (header block and Content-Length body); false when
    /// the client closed or nothing came within `limit`.
    bool read_request(std::chrono::milliseconds limit = 3000ms) {
      auto deadline = steady::now() + limit;
      for (;;) {
        auto end = pending_.find("\r\n\r\n");
        if (end != std::string::npos) {
          std::size_t length = 0;
          auto head = text::lowered(pending_.substr(0, end));
          if (auto cl = head.find("content-length:"); cl != std::string::npos)
            length = std::stoul(head.substr(cl + 15));
          if (pending_.size() >= end + 4 + length) {
            last_request = pending_.substr(0, end + 4 + length);
            pending_.erase(0, end + 4 + length);
            server_.requests++;
            return true;
          }
        }
        if (!read_more(deadline))
          return false;
      }
    }

    void write(std::string_view bytes) {
      boost::system::error_code ec;
      net::write(sock, net::buffer(bytes.data(), bytes.size()), ec);
    }

    void write_chunk(std::string_view payload) {
      char size[20];
      std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
      write(std::string(size) + std::string(payload) + "\r\n");
    }

    /// Waits until the client closes (or `limit` passes or the server stops).
    bool wait_closed(std::chrono::milliseconds limit = 3000ms) {
      auto deadline = steady::now() + limit;
      while (read_more(deadline))
        pending_.clear();
      return steady::now() < deadline;
    }

    void sleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

    /// Closes with a reset instead of a FIN.
    void reset() {
      boost::system::error_code ec;
      sock.set_option(net::socket_base::linger(true, 0), ec);
      sock.close(ec);
    }

    tcp::socket sock;
    std::string last_request;

  private:
    /// Reads what arrives before `deadline`; false on close, error, timeout
    /// or server stop.
    bool read_more(steady::time_point deadline) {
      while (!server_.stopping_) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        if (left.count() <= 0)
          return false;
        pollfd p{sock.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 20))) <= 0)
          continue;
        char buf[4096];
        boost::system::error_code ec;
        auto n = sock.read_some(net::buffer(buf), ec);
        if (ec)
          return false;
        pending_.append(buf, n);
        return true;
      }
      return false;
    }

    raw_server& server_;
    std::string pending_;
  };

  /// `receive_buffer`: the accepted connections' SO_RCVBUF (0: the
  /// kernel's, which grows to megabytes).
  explicit raw_server(std::vector<script> scripts, int receive_buffer = 0)
      : scripts_(std::move(scripts)), acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    if (receive_buffer > 0)
      acceptor_.set_option(net::socket_base::receive_buffer_size(receive_buffer));
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }

  ~raw_server() {
    stopping_ = true;
    // Wake a blocking accept.
    boost::system::error_code ec;
    tcp::socket poke(io_);
    poke.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ec);
    thread_.join();
  }

  uint16_t port() const { return port_; }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/mcp"; }

  std::atomic<int> accepted{0};
  std::atomic<int> requests{0};

private:
  void serve() {
    for (std::size_t i = 0; !stopping_; ++i) {
      tcp::socket sock(io_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || stopping_)
        return;
      accepted++;
      conn c(std::move(sock), *this);
      scripts_[std::min(i, scripts_.size() - 1)](c);
    }
  }

  std::vector<script> scripts_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

std::string json_response(std::string_view body, std::string_view extra = {}) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"
         + std::string(extra) + "\r\n" + std::string(body);
}

http_client_options options_for(const std::string& url) {
  http_client_options o;
  o.url = url;
  return o;
}

} // namespace

// -- against our own server ----------------------------------------------------------

TEST_CASE("http_client: a JSON-RPC request to the echo server", "[http_client]") {
  http_options so;
  so.port = 0;
  so.echo_mode = true;
  http_server srv(nullptr, so);
  auto port = srv.start();
  {
    io_loop loop;
    http_client client(loop.io, options_for("http://127.0.0.1:" + std::to_string(port) + "/mcp"));
    auto r = call(client, "POST", ping);
    CHECK(r.resp.error.empty());
    CHECK(r.resp.status == 200);
    CHECK(r.resp.sent);
    CHECK_FALSE(r.resp.timed_out);
    CHECK(r.resp.content_type == "application/json");
    REQUIRE(r.resp.header("content-type") != nullptr);
    CHECK(r.resp.header("Content-Type") == nullptr); // names are lower-cased
    CHECK(r.events.empty());
    json::value v;
    json::parse_error err;
    REQUIRE(json::parse(r.resp.body, v, err));
    CHECK(v["jsonrpc"].as_string() == "2.0");
    CHECK(v["id"].as_int() == 1);
    CHECK(v["result"].is_object());
  }
  srv.stop();
}

TEST_CASE("http_client: keep-alive reuse and a bounded pool", "[http_client]") {
  http_options so;
  so.port = 0;
  so.echo_mode = true;
  http_server srv(nullptr, so);
  auto port = srv.start();
  auto url = "http://127.0.0.1:" + std::to_string(port) + "/mcp";
  {
    io_loop loop;
    SECTION("50 sequential requests on one connection") {
      auto o = options_for(url);
      o.max_connections = 1;
      http_client client(loop.io, o);
      for (int i = 0; i < 50; ++i) {
        auto r = call(client, "POST", R"({"jsonrpc":"2.0","id":)" + std::to_string(i) + R"(,"method":"ping"})");
        REQUIRE(r.resp.error.empty());
        REQUIRE(r.resp.status == 200);
        json::value v;
        json::parse_error err;
        REQUIRE(json::parse(r.resp.body, v, err));
        REQUIRE(v["id"].as_int() == i);
      }
    }
    SECTION("20 concurrent requests through two connections") {
      auto o = options_for(url);
      o.max_connections = 2;
      http_client client(loop.io, o);
      std::vector<std::unique_ptr<collector>> cs;
      for (int i = 0; i < 20; ++i) {
        cs.push_back(std::make_unique<collector>());
        client.send("POST", R"({"jsonrpc":"2.0","id":)" + std::to_string(i) + R"(,"method":"ping"})", mcp_headers,
                    cs.back()->on_event(), cs.back()->on_done(), 5000ms);
      }
      for (int i = 0; i < 20; ++i) {
        REQUIRE(cs[i]->wait());
        auto r = cs[i]->result();
        CHECK(r.done_calls == 1);
        CHECK(r.resp.error.empty());
        CHECK(r.resp.status == 200);
        json::value v;
        json::parse_error err;
        REQUIRE(json::parse(r.resp.body, v, err));
        CHECK(v["id"].as_int() == i);
      }
    }
  }
  srv.stop();
}

// -- against a scripted raw server ----------------------------------------------------

TEST_CASE("http_client: one connection carries sequential exchanges", "[http_client]") {
  raw_server raw({[](raw_server::conn& c) {
    while (c.read_request())
      c.write(json_response(R"({"ok":true})"));
  }});
  io_loop loop;
  http_client client(loop.io, options_for(raw.url()));
  for (int i = 0; i < 5; ++i) {
    auto r = call(client, "POST", ping);
    REQUIRE(r.resp.error.empty());
    CHECK(r.resp.body == R"({"ok":true})");
  }
  CHECK(raw.accepted == 1);
  CHECK(raw.requests == 5);
}

TEST_CASE("http_client: the request on the wire", "[http_client]") {
  std::promise<std::string> seen;
  raw_server raw({[&](raw_server::conn& c) {
    if (!c.read_request())
      return;
    seen.set_value(c.last_request);
    c.write(json_response("{}", "Connection: close\r\n"));
    c.wait_closed();
  }});
  io_loop loop;
  auto o = options_for(raw.url() + "?x=1");
  o.headers = {{"Authorization", "Bearer t0k"}};
  http_client client(loop.io, o);
  auto r = call(client, "POST", ping, {{"Accept", "application/json, text/event-stream"}, {"Mcp-Session-Id", "s1"}});
  CHECK(r.resp.error.empty());
  auto f = seen.get_future();
  REQUIRE(f.wait_for(1s) == std::future_status::ready);
  auto req = f.get();
  CHECK(req.rfind("POST /mcp?x=1 HTTP/1.1\r\n", 0) == 0);
  CHECK_THAT(req, Catch::Contains("\r\nHost: 127.0.0.1:" + std::to_string(raw.port()) + "\r\n"));
  CHECK_THAT(req, Catch::Contains("\r\nAuthorization: Bearer t0k\r\n"));
  CHECK_THAT(req, Catch::Contains("\r\nMcp-Session-Id: s1\r\n"));
  CHECK_THAT(req, Catch::Contains("\r\nContent-Type: application/json\r\n"));
  CHECK_THAT(req, Catch::Contains("\r\nContent-Length: " + std::to_string(ping.size()) + "\r\n"));
  CHECK(req.substr(req.size() - ping.size()) == ping);
}

TEST_CASE("http_client: a body in pieces goes out whole, in order, with its whole length", "[http_client]") {
  // Megabytes, to a server with a small receive buffer that reads only
  // after a while: more than the socket takes at once (loopback's send
  // buffer grows to 4 MiB), so that the rest is written from the middle of
  // a piece.
  std::vector<std::string> pieces{R"({"a":")", std::string(8 << 20, 'x'), "", std::string(16 << 20, 'y'), R"("})"};
  std::string whole;
  for (auto& piece : pieces)
    whole += piece;
  std::promise<std::string> seen;
  raw_server raw({[&](raw_server::conn& c) {
                   std::this_thread::sleep_for(300ms);
                   if (!c.read_request(10s))
                     return;
                   seen.set_value(c.last_request);
                   c.write(json_response("{}", "Connection: close\r\n"));
                   c.wait_closed();
                 }},
                 64 << 10);
  io_loop loop;
  http_client client(loop.io, options_for(raw.url()));
  collector done;
  client.send("POST", pieces, mcp_headers, done.on_event(), done.on_done(), 10s);
  REQUIRE(done.wait());
  CHECK(done.result().resp.error.empty());
  CHECK(done.result().resp.status == 200);
  auto f = seen.get_future();
  REQUIRE(f.wait_for(1s) == std::future_status::ready);
  auto req = f.get();
  CHECK_THAT(req, Catch::Contains("\r\nContent-Length: " + std::to_string(whole.size()) + "\r\n"));
  auto body = req.find("\r\n\r\n");
  REQUIRE(body != std::string::npos);
  CHECK(req.size() - body - 4 == whole.size());
  CHECK(req.compare(body + 4, std::string::npos, whole) == 0);
}

TEST_CASE("http_client: SSE events arrive as they are written", "[http_client]") {
  std::atomic<int64_t> second_written{0};
  auto mark = [&] { second_written = steady::now().time_since_epoch().count(); };

  SECTION("chunked") {
    raw_server raw({[&](raw_server::conn& c) {
      if (!c.read_request())
        return;
      c.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
      c.write_chunk(
        ": keep-alive comment\r\nevent: message\r\nid: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"p\"}\r\n\r\n");
      c.sleep(200ms);
      mark();
      // One event split across chunks (and lines), then an empty event.
      c.write_chunk("data: {\"jsonrpc\":\"2.0\",");
      c.write_chunk("\ndata:\"id\":1}\n");
      c.write_chunk("\ndata:\n\n");
      c.write("0\r\n\r\n");
      c.wait_closed();
    }});
    io_loop loop;
    http_client client(loop.io, options_for(raw.url()));
    auto r = call(client, "POST", ping);
    CHECK(r.resp.error.empty());
    CHECK(r.resp.status == 200);
    CHECK(r.resp.content_type == "text/event-stream");
    CHECK(r.resp.body.empty());
    REQUIRE(r.events.size() == 2);
    CHECK(r.events[0] == R"({"jsonrpc":"2.0","method":"p"})");
    CHECK(r.events[1] == "{\"jsonrpc\":\"2.0\",\n\"id\":1}");
    CHECK(r.event_times[0].time_since_epoch().count() < second_written.load());
    CHECK(r.event_times[1].time_since_epoch().count() >= second_written.load());
  }

  SECTION("delimited by Connection: close") {
    raw_server raw({[&](raw_server::conn& c) {
      if (!c.read_request())
        return;
      c.write("HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\nConnection: close\r\n\r\n"
              "data: first\n\n");
      c.sleep(200ms);
      mark();
      c.write("data: second\r\r: bye\n\ndata: never dispatched");
    }});
    io_loop loop;
    http_client client(loop.io, options_for(raw.url()));
    auto r = call(client, "GET", {});
    CHECK(r.resp.error.empty());
    CHECK(r.resp.status == 200);
    CHECK(r.resp.content_type == "text/event-stream");
    REQUIRE(r.events.size() == 2);
    CHECK(r.events[0] == "first");
    CHECK(r.events[1] == "second");
    CHECK(r.event_times[0].time_since_epoch().count() < second_written.load());
  }
}

TEST_CASE("http_client: broken and hostile servers", "[http_client]") {
  SECTION("a garbage status line") {
    raw_server raw({[](raw_server::conn& c) {
      if (c.read_request())
        c.write("NOT HTTP AT ALL\r\n\r\n");
      c.wait_closed();
    }});
    io_loop loop;
    http_client client(loop.io, options_for(raw.url()));
    auto r = call(client, "POST", ping);
    CHECK_FALSE(r.resp.error.empty());
    CHECK(r.resp.status == 0);
    CHECK(r.resp.sent);
  }

  SECTION("a server that never answers") {
    raw_server raw({[](raw_server::conn& c) {
      c.read_request();
      c.wait_closed();
    }});
    io_loop loop;
    http_client client(loop.io, options_for(raw.url()));
    auto start = steady::now();
    auto r = call(client, "POST", ping, mcp_headers, 300ms);
    auto took = steady::now() - start;
    CHECK(r.resp.timed_out);
    CHECK(r.resp.sent);
    CHECK(r.resp.status == 0);
    CHECK_THAT(r.resp.error, Catch::Contains("timed out"));
    CHECK(took >= 290ms);
    CHECK(took < 2s);
  }

  SECTION("a refused connection") {
    uint16_t port;
    {
      net::io_context io;
      tcp::acceptor a(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
      port = a.local_endpoint().port();
    }
    io_loop loop;
    http_client client(loop.io, options_for("http://127.0.0.1:" + std::to_string(port) + "/mcp"));
    auto r = call(client, "POST", ping);
    CHECK_FALSE(r.resp.error.empty());
    CHECK_FALSE(r.resp.sent);
    CHECK_FALSE(r.resp.timed_out);
    CHECK(r.resp.status == 0);
  }

  SECTION("a body beyond the limit") {
    auto big = std::string(4096, 'x');
    raw_server raw({[&](raw_server::conn& c) {
                      if (c.read_request())
                        c.write(json_response(big));
                      c.wait_closed();
                    },
                    [&](raw_server::conn& c) {
                      if (!c.read_request())
                        return;
                      c.write(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
                      for (int i = 0; i < 4; ++i)
                        c.write_chunk(std::string(512, 'y'));
                      c.write("0\r\n\r\n");
                      c.wait_closed();
                    },
                    [&](raw_server::conn& c) {
                      if (!c.read_request())
                        return;
                      c.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                              "data: "
                              + big);
                      c.wait_closed();
                    }});
    io_loop loop;
    auto o = options_for(raw.url());
    o.body_limit = 1024;
    http_client client(loop.io, o);
    for (int i = 0; i < 3; ++i) {
      auto r = call(client, "POST", ping);
      CHECK_THAT(r.resp.error, Catch::Contains("exceeds"));
      CHECK(r.resp.status == 200);
      CHECK(r.resp.body.empty());
      CHECK(r.events.empty());
    }
  }

  SECTION("a reset in the middle of the body") {
    raw_server raw({[](raw_server::conn& c) {
      if (!c.read_request())
        return;
      c.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"partial\":");
      c.sleep(50ms);
      c.reset();
    }});
    io_loop loop;
    http_client client(loop.io, options_for(raw.url()));
    auto r = call(client, "POST", ping);
    CHECK_FALSE(r.resp.error.empty());
    CHECK(r.resp.status == 200);
    CHECK(r.resp.sent);
  }

  SECTION("an early close in the middle of a chunked body") {
    raw_server raw({[](raw_server::conn& c) {
      if (!c.read_request())
        return;
      c.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
      c.write_chunk("{\"partial\":");
    }});
    io_loop loop;
    http_client client(loop.io, options_for(raw.url()));
    auto r = call(client, "POST", ping);
    CHECK_FALSE(r.resp.error.empty());
    CHECK(r.resp.status == 200);
  }
}

TEST_CASE("http_client: a stale keep-alive connection is retried once on a fresh one", "[http_client]") {
  raw_server raw({[](raw_server::conn& c) {
                    if (c.read_request())
                      c.write(json_response(R"({"n":1})"));
                    // The server drops the idle connection.
                  },
                  [](raw_server::conn& c) {
                    if (c.read_request())
                      c.write(json_response(R"({"n":2})"));
                    c.wait_closed();
                  }});
  io_loop loop;
  http_client client(loop.io, options_for(raw.url()));
  auto first = call(client, "POST", ping);
  REQUIRE(first.resp.body == R"({"n":1})");
  std::this_thread::sleep_for(100ms); // the FIN reaches the client
  auto second = call(client, "POST", ping);
  CHECK(second.resp.error.empty());
  CHECK(second.resp.body == R"({"n":2})");
  CHECK(second.resp.sent);
  CHECK(raw.accepted == 2);
  CHECK(raw.requests == 2);
}

TEST_CASE("http_client: cancel and stop", "[http_client]") {
  std::atomic<int> arrived{0};
  raw_server raw({[&](raw_server::conn& c) {
    if (c.read_request())
      arrived++;
    c.wait_closed();
  }});
  auto wait_arrived = [&](int n) {
    for (int i = 0; i < 300 && arrived < n; ++i)
      std::this_thread::sleep_for(10ms);
    return arrived >= n;
  };

  SECTION("cancel ends an exchange in flight, once") {
    io_loop loop;
    http_client client(loop.io, options_for(raw.url()));
    collector c;
    auto id = client.send("POST", ping, mcp_headers, c.on_event(), c.on_done(), 0ms);
    REQUIRE(wait_arrived(1));
    client.cancel(id);
    client.cancel(id);
    client.cancel(id + 1000); // unknown: ignored
    REQUIRE(c.wait());
    std::this_thread::sleep_for(100ms);
    auto r = c.result();
    CHECK(r.done_calls == 1);
    CHECK(r.resp.error == "cancelled");
    CHECK(r.resp.sent);
    CHECK_FALSE(r.resp.timed_out);
  }

  SECTION("stop ends active and queued exchanges; later sends fail") {
    io_loop loop;
    auto o = options_for(raw.url());
    o.max_connections = 1;
    http_client client(loop.io, o);
    collector active, queued;
    client.send("POST", ping, mcp_headers, active.on_event(), active.on_done(), 0ms);
    client.send("POST", ping, mcp_headers, queued.on_event(), queued.on_done(), 0ms);
    REQUIRE(wait_arrived(1));
    client.stop();
    client.stop();
    REQUIRE(active.wait());
    REQUIRE(queued.wait());
    CHECK(active.result().resp.error == "stopped");
    CHECK(active.result().resp.sent);
    CHECK(queued.result().resp.error == "stopped");
    CHECK_FALSE(queued.result().resp.sent);
    auto later = call(client, "POST", ping);
    CHECK(later.resp.error == "stopped");
    CHECK_FALSE(later.resp.sent);
    CHECK(raw.accepted == 1);
    CHECK(active.result().done_calls == 1);
    CHECK(queued.result().done_calls == 1);
  }

  SECTION("destroying the client ends what is pending") {
    io_loop loop;
    collector c;
    {
      http_client client(loop.io, options_for(raw.url()));
      client.send("POST", ping, mcp_headers, c.on_event(), c.on_done(), 0ms);
      REQUIRE(wait_arrived(1));
    }
    REQUIRE(c.wait());
    CHECK(c.result().resp.error == "stopped");
  }
}

TEST_CASE("http_client: only http and https URLs", "[http_client]") {
  net::io_context io;
  for (auto url : {"https://", "ftp://host/x", "127.0.0.1:80/mcp", "http://", "http://:80/", "http://host:0/",
                   "http://host:99999/", "http://user@host/"}) {
    INFO(url);
    try {
      http_client client(io, options_for(url));
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      // Why, without the URL itself: a path or query may hold a token.
      CHECK_THAT(e.what(), Catch::StartsWith("http_client: unsupported URL: "));
      CHECK_THAT(e.what(), !Catch::Contains(url));
    }
  }
  {
    // Errors name the peer by scheme and authority, never its path or query.
    io_loop loop;
    http_client client(loop.io, options_for("http://127.0.0.1:1/hooks/T0KEN?sig=S3CRET"));
    auto error = call(client, "POST", ping).resp.error;
    CHECK_THAT(error, Catch::StartsWith("cannot connect to http://127.0.0.1:1: "));
    CHECK_THAT(error, !Catch::Contains("T0KEN") && !Catch::Contains("S3CRET"));
  }
  CHECK_NOTHROW(http_client(io, options_for("http://localhost")));
  CHECK_NOTHROW(http_client(io, options_for("HTTP://[::1]:8080/mcp?x")));
  CHECK_NOTHROW(http_client(io, options_for("HTTPS://example.test/mcp")));
}

TEST_CASE("http_client: host names are resolved", "[http_client]") {
  raw_server raw({[](raw_server::conn& c) {
    if (c.read_request())
      c.write(json_response("{}"));
    c.wait_closed();
  }});
  io_loop loop;
  http_client client(loop.io, options_for("http://localhost:" + std::to_string(raw.port()) + "/mcp"));
  auto r = call(client, "POST", ping);
  // localhost may resolve to ::1 first; the resolver's list is tried in turn.
  CHECK(r.resp.error.empty());
  CHECK(r.resp.status == 200);
}

namespace {

// -- over TLS: the test CA and its TLS server (tests/unit/tls.hpp) ---------------

using test::identity;
using test::issue;
using test::pem_dir;
using test::test_pki;
using test::tls_server;

http_response call(http_client& client) {
  std::promise<http_response> p;
  auto f = p.get_future();
  client.send(
    "POST", ping, {{"Accept", "application/json, text/event-stream"}}, nullptr,
    [&p](http_response r) { p.set_value(std::move(r)); }, 5000ms);
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto r = f.get();
  UNSCOPED_INFO("status " << r.status << ", error: " << r.error);
  return r;
}

http_client_options options(const std::string& url, const std::string& ca_file) {
  http_client_options o;
  o.url = url;
  o.tls.ca_file = ca_file;
  return o;
}

} // namespace

TEST_CASE("https: a request over TLS, the server verified against the CA file", "[http_client][tls]") {
  test_pki pki;
  tls_server server(pki.server_cert, pki.server_key);
  io_loop loop;
  auto port = std::to_string(server.port());

  SECTION("by IP address, twice over one connection") {
    http_client client(loop.io, options("https://127.0.0.1:" + port + "/mcp", pki.ca_file));
    for (int i = 0; i < 2; ++i) {
      auto r = call(client);
      CHECK(r.error.empty());
      CHECK(r.status == 200);
      CHECK(r.body == R"({"jsonrpc":"2.0","id":1,"result":{"received":)" + std::to_string(ping.size()) + "}}");
    }
    CHECK(server.handshakes() == 1);
  }

  SECTION("by host name") {
    http_client client(loop.io, options("https://localhost:" + port + "/mcp", pki.ca_file));
    auto r = call(client);
    CHECK(r.error.empty());
    CHECK(r.status == 200);
  }

  SECTION("a body in pieces arrives whole") {
    http_client client(loop.io, options("https://127.0.0.1:" + port + "/mcp", pki.ca_file));
    auto half = ping.size() / 2;
    std::vector<std::string> pieces{ping.substr(0, half), "", ping.substr(half)};
    std::promise<http_response> p;
    auto f = p.get_future();
    client.send(
      "POST", pieces, {{"Accept", "application/json"}}, nullptr, [&p](http_response r) { p.set_value(std::move(r)); },
      5000ms);
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    auto r = f.get();
    CHECK(r.error.empty());
    CHECK(r.body == R"({"jsonrpc":"2.0","id":1,"result":{"received":)" + std::to_string(ping.size()) + "}}");
    CHECK(server.last_body() == ping);
  }
}

TEST_CASE("https: a server that cannot prove who it is gets no request", "[http_client][tls]") {
  test_pki pki;
  io_loop loop;

  SECTION("its CA is not trusted (the system's store, no CA file)") {
    tls_server server(pki.server_cert, pki.server_key);
    http_client client(loop.io, options("https://127.0.0.1:" + std::to_string(server.port()) + "/mcp", ""));
    auto r = call(client);
    CHECK(r.status == 0);
    CHECK_THAT(r.error, Catch::Contains("TLS handshake with https://127.0.0.1:"));
    CHECK_THAT(r.error, Catch::Contains("certificate verification failed: unable to get local issuer certificate"));
  }

  SECTION("a certificate from another CA") {
    tls_server server(pki.server_cert, pki.server_key);
    auto other = issue("Other CA", "", true);
    http_client client(
      loop.io, options("https://127.0.0.1:" + std::to_string(server.port()) + "/mcp", pki.dir.cert("other", other)));
    auto r = call(client);
    CHECK(r.status == 0);
    CHECK_THAT(r.error, Catch::Contains("certificate verification failed"));
  }

  SECTION("its certificate names another host") {
    auto elsewhere = issue("elsewhere.test", "DNS:elsewhere.test", false, &pki.ca);
    tls_server server(pki.dir.cert("elsewhere", elsewhere), pki.dir.key("elsewhere", elsewhere));
    auto port = std::to_string(server.port());
    http_client by_ip(loop.io, options("https://127.0.0.1:" + port + "/mcp", pki.ca_file));
    auto r = call(by_ip);
    CHECK(r.status == 0);
    CHECK_THAT(r.error, Catch::Contains("certificate verification failed: IP address mismatch"));
    http_client by_name(loop.io, options("https://localhost:" + port + "/mcp", pki.ca_file));
    r = call(by_name);
    CHECK(r.status == 0);
    CHECK_THAT(r.error, Catch::Contains("certificate verification failed: hostname mismatch"));
  }

  SECTION("it expired") {
    identity old = issue("localhost", "IP:127.0.0.1", false, &pki.ca);
    X509_gmtime_adj(X509_getm_notBefore(old.cert.get()), -7200);
    X509_gmtime_adj(X509_getm_notAfter(old.cert.get()), -3600);
    REQUIRE(X509_sign(old.cert.get(), pki.ca.key.get(), EVP_sha256()) > 0);
    tls_server server(pki.dir.cert("old", old), pki.dir.key("old", old));
    http_client client(loop.io, options("https://127.0.0.1:" + std::to_string(server.port()) + "/mcp", pki.ca_file));
    auto r = call(client);
    CHECK(r.status == 0);
    CHECK_THAT(r.error, Catch::Contains("certificate verification failed: certificate has expired"));
  }

  SECTION("it does not speak TLS at all") {
    tcp::acceptor plain(loop.io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    std::thread t([&] {
      // Answers the ClientHello with plain HTTP, then closes.
      tcp::socket s(plain.get_executor());
      beast::error_code ec;
      plain.accept(s, ec);
      char buf[512];
      s.read_some(net::buffer(buf), ec);
      net::write(s, net::buffer(std::string("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")), ec);
      s.close(ec);
    });
    // However the call ends, the thread ends too: shutting the listening
    // socket down wakes an accept that is still waiting.
    struct joiner {
      tcp::acceptor& listener;
      std::thread& thread;
      ~joiner() {
        ::shutdown(listener.native_handle(), SHUT_RDWR);
        thread.join();
      }
    } join{plain, t};
    http_client client(
      loop.io, options("https://127.0.0.1:" + std::to_string(plain.local_endpoint().port()) + "/mcp", pki.ca_file));
    auto r = call(client);
    CHECK(r.status == 0);
    CHECK_THAT(r.error, Catch::Contains("TLS handshake with"));
  }
}

TEST_CASE("https: a client certificate for a server that demands one", "[http_client][tls]") {
  test_pki pki;
  tls_server server(pki.server_cert, pki.server_key, pki.ca_file);
  io_loop loop;
  auto url = "https://127.0.0.1:" + std::to_string(server.port()) + "/mcp";

  SECTION("with one the server's CA issued") {
    auto client_id = issue("bulwark", "", false, &pki.ca);
    auto o = options(url, pki.ca_file);
    o.tls.cert_file = pki.dir.cert("client", client_id);
    o.tls.key_file = pki.dir.key("client", client_id);
    http_client client(loop.io, o);
    auto r = call(client);
    CHECK(r.error.empty());
    CHECK(r.status == 200);
  }

  SECTION("without one") {
    http_client client(loop.io, options(url, pki.ca_file));
    auto r = call(client);
    CHECK(r.status == 0);
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("https: TLS files that cannot be used fail the client's construction", "[http_client][tls]") {
  test_pki pki;
  net::io_context io;
  auto fails_with = [&](const http_client_options& o) -> std::string {
    try {
      http_client client(io, o);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  auto garbage = pki.dir.text("garbage.pem", "not a certificate\n");
  auto o = options("https://127.0.0.1/mcp", garbage);
  CHECK_THAT(fails_with(o), Catch::Contains("cannot use the CA file '" + garbage + "'"));

  o = options("https://127.0.0.1/mcp", pki.ca_file);
  o.tls.cert_file = pki.server_cert;
  CHECK_THAT(fails_with(o), Catch::Contains("needs both its certificate and key files"));

  auto stranger = issue("stranger", "", false);
  o.tls.key_file = pki.dir.key("stranger", stranger);
  auto mismatch = fails_with(o);
  CHECK_THAT(mismatch, Catch::Contains("cannot use the client key '" + o.tls.key_file + "'"));
  CHECK_THAT(mismatch, Catch::Contains("key values mismatch"));

  o.tls.key_file = pki.server_key;
  CHECK(fails_with(o) == "accepted");
  CHECK(fails_with(options("https://example.test/mcp", "")) == "accepted");
}
