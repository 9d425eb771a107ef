// Supervisors on CAF's deterministic test coordinator: no worker threads, no
// sleeps. Actors run only when the test says so, and time moves only when the
// test advances the actor clock, so restart intensity windows and back-off are
// checked to the second.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/env.hpp"
#include "actors/supervisor.hpp"
#include "messages/actors.hpp"
#include "messages/mcp.hpp"
#include "tests/unit/simulated.hpp"
#include "tests/unit/support.hpp"

using namespace bulwark;
using namespace bulwark::test;
using json::value;
using namespace std::chrono_literals;

namespace {

struct deterministic : simulated_system {
  deterministic(uint32_t max_restarts, std::chrono::seconds window) {
    env->opts.max_restarts = max_restarts;
    env->opts.restart_window = window;
    env->configure_state_keys("test-key-of-thirty-two-bytes-len", {});
    auto cat = std::make_shared<catalog>();
    tool_spec hang;
    hang.name = "hang"; // never answers on its own
    hang.handler = [](const call_ptr&) {};
    cat->tools.push_back(hang);
    tool_spec echo;
    echo.name = "echo";
    echo.handler = [](const call_ptr& c) { c->finish(mcp::text_result(c->arguments()["text"].as_string(), false)); };
    cat->tools.push_back(echo);
    env->replace(std::move(cat));
  }

  /// A supervisor with this fixture's intensity and no back-off.
  supervisor_spec spec(std::string name, std::vector<child_spec> children,
                       restart_strategy strategy = restart_strategy::one_for_one) {
    supervisor_spec s{std::move(name), {}, std::move(children)};
    s.policy.strategy = strategy;
    s.policy.max_restarts = env->opts.max_restarts;
    s.policy.window = env->opts.restart_window;
    s.policy.backoff_initial = 0ms;
    return s;
  }

  caf::actor get(const std::string& name) { return caf::actor_cast<caf::actor>(env->names.get(name)); }

  void kill(const caf::actor& h) {
    caf::anon_send_exit(h, caf::exit_reason::kill);
    sched->run();
  }

  /// Kills the actor registered as `name`; returns the handle registered
  /// once the scheduler ran out of work (null when none was restarted).
  caf::actor kill_registered(const std::string& name) {
    auto before = get(name);
    REQUIRE(before);
    kill(before);
    auto after = get(name);
    if (after)
      CHECK(after != before);
    return after;
  }

  /// Sends a request to a session actor; the returned sink holds whatever
  /// arrived by the time the scheduler ran out of work.
  std::shared_ptr<capture_sink> request(const caf::actor& session, const std::string& body,
                                        const std::string& session_id = {}) {
    auto out = std::make_shared<capture_sink>();
    auto in = std::make_shared<inbound>();
    in->message = parse(body);
    in->kind = mcp::classify(in->message).kind;
    in->session_id = session_id;
    in->stateless = session_id.empty();
    auto handed = std::make_shared<abandoning_sink>(out);
    handed->set_request_id(in->message["id"]);
    in->sink = std::move(handed);
    caf::anon_send(caf::actor_cast<session_actor>(session), std::move(in));
    sched->run();
    return out;
  }
};

const std::string modern_meta = R"("_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
  "io.modelcontextprotocol/clientCapabilities":{}})";

std::string call(int id, const std::string& tool, const std::string& args) {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":"tools/call","params":{"name":")" + tool
         + R"(","arguments":)" + args + "," + modern_meta + "}}";
}

caf::actor spawn_plain_child(caf::actor_system& sys) {
  return sys.spawn([]() -> caf::behavior { return {[](int x) { return x; }}; });
}

} // namespace

TEST_CASE("restart intensity allows N restarts per window", "[supervisor]") {
  restart_intensity ri(3, std::chrono::seconds(10));
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  CHECK(ri.allow(t0));
  CHECK(ri.allow(t0 + 1s));
  CHECK(ri.allow(t0 + 2s));
  CHECK_FALSE(ri.allow(t0 + 3s));
  // Old restarts leave the window.
  CHECK(ri.allow(t0 + 14s));
}

