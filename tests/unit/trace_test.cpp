// Trace context (W3C traceparent), sampling, the OTLP/JSON encoding of
// spans, the access log's lines and secret references.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "config/access_log.hpp"
#include "messages/trace.hpp"
#include "tests/unit/support.hpp"

using namespace bulwark;
using json::value;
using test::file_text;
using test::parse;

namespace {

std::string temp_path(const char* name) {
  return "/tmp/bulwark-unit-" + std::to_string(getpid()) + "-" + name;
}

/// The export document as the collector receives it: its pieces, joined.
std::string otlp_json(std::vector<trace::span_batch> batches, const trace::resource& r) {
  std::string out;
  for (auto& piece : trace::otlp_json_pieces(std::move(batches), r))
    out.append(piece);
  return out;
}

} // namespace

TEST_CASE("traceparent: a valid header is read, a malformed one is not", "[trace]") {
  auto c = trace::parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  REQUIRE(c);
  CHECK(c->trace_id() == "0af7651916cd43dd8448eb211c80319c");
  CHECK(c->parent == 0xb7ad6b7169203331ULL);
  CHECK(c->sampled);
  auto quiet = trace::parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
  REQUIRE(quiet);
  CHECK_FALSE(quiet->sampled);
  // A later version may add fields; version 00 may not.
  CHECK(trace::parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra"));
  for (const char* bad : {
         "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", // 00 with more
         "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // version ff
         "00-00000000000000000000000000000000-b7ad6b7169203331-01", // zero trace
         "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", // zero parent
         "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", // upper case
         "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01", // short span
         "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // separator
         "00-0af7651916cd43dd8448eb211c8031zz-b7ad6b7169203331-01", // not hex
         "",
       })
    CHECK_FALSE(trace::parse_traceparent(bad));
}

TEST_CASE("trace context: a call continues its caller's trace or starts one, sampled by ratio", "[trace]") {
  auto parent = trace::parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  parent->state = "vendor=1";
  auto c = trace::begin(parent, 0.0, true);
  CHECK(c.trace_id() == "0af7651916cd43dd8448eb211c80319c");
  CHECK(c.parent == parent->parent);
  CHECK(c.span != 0);
  CHECK(c.span != c.parent);
  CHECK(c.sampled); // the caller's decision wins over the ratio
  CHECK(c.recording);
  CHECK(c.state == "vendor=1");
  CHECK_FALSE(trace::begin(parent, 1.0, false).recording); // nowhere to export
  // What it passes on names its own span, with the same flag.
  CHECK(c.traceparent(0x1122334455667788ULL) == "00-0af7651916cd43dd8448eb211c80319c-1122334455667788-01");
  auto unsampled = trace::parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
  CHECK_FALSE(trace::begin(unsampled, 1.0, true).sampled);

  auto root = trace::begin(std::nullopt, 1.0, true);
  CHECK(root.valid());
  CHECK(root.parent == 0);
  CHECK(root.sampled);
  CHECK(trace::begin(std::nullopt, 1.0, true).trace_id() != root.trace_id());
  int sampled = 0;
  for (int i = 0; i < 4000; ++i) {
    CHECK_FALSE(trace::begin(std::nullopt, 0.0, true).sampled);
    sampled += trace::begin(std::nullopt, 0.25, true).sampled ? 1 : 0;
  }
  CHECK(sampled > 700); // 1000 expected; far beyond chance outside
  CHECK(sampled < 1300);
}

TEST_CASE("tracestate: printable text up to 512 characters passes on, anything else does not", "[trace]") {
  CHECK(trace::checked_tracestate("a=1,b=2") == "a=1,b=2");
  CHECK(trace::checked_tracestate(std::string(512, 'x')).size() == 512);
  CHECK(trace::checked_tracestate(std::string(513, 'x')).empty());
  CHECK(trace::checked_tracestate("a=1\r\nb=2").empty());
}

TEST_CASE("OTLP/JSON: spans are written as an ExportTraceServiceRequest", "[trace]") {
  auto c = trace::begin(trace::parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), 1, true);
  auto t0 = std::chrono::steady_clock::now();
  auto request = trace::span::of(c, c.span, c.parent, "tools/call echo", trace::span_kind::server, t0,
                                 t0 + std::chrono::microseconds(250));
  request.with("mcp.method.name", "tools/call").with("http.response.status_code", 200).with("ok", true);
  auto root = trace::span::of(c, 0x42, 0, "root", trace::span_kind::internal, t0, t0 - std::chrono::seconds(1));
  root.failed("it \"broke\"");
  trace::resource r;
  r.service_name = "svc";
  r.instance_id = "host:1";
  trace::span_batch batch;
  batch.add(request);
  trace::span_batch more;
  more.add(root);
  auto doc = parse(otlp_json({batch, trace::span_batch{}, more}, r));
  const auto& rs = doc["resourceSpans"].as_array().at(0);
  const auto& resource = rs["resource"]["attributes"].as_array().at(0);
  CHECK(resource["key"].as_string() == "service.name");
  CHECK(resource["value"]["stringValue"].as_string() == "svc");
  const auto& spans = rs["scopeSpans"].as_array().at(0)["spans"].as_array();
  REQUIRE(spans.size() == 2);
  const auto& s = spans[0];
  const auto& attrs = s["attributes"].as_array();
  CHECK(s["traceId"].as_string() == "0af7651916cd43dd8448eb211c80319c");
  CHECK(s["spanId"].as_string().size() == 16);
  CHECK(s["parentSpanId"].as_string() == "b7ad6b7169203331");
  CHECK(s["kind"].as_int() == 2);
  auto start = std::stoll(s["startTimeUnixNano"].as_string());
  auto end = std::stoll(s["endTimeUnixNano"].as_string());
  CHECK(end - start == 250000);
  auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch());
  CHECK(std::llabs(wall.count() - start) < 5'000'000'000LL); // near the wall clock
  CHECK(attrs.at(1)["value"]["intValue"].as_string() == "200");
  CHECK(attrs.at(2)["value"]["boolValue"].as_bool());
  CHECK(s["status"]["code"].as_int() == 0);
  CHECK_FALSE(spans[1].find("parentSpanId"));
  CHECK(spans[1]["status"]["code"].as_int() == 2);
  CHECK(spans[1]["status"]["message"].as_string() == "it \"broke\"");
  CHECK(spans[1]["startTimeUnixNano"].as_string() == spans[1]["endTimeUnixNano"].as_string()); // never ends before
}

