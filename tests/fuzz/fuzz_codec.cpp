// libFuzzer target: the JSON-RPC codec. Parses the input as one HTTP or
// stdio body would be parsed, then checks what must hold for any input:
//   - a parse failure says why; a parsed value written and parsed again is
//     equal, and writing it again gives the same text; the padded and the
//     copying parser agree;
//   - each message (or each member of a batch) classifies, and a request,
//     notification or response re-serialised by our writers parses again,
//     classifies the same and keeps its id and method;
//   - an error body is a response carrying the code, the message and a
//     trace id;
//   - the Mcp-* headers a client derives from a tools/call (param_headers,
//     encoded names) pass the server's check of them against the body;
//   - base64 of any text decodes back to it;
//   - an `inputSchema` in the message compiles (or says why not), and
//     `validate` and `accepts` agree on instances taken from the message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "messages/json.hpp"
#include "messages/mcp.hpp"
#include "messages/schema.hpp"
#include "messages/text.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace bulwark;

namespace {

json::value parse_or_die(std::string_view text) {
  json::value v;
  json::parse_error err;
  if (!json::parse(text, v, err)) {
    std::fprintf(stderr, "fuzz_codec: our own output does not parse (%s): %.*s\n", err.message.c_str(),
                 static_cast<int>(std::min<std::size_t>(text.size(), 400)), text.data());
    std::abort();
  }
  return v;
}

/// A tool schema with `x-mcp-header` annotations of every primitive kind,
/// nested one level, the shape a 2026-07-28 tool declares mirrored arguments.
const json::value& mirrored_schema() {
  static const json::value schema = parse_or_die(R"({"type":"object","properties":{
    "region":{"type":"string","x-mcp-header":"Region"},
    "count":{"type":"number","x-mcp-header":"Count"},
    "flag":{"type":"boolean","x-mcp-header":"Flag"},
    "target":{"type":"object","properties":{"key":{"type":"string","x-mcp-header":"Target-Key"}}},
    "text":{"type":"string"}},"required":["region"]})");
  return schema;
}

/// Visible ASCII without edge white space (which HTTP trims).
bool sendable_as_header(std::string_view s) {
  return text::header_safe(s) && text::trim(s).size() == s.size();
}

void check_mirroring(const json::value& msg) {
  const auto& method = msg["method"].as_string();
  const auto& params = msg["params"];
  const auto& declared = params["_meta"][mcp::meta_protocol_version];
  // Only what a client can send as header values: visible ASCII, no edge
  // white space (HTTP trims it).
  if (!sendable_as_header(method))
    return;
  if (declared.is_string() && !sendable_as_header(declared.as_string()))
    return;
  mcp::mirrored_headers h;
  h.protocol_version = declared.is_string() ? declared.as_string() : std::string(mcp::stateless_version);
  h.method = method;
  if (auto* name = mcp::mirrored_name(method, params)) {
    if (!name->is_string())
      return;
    h.name = "=?base64?" + mcp::base64_encode(name->as_string()) + "?=";
  }
  const auto& schema = mirrored_schema();
  for (auto& [header, value] : mcp::param_headers(schema, params["arguments"])) {
    FUZZ_REQUIRE(header.rfind("Mcp-Param-", 0) == 0);
    FUZZ_REQUIRE(text::header_safe(value));
    h.params.emplace_back(text::lowered(header.substr(10)), value);
  }
  std::string why;
  bool ok = mcp::check_mirrored_headers(h, msg, method == "tools/call" ? schema : json::value(), why);
  if (!ok) {
    std::fprintf(stderr, "fuzz_codec: headers derived from the body were refused: %s\n", why.c_str());
    std::abort();
  }
}

void check_schemas(const json::value& v, const json::value& msg, int depth) {
  if (depth > 8)
    return;
  if (v.is_object()) {
    for (auto& [key, sub] : v.as_object()) {
      if ((key == "inputSchema" || key == "outputSchema") && sub.is_object()) {
        schema::validator val(sub);
        FUZZ_REQUIRE(val.usable() || !val.problem().empty());
        for (const json::value* instance :
             {&msg["params"]["arguments"], &msg["result"]["structuredContent"], &sub, &msg}) {
          auto errors = val.validate(*instance);
          FUZZ_REQUIRE(errors.size() <= schema::max_errors + 1);
          FUZZ_REQUIRE(errors.empty() == val.accepts(*instance));
          if (!val.usable())
            FUZZ_REQUIRE(errors.empty());
          for (auto& e : errors)
            FUZZ_REQUIRE(!e.keyword.empty() && !e.message.empty());
          if (!errors.empty()) {
            FUZZ_REQUIRE(!schema::summary(errors).empty());
            FUZZ_REQUIRE(schema::errors_to_json(errors).size() == errors.size());
          }
        }
      } else {
        check_schemas(sub, msg, depth + 1);
      }
    }
  } else if (v.is_array()) {
    for (auto& sub : v.as_array())
      check_schemas(sub, msg, depth + 1);
  }
}