TEST_CASE("root supervisor: restarts within its intensity, then backs off one window", "[supervisor]") {
  deterministic f(2, 10s);
  auto root = spawn_root_supervisor(*f.sys, f.env, f.spec("root", {child_spec{"worker", spawn_plain_child}}));
  f.sched->run();
  REQUIRE(f.get("worker"));

  // Two restarts are within "2 in 10 s": each happens at once.
  CHECK(f.kill_registered("worker"));
  f.sched->advance_time(1s);
  CHECK(f.kill_registered("worker"));
  CHECK(f.env->restarts == 2);
  CHECK(f.env->escalations == 0);

  // The third crash inside the window escalates: no restart for one window.
  f.sched->advance_time(1s); // t = 2 s
  CHECK_FALSE(f.kill_registered("worker"));
  CHECK(f.env->escalations == 1);
  CHECK(f.sched->advance_time(9s) == 0); // t = 11 s: still backing off
  f.sched->run();
  CHECK_FALSE(f.get("worker"));
  CHECK(f.sched->advance_time(1s) == 1); // t = 12 s: the back-off ends
  f.sched->run();
  REQUIRE(f.get("worker"));

  // The window slides: the crashes at 0 s and 1 s have left it, so the next
  // one restarts at once again.
  CHECK(f.kill_registered("worker"));
  CHECK(f.env->escalations == 1);
}

TEST_CASE("supervisor: back-off grows between restarts within a window", "[supervisor]") {
  deterministic f(5, 10s);
  auto s = f.spec("root", {child_spec{"worker", spawn_plain_child}});
  s.policy.backoff_initial = 100ms;
  s.policy.backoff_max = 300ms;
  CHECK(s.policy.backoff(0) == 0ms);
  CHECK(s.policy.backoff(1) == 100ms);
  CHECK(s.policy.backoff(2) == 200ms);
  CHECK(s.policy.backoff(3) == 300ms); // capped
  auto root = spawn_root_supervisor(*f.sys, f.env, std::move(s));
  f.sched->run();

  // The first restart in the window is immediate.
  CHECK(f.kill_registered("worker"));
  // The second waits 100 ms: nothing is registered until the clock moves.
  CHECK_FALSE(f.kill_registered("worker"));
  f.sched->advance_time(99ms);
  f.sched->run();
  CHECK_FALSE(f.get("worker"));
  f.sched->advance_time(1ms);
  f.sched->run();
  REQUIRE(f.get("worker"));
  // The third waits 200 ms.
  CHECK_FALSE(f.kill_registered("worker"));
  f.sched->advance_time(199ms);
  f.sched->run();
  CHECK_FALSE(f.get("worker"));
  f.sched->advance_time(1ms);
  f.sched->run();
  CHECK(f.get("worker"));
  CHECK(f.env->escalations == 0);
}

TEST_CASE("supervisor: rest-for-one restarts the stopped child and the ones after it", "[supervisor]") {
  deterministic f(5, 10s);
  auto root = spawn_root_supervisor(
    *f.sys, f.env,
    f.spec("root",
           {child_spec{"a", spawn_plain_child}, child_spec{"b", spawn_plain_child}, child_spec{"c", spawn_plain_child}},
           restart_strategy::rest_for_one));
  f.sched->run();
  auto a0 = f.get("a"), b0 = f.get("b"), c0 = f.get("c");
  REQUIRE((a0 && b0 && c0));

  CHECK(f.kill_registered("b"));
  CHECK(f.get("a") == a0); // before it: untouched
  CHECK(f.get("c") != c0); // after it: restarted too
  CHECK(f.get("c"));
  CHECK(c0->getf(caf::abstract_actor::is_terminated_flag));
  auto tree = f.env->actor_tree();
  CHECK(tree["b"].restarts == 1);
  CHECK(tree["c"].restarts == 1);
  CHECK(tree["a"].restarts == 0);
  CHECK(tree["c"].last_exit.find("rest-for-one") != std::string::npos);
  // Only the failure counts toward the intensity.
  CHECK(f.env->restarts == 1);

  // The last child takes nobody along.
  auto a1 = f.get("a"), b1 = f.get("b");
  CHECK(f.kill_registered("c"));
  CHECK(f.get("a") == a1);
  CHECK(f.get("b") == b1);
}

