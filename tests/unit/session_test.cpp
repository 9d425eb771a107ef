// Session actors, driven through the runtime with capturing sinks: the
// protocol state machine, exactly-one-answer under kills, restarts that keep
// the session usable, and the resources a session watches.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>

#include <caf/all.hpp>

#include "actors/env.hpp"
#include "actors/runtime.hpp"
#include "messages/actors.hpp"
#include "tests/unit/support.hpp"
#include "tools/builtin_tools.hpp"

using namespace bulwark;
using json::value;
using namespace std::chrono_literals;
using namespace bulwark::test;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<runtime> rt;

  fixture() {
    cfg.set("scheduler.max-threads", 1);
    sys = std::make_unique<caf::actor_system>(cfg);
    runtime_options opts;
    opts.page_size = 2;
    rt = std::make_unique<runtime>(*sys, opts);
    register_builtin_tools(*rt);
    rt->start();
  }

  ~fixture() {
    rt->stop();
    rt.reset();
  }

  /// Sends one message; returns the parsed final answer.
  std::pair<value, outbound> send(const std::string& body, const std::string& session = {}, bool stateless = false) {
    auto sink = std::make_shared<capture_sink>();
    auto out = dispatch(body, session, stateless, sink);
    return {parse(out.body), out};
  }

  /// Like a transport's sink, the one handed over answers with an error if
  /// it is dropped unanswered (say, sent to an actor that just died).
  outbound dispatch(const std::string& body, const std::string& session, bool stateless,
                    const std::shared_ptr<capture_sink>& sink) {
    auto in = std::make_shared<inbound>();
    in->message = parse(body);
    in->kind = mcp::classify(in->message).kind;
    in->session_id = session;
    in->stateless = stateless;
    auto handed = std::make_shared<abandoning_sink>(sink);
    handed->set_request_id(in->message["id"]);
    in->sink = std::move(handed);
    rt->dispatch(std::move(in));
    return sink->wait();
  }

  std::string initialize() {
    auto [v, out] = send(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
      "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})");
    REQUIRE(v["result"]["protocolVersion"].as_string() == "2025-06-18");
    REQUIRE(out.session_id.size() == 32);
    return out.session_id;
  }
};

const char* meta = R"("_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
  "io.modelcontextprotocol/clientCapabilities":{}})";

} // namespace

TEST_CASE("a 2025-era session negotiates, answers and pages", "[session]") {
  fixture f;
  auto sid = f.initialize();
  CHECK(f.rt->has_session(sid));

  auto [ping, _] = f.send(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", sid);
  CHECK(ping["result"] == value(json::object{}));

  auto [page1, p1] = f.send(R"({"jsonrpc":"2.0","id":3,"method":"tools/list"})", sid);
  REQUIRE(page1["result"]["tools"].size() == 2);
  REQUIRE(page1["result"]["nextCursor"].is_string());
  auto [page2, p2] = f.send(R"({"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":")"
                              + page1["result"]["nextCursor"].as_string() + R"("}})",
                            sid);
  CHECK(page2["result"]["tools"].size() == 1);
  CHECK(page2["result"].find("nextCursor") == nullptr);
  auto [badcursor, bc] = f.send(R"({"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"cursor":"zz"}})", sid);
  CHECK(badcursor["error"]["code"].as_int() == -32602);

  auto [call, c] =
    f.send(R"({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}})", sid);
  CHECK(call["id"].as_int() == 6);
  CHECK(call["result"]["content"].as_array()[0]["text"].as_string() == "hi");
  CHECK(call["result"].find("resultType") == nullptr); // 2026-only field

  auto [unknown, u] = f.send(R"({"jsonrpc":"2.0","id":7,"method":"no/such"})", sid);
  CHECK(unknown["error"]["code"].as_int() == -32601);
  auto [badlevel, bl] =
    f.send(R"({"jsonrpc":"2.0","id":8,"method":"logging/setLevel","params":{"level":"loud"}})", sid);
  CHECK(badlevel["error"]["code"].as_int() == -32602);
  auto [again, a] =
    f.send(R"({"jsonrpc":"2.0","id":9,"method":"initialize","params":{"protocolVersion":"2025-11-25"}})", sid);
  CHECK(again["error"]["code"].as_int() == -32600);
}

