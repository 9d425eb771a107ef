// The configuration's `http` section: its limits and timeouts are read
// strictly (errors name the key's path), and the sample config lists them
// with their defaults.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "config/config.hpp"

using namespace bulwark;
using namespace std::chrono_literals;

TEST_CASE("config: the http write timeout and write queue limit") {
  config cfg;
  CHECK(cfg.http.write_timeout == 30s);
  CHECK(cfg.http.write_queue_limit == std::size_t{4} << 20);
  apply_json(cfg, R"({"http":{"writeTimeoutSeconds":5,"writeQueueLimitBytes":65536}})", "t");
  CHECK(cfg.http.write_timeout == 5s);
  CHECK(cfg.http.write_queue_limit == 65536);
  // The other timeouts are untouched.
  CHECK(cfg.http.read_timeout == 30s);
  CHECK(cfg.http.idle_timeout == 120s);

  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"writeTimeoutSeconds":0}})", "t"),
                    "config: $.http.writeTimeoutSeconds: must be between 1 and 3600");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"writeTimeoutSeconds":3601}})", "t"),
                    "config: $.http.writeTimeoutSeconds: must be between 1 and 3600");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"writeTimeoutSeconds":"30"}})", "t"),
                    "config: $.http.writeTimeoutSeconds: must be an integer");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"writeTimeoutSeconds":1.5}})", "t"),
                    "config: $.http.writeTimeoutSeconds: must be an integer");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"writeQueueLimitBytes":16383}})", "t"),
                    "config: $.http.writeQueueLimitBytes: must be between 16384 and 1073741824");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"writeQueueLimitBytes":1073741825}})", "t"),
                    "config: $.http.writeQueueLimitBytes: must be between 16384 and 1073741824");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"writeQueueLimitBytes":-1}})", "t"),
                    "config: $.http.writeQueueLimitBytes: must be between 16384 and 1073741824");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"writeTimeout":5}})", "t"),
                    "config: $.http.writeTimeout: unknown key");
  // A refused value leaves the setting as it was.
  CHECK(cfg.http.write_timeout == 5s);
  CHECK(cfg.http.write_queue_limit == 65536);
}

TEST_CASE("config: the http connection limits per address and per identity") {
  config cfg;
  CHECK(cfg.http.max_connections_per_address == 512);
  CHECK(cfg.http.max_connections_per_identity == 512);
  apply_json(cfg, R"({"http":{"maxConnectionsPerAddress":64,"maxConnectionsPerIdentity":16}})", "t");
  CHECK(cfg.http.max_connections_per_address == 64);
  CHECK(cfg.http.max_connections_per_identity == 16);
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"maxConnectionsPerIdentity":0}})", "t"),
                    "config: $.http.maxConnectionsPerIdentity: must be between 1 and 1000000");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"maxConnectionsPerIdentity":"16"}})", "t"),
                    "config: $.http.maxConnectionsPerIdentity: must be an integer");
  CHECK(cfg.http.max_connections_per_identity == 16);
}

TEST_CASE("config: the sample config lists the http settings with their defaults") {
  std::ifstream in(std::string(BULWARK_EXAMPLES_DIR) + "/default.json");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  config cfg;
  cfg.http.write_timeout = 1s;
  cfg.http.write_queue_limit = 1;
  cfg.http.read_timeout = 1s;
  cfg.http.idle_timeout = 1s;
  cfg.http.max_connections_per_address = 1;
  cfg.http.max_connections_per_identity = 1;
  apply_json(cfg, text.str(), "default.json");
  http_options defaults;
  CHECK(cfg.http.write_timeout == defaults.write_timeout);
  CHECK(cfg.http.write_queue_limit == defaults.write_queue_limit);
  CHECK(cfg.http.read_timeout == defaults.read_timeout);
  CHECK(cfg.http.idle_timeout == defaults.idle_timeout);
  CHECK(cfg.http.max_connections_per_address == defaults.max_connections_per_address);
  CHECK(cfg.http.max_connections_per_identity == defaults.max_connections_per_identity);
}