TEST_CASE("supervisor: a nested supervisor over its intensity stops its children and reports up", "[supervisor]") {
  deterministic f(1, 10s);
  supervisor_spec root_spec = f.spec("root", {});
  root_spec.policy.max_restarts = 5;
  root_spec.children.push_back(nested_supervisor(
    f.env, f.spec("group", {child_spec{"w", spawn_plain_child}, child_spec{"v", spawn_plain_child}}), "root"));
  auto root = spawn_root_supervisor(*f.sys, f.env, std::move(root_spec));
  f.sched->run();
  auto group0 = f.get("group");
  auto v0 = f.get("v");
  REQUIRE((group0 && f.get("w") && v0));
  CHECK(f.env->supervisors().at("group").parent == "root");

  // One restart is within "1 in 10 s".
  CHECK(f.kill_registered("w"));
  CHECK(f.get("group") == group0);
  CHECK(f.env->escalations == 0);

  // The second escalates: the group stops all its children and exits; the
  // root restarts it, and it starts fresh children.
  f.sched->advance_time(1s);
  f.kill(f.get("w"));
  CHECK(f.env->escalations == 1);
  CHECK(v0->getf(caf::abstract_actor::is_terminated_flag)); // the sibling went down with it
  auto group1 = f.get("group");
  REQUIRE(group1);
  CHECK(group1 != group0);
  CHECK(f.get("w"));
  CHECK(f.get("v"));
  CHECK(f.get("v") != v0);
  auto recent = f.env->escalations_since(std::chrono::steady_clock::time_point{});
  REQUIRE(recent.size() == 1);
  CHECK(recent[0].supervisor == "group");
  CHECK(recent[0].reason.find("group exceeded its restart intensity") != std::string::npos);
  CHECK(f.env->actor_tree()["group"].restarts == 1);
}

TEST_CASE("supervisor: a killed nested supervisor takes over the children it left running", "[supervisor]") {
  deterministic f(5, 10s);
  supervisor_spec root_spec = f.spec("root", {});
  root_spec.children.push_back(nested_supervisor(f.env, f.spec("group", {child_spec{"w", spawn_plain_child}}), "root"));
  auto root = spawn_root_supervisor(*f.sys, f.env, std::move(root_spec));
  f.sched->run();
  auto w0 = f.get("w");
  REQUIRE(w0);
  CHECK(f.kill_registered("group"));
  // Same worker, no duplicate, and the new group still supervises it.
  CHECK(f.get("w") == w0);
  CHECK(f.kill_registered("w"));
  CHECK(f.get("w") != w0);
}

TEST_CASE("supervisor: a group added while running starts; one dropped leaves the registry and the tree at once",
          "[supervisor]") {
  deterministic f(5, 10s);
  auto root = spawn_root_supervisor(*f.sys, f.env, f.spec("root", {child_spec{"a", spawn_plain_child}}));
  f.sched->run();
  auto group = [&] {
    return nested_supervisor(f.env,
                             f.spec("svc", {child_spec{"c", spawn_plain_child}, child_spec{"b", spawn_plain_child}},
                                    restart_strategy::rest_for_one),
                             "root");
  };
  caf::anon_send(root, atom::add_v, group());
  f.sched->run();
  auto c0 = f.get("c");
  REQUIRE((f.get("svc") && c0 && f.get("b")));
  CHECK(f.env->supervisors().at("root").children == std::vector<std::string>{"a", "svc"});
  CHECK(f.env->actor_tree().count("c") == 1);
  // It supervises what it started.
  CHECK(f.kill_registered("c"));
  c0 = f.get("c");

  // Dropped: its children leave the registry and the tree in the same step.
  caf::anon_send(root, atom::drop_v, std::string("svc"));
  f.sched->run();
  CHECK_FALSE(f.get("svc"));
  CHECK_FALSE(f.get("c"));
  CHECK_FALSE(f.get("b"));
  CHECK(c0->getf(caf::abstract_actor::is_terminated_flag));
  auto tree = f.env->actor_tree();
  CHECK((tree.count("svc") == 0 && tree.count("c") == 0 && tree.count("b") == 0));
  CHECK(f.env->supervisors().count("svc") == 0);
  CHECK(f.env->supervisors().at("root").children == std::vector<std::string>{"a"});
  CHECK(f.get("a")); // the rest stays

  // Replaced in one go (drop and add of the same name, as a changed
  // service): the successor starts its own children; it never takes over
  // its predecessor's, even when those have not stopped yet. The successor
  // runs first here: its predecessor has not seen its exit message yet.
  caf::anon_send(root, atom::add_v, group());
  f.sched->run();
  auto c1 = f.get("c");
  REQUIRE(c1);
  caf::anon_send(root, atom::add_v, group());
  REQUIRE(f.sched->prioritize(root));
  f.sched->run_once();
  auto successor = f.get("svc");
  REQUIRE(successor);
  REQUIRE(f.sched->prioritize(successor));
  f.sched->run_once();
  f.sched->run();
  auto c2 = f.get("c");
  REQUIRE(c2);
  CHECK(c2 != c1);
  CHECK(c1->getf(caf::abstract_actor::is_terminated_flag));
  CHECK(f.env->actor_tree().at("c").running);
  CHECK(f.env->restarts == 1); // the kill above; drops and replacements are no restarts
}

