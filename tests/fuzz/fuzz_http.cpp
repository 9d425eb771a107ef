// libFuzzer target: the HTTP request path, as the server runs it on the bytes
// a client sends, without a socket. The first input byte sets the size of
// the reads the bytes arrive in (0: all at once), so that requests split at
// any point are covered; the rest is what the client sends on one
// connection, possibly several pipelined requests.
//
// Each request goes through the same steps as on the server: the framing
// reader (Beast's parser with our limits and our checks), Host/Origin, and
// for POST the media types, the body, the era and session, and the mirrored
// headers. What must hold for any input:
//   - the reader makes progress and never holds more than the limits allow;
//   - every refusal has a status of the documented set and a parseable
//     JSON-RPC error body with the refusal's code;
//   - a request that passes is one valid JSON-RPC message, routed to exactly
//     one of: a live session, the stateless era, a new session (initialize).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "messages/json.hpp"
#include "messages/mcp.hpp"
#include "tests/fuzz/fuzz.hpp"
#include "transport/http_request.hpp"

using namespace bulwark;

namespace {

// Small limits, so that inputs of fuzzing size reach them.
constexpr std::size_t header_limit = 2048;
constexpr std::size_t body_limit = 8192;

const http_options& options() {
  static const http_options opts = [] {
    http_options o;
    o.header_limit = header_limit;
    o.body_limit = body_limit;
    o.allowed_hosts = {"mcp.example.com"};
    o.allowed_origins = {"https://app.example.com"};
    return o;
  }();
  return opts;
}

const json::value& echo_schema() {
  static const json::value schema = [] {
    json::value v;
    json::parse_error err;
    bool ok = json::parse(R"({"type":"object","properties":{
      "text":{"type":"string","x-mcp-header":"Text"},
      "count":{"type":"integer","x-mcp-header":"Count"}}})",
                          v, err);
    FUZZ_REQUIRE(ok);
    return v;
  }();
  return schema;
}

void check_refusal(const http_refusal& r) {
  static const int statuses[] = {400, 404, 406, 413, 415, 431};
  FUZZ_REQUIRE(std::find(std::begin(statuses), std::end(statuses), r.status) != std::end(statuses));
  FUZZ_REQUIRE(!r.message.empty());
  json::value body;
  json::parse_error err;
  FUZZ_REQUIRE(json::parse(r.body(), body, err));
  FUZZ_REQUIRE(mcp::classify(body).kind == mcp::message_kind::response);
  FUZZ_REQUIRE(body["error"]["code"].as_int() == to_int(r.code));
}

void judge(http_request& req) {
  const auto& opts = options();
  if (!http_origin_allowed(opts, req))
    return; // 403
  auto headers = collect_mcp_headers(req);
  if (req.method() != boost::beast::http::verb::post) {
    if (auto accept = req.find(boost::beast::http::field::accept); accept != req.end())
      (void)http_accepts({accept->value().data(), accept->value().size()}, "text/event-stream");
    return;
  }
  http_post_message m;
  if (auto refused = judge_post_body(req, m))
    return check_refusal(*refused);
  FUZZ_REQUIRE(m.cls.kind != mcp::message_kind::invalid);
  FUZZ_REQUIRE(m.msg.is_object());

  bool asked_session = false;
  http_session_lookup lookup{
    [&](const std::string& sid) {
      asked_session = true;
      FUZZ_REQUIRE(!sid.empty());
      return sid == "live-session";
    },
    [&](const std::string& tool) -> const json::value* { return tool == "echo" ? &echo_schema() : nullptr; }};
  http_post_route route;
  bool modern_header = headers.protocol_version.has_value();
  if (auto refused = judge_post_route(headers, m, lookup, route))
    return check_refusal(*refused);
  if (!route.session_id.empty()) {
    FUZZ_REQUIRE(asked_session && route.session_id == "live-session");
    FUZZ_REQUIRE(!route.stateless && !route.acknowledge_only);
  } else if (route.stateless) {
    FUZZ_REQUIRE(modern_header || m.msg["params"]["_meta"][mcp::meta_protocol_version].is_string());
    FUZZ_REQUIRE(m.cls.kind != mcp::message_kind::response);
    FUZZ_REQUIRE(route.acknowledge_only == (m.cls.kind == mcp::message_kind::notification));
  } else {
    FUZZ_REQUIRE(m.cls.kind == mcp::message_kind::request);
    FUZZ_REQUIRE(m.msg["method"].as_string() == "initialize");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::size_t chunk = data[0] == 0 ? size : data[0];
  ++data;
  --size;

  http_request_reader reader(header_limit, body_limit);
  boost::beast::flat_buffer buffer;
  std::size_t fed = 0;
  while (fed < size) {
    auto n = std::min(chunk, size - fed);
    auto space = buffer.prepare(n);
    std::memcpy(space.data(), data + fed, n);
    buffer.commit(n);
    fed += n;
    while (buffer.size() > 0) {
      auto before = buffer.size();
      auto step = reader.read(buffer);
      (void)reader.take_continue();
      FUZZ_REQUIRE(buffer.size() <= before);
      if (step == http_request_reader::step::need_more) {
        // Nothing is held back beyond what a header block and a body may take.
        FUZZ_REQUIRE(buffer.size() <= header_limit + body_limit + chunk);
        break;
      }
      if (step == http_request_reader::step::refused) {
        check_refusal(reader.refusal());
        return 0; // the connection answers and closes
      }
      auto req = reader.take();
      FUZZ_REQUIRE(!reader.in_progress());
      FUZZ_REQUIRE(req.body().size() <= body_limit);
      judge(req);
    }
  }
  return 0;
}
