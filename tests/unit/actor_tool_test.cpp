// Actor-backed tools on CAF's deterministic test coordinator: replies become
// CallToolResults, a dead, missing or silent actor becomes a typed error,
// and the breaker opens, fails fast, half-opens on the actor clock and
// closes on a successful probe. Also the runtime's health and metrics reads.
#include <catch2/catch.hpp>

#include <optional>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/actor_tool.hpp"
#include "actors/runtime.hpp"
#include "messages/mcp.hpp"
#include "tests/unit/simulated.hpp"

using namespace bulwark;
using json::value;
using namespace std::chrono_literals;

namespace {

struct answering_state {
  static inline const char* name = "answering";
  uint64_t calls = 0;
};

/// Answers `echo` with its arguments, `text` with a string, `full` with a
/// CallToolResult and `refuse` with an error.
tool_actor::behavior_type answering(tool_actor::stateful_pointer<answering_state> self) {
  return {
    [self](atom::call, const std::string& tool, const value& args) -> caf::result<value> {
      ++self->state.calls;
      if (tool == "refuse")
        return caf::make_error(caf::sec::invalid_argument);
      if (tool == "text")
        return value("plain words");
      if (tool == "full")
        return mcp::text_result("already a result");
      return value::make_object({{"tool", tool}, {"args", args}});
    },
  };
}

struct silent_state {
  static inline const char* name = "silent";
  std::vector<caf::typed_response_promise<value>> parked;
};

/// Takes every call and never answers it.
tool_actor::behavior_type silent(tool_actor::stateful_pointer<silent_state> self) {
  return {
    [self](atom::call, const std::string&, const value&) {
      self->state.parked.push_back(self->make_response_promise<value>());
      return self->state.parked.back();
    },
  };
}

/// How one call ended.
struct outcome {
  bool finished = false;
  value result;
  error_code code = error_code::internal_error;
  std::string message;
  value data;
};

/// Stands in for the session actor: records the answer; continuations run
/// at once, on the thread that resumes (the test's).
class recording_owner final : public call_owner {
public:
  std::optional<outcome> got;

  void on_progress(call_context&, double, std::optional<double>, std::string) override {}
  void on_log(call_context&, log_level, value, std::string) override {}
  void on_after(const call_ptr&, std::chrono::milliseconds, call_handler) override {}
  void on_finish(call_context&, value result) override { got = outcome{true, std::move(result), {}, {}, {}}; }
  void on_fail(call_context&, error_code code, std::string message, value data) override {
    got = outcome{false, {}, code, std::move(message), std::move(data)};
  }
  void on_input_required(call_context&, value, std::string) override {}
};

struct fixture : test::simulated_system {
  runtime rt{*sys};
  /// What the lookup hands out; counts how often it was asked.
  tool_actor current;
  int lookups = 0;

