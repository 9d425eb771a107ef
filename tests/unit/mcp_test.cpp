// The JSON-RPC/MCP codec: envelope checks, error bodies and the error table,
// base64, completion results and mirrored headers.
#include <catch2/catch.hpp>

#include "messages/mcp.hpp"
#include "tests/unit/support.hpp"

using namespace bulwark;
using json::value;
using test::parse;

TEST_CASE("classify tells requests, notifications and responses apart", "[mcp]") {
  using mcp::message_kind;
  CHECK(mcp::classify(parse(R"({"jsonrpc":"2.0","id":1,"method":"ping"})")).kind == message_kind::request);
  CHECK(mcp::classify(parse(R"({"jsonrpc":"2.0","method":"notifications/initialized"})")).kind
        == message_kind::notification);
  CHECK(mcp::classify(parse(R"({"jsonrpc":"2.0","id":"a","result":{}})")).kind == message_kind::response);
}

TEST_CASE("an error response with a null id is a response, as our own parse errors are", "[mcp]") {
  using mcp::message_kind;
  auto ours = parse(mcp::error_body(value(), error_code::parse_error, "Parse error"));
  CHECK(ours["id"].is_null());
  CHECK(mcp::classify(ours).kind == message_kind::response);
  // Only an error may have a null id.
  CHECK(mcp::classify(parse(R"({"jsonrpc":"2.0","id":null,"result":{}})")).kind == message_kind::invalid);
  CHECK(mcp::classify(parse(R"({"jsonrpc":"2.0","id":null,"method":"ping"})")).kind == message_kind::invalid);
}

TEST_CASE("classify says why a message is invalid", "[mcp]") {
  auto batch = mcp::classify(parse(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])"));
  CHECK(batch.kind == mcp::message_kind::invalid);
  CHECK(batch.reason.find("batch") != std::string::npos);
  CHECK(mcp::classify(parse(R"({"id":1,"method":"ping"})")).reason.find("jsonrpc") != std::string::npos);
  CHECK(mcp::classify(parse(R"({"jsonrpc":"2.0","id":{},"method":"ping"})")).reason.find("id") != std::string::npos);
  CHECK(mcp::classify(parse(R"({"jsonrpc":"2.0","id":1,"method":""})")).reason.find("method") != std::string::npos);
  CHECK(mcp::classify(parse(R"({"jsonrpc":"2.0","id":1,"method":"x","params":[1]})")).reason.find("params")
        != std::string::npos);
  CHECK(mcp::classify(parse(R"({"jsonrpc":"2.0","id":1,"result":{},"error":{}})")).kind == mcp::message_kind::invalid);
  CHECK(mcp::classify(parse(R"("just a string")")).kind == mcp::message_kind::invalid);
}

TEST_CASE("error bodies echo the id and carry data", "[mcp]") {
  auto body =
    mcp::error_body(value("abc"), error_code::invalid_params, "bad \"x\"", value::make_object({{"uri", "test://x"}}));
  auto v = parse(body);
  CHECK(v["id"].as_string() == "abc");
  CHECK(v["error"]["code"].as_int() == -32602);
  CHECK(v["error"]["message"].as_string() == "bad \"x\"");
  CHECK(v["error"]["data"]["uri"].as_string() == "test://x");
  CHECK(parse(mcp::error_body(value(), error_code::parse_error, "x"))["id"].is_null());
  // A service's trace id is kept; an empty one is replaced by ours.
  auto kept =
    parse(mcp::error_body(value(1), error_code::internal_error, "x", value::make_object({{"traceId", "svc-trace-7"}})));
  CHECK(kept["error"]["data"]["traceId"].as_string() == "svc-trace-7");
  auto empty = parse(mcp::error_body(value(1), error_code::internal_error, "x", value::make_object({{"traceId", ""}})));
  CHECK_FALSE(empty["error"]["data"]["traceId"].as_string().empty());
}

