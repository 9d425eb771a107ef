// The Redis client without a Redis server: with nothing listening, its
// breaker is open. (Against a real redis-server: the redis-scale-out
// end-to-end test.)
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/redis_client.hpp"

using namespace bulwark;
using namespace std::chrono_literals;

namespace {

/// A loopback port nothing listens on (bound, then closed again).
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

} // namespace

TEST_CASE("redis client: with nothing listening its breaker is open and commands fail at once", "[redis_client]") {
  redis_settings s;
  s.url = "redis://127.0.0.1:" + std::to_string(closed_port()) + "/0";
  s.retry_interval = 20ms;
  redis_client client(s, "test");
  CHECK_FALSE(client.available());
  client.start();
  // Give the first connection attempt time to fail.
  for (int i = 0; i < 100 && client.problem() == "not connected yet"; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK_FALSE(client.available());
  CHECK(client.problem().find("refused") != std::string::npos);
  std::atomic<bool> answered{false};
  auto caller = std::this_thread::get_id();
  client.command({"PING"}, [&](redis_reply r) {
    CHECK(r.failed());
    CHECK(r.str.find("redis unavailable") == 0);
    CHECK(std::this_thread::get_id() == caller); // at once, no waiting
    answered = true;
  });
  CHECK(answered);
  auto status = client.status();
  CHECK(status["breaker"].as_string() == "open");
  CHECK(status["available"].as_bool() == false);
  CHECK(client.key("x") == "bulwark:x");
  client.stop();
}
