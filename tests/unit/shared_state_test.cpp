// Shared state without a Redis server: URL parsing, the `redis` config
// section, the client's breaker when nothing listens, and the health
// verdict while Redis is away. (Against a real redis-server: the
// redis-scale-out end-to-end test.)
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/cache.hpp"
#include "actors/health.hpp"
#include "actors/shared_state.hpp"
#include "config/config.hpp"
#include "tests/unit/support.hpp"
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

TEST_CASE("redis URL: host, port, database and password; anything else is refused", "[shared]") {
  std::string err;
  auto ep = parse_redis_url("redis://10.0.0.5:6380/3", err);
  CHECK(err.empty());
  CHECK(ep.host == "10.0.0.5");
  CHECK(ep.port == 6380);
  CHECK(ep.db == 3);
  ep = parse_redis_url("redis://:s3cret@cache.internal", err);
  CHECK(err.empty());
  CHECK(ep.host == "cache.internal");
  CHECK(ep.port == 6379);
  CHECK(ep.password == "s3cret");
  CHECK(ep.user.empty());
  ep = parse_redis_url("redis://[::1]:7000/0", err);
  CHECK(err.empty());
  CHECK(ep.host == "::1");
  CHECK(ep.port == 7000);
  // An ACL user, and credentials that hold the URL's own delimiters.
  ep = parse_redis_url("redis://bw%2Dgw:p%40ss%3Aw%2frd@cache.internal:6380/1", err);
  CHECK(err.empty());
  CHECK(ep.user == "bw-gw");
  CHECK(ep.password == "p@ss:w/rd");
  CHECK(ep.host == "cache.internal");
  CHECK(ep.db == 1);
  for (auto* bad : {"http://127.0.0.1:6379", "redis://", "redis://h:0", "redis://h:99999", "redis://h:6379/x",
                    "redis://h:port", "redis://user@h", "redis://:@h", "redis://:pa%4@h", "redis://:pa%zz@h"}) {
    err.clear();
    parse_redis_url(bad, err);
    CHECK_FALSE(err.empty());
  }
  err.clear();
  parse_redis_url("redis://alice@h", err);
  CHECK(err.find("a user needs a password") == 0);
}

TEST_CASE("config: the redis section is read strictly, with the key's path in errors", "[shared]") {
  config cfg;
  apply_json(cfg, R"({"redis": {"url": "redis://127.0.0.1:6390/2", "keyPrefix": "blue:", "commandTimeoutMs": 250,
                                "retryMs": 100, "sessionTtlSeconds": 600, "breakerTtlMs": 5000}})",
             "test");
  auto& r = cfg.runtime.ops.redis;
  CHECK(r.url == "redis://127.0.0.1:6390/2");
  CHECK(r.key_prefix == "blue:");
  CHECK(r.command_timeout == 250ms);
  CHECK(r.retry_interval == 100ms);
  CHECK(r.session_ttl == std::chrono::seconds(600));
  CHECK(r.breaker_ttl == 5000ms);
  CHECK(config{}.runtime.ops.redis.url.empty()); // no Redis unless asked for
  CHECK(test::config_error_of(R"({"redis": {"host": "x"}})").find("$.redis.host: unknown key") != std::string::npos);
  CHECK(test::config_error_of(R"({"redis": {"url": "tcp://x:1"}})").find("$.redis.url") != std::string::npos);
  // A refused URL is shown without its password.
  auto refused = test::config_error_of(R"({"redis": {"url": "redis://:hunter2@h:99999"}})");
  CHECK(refused.find("$.redis.url") != std::string::npos);
  CHECK(refused.find("port must be between") != std::string::npos);
  CHECK(refused.find("hunter2") == std::string::npos);
  CHECK(test::config_error_of(R"({"redis": {"commandTimeoutMs": 0}})").find("$.redis.commandTimeoutMs")
        != std::string::npos);

  config flags;
  std::string url = "redis://127.0.0.1:6399/1";
  const char* argv[] = {"bulwark", "--redis", url.c_str()};
  REQUIRE(apply_args(flags, 3, const_cast<char**>(argv)));
  CHECK(flags.runtime.ops.redis.url == url);
  CHECK(describe(flags).find(url) != std::string::npos);
  const char* bad[] = {"bulwark", "--redis", "127.0.0.1:6379"};
  CHECK_THROWS_AS(apply_args(flags, 3, const_cast<char**>(bad)), config_error);
}

TEST_CASE("redis client: with nothing listening its breaker is open and commands fail at once", "[shared]") {
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

TEST_CASE("health assessment: Redis away is degraded with the reason", "[shared]") {
  health_thresholds t;
  health_inputs in;
  CHECK(assess(in, t).level == health_level::healthy);
  in.shared_state_problem = "Connection refused";
  auto v = assess(in, t);
  CHECK(v.level == health_level::degraded);
  REQUIRE(v.reasons.size() == 1);
  CHECK(v.reasons[0].find("redis unreachable (Connection refused)") == 0);
}

TEST_CASE("shared cache: an invalidation prefix starts a new generation of the scope that covers it", "[shared]") {
  CHECK(invalidation_scope("web\n") == "s:web");
  CHECK(invalidation_scope("web\ntools/call\n") == "m:web\ntools/call");
  // Deeper than a method: the whole method (more than asked, never less).
  CHECK(invalidation_scope("web\ntools/call\n*\n{\"name\":\"x\"}") == "m:web\ntools/call");
  // A partial method or service name.
  CHECK(invalidation_scope("web\ntools/") == "s:web");
  CHECK(invalidation_scope("we") == "all");
  CHECK(invalidation_scope("") == "all");
  // Services whose names share a beginning are separate scopes.
  CHECK(invalidation_scope("web2\n") != invalidation_scope("web\n"));
}

TEST_CASE("unknown session ids: remembered for a while, bounded, forgotten on demand", "[shared]") {
  using clock = recent_misses::clock;
  recent_misses m(3, 5000ms);
  auto t = clock::now();
  CHECK_FALSE(m.contains("a", t));
  m.add("a", t);
  CHECK(m.contains("a", t + 4999ms));
  CHECK_FALSE(m.contains("a", t + 5000ms)); // expired, and dropped
  CHECK(m.size() == 0);
  // At most three: the oldest goes first.
  for (auto id : {"a", "b", "c", "d"})
    m.add(id, t);
  CHECK(m.size() == 3);
  CHECK_FALSE(m.contains("a", t));
  CHECK(m.contains("d", t));
  // Added again, an id counts from its latest addition.
  m.add("b", t + 1000ms);
  m.add("e", t + 1000ms);
  CHECK(m.contains("b", t + 5500ms));
  CHECK_FALSE(m.contains("c", t)); // the oldest of the others went
  // Created or ended here: asked again at once.
  m.forget("b");
  CHECK_FALSE(m.contains("b", t + 1000ms));
  // Many additions keep it bounded.
  for (int i = 0; i < 1000; ++i)
    m.add("x" + std::to_string(i % 7), t);
  CHECK(m.size() <= 3);
  recent_misses none(0, 5000ms);
  none.add("a", t);
  CHECK_FALSE(none.contains("a", t));
}
