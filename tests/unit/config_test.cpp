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
#include "config/settings_table.hpp"

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
  CHECK_THROWS_WITH(apply_json(cfg, R"({"http":{"writeTimeout":5}})", "t"), "config: $.http.writeTimeout: unknown key");
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
    CHECK(plan.restart_required == std::vector<std::string>{"$.actors.scheduler", "$.actors.workers", "$.http.port"});
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

// -- the table of settings: one declaration per key, everything else from it --------------

namespace {

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> paths_of(const std::vector<config_error_entry>& errors) {
  std::vector<std::string> out;
  for (auto& e : errors)
    out.push_back(e.path);
  return out;
}

} // namespace

TEST_CASE("config: the generated reference and sample config are current") {
  // Regenerate with: build/bulwark --print-config-reference markdown > docs/configuration.md
  //             and: build/bulwark --print-config-reference json > config/examples/default.json
  CHECK(settings_reference_markdown() == file_text(std::string(BULWARK_SOURCE_DIR) + "/docs/configuration.md"));
  CHECK(settings_reference_json() == file_text(std::string(BULWARK_EXAMPLES_DIR) + "/default.json"));
}

TEST_CASE("config: every bad key of a file is reported, each with its path") {
  auto errors = check_json(R"({"http":{"port":"80","writeTimeout":5,"threads":0},
                               "log":{"level":"loud"},"actors":{"scheduler":"eager"},
                               "mcpServers":{"a":{"comand":"x"},"b":{"url":"ftp://h"}},
                               "services":{"b":{"timeoutMs":0,"retry":{"attempts":11}}},
                               "sessions":7})");
  CHECK(paths_of(errors)
        == std::vector<std::string>{"$.http.port", "$.http.threads", "$.http.writeTimeout", "$.sessions",
                                    "$.actors.scheduler", "$.mcpServers.a.comand", "$.mcpServers.b.url",
                                    "$.services.b.timeoutMs", "$.services.b.retry.attempts", "$.log.level"});
  CHECK(errors[4].message == "expected \"fused\" or \"stealing\", got \"eager\"");
  CHECK(check_json(R"({"http":{"port":8081}})").empty());
  CHECK(paths_of(check_json("{")) == std::vector<std::string>{""});
  // The exception carries them all; what() is the first one's text.
  config cfg;
  try {
    apply_json(cfg, R"({"http":{"port":-1,"path":"mcp"},"queue":{"capacity":0}})", "t");
    FAIL("accepted");
  } catch (const config_error& e) {
    CHECK(std::string(e.what()) == "config: $.http.port: must be between 0 and 65535");
    CHECK(paths_of(e.errors()) == std::vector<std::string>{"$.http.port", "$.http.path", "$.queue.capacity"});
  }
  // A refused file changes nothing, not even its good keys.
  CHECK_THROWS(apply_json(cfg, R"({"http":{"port":9000,"threads":0}})", "t"));
  CHECK(cfg.http.port == 8080);
}