TEST_CASE("initialize falls back to the newest stateful version", "[session]") {
  fixture f;
  auto [v, out] = f.send(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
    "protocolVersion":"1999-01-01","capabilities":{}}})");
  CHECK(v["result"]["protocolVersion"].as_string() == "2025-11-25");
}

TEST_CASE("stateless requests are validated per request", "[session]") {
  fixture f;
  auto [nometa, o1] = f.send(R"({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}})", {}, true);
  CHECK(nometa["error"]["code"].as_int() == -32602);
  CHECK(o1.http_status == 400);

  auto [oldver, o2] = f.send(R"({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{
    "io.modelcontextprotocol/protocolVersion":"2024-01-01","io.modelcontextprotocol/clientCapabilities":{}}}})",
                             {}, true);
  CHECK(oldver["error"]["code"].as_int() == -32022);
  CHECK(oldver["error"]["data"]["requested"].as_string() == "2024-01-01");
  CHECK(o2.http_status == 400);

  auto [ping, o3] =
    f.send(std::string(R"({"jsonrpc":"2.0","id":3,"method":"ping","params":{)") + meta + "}}", {}, true);
  CHECK(ping["error"]["code"].as_int() == -32601);
  CHECK(o3.http_status == 404);

  auto [list, o4] =
    f.send(std::string(R"({"jsonrpc":"2.0","id":4,"method":"tools/list","params":{)") + meta + "}}", {}, true);
  CHECK(list["result"]["resultType"].as_string() == "complete");
  CHECK(list["result"]["ttlMs"].is_integer());
  CHECK(list["result"]["cacheScope"].as_string() == "public");

  auto [call, o5] = f.send(std::string(R"({"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"add",
    "arguments":{"a":2,"b":40},)")
                             + meta + "}}",
                           {}, true);
  CHECK(call["id"].as_string() == "x");
  CHECK(call["result"]["structuredContent"]["sum"].as_int() == 42);
  CHECK(call["result"]["resultType"].as_string() == "complete");
}

TEST_CASE("a prompt or template that completes for itself is answered later, as a call", "[session]") {
  fixture f;
  prompt_spec p;
  p.name = "pick";
  p.handler = [](const call_ptr& c) { c->finish(value::make_object({{"messages", value(json::array{})}})); };
  // Answers after a delay, from what the request carried: the partial value
  // and the context's arguments.
  p.complete = [](const call_ptr& c) {
    c->after(20ms, [](const call_ptr& c) {
      const auto& params = c->params();
      value values(json::array{});
      values.push_back(params["argument"]["value"].as_string() + "-" + params["ref"]["name"].as_string());
      values.push_back(params["context"]["arguments"]["city"].as_string());
      c->finish(value::make_object({{"completion", value::make_object({{"values", std::move(values)}})}}));
    });
  };
  p.completions["arg"] = [](std::string_view) { return std::vector<std::string>{"never used"}; };
  f.rt->add_prompt(std::move(p));
  resource_template_spec t;
  t.uri_template = "t://{id}";
  t.handler = [](const call_ptr& c) { c->finish(value::make_object({{"contents", value(json::array{})}})); };
  t.complete = [](const call_ptr& c) { c->fail(error_code::service_unavailable, "nobody to ask"); };
  f.rt->add_resource_template(std::move(t));

  auto sid = f.initialize();
  auto [r1, o1] = f.send(R"({"jsonrpc":"2.0","id":7,"method":"completion/complete","params":{
    "ref":{"type":"ref/prompt","name":"pick"},"argument":{"name":"arg","value":"pa"},
    "context":{"arguments":{"city":"Lyon"}}}})",
                         sid);
  CHECK(r1["id"].as_int() == 7);
  REQUIRE(r1["result"]["completion"]["values"].size() == 2);
  CHECK(r1["result"]["completion"]["values"].as_array()[0].as_string() == "pa-pick");
  CHECK(r1["result"]["completion"]["values"].as_array()[1].as_string() == "Lyon");
  CHECK_FALSE(r1["result"].find("resultType"));

  auto [r2, o2] = f.send(std::string(R"({"jsonrpc":"2.0","id":8,"method":"completion/complete","params":{
    "ref":{"type":"ref/prompt","name":"pick"},"argument":{"name":"arg","value":"x"},)")
                           + meta + "}}",
                         {}, true);
  CHECK(r2["result"]["completion"]["values"].as_array()[0].as_string() == "x-pick");
  CHECK(r2["result"]["resultType"].as_string() == "complete");

  auto [r3, o3] = f.send(R"({"jsonrpc":"2.0","id":9,"method":"completion/complete","params":{
    "ref":{"type":"ref/resource","uri":"t://{id}"},"argument":{"name":"id","value":"1"}}})",
                         sid);
  CHECK(r3["error"]["code"].as_int() == static_cast<int>(error_code::service_unavailable));
  CHECK(r3["error"]["message"].as_string() == "nobody to ask");

  auto [r4, o4] = f.send(R"({"jsonrpc":"2.0","id":10,"method":"completion/complete","params":{
    "ref":{"type":"ref/prompt","name":"pick"},"argument":{"name":"arg","value":3}}})",
                         sid);
  CHECK(r4["error"]["code"].as_int() == -32602);
}

