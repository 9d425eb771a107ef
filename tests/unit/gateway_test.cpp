// The gateway's pieces that need no processes: the circuit breaker's state
// machine on an injected clock, exposed tool names, and the validation of
// `mcpServers` / `services` configuration.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>

#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/gateway.hpp"
#include "config/config.hpp"
#include "tests/unit/support.hpp"
#include "transport/child_process.hpp"

using namespace bulwark;
using namespace std::chrono_literals;
using test::config_error_of;
using clock_type = circuit_breaker::clock;

namespace {

breaker_settings small() {
  breaker_settings s;
  s.consecutive_failures = 3;
  s.failure_rate = 0.5;
  s.window = 10s;
  s.minimum_calls = 6;
  s.open_duration = 1000ms;
  s.half_open_probes = 2;
  s.successes_to_close = 2;
  return s;
}

} // namespace

TEST_CASE("breaker: consecutive failures open it; open fails fast with the time left") {
  circuit_breaker b(small());
  auto t = clock_type::time_point{} + 1h;
  for (int i = 0; i < 2; ++i) {
    REQUIRE(b.admit(t).allowed);
    b.record(t, false, false);
  }
  CHECK(b.state() == breaker_state::closed);
  REQUIRE(b.admit(t).allowed);
  b.record(t, true, false); // a success resets the run
  for (int i = 0; i < 3; ++i) {
    REQUIRE(b.admit(t).allowed);
    b.record(t, false, false);
  }
  CHECK(b.state() == breaker_state::open);
  CHECK(b.transitions() == 1);
  auto a = b.admit(t + 400ms);
  CHECK_FALSE(a.allowed);
  CHECK(a.retry_after == 600ms);
}

TEST_CASE("breaker: the failure rate over the window opens it once enough calls were seen") {
  circuit_breaker b(small());
  auto t = clock_type::time_point{} + 1h;
  // Alternating results never make three failures in a row.
  for (int i = 0; i < 5; ++i) {
    REQUIRE(b.admit(t).allowed);
    b.record(t, i % 2 == 1, false); // F S F S F
  }
  CHECK(b.state() == breaker_state::closed); // 5 calls < minimum 6
  REQUIRE(b.admit(t).allowed);
  b.record(t, true, false); // 3 of 6 failed = 0.5
  CHECK(b.state() == breaker_state::closed); // the 6th call was a success: no check
  REQUIRE(b.admit(t).allowed);
  b.record(t, false, false); // 4 of 7 failed
  CHECK(b.state() == breaker_state::open);
  // Old calls leave the window: after it, one failure is not enough.
  circuit_breaker c(small());
  for (int i = 0; i < 5; ++i) { // F S F S F: below the minimum
    c.admit(t);
    c.record(t, i % 2 == 1, false);
  }
  c.admit(t + 11s);
  c.record(t + 11s, false, false);
  CHECK(c.state() == breaker_state::closed);
}

TEST_CASE("breaker: the window counts in slices, whatever the call rate") {
  circuit_breaker b(small()); // a 10 s window: slices of 156.25 ms
  auto t = clock_type::time_point{} + 1h;
  for (int i = 0; i < 100000; ++i) {
    b.admit(t);
    b.record(t, true, false);
  }
  CHECK(b.window_calls() == 100000);
  // Half a window later both batches count.
  b.admit(t + 5s);
  b.record(t + 5s, true, false);
  CHECK(b.window_calls() == 100001);
  // Once the first batch is a full window old it leaves, within one slice.
  b.admit(t + 10s + 200ms);
  b.record(t + 10s + 200ms, true, false);
  CHECK(b.window_calls() == 2);
  // A quiet spell longer than the window leaves nothing behind.
  b.admit(t + 1h);
  b.record(t + 1h, false, false);
  CHECK(b.window_calls() == 1);
  CHECK(b.state() == breaker_state::closed);
}

TEST_CASE("breaker: half-open admits exactly the probe count and closes after enough successes") {
  circuit_breaker b(small());
  auto t = clock_type::time_point{} + 1h;
  b.force(t, breaker_state::open);
  auto later = t + 1000ms;
  auto p1 = b.admit(later);
  auto p2 = b.admit(later);
  auto p3 = b.admit(later);
  CHECK(b.state() == breaker_state::half_open);
  CHECK((p1.allowed && p1.probe && p2.allowed && p2.probe));
  CHECK_FALSE(p3.allowed); // only two probes at a time
  b.record(later, true, true);
  CHECK(b.state() == breaker_state::half_open); // one of two successes
  CHECK(b.admit(later).allowed); // a probe slot freed
  b.record(later, true, true);
  CHECK(b.state() == breaker_state::closed);
}