  tool_actor spawn_answering() {
    auto h = sys->spawn(answering);
    spawned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  tool_actor spawn_silent() {
    auto h = sys->spawn(silent);
    spawned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  tool_spec tool(std::string name, actor_tool_options opts = {}) {
    return actor_tool(
      rt, std::move(name), "test tool", value::make_object({{"type", "object"}}),
      [this] {
        ++lookups;
        return current;
      },
      opts);
  }

  /// A call of `spec` with `args`, as a session would run it.
  struct running {
    call_ptr call;
    std::shared_ptr<recording_owner> owner;
  };

  running start(const tool_spec& spec, value args = value(json::object{})) {
    running r{std::make_shared<call_context>("tools/call", value::make_object({{"name", spec.name}}), client_view{}),
              std::make_shared<recording_owner>()};
    r.call->set_arguments(std::move(args));
    r.call->attach(r.owner.get());
    r.call->set_resumer([](call_ptr c, call_handler next) {
      if (!c->done())
        next(c);
    });
    spec.handler(r.call);
    sched->run();
    return r;
  }

  outcome call(const tool_spec& spec, value args = value(json::object{})) {
    auto r = start(spec, std::move(args));
    REQUIRE(r.owner->got);
    return *r.owner->got;
  }

  void kill(const tool_actor& h) {
    caf::anon_send_exit(h, caf::exit_reason::kill);
    sched->run();
  }
};

actor_tool_options quick_breaker() {
  actor_tool_options o;
  o.timeout = 1s;
  o.breaker.consecutive_failures = 3;
  o.breaker.open_duration = 5s;
  return o;
}

} // namespace

TEST_CASE("an actor's reply becomes the CallToolResult", "[actor_tool]") {
  fixture f;
  f.current = f.spawn_answering();
  auto echo = f.tool("echo");
  auto o = f.call(echo, value::make_object({{"n", 7}}));
  REQUIRE(o.finished);
  CHECK(o.result["structuredContent"]["tool"].as_string() == "echo");
  CHECK(o.result["structuredContent"]["args"]["n"].as_int() == 7);
  CHECK(o.result["content"].as_array().at(0)["text"].as_string() == R"({"tool":"echo","args":{"n":7}})");

  auto text = f.call(f.tool("text"));
  REQUIRE(text.finished);
  CHECK(text.result["content"].as_array().at(0)["text"].as_string() == "plain words");
  CHECK(text.result.find("structuredContent") == nullptr);

  auto full = f.call(f.tool("full"));
  REQUIRE(full.finished);
  CHECK(full.result == mcp::text_result("already a result"));
}

TEST_CASE("an actor's own error is a tool error and keeps the breaker closed", "[actor_tool]") {
  fixture f;
  f.current = f.spawn_answering();
  auto refuse = f.tool("refuse", quick_breaker());
  for (int i = 0; i < 5; ++i) {
    auto o = f.call(refuse);
    REQUIRE(o.finished);
    CHECK(o.result["isError"].as_bool());
    CHECK(o.result["content"].as_array().at(0)["text"].as_string().find("tool refuse failed") == 0);
  }
  CHECK(f.rt.metrics_text().find(R"(bulwark_actor_tool_breaker_state{tool="refuse"} 0)") != std::string::npos);
}

TEST_CASE("a dead actor opens the breaker, which fails fast, half-opens and closes", "[actor_tool]") {
  fixture f;
  f.current = f.spawn_answering();
  auto echo = f.tool("echo", quick_breaker());
  REQUIRE(f.call(echo).finished);
  f.kill(f.current);

  for (int i = 1; i <= 3; ++i) {
    auto o = f.call(echo);
    REQUIRE_FALSE(o.finished);
    CHECK(o.code == error_code::service_unavailable);
    CHECK(o.data["reason"].as_string() == "actor_down");
    CHECK(o.data["tool"].as_string() == "echo");
    CHECK(o.data["breaker"].as_string() == (i < 3 ? "closed" : "open"));
    CHECK(o.data["retry_after_seconds"].as_double() == (i < 3 ? 1.0 : 5.0));
  }

  // Open: the lookup is not even asked.
  auto lookups = f.lookups;
  auto fast = f.call(echo);
  CHECK(fast.code == error_code::service_unavailable);
  CHECK(fast.data["reason"].as_string() == "breaker_open");
  CHECK(fast.data["breaker"].as_string() == "open");
  CHECK(fast.message == "tool echo is unavailable: its circuit breaker is open");
  CHECK(f.lookups == lookups);
  auto text = f.rt.metrics_text();
  CHECK(text.find(R"(bulwark_actor_tool_breaker_state{tool="echo"} 1)") != std::string::npos);
  CHECK(text.find(R"(bulwark_actor_tool_failures_total{reason="actor_down",tool="echo"} 3)") != std::string::npos);

  // A new actor (as a host's supervisor would start); still open until 5 s passed.
  f.current = f.spawn_answering();
  f.sched->advance_time(4900ms);
  CHECK(f.call(echo).data["retry_after_seconds"].as_double() == Approx(0.1));
  f.sched->advance_time(100ms);
  auto probe = f.call(echo);
  REQUIRE(probe.finished);
  CHECK(f.rt.metrics_text().find(R"(bulwark_actor_tool_breaker_state{tool="echo"} 0)") != std::string::npos);
  CHECK(f.call(echo).finished);
}

TEST_CASE("a failed probe opens the breaker again", "[actor_tool]") {
  fixture f;
  auto echo = f.tool("echo", quick_breaker()); // no actor at all
  for (int i = 0; i < 3; ++i) {
    auto o = f.call(echo);
    CHECK(o.code == error_code::service_unavailable);
    CHECK(o.data["reason"].as_string() == "no_actor");
    CHECK(o.message == "no actor is running for tool echo");
  }
  f.sched->advance_time(5s);
  auto probe = f.call(echo);
  CHECK(probe.data["reason"].as_string() == "no_actor");
  CHECK(probe.data["breaker"].as_string() == "open");
  CHECK(f.call(echo).data["reason"].as_string() == "breaker_open");
}

TEST_CASE("a silent actor times out with deadline_exceeded", "[actor_tool]") {
  fixture f;
  f.current = f.spawn_silent();
  auto echo = f.tool("echo", quick_breaker());
  auto r = f.start(echo);
  CHECK_FALSE(r.owner->got);
  f.sched->advance_time(999ms);
  f.sched->run();
  CHECK_FALSE(r.owner->got);
  f.sched->advance_time(1ms);
  f.sched->run();
  REQUIRE(r.owner->got);
  CHECK(r.owner->got->code == error_code::deadline_exceeded);
  CHECK(r.owner->got->data["reason"].as_string() == "timeout");
  CHECK(r.owner->got->message == "the actor of tool echo did not answer within 1000 ms");
}

TEST_CASE("a cancelled probe frees the half-open breaker for the next one", "[actor_tool]") {
  fixture f;
  auto o = quick_breaker();
  o.timeout = 60s;
  auto echo = f.tool("echo", o);
  for (int i = 0; i < 3; ++i)
    f.call(echo); // no actor: opens
  f.sched->advance_time(5s);
  f.current = f.spawn_silent();
  auto probe = f.start(echo); // half-open; this probe waits on the silent actor
  CHECK_FALSE(probe.owner->got);
  auto busy = f.call(echo);
  CHECK(busy.data["reason"].as_string() == "breaker_open");
  CHECK(busy.data["breaker"].as_string() == "half_open");
  probe.call->mark_cancelled();
  f.sched->run();
  f.current = f.spawn_answering();
  CHECK(f.call(echo).finished); // the next probe, which closes the breaker
  CHECK(f.call(echo).finished);
}

TEST_CASE("runtime health is null before the first check; metrics render", "[actor_tool]") {
  fixture f;
  CHECK(f.rt.health().is_null());
  CHECK(f.rt.metrics_text().find("# TYPE bulwark_uptime_seconds gauge") != std::string::npos);
  CHECK(f.rt.metrics_json()["bulwark_sessions"]["type"].as_string() == "gauge");
}