TEST_CASE("the error table has unique codes in the documented ranges", "[mcp]") {
  std::size_t n = 0;
  auto* table = error_table(n);
  REQUIRE(n >= 10);
  for (std::size_t i = 0; i < n; ++i) {
    auto code = to_int(table[i].code);
    bool jsonrpc = code <= -32600 && code >= -32700;
    bool mcp_range = code <= -32020 && code >= -32022;
    bool ours = code <= -32000 && code >= -32019;
    CHECK((jsonrpc || mcp_range || ours));
    for (std::size_t j = i + 1; j < n; ++j)
      CHECK(table[i].code != table[j].code);
  }
}

TEST_CASE("an error that is the whole answer gets the table's status, with Retry-After in whole seconds", "[mcp]") {
  for (bool stateless : {false, true}) {
    CHECK(whole_answer_status(error_code::rate_limited, stateless) == 429);
    CHECK(whole_answer_status(error_code::overloaded, stateless) == 429);
    CHECK(whole_answer_status(error_code::session_limit, stateless) == 429);
    CHECK(whole_answer_status(error_code::service_unavailable, stateless) == 503);
    CHECK(whole_answer_status(error_code::shutting_down, stateless) == 503);
    CHECK(whole_answer_status(error_code::actor_restarted, stateless) == 503);
    CHECK(whole_answer_status(error_code::internal_error, stateless) == 200);
  }
  // Protocol refusals carry a status in 2026-07-28 only.
  CHECK(whole_answer_status(error_code::invalid_params, true) == 400);
  CHECK(whole_answer_status(error_code::invalid_params, false) == 200);
  CHECK(whole_answer_status(error_code::method_not_found, true) == 404);
  CHECK(whole_answer_status(error_code::method_not_found, false) == 200);

  auto after = [](json::value seconds) {
    return mcp::retry_after_header(value::make_object({{"retry_after_seconds", std::move(seconds)}}));
  };
  CHECK(after(29.985) == 30); // rounded up: a client that waits that long is admitted
  CHECK(after(1) == 1);
  CHECK(after(0.001) == 1);
  CHECK(after(0) == 0);
  CHECK(after(-3) == 0);
  CHECK(after("soon") == 0);
  CHECK(after(1e12) == 86400);
  CHECK(mcp::retry_after_header(value()) == 0);
}

TEST_CASE("base64 decoding is strict", "[mcp]") {
  std::string out;
  CHECK(mcp::base64_decode("SGVsbG8=", out));
  CHECK(out == "Hello");
  CHECK_FALSE(mcp::base64_decode("SGVsbG8", out)); // missing padding
  CHECK_FALSE(mcp::base64_decode("SGVs!!!bG8=", out)); // bad characters
  CHECK_FALSE(mcp::base64_decode("SG=sbG8=", out)); // padding in the middle
  CHECK(mcp::base64_encode("Hello, \xE4\xB8\x96") == "SGVsbG8sIOS4lg==");
}

TEST_CASE("a completion result carries at most 100 values and says when there are more", "[mcp]") {
  std::vector<std::string> many;
  for (int i = 0; i < 150; ++i)
    many.push_back("v" + std::to_string(i));
  auto r = mcp::completion_result(many)["completion"];
  REQUIRE(r["values"].size() == 100);
  CHECK(r["values"].as_array().back().as_string() == "v99");
  CHECK(r["total"].as_int() == 150);
  CHECK(r["hasMore"].as_bool());
  many.resize(100);
  r = mcp::completion_result(many)["completion"];
  CHECK(r["values"].size() == 100);
  CHECK(r["total"].as_int() == 100);
  CHECK_FALSE(r["hasMore"].as_bool());
  r = mcp::completion_result({})["completion"];
  CHECK(r["values"].is_array());
  CHECK(r["values"].size() == 0);
  CHECK(r["total"].as_int() == 0);
  CHECK(r["hasMore"].is_bool());
}

