// Live reconfiguration's pieces: the reload plan (which keys changed, which
// need a restart), the redacted configuration shown to operators, error
// entries, and the keys a reload may change.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "config/reload.hpp"
#include "tests/unit/support.hpp"

using namespace bulwark;
using test::doc;

TEST_CASE("config: a reload plan names the changed keys and those that need a restart", "[reload]") {
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

TEST_CASE("config: the configuration shown to operators has its secrets redacted", "[reload]") {
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

TEST_CASE("config: an error's text becomes its key path and message", "[reload]") {
  auto e = error_entry("config: $.services.a.timeoutMs: must be an integer");
  CHECK(e["path"].as_string() == "$.services.a.timeoutMs");
  CHECK(e["message"].as_string() == "must be an integer");
  CHECK(error_entry("config: cannot read f.json")["path"].as_string() == "$");
}

TEST_CASE("config: the live keys come from the table", "[reload]") {
  CHECK(live_keys()
        == std::vector<std::string>{"$.auth.keyFile",
                                    "$.auth.oauth.issuer",
                                    "$.auth.oauth.authorizationServers",
                                    "$.auth.oauth.jwksFile",
                                    "$.auth.oauth.clockSkewSeconds",
                                    "$.auth.oauth.scopesSupported",
                                    "$.auth.oauth.requiredScopes",
                                    "$.auth.oauth.claimScopes",
                                    "$.errors",
                                    "$.sessions.stateKeyFile",
                                    "$.sessions.previousStateKeyFile",
                                    "$.tasks",
                                    "$.shutdown",
                                    "$.gateway.prefix",
                                    "$.gateway.separator",
                                    "$.gateway.gatewayTools",
                                    "$.gateway.policy",
                                    "$.gateway.agents",
                                    "$.gateway.taskAfterMs",
                                    "$.mcpServers",
                                    "$.services",
                                    "$.rateLimits",
                                    "$.queue",
                                    "$.cache",
                                    "$.health",
                                    "$.alerts",
                                    "$.telemetry",
                                    "$.log"});
  CHECK(live_key("$.log.level"));
  CHECK(live_key("$.services.a.retry.attempts"));
  CHECK(!live_key("$.http.port"));
  CHECK(!live_key("$.gateway.childMaxRestarts"));
  CHECK(!live_key("$.auth.mode"));
  CHECK(!live_key("$.auth.oauth.resource"));
}