TEST_CASE("OTLP/JSON: names and values with quotes, control bytes, UTF-8 and broken UTF-8 stay JSON", "[trace]") {
  auto c = trace::begin(std::nullopt, 1, true);
  auto t0 = std::chrono::steady_clock::now();
  // Every byte escaped at worst (\u00XX), and long: the room reserved for
  // a span must hold it.
  std::string controls(300, '\x01');
  std::string broken = "caf\xc3\xa9 \xff\xfe end";
  auto s = trace::span::of(c, 7, 0, "tools/call \"quoted\\name\"\n" + controls, trace::span_kind::server, t0, t0);
  s.with("gen_ai.tool.name", std::string_view(broken)).with("plain", "x").with("n", -42);
  s.failed(controls);
  trace::span_batch batch;
  for (int i = 0; i < 50; ++i) // growth across many spans
    batch.add(s);
  CHECK(batch.count == 50);
  auto doc = parse(otlp_json({batch}, trace::resource{}));
  const auto& spans = doc["resourceSpans"].as_array().at(0)["scopeSpans"].as_array().at(0)["spans"].as_array();
  REQUIRE(spans.size() == 50);
  for (const auto& sp : spans) {
    CHECK(sp["name"].as_string() == "tools/call \"quoted\\name\"\n" + controls);
    CHECK(sp["attributes"].as_array().at(0)["value"]["stringValue"].as_string()
          == "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end");
    CHECK(sp["attributes"].as_array().at(1)["value"]["stringValue"].as_string() == "x");
    CHECK(sp["attributes"].as_array().at(2)["value"]["intValue"].as_string() == "-42");
    CHECK(sp["status"]["message"].as_string() == controls);
  }
}