TEST_CASE("progress notifications precede the answer and follow the token", "[session]") {
  fixture f;
  auto sid = f.initialize();
  auto sink = std::make_shared<capture_sink>();
  f.dispatch(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":50},
    "_meta":{"progressToken":"tok"}}})",
             sid, false, sink);
  auto msgs = sink->messages();
  REQUIRE(msgs.size() >= 3);
  double last = -1;
  for (std::size_t i = 0; i + 1 < msgs.size(); ++i) {
    auto n = parse(msgs[i].body);
    CHECK(n["method"].as_string() == "notifications/progress");
    CHECK(n["params"]["progressToken"].as_string() == "tok");
    CHECK(n["params"]["progress"].as_double() >= last);
    last = n["params"]["progress"].as_double();
    CHECK_FALSE(msgs[i].event_id.empty()); // resumable on a 2025-era stream
  }
  CHECK(last == 50);
  CHECK(parse(msgs.back().body)["result"]["content"].as_array()[0]["text"].as_string() == "slept 50 ms");
}

TEST_CASE("cancellation answers the cancelled call and stops its work", "[session]") {
  fixture f;
  auto sid = f.initialize();
  auto sink = std::make_shared<capture_sink>();
  auto in = std::make_shared<inbound>();
  in->message =
    parse(R"({"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"sleep","arguments":{"ms":10000}}})");
  in->kind = mcp::message_kind::request;
  in->session_id = sid;
  sink->set_request_id(in->message["id"]);
  in->sink = sink;
  f.rt->dispatch(in);
  auto cancel = std::make_shared<inbound>();
  cancel->message = parse(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow"}})");
  cancel->kind = mcp::message_kind::notification;
  cancel->session_id = sid;
  f.rt->dispatch(cancel);
  auto start = std::chrono::steady_clock::now();
  auto out = sink->wait(2000ms);
  CHECK(std::chrono::steady_clock::now() - start < 1500ms);
  // A cancelled request gets no response: the exchange ends silently.
  CHECK(out.silent);
  CHECK(out.body.empty());
}

TEST_CASE("killing a session actor answers its in-flight request at once and the session lives on", "[session]") {
  fixture f;
  auto sid = f.initialize();
  auto captured = std::make_shared<capture_sink>();
  {
    auto in = std::make_shared<inbound>();
    in->message =
      parse(R"({"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":20000}}})");
    in->kind = mcp::message_kind::request;
    in->session_id = sid;
    auto sink = std::make_shared<abandoning_sink>(captured);
    sink->set_request_id(in->message["id"]);
    in->sink = std::move(sink);
    f.rt->dispatch(std::move(in));
  }
  std::this_thread::sleep_for(50ms);
  auto start = std::chrono::steady_clock::now();
  REQUIRE(f.rt->kill_actor("session/" + sid));
  auto out = captured->wait(2000ms);
  CHECK(std::chrono::steady_clock::now() - start < 1000ms);
  auto err = parse(out.body);
  CHECK(err["id"].as_int() == 42);
  CHECK(err["error"]["code"].as_int() == to_int(error_code::actor_restarted));

  // The supervisor restarts the actor under the same session id; the record
  // (negotiated version, capabilities) survives.
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    auto [v, o] = f.send(
      R"({"jsonrpc":"2.0","id":43,"method":"tools/call","params":{"name":"echo","arguments":{"text":"again"}}})", sid);
    back = v.find("result") != nullptr;
    if (!back)
      std::this_thread::sleep_for(10ms);
  }
  CHECK(back);
  CHECK(f.rt->status().restarts >= 1);
}