TEST_CASE("config: environment variables and flags come from the table") {
  auto args = [](std::vector<const char*> argv) {
    argv.insert(argv.begin(), "bulwark");
    config cfg;
    apply_args(cfg, static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
    return cfg;
  };
  ::unsetenv("BULWARK_CONFIG");
  auto cfg = args({"--port", "0", "--workers", "3", "--dev", "--no-builtin-tools", "--log-level", "debug", "--fixtures",
                   "--fault-tools", "--key-file", "/k"});
  CHECK(cfg.http.port == 0);
  CHECK(cfg.workers == 3);
  CHECK(cfg.error_mode == mcp::error_mode::development);
  CHECK(!cfg.builtin_tools);
  CHECK(cfg.log == log_level::debug);
  CHECK((cfg.fixtures && cfg.fault_tools));
  CHECK(cfg.auth.key_file == "/k");
  CHECK(args({"--stdio", "--no-http"}).stdio);
  CHECK_THROWS_WITH(args({"--port", "65536"}), "config: --port: must be an integer between 0 and 65535");
  CHECK_THROWS_WITH(
    args({"--log-level", "loud"}),
    "config: --log-level: must be one of debug, info, notice, warning, error, critical, alert, emergency");
  CHECK_THROWS_WITH(args({"--bogus"}), "config: unknown option --bogus (see --help)");
  CHECK_THROWS_WITH(args({"--port"}), "config: --port needs a value");

  ::setenv("BULWARK_PORT", "70000", 1);
  CHECK_THROWS_WITH(args({}), "config: environment BULWARK_PORT: must be an integer between 0 and 65535");
  ::setenv("BULWARK_PORT", "9001", 1);
  ::setenv("BULWARK_ADMIN_TOKEN", "t0ken", 1);
  auto env = args({});
  ::unsetenv("BULWARK_PORT");
  ::unsetenv("BULWARK_ADMIN_TOKEN");
  CHECK(env.http.port == 9001);
  CHECK(env.runtime.ops.admin_token_sha256.size() == 64);

  auto help = usage();
  for (auto& s : config_settings()) {
    if (!s.flag.empty())
      CHECK(help.find(s.flag) != std::string::npos);
    if (!s.env.empty())
      CHECK(help.find(s.env) != std::string::npos);
  }
}

TEST_CASE("config: --print-config shows every key of the table, secrets redacted") {
  config cfg;
  apply_json(cfg, R"({"admin":{"tokenSha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
                      "mcpServers":{"a":{"url":"http://h/mcp","headers":{"Authorization":"Bearer s3cret"}}},
                      "services":{"a":{"timeoutMs":1234}}})",
             "t");
  auto text = describe(cfg);
  CHECK(text.find("s3cret") == std::string::npos);
  CHECK(text.find("0123456789abcdef0123") == std::string::npos);
  json::value shown = doc(text);
  CHECK(shown["source"].as_string() == "t");
  for (auto& s : config_settings()) {
    if (s.described)
      continue;
    const json::value* at = &shown;
    std::string rest = s.path;
    for (auto dot = rest.find('.'); at && dot != std::string::npos; dot = rest.find('.')) {
      at = at->find(rest.substr(0, dot));
      rest = rest.substr(dot + 1);
    }
    INFO(s.path);
    CHECK((at && at->find(rest)));
  }
  CHECK(shown["services"]["a"]["timeoutMs"].as_int() == 1234);
  CHECK(shown["services"]["a"]["retry"]["attempts"].as_int() == 3);
  CHECK(shown["mcpServers"]["a"]["headers"].as_string() == "[redacted]");
}

TEST_CASE("config: the live keys come from the table") {
  CHECK(live_keys()
        == std::vector<std::string>{"$.auth.keyFile",
                                    "$.auth.oauth.issuer",
                                    "$.auth.oauth.authorizationServers",
                                    "$.auth.oauth.jwksFile",
                                    "$.auth.oauth.clockSkewSeconds",
                                    "$.auth.oauth.scopesSupported",
                                    "$.errors",
                                    "$.shutdown",
                                    "$.gateway.prefix",
                                    "$.gateway.separator",
                                    "$.gateway.gatewayTools",
                                    "$.gateway.policy",
                                    "$.gateway.agents",
                                    "$.mcpServers",
                                    "$.services",
                                    "$.rateLimits",
                                    "$.queue",
                                    "$.cache",
                                    "$.health",
                                    "$.alerts",
                                    "$.log"});
  CHECK(live_key("$.log.level"));
  CHECK(live_key("$.services.a.retry.attempts"));
  CHECK(!live_key("$.http.port"));
  CHECK(!live_key("$.gateway.childMaxRestarts"));
  CHECK(!live_key("$.auth.mode"));
  CHECK(!live_key("$.auth.oauth.resource"));
}
