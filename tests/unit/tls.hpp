// Test TLS: certificates issued here by a test CA, and a TLS server on
// loopback that answers every POST, for the tests of https:// clients.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace bulwark::test {

namespace tls {
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
namespace fs = std::filesystem;
} // namespace tls

using namespace tls;

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
inline identity issue(const std::string& cn, const std::string& san, bool ca, const identity* issuer = nullptr) {
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

/// A CA, and a server certificate it issued for 127.0.0.1 and localhost.
struct test_pki {
  pem_dir dir;
  identity ca = issue("Bulwark test CA", "", true);
  identity server = issue("localhost", "DNS:localhost,IP:127.0.0.1", false, &ca);
  std::string ca_file = dir.cert("ca", ca);
  std::string server_cert = dir.cert("server", server);
  std::string server_key = dir.key("server", server);
};

} // namespace bulwark::test