TEST_CASE("access log: one redacted line per request; errors are written whatever the sampling", "[trace]") {
  auto path = temp_path("access.log");
  std::remove(path.c_str());
  access_log::open({path, 0.0});
  CHECK(access_log::enabled());
  access_log::entry ok;
  ok.method = "tools/call";
  ok.name = "echo";
  ok.outcome = "result";
  access_log::write(ok); // sampled out
  access_log::entry failed;
  failed.trace_id = "0af7651916cd43dd8448eb211c80319c";
  failed.identity = "key:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  failed.method = "tools/call";
  failed.name = "Bearer s3cr3t-t0k3n";
  failed.outcome = "error";
  failed.code = -32602;
  failed.status = 400;
  failed.duration_us = 17;
  failed.bytes_in = 120;
  failed.bytes_out = 90;
  access_log::write(failed);
  access_log::open({}); // closes (and flushes) the file
  CHECK_FALSE(access_log::enabled());
  auto text = file_text(path);
  REQUIRE(std::count(text.begin(), text.end(), '\n') == 1);
  auto line = parse(text.substr(0, text.size() - 1));
  CHECK(line["traceId"].as_string() == "0af7651916cd43dd8448eb211c80319c");
  CHECK(line["identity"].as_string() == "key:0123456789ab"); // shortened as in the audit log
  CHECK(line["outcome"].as_string() == "error");
  CHECK(line["code"].as_int() == -32602);
  CHECK(line["status"].as_int() == 400);
  CHECK(line["durationUs"].as_int() == 17);
  CHECK(line["bytesIn"].as_int() == 120);
  CHECK(line["name"].as_string().find("s3cr3t") == std::string::npos);
  std::remove(path.c_str());
  CHECK_THROWS(access_log::open({"/proc/bulwark-unit/access.log", 1.0}));
}

namespace {

/// Names of every length up to 300 bytes, and every thousandth one of
/// 200,000: far more than the 64 KiB a file's lines gather before a write.
std::vector<std::string> access_names(int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) {
    auto len = i % 1000 == 999 ? std::size_t{200'000} : static_cast<std::size_t>(i % 300);
    names.push_back(std::to_string(i) + "-" + std::string(len, static_cast<char>('a' + i % 26)));
  }
  return names;
}

void write_named(const std::vector<std::string>& names) {
  for (const auto& n : names) {
    access_log::entry e;
    e.method = "tools/call";
    e.name = n;
    e.outcome = "result";
    e.status = 200;
    access_log::write(e);
  }
}

/// How many of `text`'s lines are whole JSON naming `names` in order.
std::size_t lines_in_order(const std::string& text, const std::vector<std::string>& names) {
  std::size_t at = 0, good = 0;
  for (std::size_t i = 0; at < text.size() && i < names.size(); ++i) {
    auto end = text.find('\n', at);
    if (end == std::string::npos)
      break;
    auto line = parse(text.substr(at, end - at));
    if (line["name"].as_string() == names[i] && line["status"].as_int() == 200)
      ++good;
    at = end + 1;
  }
  return at == text.size() ? good : 0;
}

} // namespace

TEST_CASE("access log: lines of every size arrive whole and in order", "[trace]") {
  SECTION("to a file, through its buffer") {
    auto names = access_names(3000);
    auto path = temp_path("access-many.log");
    std::remove(path.c_str());
    access_log::open({path, 1.0});
    write_named(names);
    access_log::open({}); // closes (and flushes) the file
    CHECK(lines_in_order(file_text(path), names) == names.size());
    std::remove(path.c_str());
  }
  SECTION("to stderr, each line in one write") {
    auto names = access_names(1000);
    auto path = temp_path("access-stderr.log");
    std::remove(path.c_str());
    int saved = ::dup(STDERR_FILENO);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    ::dup2(fd, STDERR_FILENO);
    access_log::open({"stderr", 1.0});
    write_named(names);
    access_log::open({});
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(fd);
    CHECK(lines_in_order(file_text(path), names) == names.size());
    std::remove(path.c_str());
  }
}
