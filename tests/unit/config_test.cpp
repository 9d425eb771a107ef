// The configuration: its sections are read strictly (errors name the key's
// path), every sample config is accepted, and the table of settings is the
// one source of the keys, their flags, variables and documentation.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "config/settings_table.hpp"
#include "tests/unit/support.hpp"

using namespace bulwark;
using namespace std::chrono_literals;
using test::config_error_of;
using test::doc;
using test::file_text;

TEST_CASE("config: the http write timeout and write queue limit", "[config]") {
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

TEST_CASE("config: the http connection limits per address and per identity", "[config]") {
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

TEST_CASE("config: the sample config lists the http settings with their defaults", "[config]") {
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

TEST_CASE("mcpServers and services are read in the shape other clients use, strictly", "[config]") {
  config cfg;
  apply_json(cfg, R"({
    "mcpServers": {
      "files": {"command": "npx", "args": ["-y", "server"], "env": {"A": "1"}, "cwd": "/tmp"},
      "remote": {"url": "http://127.0.0.1:9000/mcp", "headers": {"Authorization": "Bearer x"}}
    },
    "gateway": {"prefix": "never", "separator": "."},
    "services": {"remote": {"timeoutMs": 2500, "retry": {"attempts": 2}, "breaker": {"openMs": 5000},
                            "fallback": "static", "fallbackMessage": "try later", "idempotentTools": ["get"]}}
  })",
             "test");
  REQUIRE(cfg.gateway.services.size() == 2);
  auto& files = cfg.gateway.services[0];
  CHECK(files.is_stdio());
  CHECK(files.args.size() == 2);
  CHECK(files.env.at("A") == "1");
  auto& remote = cfg.gateway.services[1];
  CHECK(remote.headers.at(0).second == "Bearer x");
  CHECK(remote.settings.timeout == 2500ms);
  CHECK(remote.settings.retry.attempts == 2);
  CHECK(remote.settings.breaker.open_duration == 5000ms);
  CHECK(remote.settings.fallback == fallback_mode::static_message);
  CHECK(cfg.gateway.prefix == prefix_mode::never);
  CHECK(cfg.gateway.separator == ".");

  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"command": "x", "url": "http://h/"}}})"),
             Catch::Contains("$.mcpServers.a") && Catch::Contains("exactly one"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"command": "x", "bogus": 1}}})"),
             Catch::Contains("$.mcpServers.a.bogus: unknown key"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"command": "x"}}, "services": {"b": {}}})"),
             Catch::Contains("$.services.b") && Catch::Contains("no server"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"command": "x"}},
                                 "services": {"a": {"breaker": {"failureRate": 2}}}})"),
             Catch::Contains("$.services.a.breaker.failureRate"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"command": "x"}},
                                 "services": {"a": {"fallback": "static"}}})"),
             Catch::Contains("$.services.a.fallbackMessage"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"url": "ftp://h/mcp"}}})"),
             Catch::Contains("$.mcpServers.a.url: must be an http:// or https:// URL"));
  CHECK_THAT(config_error_of(R"({"gateway": {"prefix": "sometimes"}})"), Catch::Contains("$.gateway.prefix"));
}

