// The configuration's `http` section: its limits and timeouts are read
// strictly (errors name the key's path), and the sample config lists them
// with their defaults.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "config/reload.hpp"

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

// -- reloads: which keys changed, which need a restart, what is shown -----------------

namespace {

json::value doc(const std::string& text) {
  json::value v;
  json::parse_error err;
  REQUIRE(json::parse(text, v, err));
  return v;
}

} // namespace

TEST_CASE("config: a reload plan names the changed keys and those that need a restart") {
  auto before = doc(R"({"http":{"port":8080},"mcpServers":{"a":{"url":"http://x/a"}},
                        "gateway":{"policy":{"deny":["a:x"]},"prefix":"always"},"log":{"level":"info"}})");
  SECTION("nothing changed") {
    auto plan = plan_reload(before, before);
    CHECK(plan.changed.empty());
    CHECK(plan.restart_required.empty());
  }
  SECTION("an added service is one key; a policy and the log level change in place") {
    auto after = doc(R"({"http":{"port":8080},"mcpServers":{"a":{"url":"http://x/a"},"b":{"command":"srv"}},
                         "gateway":{"policy":{},"prefix":"always"},"log":{"level":"debug"}})");
    auto plan = plan_reload(before, after);
    CHECK(plan.changed == std::vector<std::string>{"$.gateway.policy.deny", "$.log.level", "$.mcpServers.b"});
    CHECK(plan.restart_required.empty());
  }
  SECTION("the listen port and the scheduler need a restart, keys of a section that appears are named one by one") {
    auto after = doc(R"({"http":{"port":9090},"mcpServers":{"a":{"url":"http://x/a"}},
                         "gateway":{"policy":{"deny":["a:x"]},"prefix":"always"},"log":{"level":"info"},
                         "actors":{"scheduler":"stealing","workers":2}})");
    auto plan = plan_reload(before, after);
    CHECK(plan.restart_required
          == std::vector<std::string>{"$.actors.scheduler", "$.actors.workers", "$.http.port"});
  }
  SECTION("a whole file against the embedded defaults") {
    auto plan = plan_reload(json::value{}, before);
    CHECK(plan.restart_required == std::vector<std::string>{"$.http.port"});
    CHECK(std::find(plan.changed.begin(), plan.changed.end(), "$.mcpServers") != plan.changed.end());
  }
}

TEST_CASE("config: the configuration shown to operators has its secrets redacted") {
  auto shown = redacted(doc(R"({"mcpServers":{"a":{"url":"http://x","headers":{"Authorization":"Bearer k"},
                                                   "env":{"TOKEN":"t"}}},
                                "admin":{"tokenSha256":"abc"},"redis":{"url":"redis://:pw@h:6379/0"},
                                "alerts":{"webhook":{"url":"http://w","headers":{"X-Key":"s"}}}})"));
  auto text = json::dump(shown);
  for (auto* secret : {"Bearer k", "\"t\"", "abc", ":pw@", "\"s\""})
    CHECK(text.find(secret) == std::string::npos);
  CHECK(shown["mcpServers"]["a"]["url"].as_string() == "http://x");
  CHECK(shown["redis"]["url"].as_string() == "redis://[redacted]@h:6379/0");
}

TEST_CASE("config: an error's text becomes its key path and message") {
  auto e = error_entry("config: $.services.a.timeoutMs: must be an integer");
  CHECK(e["path"].as_string() == "$.services.a.timeoutMs");
  CHECK(e["message"].as_string() == "must be an integer");
  CHECK(error_entry("config: cannot read f.json")["path"].as_string() == "$");
}