void check_message(const json::value& msg) {
  auto cls = mcp::classify(msg);
  const auto& id = msg["id"];
  switch (cls.kind) {
    case mcp::message_kind::invalid:
      FUZZ_REQUIRE(!cls.reason.empty());
      // The answer to it is a parseable error response.
      {
        auto body = parse_or_die(mcp::error_body(id, error_code::invalid_request, "Invalid Request: " + cls.reason));
        FUZZ_REQUIRE(mcp::classify(body).kind == mcp::message_kind::response);
      }
      return;
    case mcp::message_kind::request: {
      const auto& method = msg["method"].as_string();
      auto again = parse_or_die(mcp::request_body(id, method, msg["params"]));
      FUZZ_REQUIRE(mcp::classify(again).kind == mcp::message_kind::request);
      FUZZ_REQUIRE(again["method"].as_string() == method);
      FUZZ_REQUIRE(mcp::id_key(again["id"]) == mcp::id_key(id));
      FUZZ_REQUIRE(again["id"] == id);
      if (msg.find("params"))
        FUZZ_REQUIRE(again["params"] == msg["params"]);
      // An answer to it.
      auto answer = parse_or_die(mcp::result_body(id, msg["params"]));
      FUZZ_REQUIRE(mcp::classify(answer).kind == mcp::message_kind::response);
      FUZZ_REQUIRE(answer["id"] == id);
      check_mirroring(msg);
      break;
    }
    case mcp::message_kind::notification: {
      const auto& method = msg["method"].as_string();
      auto again = parse_or_die(mcp::notification_body(method, msg["params"]));
      FUZZ_REQUIRE(mcp::classify(again).kind == mcp::message_kind::notification);
      FUZZ_REQUIRE(again["method"].as_string() == method);
      FUZZ_REQUIRE(again["params"] == msg["params"]);
      break;
    }
    case mcp::message_kind::response: {
      if (auto* result = msg.find("result")) {
        auto again = parse_or_die(mcp::result_body(id, *result));
        FUZZ_REQUIRE(mcp::classify(again).kind == mcp::message_kind::response);
        FUZZ_REQUIRE(again["result"] == *result);
        if (id.is_string() || id.is_number())
          FUZZ_REQUIRE(again["id"] == id);
      }
      const auto& error = msg["error"];
      const auto& message = error["message"].as_string();
      auto again = parse_or_die(mcp::error_body(id, error_code::internal_error, message, error["data"]));
      FUZZ_REQUIRE(mcp::classify(again).kind == mcp::message_kind::response);
      FUZZ_REQUIRE(again["error"]["code"].as_int() == to_int(error_code::internal_error));
      FUZZ_REQUIRE(again["error"]["message"].as_string() == message);
      const auto& data = again["error"]["data"];
      if (error["data"].is_object() || error["data"].is_null())
        FUZZ_REQUIRE(data["traceId"].is_string() && !data["traceId"].as_string().empty());
      else
        FUZZ_REQUIRE(data == error["data"]);
      break;
    }
  }
  check_schemas(msg, msg, 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  json::value msg;
  json::parse_error err;
  bool parsed = json::parse(text, msg, err);

  // The zero-copy parser on a padded buffer agrees with the copying one.
  std::string padded(text);
  padded.reserve(text.size() + json::padding());
  json::value msg_padded;
  json::parse_error err_padded;
  FUZZ_REQUIRE(json::parse_padded(padded, msg_padded, err_padded) == parsed);

  // base64 of arbitrary bytes round-trips; a header value decodes or is refused.
  std::string decoded;
  FUZZ_REQUIRE(mcp::base64_decode(mcp::base64_encode(text), decoded) && decoded == text);
  std::string header;
  if (mcp::decode_header_value(text, header))
    FUZZ_REQUIRE(header.size() <= text.size());

  if (!parsed) {
    FUZZ_REQUIRE(!err.message.empty());
    return 0;
  }
  FUZZ_REQUIRE(msg_padded == msg);

  // Writing round trip.
  auto once = json::dump(msg);
  auto again = parse_or_die(once);
  FUZZ_REQUIRE(again == msg);
  FUZZ_REQUIRE(json::dump(again) == once);

  if (msg.is_array()) {
    // A batch is refused as a whole; its members still classify.
    FUZZ_REQUIRE(mcp::classify(msg).kind == mcp::message_kind::invalid);
    for (auto& member : msg.as_array())
      check_message(member);
  } else {
    check_message(msg);
  }
  return 0;
}