TEST_CASE("config: a misspelt key is named, and type must agree with command or url", "[config]") {
  // The unknown key, not the missing one it was meant to be.
  CHECK(config_error_of(R"({"mcpServers": {"a": {"comand": "x"}}})") == "config: $.mcpServers.a.comand: unknown key");
  CHECK(config_error_of(R"({"mcpServers": {"a": {"uri": "http://h/mcp"}}})")
        == "config: $.mcpServers.a.uri: unknown key");
  CHECK(config_error_of(R"({"mcpServers": {"a": {"command": "x"}},
                           "services": {"a": {"fallback": "static", "fallbackMesage": "later"}}})")
        == "config: $.services.a.fallbackMesage: unknown key");
  CHECK(config_error_of(R"({"mcpServers": {"a": {"url": "https://h/mcp"}},
                           "services": {"a": {"tls": {"certFile": "/c", "keyfile": "/k"}}}})")
        == "config: $.services.a.tls.keyfile: unknown key");
  CHECK(config_error_of(R"({"mcpServers": {"a": {"command": "x"}},
                           "services": {"a": {"retry": {"baseDelayMs": 10, "maxDelay": 5}}}})")
        == "config: $.services.a.retry.maxDelay: unknown key");
  CHECK(config_error_of(R"({"alerts": {"webhook": {"ulr": "http://h/"}}})")
        == "config: $.alerts.webhook.ulr: unknown key");
  // Contradictions are refused with their path.
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"type": "stdio", "url": "http://h/mcp"}}})"),
             Catch::StartsWith("config: $.mcpServers.a.type: is \"stdio\", but the entry has a \"url\""));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"type": "streamable-http", "command": "x"}}})"),
             Catch::StartsWith("config: $.mcpServers.a.type: is \"streamable-http\", but the entry has a \"command\""));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"type": "http", "command": "x"}}})"),
             Catch::StartsWith("config: $.mcpServers.a.type: is \"http\""));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "inheritEnv": ["X"]}}})"),
             Catch::Contains("inheritEnv") && Catch::Contains("stdio servers"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"command": "x", "inheritEnv": ["A=B"]}}})"),
             Catch::StartsWith("config: $.mcpServers.a.inheritEnv: "));
  config cfg;
  apply_json(cfg, R"({"mcpServers": {"a": {"type": "stdio", "command": "x", "inheritEnv": ["NODE_OPTIONS"]},
                                      "b": {"type": "http", "url": "http://h/mcp"}}})",
             "t");
  CHECK(cfg.gateway.services.at(0).inherit_env == std::vector<std::string>{"NODE_OPTIONS"});
  CHECK(cfg.gateway.services.at(1).url == "http://h/mcp");
}

