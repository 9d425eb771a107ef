// The HTTP client over TLS (https:// services): against a TLS server on
// loopback whose certificates are issued here, by a test CA, per test.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "actors/operations.hpp"
#include "tests/unit/io_loop.hpp"
#include "tests/unit/simulated.hpp"
#include "transport/http_client.hpp"

using namespace bulwark;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
namespace fs = std::filesystem;

namespace {

// -- certificates --------------------------------------------------------------

struct key_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct cert_deleter {
  void operator()(X509* c) const { X509_free(c); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, key_deleter>;
using cert_ptr = std::unique_ptr<X509, cert_deleter>;

/// A key and its certificate.
struct identity {
  key_ptr key;
  cert_ptr cert;
};

/// Issues a P-256 certificate for `cn` with subjectAltName `san` (empty:
/// none), signed by `issuer` (null: self-signed), valid from an hour ago for
/// a day.
identity issue(const std::string& cn, const std::string& san, bool ca, const identity* issuer = nullptr) {
  identity id;
  id.key.reset(EVP_EC_gen("P-256"));
  REQUIRE(id.key);
  id.cert.reset(X509_new());
  auto* x = id.cert.get();
  static std::atomic<long> serial{1};
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, id.key.get());
  auto* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer->cert.get() : x;
  X509_set_issuer_name(x, X509_get_subject_name(signer));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, signer, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    REQUIRE(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (ca)
    add(NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!san.empty())
    add(NID_subject_alt_name, san);
  REQUIRE(X509_sign(x, issuer ? issuer->key.get() : id.key.get(), EVP_sha256()) > 0);
  return id;
}

/// A directory of PEM files, removed at the end of the test.
struct pem_dir {
  fs::path dir;

  pem_dir() {
    char tmpl[] = "/tmp/bulwark-tls-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~pem_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::string cert(const std::string& stem, const identity& id) {
    auto path = (dir / (stem + ".crt")).string();
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    PEM_write_X509(f, id.cert.get());
    std::fclose(f);
    return path;
  }

  std::string key(const std::string& stem, const identity& id) {
    auto path = (dir / (stem + ".key")).string();
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    PEM_write_PrivateKey(f, id.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    return path;
  }

  std::string text(const std::string& name, const std::string& content) {
    auto path = (dir / name).string();
    std::ofstream(path) << content;
    return path;
  }
};

// -- a TLS server ----------------------------------------------------------------

/// Answers every POST with a JSON body naming the request's body size, over
/// keep-alive TLS connections, on its own thread. With `client_ca`, it
/// demands a client certificate issued by that CA.
class tls_server {
public:
  tls_server(const std::string& cert_file, const std::string& key_file, const std::string& client_ca = {}) {
    ctx_.use_certificate_chain_file(cert_file);
    ctx_.use_private_key_file(key_file, ssl::context::pem);
    if (!client_ca.empty()) {
      ctx_.load_verify_file(client_ca);
      ctx_.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~tls_server() {
    net::post(io_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int accepted() const { return accepted_.load(); }
  int handshakes() const { return handshakes_.load(); }
  int requests() const { return requests_.load(); }
  std::string last_body() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return last_body_;
  }

private:
  struct session {
    explicit session(tcp::socket s, ssl::context& ctx) : stream(std::move(s), ctx) {}
    ssl::stream<tcp::socket> stream;
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec)
        return;
      ++accepted_;
      auto sn = std::make_shared<session>(std::move(s), ctx_);
      sn->stream.async_handshake(ssl::stream_base::server, [this, sn](beast::error_code ec) {
        if (ec)
          return;
        ++handshakes_;
        read(sn);
      });
      accept();
    });
  }

  void read(const std::shared_ptr<session>& sn) {
    sn->req = {};
    http::async_read(sn->stream, sn->buf, sn->req, [this, sn](beast::error_code ec, std::size_t) {
      if (ec)
        return;
      {
        std::lock_guard<std::mutex> guard(mtx_);
        last_body_ = sn->req.body();
      }
      ++requests_;
      sn->res = {};
      sn->res.result(http::status::ok);
      sn->res.version(11);
      sn->res.set(http::field::content_type, "application/json");
      sn->res.body() =
        R"({"jsonrpc":"2.0","id":1,"result":{"received":)" + std::to_string(sn->req.body().size()) + "}}";
      sn->res.keep_alive(true);
      sn->res.prepare_payload();
      http::async_write(sn->stream, sn->res, [this, sn](beast::error_code ec, std::size_t) {
        if (!ec)
          read(sn);
      });
    });
  }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> guard_{io_.get_executor()};
  ssl::context ctx_{ssl::context::tls_server};
  tcp::acceptor acceptor_{io_};
  std::atomic<int> accepted_{0};
  std::atomic<int> handshakes_{0};
  std::atomic<int> requests_{0};
  mutable std::mutex mtx_;
  std::string last_body_;
  std::thread thread_;
};

// -- the client side -------------------------------------------------------------

using test::io_loop;

const std::string ping = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";

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

/// A CA, and a server certificate it issued for 127.0.0.1 and localhost.
struct test_pki {
  pem_dir dir;
  identity ca = issue("Bulwark test CA", "", true);
  identity server = issue("localhost", "DNS:localhost,IP:127.0.0.1", false, &ca);
  std::string ca_file = dir.cert("ca", ca);
  std::string server_cert = dir.cert("server", server);
  std::string server_key = dir.key("server", server);
};

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

TEST_CASE("https: alerts reach a webhook over TLS, verified against its caFile", "[http_client][tls][alerts]") {
  test_pki pki;
  tls_server server(pki.server_cert, pki.server_key);
  io_loop loop;
  test::simulated_system s;
  s.env->io = &loop.io;
  auto& webhook = s.env->opts.ops.webhook;
  webhook.url = "https://localhost:" + std::to_string(server.port()) + "/alerts";
  webhook.attempts = 1;
  SECTION("trusted: the alert is posted") {
    webhook.tls.ca_file = pki.ca_file;
  }
  SECTION("the system's store does not know the test CA: nothing is posted") {}
  auto alerts = spawn_alert_manager(*s.sys, s.env);
  s.spawned.push_back(caf::actor_cast<caf::actor>(alerts));
  s.sched->run();
  health_sample h;
  h.now = std::chrono::steady_clock::now();
  h.wall = std::chrono::system_clock::now();
  h.open_breakers = {"svc"};
  caf::anon_send(alerts, atom::sample_v, h);
  s.sched->run();
  // The delivery ends either way: a request, or a refused handshake.
  for (int i = 0; i < 300 && server.requests() == 0 && !(server.accepted() > 0 && webhook.tls.ca_file.empty()); ++i)
    std::this_thread::sleep_for(10ms);
  if (webhook.tls.ca_file.empty()) {
    std::this_thread::sleep_for(100ms);
    CHECK(server.accepted() >= 1);
    CHECK(server.requests() == 0);
  } else {
    REQUIRE(server.requests() == 1);
    CHECK_THAT(server.last_body(), Catch::Contains(R"("rule":"breaker_open")"));
  }
}