TEST_CASE("killing the session supervisor keeps the sessions it had", "[session]") {
  fixture f;
  auto sid = f.initialize();
  REQUIRE(f.rt->kill_actor("session-supervisor"));
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {
    auto names = f.rt->actor_names();
    back = std::find(names.begin(), names.end(), "session-supervisor") != names.end();
    if (back) {
      auto [v, o] = f.send(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", sid);
      back = v.find("result") != nullptr;
      if (!back)
        CHECK(v["error"]["code"].as_int() == to_int(error_code::actor_restarted));
    }
    if (!back)
      std::this_thread::sleep_for(10ms);
  }
  CHECK(back);
  // New sessions can be created by the new supervisor (a request that races
  // the restart is answered with actor_restarted and may be retried).
  std::string sid2;
  for (int i = 0; i < 100 && sid2.empty(); ++i) {
    auto [v, out] = f.send(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
      "protocolVersion":"2025-11-25","capabilities":{}}})");
    if (v.find("result"))
      sid2 = out.session_id;
    else
      std::this_thread::sleep_for(10ms);
  }
  CHECK(sid2.size() == 32);
  CHECK(sid2 != sid);
}

TEST_CASE("DELETE ends a session: later requests find no session", "[session]") {
  fixture f;
  auto sid = f.initialize();
  REQUIRE(f.rt->end_session(sid));
  CHECK_FALSE(f.rt->has_session(sid));
  CHECK_FALSE(f.rt->end_session(sid));
}

TEST_CASE("a session's resource subscriptions outlive its actor and are given back when it ends", "[session]") {
  fixture f;
  auto watches = f.rt->environment()->watches;
  auto subscribe = [&](const std::string& sid, const char* method) {
    auto [v, o] = f.send(
      std::string(R"({"jsonrpc":"2.0","id":5,"method":")") + method + R"(","params":{"uri":"test://watched"}})", sid);
    REQUIRE(v.find("result"));
  };
  auto sid = f.initialize();
  auto other = f.initialize();
  subscribe(sid, "resources/subscribe");
  subscribe(other, "resources/subscribe");
  CHECK(watches->watched() == std::vector<std::string>{"test://watched"});
  subscribe(other, "resources/unsubscribe");
  CHECK(watches->watched() == std::vector<std::string>{"test://watched"});

  // A restarted actor keeps the session's record, subscriptions included.
  REQUIRE(f.rt->kill_actor("session/" + sid));
  std::this_thread::sleep_for(50ms);
  CHECK(watches->watched() == std::vector<std::string>{"test://watched"});

  // The session's end gives the subscription back.
  REQUIRE(f.rt->end_session(sid));
  bool released = false;
  for (int i = 0; i < 200 && !released; ++i) {
    released = watches->watched().empty();
    if (!released)
      std::this_thread::sleep_for(10ms);
  }
  CHECK(released);
}

TEST_CASE("a session, and a listen stream, watch at most 1000 resources", "[session]") {
  fixture f;
  auto sid = f.initialize();
  auto subscribe = [&](int i) {
    return f
      .send(R"({"jsonrpc":"2.0","id":5,"method":"resources/subscribe","params":{"uri":"test://r/)" + std::to_string(i)
              + R"("}})",
            sid)
      .first;
  };
  for (int i = 0; i < 1000; ++i)
    REQUIRE(subscribe(i).find("result"));
  auto refused = subscribe(1000);
  CHECK(refused["error"]["code"].as_int() == -32602);
  CHECK(refused["error"]["message"].as_string().find("watches 1000 resources already") != std::string::npos);
  CHECK(subscribe(7).find("result")); // one it watches already
  CHECK(f.rt->environment()->watches->watched().size() == 1000);

  std::string uris;
  for (int i = 0; i < 1001; ++i)
    uris += (i ? ",\"test://l/" : "\"test://l/") + std::to_string(i) + "\"";
  auto [listen, out] = f.send(std::string(R"({"jsonrpc":"2.0","id":6,"method":"subscriptions/listen","params":{)")
                                + meta + R"(,"notifications":{"resourceSubscriptions":[)" + uris + "]}}}",
                              {}, true);
  CHECK(listen["error"]["code"].as_int() == -32602);
  CHECK(out.http_status == 400);
  CHECK(f.rt->environment()->watches->watched().size() == 1000); // the refused stream holds none
}