TEST_CASE("config: every sample config in config/examples is accepted", "[config]") {
  int seen = 0;
  for (auto& entry : std::filesystem::directory_iterator(BULWARK_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".json")
      continue;
    INFO(entry.path());
    std::ifstream in(entry.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    config cfg;
    CHECK_NOTHROW(apply_json(cfg, text, entry.path().string()));
    ++seen;
    if (entry.path().filename() == "gateway.json") {
      auto https = std::count_if(cfg.gateway.services.begin(), cfg.gateway.services.end(),
                                 [](const service_config& s) { return s.url.rfind("https://", 0) == 0; });
      CHECK(https == 1);
    }
  }
  CHECK(seen >= 5);
}

TEST_CASE("config: TLS files of an https service", "[config]") {
  char tmpl[] = "/tmp/bulwark-tlscfg-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  std::ofstream(dir + "/ca.pem") << "x";
  std::ofstream(dir + "/c.pem") << "x";
  std::ofstream(dir + "/k.pem") << "x";
  auto with = [&](const std::string& url, const std::string& tls) {
    return R"({"mcpServers": {"a": {"url": ")" + url + R"("}}, "services": {"a": {"tls": )" + tls + "}}}";
  };
  config cfg;
  apply_json(cfg,
             with("https://h/mcp", R"({"caFile": ")" + dir + R"(/ca.pem", "certFile": ")" + dir
                                     + R"(/c.pem", "keyFile": ")" + dir + R"(/k.pem"})"),
             "test");
  auto& tls = cfg.gateway.services.at(0).settings.tls;
  CHECK(tls.ca_file == dir + "/ca.pem");
  CHECK(tls.cert_file == dir + "/c.pem");
  CHECK(tls.key_file == dir + "/k.pem");

  CHECK(config_error_of(R"({"mcpServers": {"a": {"url": "https://h/mcp"}}})").empty());
  CHECK_THAT(config_error_of(with("https://h/mcp", R"({"caFile": ")" + dir + R"(/missing.pem"})")),
             Catch::Contains("$.services.a.tls.caFile: cannot read '" + dir + "/missing.pem'"));
  CHECK_THAT(config_error_of(with("https://h/mcp", R"({"certFile": ")" + dir + R"(/c.pem"})")),
             Catch::Contains("$.services.a.tls: certFile and keyFile go together"));
  CHECK_THAT(config_error_of(with("https://h/mcp", R"({"ca": "x"})")),
             Catch::Contains("$.services.a.tls.ca: unknown key"));
  CHECK_THAT(config_error_of(with("http://h/mcp", R"({"caFile": ")" + dir + R"(/ca.pem"})")),
             Catch::Contains("$.services.a.tls: applies to https:// servers only"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("config: the requestState sealing keys are read from their files", "[config]") {
  char tmpl[] = "/tmp/bulwark-statekey-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  std::ofstream(dir + "/now") << std::string(40, 'k') << "\n";
  std::ofstream(dir + "/before") << std::string(32, 'p');
  std::ofstream(dir + "/short") << "not-32-bytes";
  auto read = [](const std::string& text) {
    config cfg;
    apply_json(cfg, text, "test");
    read_state_keys(cfg);
    return cfg;
  };
  auto both =
    read(R"({"sessions": {"stateKeyFile": ")" + dir + R"(/now", "previousStateKeyFile": ")" + dir + R"(/before"}})");
  CHECK(both.runtime.state_key == std::string(40, 'k')); // without its newline
  CHECK(both.runtime.previous_state_key == std::string(32, 'p'));
  CHECK(read("{}").runtime.state_key.empty());
  auto error_of = [&](const std::string& text) -> std::string {
    try {
      read(text);
    } catch (const config_error& e) {
      return e.what();
    }
    return {};
  };
  CHECK_THAT(error_of(R"({"sessions": {"stateKeyFile": ")" + dir + R"(/short"}})"),
             Catch::Contains("$.sessions.stateKeyFile")
               && Catch::Contains("holds 12 bytes; a sealing key has at least 32"));
  CHECK_THAT(error_of(R"({"sessions": {"stateKeyFile": ")" + dir + R"(/missing"}})"),
             Catch::Contains("$.sessions.stateKeyFile: cannot read"));
  CHECK_THAT(error_of(R"({"sessions": {"previousStateKeyFile": ")" + dir + R"(/before"}})"),
             Catch::Contains("$.sessions.previousStateKeyFile: needs sessions.stateKeyFile"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("gateway policy and agents are read from the config, patterns checked", "[config]") {
  config cfg;
  apply_json(cfg, R"({"gateway": {"gatewayTools": true, "policy": {"deny": ["*:delete_*"]},
                                  "agents": {"ci-bot": {"allow": ["fx:*"]}}}})",
             "test");
  CHECK(cfg.gateway.gateway_tools);
  CHECK(cfg.gateway.policy.deny.at(0) == "*:delete_*");
  CHECK(cfg.gateway.agents.at("ci-bot").allow.at(0) == "fx:*");
  CHECK_THAT(config_error_of(R"({"gateway": {"policy": {"deny": ["nocolon"]}}})"),
             Catch::Contains("$.gateway.policy") && Catch::Contains("server:tool"));
  CHECK_THAT(config_error_of(R"({"gateway": {"agents": {"x": {"allow": "fx:*"}}}})"),
             Catch::Contains("$.gateway.agents.x.allow"));
}

TEST_CASE("config: admission sections are read strictly, with the key's path in errors", "[config]") {
  config cfg;
  apply_json(cfg, R"({
    "mcpServers": {"web": {"url": "http://127.0.0.1:9/mcp"}},
    "services": {"web": {"ratePerMinute": 120, "cache": {"scope": "public"}}},
    "rateLimits": {"tiers": {"gold": {"perSecond": 5, "perDay": 1000}}, "defaultTier": "gold",
                   "onLimit": "queue", "maxQueueWaitMs": 2000},
    "queue": {"capacity": 10, "maxConcurrentPerService": 2, "toolPriorities": {"slow": "low"}},
    "health": {"intervalMs": 250, "exitAfterMs": 500},
    "alerts": {"rules": {"breaker_open": {"cooldownSeconds": 60}}}
  })",
             "test");
  auto& ops = cfg.runtime.ops;
  REQUIRE(ops.limits.tiers["gold"].size() == 2);
  CHECK(ops.limits.tiers["gold"][0].count == 5);
  CHECK(ops.limits.tiers["gold"][1].per == std::chrono::hours(24));
  CHECK(ops.limits.tiers.count("free") == 1); // the defaults stay
  REQUIRE(ops.limits.services["web"].size() == 1);
  CHECK(ops.limits.services["web"][0].count == 120);
  CHECK(ops.queue_on_limit);
  CHECK(ops.max_limit_wait == 2000ms);
  CHECK(ops.queue.capacity == 10);
  CHECK(ops.tool_priorities["slow"] == priority::low);
  CHECK(ops.health.interval == 250ms);
  CHECK(cfg.gateway.services[0].settings.cache_public);
  auto rule =
    std::find_if(ops.alerts.rules.begin(), ops.alerts.rules.end(), [](auto& r) { return r.name == "breaker_open"; });
  REQUIRE(rule != ops.alerts.rules.end());
  CHECK(rule->cooldown == 60000ms);

  auto refused = [](const char* text) {
    config c;
    try {
      apply_json(c, text, "test");
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(refused(R"({"queue": {"capacty": 3}})").find("$.queue.capacty: unknown key") != std::string::npos);
  CHECK(refused(R"({"rateLimits": {"keys": {"abc": {"tier": "free"}}}})").find("$.rateLimits.keys.abc")
        != std::string::npos);
  CHECK(refused(R"({"rateLimits": {"onLimit": "wait"}})").find("$.rateLimits.onLimit") != std::string::npos);
  CHECK(refused(R"({"queue": {"toolPriorities": {"x": "urgent"}}})").find("$.queue.toolPriorities.x")
        != std::string::npos);
  CHECK(refused(R"({"health": {"queueFill": 2}})").find("$.health.queueFill") != std::string::npos);
  CHECK(refused(R"({"alerts": {"webhook": {"url": "ftp://x"}}})")
          .find("$.alerts.webhook.url: must be an http:// or https:// URL")
        != std::string::npos);
  CHECK(refused(R"({"alerts": {"webhook": {"url": "https://x", "tls": {"certFile": "a.pem"}}}})")
          .find("$.alerts.webhook.tls: certFile and keyFile go together")
        != std::string::npos);
  CHECK(refused(R"({"alerts": {"webhook": {"url": "https://x", "tls": {"caFile": "/nonexistent/ca.pem"}}}})")
          .find("$.alerts.webhook.tls.caFile: cannot read '/nonexistent/ca.pem'")
        != std::string::npos);
  CHECK(refused(R"({"alerts": {"webhook": {"url": "https://x", "tls": {"ca": "x"}}}})")
          .find("$.alerts.webhook.tls.ca: unknown key")
        != std::string::npos);

  // An https:// webhook, with files of its own or the system's store.
  char tmpl[] = "/tmp/bulwark-ca-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  std::string ca = tmpl;
  CHECK(refused((R"({"alerts": {"webhook": {"url": "http://x", "tls": {"caFile": ")" + ca + R"("}}}})").c_str())
          .find("$.alerts.webhook.tls: applies to https:// URLs only")
        != std::string::npos);
  config https;
  apply_json(https,
             R"({"alerts": {"webhook": {"url": "https://hooks.example/a", "tls": {"caFile": ")" + ca + R"("}}}})",
             "test");
  CHECK(https.runtime.ops.webhook.url == "https://hooks.example/a");
  CHECK(https.runtime.ops.webhook.tls.ca_file == ca);
  std::remove(ca.c_str());
  CHECK(refused(R"({"alerts": {"webhook": {"url": "https://hooks.example/a"}}})").empty());
}

TEST_CASE("config: the redis section is read strictly, with the key's path in errors", "[config]") {
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

TEST_CASE("loopback addresses", "[config]") {
  for (auto a :
       {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LocalHost", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"})
    CHECK(loopback_address(a));
  for (auto a : {"0.0.0.0", "::", "10.0.0.1", "192.168.1.1", "128.0.0.1", "::ffff:10.0.0.1", "example.com", "",
                 "127.0.0.1.nip.io", "localhost.example"})
    CHECK_FALSE(loopback_address(a));
}

TEST_CASE("auth settings are strict and a non-loopback bind needs authentication or an override", "[config]") {
  auto args = [](std::vector<std::string> a) {
    config cfg;
    std::vector<char*> argv{const_cast<char*>("bulwark")};
    for (auto& s : a)
      argv.push_back(s.data());
    apply_args(cfg, static_cast<int>(argv.size()), argv.data());
    return cfg;
  };
  ::unsetenv("BULWARK_CONFIG");
  ::unsetenv("BULWARK_ADDRESS");
  config cfg;
  apply_json(cfg, R"({"auth":{"mode":"keys","keyFile":"/k.json","allowUnauthenticated":false}})", "t");
  CHECK(cfg.auth.mode == auth_mode::keys);
  CHECK(cfg.auth.key_file == "/k.json");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"auth":{"mode":"oauth2"}})", "t"),
                    "config: $.auth.mode: must be \"none\", \"keys\" or \"oauth\"");
  CHECK_THROWS_WITH(apply_json(cfg, R"({"auth":{"keyfile":"x"}})", "t"), "config: $.auth.keyfile: unknown key");
  apply_json(cfg, R"({"auth":{"mode":"oauth","oauth":{"issuer":"https://as","resource":"https://rs/mcp",
                      "jwksFile":"/j.json","clockSkewSeconds":5,"scopesSupported":["a"],
                      "authorizationServers":["https://as2"]}}})",
             "t");
  CHECK(cfg.auth.mode == auth_mode::oauth);
  CHECK(cfg.auth.oauth.clock_skew == std::chrono::seconds(5));
  CHECK(cfg.auth.oauth.authorization_servers == std::vector<std::string>{"https://as2"});
  CHECK_THROWS_WITH(apply_json(cfg, R"({"auth":{"oauth":{"clockSkewSeconds":601}}})", "t"),
                    Catch::Contains("$.auth.oauth.clockSkewSeconds"));
  CHECK_THROWS_WITH(apply_json(cfg, R"({"auth":{"oauth":{"jwks":"x"}}})", "t"),
                    "config: $.auth.oauth.jwks: unknown key");
  CHECK_NOTHROW(args({"--port", "0"}));
  CHECK_THROWS_WITH(args({"--address", "0.0.0.0"}),
                    Catch::Contains("$.auth.mode") && Catch::Contains("allowUnauthenticated"));
  CHECK(args({"--address", "0.0.0.0", "--allow-unauthenticated"}).auth.allow_unauthenticated);
  CHECK_NOTHROW(args({"--address", "0.0.0.0", "--no-http", "--stdio"}));
  CHECK(args({"--key-file", "/k.json"}).auth.key_file == "/k.json");
}

// -- the table of settings: one declaration per key, everything else from it --------------

namespace {

std::vector<std::string> paths_of(const std::vector<config_error_entry>& errors) {
  std::vector<std::string> out;
  for (auto& e : errors)
    out.push_back(e.path);
  return out;
}

} // namespace

TEST_CASE("config: the generated reference and sample config are current", "[config]") {
  // Regenerate with: build/bulwark --print-config-reference markdown > docs/configuration.md
  //             and: build/bulwark --print-config-reference json > config/examples/default.json
  CHECK(settings_reference_markdown() == file_text(std::string(BULWARK_SOURCE_DIR) + "/docs/configuration.md"));
  CHECK(settings_reference_json() == file_text(std::string(BULWARK_EXAMPLES_DIR) + "/default.json"));
}

TEST_CASE("config: pinning keeps its pins in a file, or in Redis for a fleet", "[config]") {
  auto without = check_json(R"({"gateway":{"pinning":{"mode":"keep"}}})");
  REQUIRE(paths_of(without) == std::vector<std::string>{"$.gateway.pinning.file"});
  CHECK(without[0].message == "is needed with mode \"keep\" and no redis.url: the pins are kept there");
  CHECK(check_json(R"({"gateway":{"pinning":{"mode":"hide"}},"redis":{"url":"redis://127.0.0.1:6379/0"}})").empty());
  CHECK(check_json(R"({"gateway":{"pinning":{"mode":"off"}}})").empty());
}

TEST_CASE("config: every bad key of a file is reported, each with its path", "[config]") {
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

TEST_CASE("config: environment variables and flags come from the table", "[config]") {
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

TEST_CASE("config: --print-config shows every key of the table, secrets redacted", "[config]") {
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

TEST_CASE("config: a service's auth and secret references are checked with their paths", "[config]") {
  const std::string cc =
    R"("auth": {"type": "clientCredentials", "tokenUrl": "http://idp/token", "clientId": "gw", "clientSecret": "s"})";
  config cfg;
  apply_json(cfg, R"({"mcpServers": {"a": {"url": "http://h/mcp", )" + cc + "}}}", "t");
  auto& auth = cfg.gateway.services.at(0).auth;
  CHECK(auth.type == service_auth::kind::client_credentials);
  CHECK(auth.token_url == "http://idp/token");
  CHECK(auth.basic);
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "auth": {"type": "clientCredentials",
                               "clientId": "gw"}}}})"),
             Catch::StartsWith("config: $.mcpServers.a.auth.tokenUrl: is needed"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "auth": {"type": "clientCredentials",
                               "tokenUrl": "ftp://idp/t", "clientId": "gw"}}}})"),
             Catch::StartsWith("config: $.mcpServers.a.auth.tokenUrl: must be an http:// or https:// URL"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "auth": {"type": "clientCredentials",
                               "tokenUrl": "http://idp/t"}}}})"),
             Catch::StartsWith("config: $.mcpServers.a.auth.clientId: is needed"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"command": "x", )" + cc + "}}}"),
             Catch::StartsWith("config: $.mcpServers.a.auth.type: applies to HTTP servers"));
  CHECK_THAT(
    config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "headers": {"Authorization": "x"}, )" + cc + "}}}"),
    Catch::StartsWith("config: $.mcpServers.a.headers.Authorization: is set by auth.type"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "auth": {"tokenUrl": "http://idp/t"}}}})"),
             Catch::StartsWith("config: $.mcpServers.a.auth: tokenUrl, clientId"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "auth": {"type": "password"}}}})"),
             Catch::StartsWith("config: $.mcpServers.a.auth.type: must be \"headers\", \"clientCredentials\" or "
                               "\"tokenExchange\""));
  CHECK_THAT(
    config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "passthrough": true, "auth": {
                               "type": "tokenExchange", "tokenUrl": "http://idp/t", "clientId": "gw"}}}})"),
    Catch::StartsWith("config: $.mcpServers.a.passthrough: and auth.type \"tokenExchange\" exclude each other"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"command": "x", "passthrough": true}}})"),
             Catch::StartsWith("config: $.mcpServers.a.passthrough: applies to HTTP servers"));
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "auth": {"audience": "x"}}}})"),
             Catch::StartsWith("config: $.mcpServers.a.auth.audience: applies to auth.type \"tokenExchange\""));
  // References: of a known kind, and readable now.
  CHECK_THAT(config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "headers": {"X-Key": "${vault:k}"}}}})"),
             Catch::StartsWith("config: $.mcpServers.a.headers.X-Key: is a reference of an unknown kind"));
  ::unsetenv("BULWARK_UNIT_NO_SUCH");
  CHECK(config_error_of(R"({"mcpServers": {"a": {"url": "http://h/mcp", "auth": {"type": "clientCredentials",
                          "tokenUrl": "http://idp/t", "clientId": "gw", "clientSecret": "${env:BULWARK_UNIT_NO_SUCH}"}}}})")
        == "config: $.mcpServers.a.auth.clientSecret: the environment variable BULWARK_UNIT_NO_SUCH is not set");
  CHECK(config_error_of(R"({"alerts": {"webhook": {"url": "http://h/", "headers": {"X-Key": "${file:}"}}}})")
        == "config: $.alerts.webhook.headers.X-Key: names no variable or file");
  CHECK_THAT(config_error_of(R"({"telemetry": {"otlp": {"headers": {"X-Key": "${env:BULWARK_UNIT_NO_SUCH}"}}}})"),
             Catch::StartsWith("config: $.telemetry.otlp.headers.X-Key: the environment variable"));
  CHECK_THAT(config_error_of(R"({"redis": {"url": "${env:BULWARK_UNIT_NO_SUCH}"}})"),
             Catch::StartsWith("config: $.redis.url: the environment variable"));
  ::setenv("BULWARK_UNIT_REDIS", "redis://:pw@127.0.0.1:6390/2", 1);
  config with_redis;
  apply_json(with_redis, R"({"redis": {"url": "${env:BULWARK_UNIT_REDIS}"}})", "t");
  CHECK(with_redis.runtime.ops.redis.url == "${env:BULWARK_UNIT_REDIS}");
  ::setenv("BULWARK_UNIT_REDIS", "http://nope", 1);
  CHECK_THAT(config_error_of(R"({"redis": {"url": "${env:BULWARK_UNIT_REDIS}"}})"),
             Catch::StartsWith("config: $.redis.url: "));
  ::unsetenv("BULWARK_UNIT_REDIS");
}

