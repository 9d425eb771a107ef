// bulwark-console's side of the admin API: one request at a time, each
// bounded by a timeout and cut short by Ctrl-C, over Bulwark's own HTTP
// client (transport/http_client).
#pragma once

#include <chrono>
#include <string>

#include "messages/json.hpp"

namespace bulwark::console {

/// One answer from the admin API.
struct reply {
  /// The HTTP status; 0 when no answer came.
  int status = 0;
  /// What went wrong: the transport's error, the server's error text or an
  /// answer that is not JSON. Empty on success.
  std::string problem;
  json::value body;
  bool ok() const { return status >= 200 && status < 300 && problem.empty(); }
};

class admin_client {
public:
  /// `host` without brackets, also for IPv6 literals.
  admin_client(std::string host, std::string port, std::string token);

  /// GET /admin/api/VIEW.
  reply get(const std::string& view, std::chrono::steady_clock::duration timeout = std::chrono::seconds(5)) const;
  /// POST /admin/api/ACTION with a JSON body and the admin token.
  reply post(const std::string& action, const json::value& body) const;
  /// http://HOST:PORT, as errors and greetings name the server.
  std::string url() const;

private:
  reply exchange(const char* method, const std::string& path, std::string body,
                 std::chrono::steady_clock::duration timeout) const;

  std::string host_, port_, token_;
};

} // namespace bulwark::console