TEST_CASE("breaker: a failed probe opens it again for a whole open duration") {
  circuit_breaker b(small());
  auto t = clock_type::time_point{} + 1h;
  b.force(t, breaker_state::open);
  REQUIRE(b.admit(t + 1s).probe);
  b.record(t + 1s, false, true);
  CHECK(b.state() == breaker_state::open);
  CHECK_FALSE(b.admit(t + 1500ms).allowed);
  CHECK(b.admit(t + 2s).allowed);
}

TEST_CASE("exposed tool names follow the prefix mode") {
  CHECK(exposed_tool_name("svc", "t", prefix_mode::always, "__", false) == "svc__t");
  CHECK(exposed_tool_name("svc", "t", prefix_mode::never, "__", true) == "t");
  CHECK(exposed_tool_name("svc", "t", prefix_mode::conditional, ".", false) == "t");
  CHECK(exposed_tool_name("svc", "t", prefix_mode::conditional, ".", true) == "svc.t");
}

TEST_CASE("mcpServers and services are read in the shape other clients use, strictly") {
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

TEST_CASE("config: a misspelt key is named, and type must agree with command or url") {
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

TEST_CASE("a stdio child gets the default variables, the ones named, and its own env; nothing else") {
  std::string vars[] = {"PATH=/usr/bin",
                        "HOME=/home/b",
                        "LANG=C.UTF-8",
                        "BULWARK_ADMIN_TOKEN=t0ken",
                        "BULWARK_REDIS=redis://:pw@h",
                        "NODE_OPTIONS=--x",
                        "AWS_SECRET_ACCESS_KEY=k",
                        "TZ=UTC",
                        "A=ours",
                        "UBSAN_OPTIONS=log_path=/r/ubsan"};
  std::vector<char*> ours;
  for (auto& v : vars)
    ours.push_back(v.data());
  ours.push_back(nullptr);
  child_spec_options o;
  o.env = {{"A", "theirs"}, {"MEMORY_FILE_PATH", "/m"}};
  o.inherit = {"NODE_OPTIONS", "NOT_SET_HERE"};
  auto env = child_environment(o, ours.data());
  std::sort(env.begin(), env.end());
  CHECK(env
        == std::vector<std::string>{"A=theirs", "HOME=/home/b", "LANG=C.UTF-8", "MEMORY_FILE_PATH=/m",
                                    "NODE_OPTIONS=--x", "PATH=/usr/bin", "TZ=UTC", "UBSAN_OPTIONS=log_path=/r/ubsan"});
  o.inherit.clear();
  env = child_environment(o, ours.data());
  CHECK(std::find(env.begin(), env.end(), "NODE_OPTIONS=--x") == env.end());
}

TEST_CASE("a stdio child inherits no descriptor of ours but its three pipes") {
  // A descriptor without O_CLOEXEC, as Asio's sockets are.
  // (Above the lowest free one, which the child's `ls` takes for itself.)
  int null_fd = ::open("/dev/null", O_RDONLY);
  int leaky = ::fcntl(null_fd, F_DUPFD, 100);
  ::close(null_fd);
  REQUIRE(leaky >= 100);
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::string> lines;
  bool exited = false;
  child_callbacks cb;
  cb.on_line = [&](std::string line) {
    std::lock_guard<std::mutex> guard(mtx);
    lines.push_back(std::move(line));
  };
  cb.on_exit = [&](int) {
    std::lock_guard<std::mutex> guard(mtx);
    exited = true;
    cv.notify_all();
  };
  child_spec_options o;
  o.command = "/bin/sh";
  o.args = {"-c", "ls /proc/self/fd"}; // ls's own listing handle is its only extra one
  {
    child_process child(o, cb);
    std::unique_lock<std::mutex> guard(mtx);
    REQUIRE(cv.wait_for(guard, std::chrono::seconds(10), [&] { return exited; }));
  }
  ::close(leaky);
  std::sort(lines.begin(), lines.end());
  CHECK(lines.size() == 4);
  CHECK(std::find(lines.begin(), lines.end(), std::to_string(leaky)) == lines.end());
}

TEST_CASE("config: every sample config in config/examples is accepted") {
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

TEST_CASE("config: TLS files of an https service") {
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

TEST_CASE("policy patterns: deny wins, a non-empty allow list admits only matches") {
  CHECK(glob_match("memory:*", "memory:read_graph"));
  CHECK(glob_match("*:delete_*", "memory:delete_entities"));
  CHECK(glob_match("a*b*c", "axxbyyc"));
  CHECK_FALSE(glob_match("a*b*c", "axxbyy"));
  CHECK_FALSE(glob_match("memory:read", "memory:read_graph"));
  CHECK(glob_match("*", ""));

  access_policy open;
  CHECK(check_policy(open, "fx", "anything").allowed);

  access_policy p;
  p.allow = {"memory:*", "fx:test_*"};
  p.deny = {"memory:delete_*"};
  CHECK(check_policy(p, "memory", "read_graph").allowed);
  auto denied = check_policy(p, "memory", "delete_entities");
  CHECK_FALSE(denied.allowed);
  CHECK(denied.rule == "deny memory:delete_*");
  auto outside = check_policy(p, "everything", "echo");
  CHECK_FALSE(outside.allowed);
  CHECK(outside.rule == "not in the allow list");
}

TEST_CASE("gateway policy and agents are read from the config, patterns checked") {
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

TEST_CASE("result cache: fresh, then stale only on request, then gone; LRU within entry and byte bounds") {
  result_cache c(3, 1 << 20);
  auto t = result_cache::clock::time_point{} + 1h;
  auto v = [](int n) { return json::value::make_object({{"n", n}}); };
  c.put("svc\nt\n{}", v(1), 100ms, 1000ms, t);
  auto fresh = c.get("svc\nt\n{}", t + 50ms, false);
  REQUIRE(fresh);
  CHECK_FALSE(fresh->stale);
  CHECK(fresh->age == 50ms);
  CHECK_FALSE(c.get("svc\nt\n{}", t + 150ms, false)); // expired for normal answers
  auto stale = c.get("svc\nt\n{}", t + 150ms, true);
  REQUIRE(stale);
  CHECK(stale->stale);
  CHECK(stale->result["n"].as_int() == 1);
  CHECK_FALSE(c.get("svc\nt\n{}", t + 1200ms, true)); // past its stale age
  CHECK(c.size() == 0);

  c.put("a", v(1), 1s, 1s, t);
  c.put("b", v(2), 1s, 1s, t);
  c.put("c", v(3), 1s, 1s, t);
  REQUIRE(c.get("a", t, false)); // a is now the most recent
  c.put("d", v(4), 1s, 1s, t); // evicts b, the least recent
  CHECK(c.get("a", t, false));
  CHECK_FALSE(c.get("b", t, false));
  CHECK(c.evictions == 1);

  result_cache small(100, 60);
  small.put("k1", v(1), 1s, 1s, t); // ~8 + 2 bytes each
  small.put("k2", v(2), 1s, 1s, t);
  CHECK(small.bytes() <= 60);
  small.put("big", json::value::make_object({{"text", std::string(100, 'x')}}), 1s, 1s, t);
  CHECK_FALSE(small.get("big", t, false)); // larger than the whole cache

  c.put("svc1\nx", v(1), 1s, 1s, t);
  c.put("svc2\nx", v(2), 1s, 1s, t);
  CHECK(c.invalidate("svc1\n") == 1);
  CHECK(c.get("svc2\nx", t, false));
}

TEST_CASE("result cache: new bounds (a reload) evict the least recently used entries beyond them") {
  result_cache c(10, 1 << 20);
  auto t = result_cache::clock::time_point{} + 1h;
  for (int i = 0; i < 5; ++i)
    c.put("k" + std::to_string(i), json::value::make_object({{"n", i}}), 1s, 1s, t);
  REQUIRE(c.get("k0", t, false)); // k0 is now the most recent
  c.resize(2, 1 << 20);
  CHECK(c.size() == 2);
  CHECK(c.get("k0", t, false));
  CHECK(c.get("k4", t, false));
  CHECK_FALSE(c.get("k1", t, false));
  CHECK(c.evictions == 3);
  c.put("k5", json::value::make_object({{"n", 5}}), 1s, 1s, t); // the new bound holds
  CHECK(c.size() == 2);
  c.resize(10, 1 << 20);
  c.put("k6", json::value::make_object({{"n", 6}}), 1s, 1s, t);
  CHECK(c.size() == 3);
}

TEST_CASE("cache keys use canonical JSON: key order does not matter") {
  json::value a, b;
  json::parse_error err;
  REQUIRE(json::parse(R"({"b":1,"a":{"y":[1,{"q":2,"p":1}],"x":"s"}})", a, err));
  REQUIRE(json::parse(R"({"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1})", b, err));
  CHECK(canonical_json(a) == canonical_json(b));
  CHECK(canonical_json(a) == R"({"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1})");
}