TEST_CASE("config: required scopes need OAuth and name scopes; claim scopes are claim=value", "[config]") {
  const std::string oauth = R"("mode": "oauth", "oauth": {"issuer": "https://i", "resource": "https://r/mcp",
                                "jwksFile": "/dev/null")";
  CHECK(config_error_of(R"({"auth": {"oauth": {"requiredScopes": {"tools": {"*": ["a"]}}}}})")
        == "config: $.auth.oauth.requiredScopes: needs auth.mode \"oauth\": scopes come from OAuth tokens");
  CHECK(config_error_of(R"({"auth": {"oauth": {"requiredScopes": {"tools": {"*": []}}}}})")
        == "config: $.auth.oauth.requiredScopes.tools.*: must be a non-empty array of scopes");
  CHECK(config_error_of(R"({"auth": {"oauth": {"requiredScopes": {"tools": {"*": ["a b"]}}}}})")
        == "config: $.auth.oauth.requiredScopes.tools.*: must hold scope names (no spaces or quotes)");
  CHECK(config_error_of(R"({"auth": {"oauth": {"requiredScopes": {"agents": {}}}}})")
        == "config: $.auth.oauth.requiredScopes.agents: unknown key (tools, prompts, resources)");
  CHECK(config_error_of(R"({"auth": {"oauth": {"claimScopes": {"groups": ["a"]}}}})")
        == "config: $.auth.oauth.claimScopes.groups: must be written claim=value");
  config cfg;
  std::vector<config_error_entry> errors;
  read_settings(cfg, test::parse(R"({"auth": {)" + oauth + R"(, "requiredScopes": {"tools": {"crm__*": ["crm.read"]}},
                                 "claimScopes": {"groups=admins": ["crm.write"]}}}})"),
                errors);
  CHECK(errors.empty());
  CHECK(cfg.runtime.ops.scopes.required("tool", "crm__find") == std::vector<std::string>{"crm.read"});
  CHECK(cfg.runtime.ops.scopes.metadata_url == "https://r/.well-known/oauth-protected-resource/mcp");
  CHECK(cfg.auth.oauth.claim_scopes.at("groups=admins") == std::vector<std::string>{"crm.write"});
}