TEST_CASE("mirrored headers must agree with the body", "[mcp]") {
  auto body = parse(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
    "name":"get","arguments":{"region":"us-west1","n":42},
    "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}})");
  auto schema = parse(R"({"type":"object","properties":{
    "region":{"type":"string","x-mcp-header":"Region"},"n":{"type":"integer","x-mcp-header":"N"}}})");
  mcp::mirrored_headers h;
  h.protocol_version = "2026-07-28";
  h.method = " tools/call ";
  h.name = "get";
  h.params = {{"region", "us-west1"}, {"n", "42.0"}};
  std::string why;
  CHECK(mcp::check_mirrored_headers(h, body, schema, why));

  auto wrong = h;
  wrong.method = "TOOLS/CALL";
  CHECK_FALSE(mcp::check_mirrored_headers(wrong, body, schema, why));
  CHECK(why.find("Mcp-Method") != std::string::npos);

  wrong = h;
  wrong.name.reset();
  CHECK_FALSE(mcp::check_mirrored_headers(wrong, body, schema, why));

  wrong = h;
  wrong.protocol_version = "2025-11-25";
  CHECK_FALSE(mcp::check_mirrored_headers(wrong, body, schema, why));

  wrong = h;
  wrong.params = {{"n", "42"}}; // Region missing while the body has it
  CHECK_FALSE(mcp::check_mirrored_headers(wrong, body, schema, why));
  CHECK(why.find("Region") != std::string::npos);

  auto encoded = h;
  encoded.params = {{"region", "=?base64?dXMtd2VzdDE=?="}, {"n", "42"}};
  CHECK(mcp::check_mirrored_headers(encoded, body, schema, why));
  encoded.params = {{"region", "=?base64?dXMtd2VzdDE?="}, {"n", "42"}};
  CHECK_FALSE(mcp::check_mirrored_headers(encoded, body, schema, why));

  // An argument that is not a primitive is not mirrored: the headers a client
  // derives (param_headers) pass, and the schema check refuses the value.
  auto object_arg = parse(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
    "name":"get","arguments":{"region":"us-west1","n":{"deep":1}},
    "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}})");
  auto derived = h;
  derived.params.clear();
  for (auto& [header, v] : mcp::param_headers(schema, object_arg["params"]["arguments"]))
    derived.params.emplace_back(header == "Mcp-Param-Region" ? "region" : "n", v);
  CHECK(derived.params.size() == 1);
  CHECK(mcp::check_mirrored_headers(derived, object_arg, schema, why));
}

namespace {

std::string observed_trace, observed_detail;

void remember(std::string_view trace, error_code, std::string_view, std::string_view detail) {
  observed_trace = std::string(trace);
  observed_detail = std::string(detail);
}

} // namespace

TEST_CASE("data.detail reaches the client only in development mode; the observer always", "[mcp]") {
  mcp::set_error_observer(remember);
  auto data = value::make_object({{"detail", "connect 10.0.0.7:9000: refused"}, {"service", "web"}});
  auto prod = parse(mcp::error_body(value(1), error_code::service_unavailable, "service web failed", data));
  CHECK(prod["error"]["data"].find("detail") == nullptr);
  CHECK(prod["error"]["data"]["service"].as_string() == "web");
  CHECK(observed_detail == "connect 10.0.0.7:9000: refused");
  CHECK(observed_trace == prod["error"]["data"]["traceId"].as_string());

  auto failed = mcp::internal_tool_failure("t", "/etc/secret: EACCES");
  auto text = failed["content"].as_array()[0]["text"].as_string();
  CHECK(failed["isError"].as_bool());
  CHECK(text.find("/etc/secret") == std::string::npos);
  CHECK(text.find(observed_trace) != std::string::npos);
  CHECK(observed_detail == "/etc/secret: EACCES");

  mcp::set_error_mode(mcp::error_mode::development);
  auto dev = parse(mcp::error_body(value(1), error_code::service_unavailable, "service web failed", data));
  CHECK(dev["error"]["data"]["detail"].as_string() == "connect 10.0.0.7:9000: refused");
  CHECK(mcp::internal_tool_failure("t", "/etc/secret: EACCES")["content"].as_array()[0]["text"].as_string().find(
          "/etc/secret")
        != std::string::npos);
  mcp::set_error_mode(mcp::error_mode::production);
  mcp::set_error_observer(nullptr);
}
