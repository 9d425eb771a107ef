#include "tools/console_client.hpp"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "tools/console_terminal.hpp"
#include "transport/http_client.hpp"
#include "transport/http_server.hpp"

namespace bulwark::console {

namespace {

/// What an error answer without a message of its own is called.
std::string refusal_text(int status) {
  auto r = http_reason_phrase(status);
  return r.empty() ? std::string("refused") : std::string(r);
}

} // namespace

admin_client::admin_client(std::string host, std::string port, std::string token)
    : host_(std::move(host)), port_(std::move(port)), token_(std::move(token)) {}

std::string admin_client::url() const {
  return "http://" + (host_.find(':') == std::string::npos ? host_ : "[" + host_ + "]") + ":" + port_;
}

reply admin_client::get(const std::string& view, std::chrono::steady_clock::duration timeout) const {
  return exchange("GET", view, "", timeout);
}

reply admin_client::post(const std::string& action, const json::value& body) const {
  return exchange("POST", action, json::dump(body), std::chrono::seconds(5));
}

/// One request on its own connection and its own I/O loop, run here until
/// the answer, the timeout or Ctrl-C.
reply admin_client::exchange(const char* method, const std::string& path, std::string body,
                             std::chrono::steady_clock::duration timeout) const {
  namespace net = boost::asio;
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  reply r;
  auto limit = duration_cast<milliseconds>(timeout);
  http_client_options o;
  o.url = url() + "/admin/api/" + path;
  o.max_connections = 1;
  o.connect_timeout = limit;
  o.headers = {{"User-Agent", "bulwark-console"}, {"Accept", "application/json"}};
  if (!token_.empty())
    o.headers.emplace_back("Authorization", "Bearer " + token_);

  net::io_context io;
  http_response answer;
  bool finished = false, cut = false;
  try {
    http_client client(io, std::move(o));
    net::posix::stream_descriptor ctrl_c(io);
    auto id = client.send(
      method, std::move(body), {}, {},
      [&](http_response res) {
        answer = std::move(res);
        finished = true;
        if (ctrl_c.is_open())
          ctrl_c.cancel();
      },
      limit);
    if (interrupt_fd() >= 0) {
      if (int fd = ::dup(interrupt_fd()); fd >= 0) {
        ctrl_c.assign(fd);
        ctrl_c.async_wait(net::posix::descriptor_base::wait_read, [&](boost::system::error_code ec) {
          if (!ec && !finished) {
            cut = true;
            client.cancel(id);
          }
        });
      }
    }
    while (!finished && io.run_one() > 0) {
    }
    // Closes the connection and ends the client's timers, so that the loop
    // runs dry.
    client.stop();
    if (ctrl_c.is_open())
      ctrl_c.close();
    io.run();
  } catch (const std::exception& e) {
    r.problem = e.what();
    return r;
  }

  if (cut) {
    r.problem = "interrupted";
    return r;
  }
  if (answer.timed_out) {
    r.problem =
      "no answer within " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s";
    return r;
  }
  if (!answer.error.empty()) {
    // The console names the server itself.
    auto prefix = "cannot connect to " + url() + ": ";
    r.problem = answer.error.rfind(prefix, 0) == 0 ? answer.error.substr(prefix.size()) : answer.error;
    return r;
  }
  r.status = answer.status;
  json::parse_error err;
  if (!answer.body.empty() && !json::parse(answer.body, r.body, err)) {
    r.body = json::value();
    r.problem = "the answer is not JSON: " + answer.body.substr(0, 120);
  } else if (r.status >= 400) {
    r.problem = r.body["error"].is_string() ? r.body["error"].as_string() : refusal_text(r.status);
    if (r.problem.empty())
      r.problem = "refused";
  } else if (r.status < 200 || r.status >= 300) {
    r.problem = "unexpected answer";
  }
  return r;
}

} // namespace bulwark::console
