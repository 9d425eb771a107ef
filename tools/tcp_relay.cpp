// The floor under the gateway benchmark: a bare TCP relay that copies bytes
// between a client and one upstream address on one thread, without parsing
// anything. What it adds to a call is what one more loopback hop costs on the
// machine (two receives, two sends, the wake-ups between three processes);
// whatever the gateway adds beyond it is Bulwark's own work.
//
//   bulwark-tcp-relay --to HOST:PORT [--port N]
//
// Prints {"listening":PORT} and relays until SIGINT or SIGTERM.
#include <array>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

/// One direction of a relayed connection: reads from `from`, writes to `to`.
struct pipe_end {
  tcp::socket* from;
  tcp::socket* to;
  std::array<char, 16 * 1024> buf;
};

class relayed : public std::enable_shared_from_this<relayed> {
public:
  relayed(tcp::socket client, net::io_context& io) : client_(std::move(client)), upstream_(io) {}

  void start(const tcp::endpoint& to) {
    upstream_.async_connect(to, [self = shared_from_this()](error_code ec) {
      if (ec)
        return self->close();
      for (auto* s : {&self->client_, &self->upstream_}) {
        s->set_option(tcp::no_delay(true), ec);
        s->non_blocking(true, ec);
      }
      self->up_ = {&self->client_, &self->upstream_, {}};
      self->down_ = {&self->upstream_, &self->client_, {}};
      self->read(self->up_);
      self->read(self->down_);
    });
  }

private:
  void read(pipe_end& p) {
    p.from->async_read_some(net::buffer(p.buf), [self = shared_from_this(), &p](error_code ec, std::size_t n) {
      if (ec)
        return self->close();
      self->forward(p, n);
    });
  }

  /// Sends what the socket takes at once; waits for a handler only for the rest.
  void forward(pipe_end& p, std::size_t n) {
    error_code ec;
    auto sent = p.to->write_some(net::buffer(p.buf.data(), n), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      ec = {};
      sent = 0;
    }
    if (ec)
      return close();
    if (sent == n)
      return read(p);
    net::async_write(*p.to, net::buffer(p.buf.data() + sent, n - sent),
                     [self = shared_from_this(), &p](error_code ec, std::size_t) {
                       if (ec)
                         return self->close();
                       self->read(p);
                     });
  }

  void close() {
    error_code ec;
    client_.close(ec);
    upstream_.close(ec);
  }

  tcp::socket client_;
  tcp::socket upstream_;
  pipe_end up_{};
  pipe_end down_{};
};

void accept(tcp::acceptor& acceptor, net::io_context& io, const tcp::endpoint& to) {
  acceptor.async_accept([&acceptor, &io, to](error_code ec, tcp::socket s) {
    if (ec)
      return;
    std::make_shared<relayed>(std::move(s), io)->start(to);
    accept(acceptor, io, to);
  });
}

} // namespace

int main(int argc, char** argv) {
  std::string to;
  unsigned short port = 0;
  bool usage_error = false;
  for (int i = 1; i < argc && !usage_error; ++i) {
    std::string a = argv[i];
    if (a == "--to" && i + 1 < argc)
      to = argv[++i];
    else if (a == "--port" && i + 1 < argc)
      port = static_cast<unsigned short>(std::atoi(argv[++i]));
    else
      usage_error = true;
  }
  auto colon = to.rfind(':');
  if (usage_error || to.empty() || colon == std::string::npos) {
    std::cerr << "usage: bulwark-tcp-relay --to HOST:PORT [--port N]\n";
    return 2;
  }
  error_code ec;
  auto address = net::ip::make_address(to.substr(0, colon), ec);
  if (ec) {
    std::cerr << "bulwark-tcp-relay: --to needs a numeric address, not '" << to << "'\n";
    return 2;
  }
  tcp::endpoint target(address, static_cast<unsigned short>(std::atoi(to.c_str() + colon + 1)));
  net::io_context io(1);
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  net::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](error_code, int) { io.stop(); });
  accept(acceptor, io, target);
  std::cout << "{\"listening\":" << acceptor.local_endpoint().port() << "}" << std::endl;
  io.run();
  return 0;
}