TEST_CASE("supervisor: a child that stops while its supervisor is down is restarted and counted by the next one",
          "[supervisor]") {
  deterministic f(5, 10s);
  supervisor_spec root_spec = f.spec("root", {});
  root_spec.children.push_back(nested_supervisor(f.env, f.spec("group", {child_spec{"w", spawn_plain_child}}), "root"));
  auto root = spawn_root_supervisor(*f.sys, f.env, std::move(root_spec));
  f.sched->run();
  auto group = f.get("group");
  auto w0 = f.get("w");
  REQUIRE(w0);
  // The group and then its child stop in the same round: the child's down
  // message goes to the dead group, and the root restarts the group.
  caf::anon_send_exit(group, caf::exit_reason::kill);
  caf::anon_send_exit(w0, caf::exit_reason::kill);
  f.sched->run();
  auto w1 = f.get("w");
  REQUIRE(w1);
  CHECK(w1 != w0);
  CHECK_FALSE(w1->getf(caf::abstract_actor::is_terminated_flag));
  CHECK(f.env->restarts == 2); // one restart per kill
  auto tree = f.env->actor_tree();
  CHECK(tree["w"].running);
  CHECK(tree["w"].restarts == 1);
  CHECK(tree["w"].last_exit.find("kill") != std::string::npos);
  // The new group supervises the new child.
  CHECK(f.kill_registered("w"));
  CHECK(f.env->restarts == 3);
}

TEST_CASE("session supervisor: a killed session's in-flight call is answered at once", "[supervisor]") {
  deterministic f(5, 10s);
  auto sup = spawn_session_supervisor(*f.sys, f.env);
  f.sched->run();
  auto s0 = f.get(names::stateless_session);
  REQUIRE(s0);

  auto pending = f.request(s0, call(7, "hang", "{}"));
  CHECK(pending->messages().empty()); // the call is in flight

  // Killing the actor answers the in-flight call in the same scheduler run,
  // with the documented error, not after any timeout.
  f.kill(s0);
  auto msgs = pending->messages();
  REQUIRE(msgs.size() == 1);
  auto answer = parse(msgs.back().body);
  CHECK(answer["id"].as_int() == 7);
  CHECK(answer["error"]["code"].as_int() == static_cast<int>(error_code::actor_restarted));

  // The actor is back under its name and the next call succeeds.
  auto s1 = f.get(names::stateless_session);
  REQUIRE(s1);
  CHECK(s1 != s0);
  auto ok = f.request(s1, call(8, "echo", R"({"text":"again"})"));
  REQUIRE(ok->messages().size() == 1);
  auto result = parse(ok->messages().back().body);
  REQUIRE(result["result"]["content"].as_array().size() == 1);
  CHECK(result["result"]["content"].as_array()[0]["text"].as_string() == "again");
  CHECK(f.env->restarts == 1);
}

TEST_CASE("session supervisor: a 2025-era session keeps its id across restarts until it crashes too often",
          "[supervisor]") {
  deterministic f(2, 10s);
  auto sup = spawn_session_supervisor(*f.sys, f.env);
  f.sched->run();

  // A new session through the supervisor, as the transport opens one.
  auto out = std::make_shared<capture_sink>();
  auto in = std::make_shared<inbound>();
  in->message = parse(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
    "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})");
  in->kind = mcp::message_kind::request;
  in->sink = out;
  caf::anon_send(sup, atom::open_v, std::move(in));
  f.sched->run();
  REQUIRE(out->messages().size() == 1);
  auto sid = out->messages().back().session_id;
  REQUIRE(sid.size() == 32);
  auto name = names::session_prefix + sid;

  auto ping = R"({"jsonrpc":"2.0","id":2,"method":"ping"})";
  for (int i = 0; i < 2; ++i) {
    auto after = f.kill_registered(name);
    REQUIRE(after); // same id, new actor
    auto pong = f.request(after, ping, sid);
    REQUIRE(pong->messages().size() == 1);
    CHECK(parse(pong->messages().back().body)["result"].is_object());
  }
  // A third crash inside the window ends the session: its id is gone.
  CHECK_FALSE(f.kill_registered(name));
  CHECK(f.env->escalations == 1);
  CHECK(f.env->session_records().size() == 1); // only the stateless record
}
