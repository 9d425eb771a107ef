#include "messages/trace.hpp"

#include <algorithm>
#include <cstring>
#include <random>

#include "messages/json.hpp"

namespace bulwark::trace {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

/// "00" to "ff".
constexpr auto hex_pairs = [] {
  std::array<char, 512> pairs{};
  for (int i = 0; i < 256; ++i) {
    pairs[2 * i] = hex_digits[i >> 4];
    pairs[2 * i + 1] = hex_digits[i & 0xf];
  }
  return pairs;
}();

/// Writes `n` as 16 hex digits at `out` (a byte at a time: every span
/// writes four ids).
void write_hex(char* out, uint64_t n) noexcept {
  for (int i = 14; i >= 0; i -= 2, n >>= 8)
    std::memcpy(out + i, &hex_pairs[2 * (n & 0xff)], 2);
}

void append_hex(std::string& out, uint64_t n) {
  char buf[16];
  write_hex(buf, n);
  out.append(buf, 16);
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1; // W3C: lower case only
}

/// Reads `digits` hex digits at `text[at]` into `out`.
bool read_hex(std::string_view text, std::size_t at, std::size_t digits, uint64_t& out) noexcept {
  out = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    auto v = hex_value(text[at + i]);
    if (v < 0)
      return false;
    out = (out << 4) | static_cast<uint64_t>(v);
  }
  return true;
}

/// Per-thread generator: ids must be unique and unpredictable enough to
/// not collide, not secret.
std::mt19937_64& rng() {
  thread_local std::mt19937_64 g{std::random_device{}()};
  return g;
}

} // namespace

void context::write_trace_id(char* out) const noexcept {
  write_hex(out, trace_hi);
  write_hex(out + 16, trace_lo);
}

std::string context::trace_id() const {
  std::string out(32, '0');
  write_trace_id(out.data());
  return out;
}

std::string context::traceparent(uint64_t child) const {
  std::string out;
  out.reserve(55);
  out.append("00-");
  append_hex(out, trace_hi);
  append_hex(out, trace_lo);
  out.push_back('-');
  append_hex(out, child);
  out.append(sampled ? "-01" : "-00");
  return out;
}

std::optional<context> parse_traceparent(std::string_view t) {
  // version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55.
  if (t.size() < 55 || t[2] != '-' || t[35] != '-' || t[52] != '-')
    return std::nullopt;
  uint64_t version = 0, flags = 0;
  if (!read_hex(t, 0, 2, version) || version == 0xff)
    return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append fields
  // after another '-'.
  if ((version == 0 && t.size() != 55) || (t.size() > 55 && t[55] != '-'))
    return std::nullopt;
  context c;
  if (!read_hex(t, 3, 16, c.trace_hi) || !read_hex(t, 19, 16, c.trace_lo) || !read_hex(t, 36, 16, c.parent)
      || !read_hex(t, 53, 2, flags))
    return std::nullopt;
  if (!c.valid() || c.parent == 0)
    return std::nullopt;
  c.sampled = (flags & 1) != 0;
  return c;
}

std::string checked_tracestate(std::string_view text) {
  if (text.size() > 512)
    return {};
  for (char ch : text)
    if (ch < 0x20 || ch > 0x7e)
      return {};
  return std::string(text);
}

uint64_t new_span_id() noexcept {
  uint64_t id = 0;
  while (id == 0)
    id = rng()();
  return id;
}

context begin(const std::optional<context>& parent, double ratio, bool exporting) {
  context c;
  if (parent && parent->valid()) {
    c.trace_hi = parent->trace_hi;
    c.trace_lo = parent->trace_lo;
    c.parent = parent->parent;
    c.sampled = parent->sampled;
    c.state = parent->state;
  } else {
    c.trace_hi = rng()();
    c.trace_lo = rng()();
    if (!c.valid())
      c.trace_lo = 1;
    // Sampled when the trace id's low half falls below ratio * 2^64.
    if (ratio >= 1.0)
      c.sampled = true;
    else if (ratio > 0.0)
      c.sampled = static_cast<double>(c.trace_lo) < ratio * 18446744073709551616.0;
  }
  c.span = new_span_id();
  c.recording = c.sampled && exporting;
  return c;
}

int64_t unix_nanos(std::chrono::steady_clock::time_point t) noexcept {
  using namespace std::chrono;
  // The distance between the clocks, taken once: a span's times need to be
  // right relative to each other, and close to the wall clock.
  static const auto offset = duration_cast<nanoseconds>(system_clock::now().time_since_epoch())
                             - duration_cast<nanoseconds>(steady_clock::now().time_since_epoch());
  return (duration_cast<nanoseconds>(t.time_since_epoch()) + offset).count();
}

span span::of(const context& c, uint64_t id, uint64_t parent, std::string name, span_kind kind,
              std::chrono::steady_clock::time_point start, std::chrono::steady_clock::time_point end) {
  span s;
  s.trace_hi = c.trace_hi;
  s.trace_lo = c.trace_lo;
  s.id = id;
  s.parent = parent;
  s.name = std::move(name);
  s.kind = kind;
  s.start_ns = unix_nanos(start);
  s.end_ns = unix_nanos(end < start ? start : end);
  s.state = c.state;
  return s;
}

namespace {

/// Room the attributes of `s` take as JSON at most.
std::size_t attributes_bound(const span& s) noexcept {
  using json::string_bound;
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.attribute_count; ++i) {
    const auto& a = s.attributes[i];
    n += 48 + a.key.size() + (a.what == attribute::type::text ? string_bound(a.text) : 24);
  }
  return n;
}

/// Room span `s` takes as JSON at most.
std::size_t bound(const span& s) noexcept {
  using json::string_bound;
  // The fixed text, three ids, two times and a kind: under 300 bytes.
  return 320 + string_bound(s.name) + string_bound(s.state) + string_bound(s.status_message) + attributes_bound(s);
}

/// The attributes of `s`, comma separated (the inside of a JSON array).
void write_attributes(json::raw_writer& w, const span& s) {
  for (std::size_t i = 0; i < s.attribute_count; ++i) {
    const auto& a = s.attributes[i];
    if (i > 0)
      w.ch(',');
    w.lit(R"({"key":")");
    w.bytes(a.key);
    w.lit(R"(","value":{)");
    switch (a.what) {
      case attribute::type::boolean:
        if (a.number != 0)
          w.lit(R"("boolValue":true)");
        else
          w.lit(R"("boolValue":false)");
        break;
      case attribute::type::integer:
        // OTLP/JSON writes 64-bit integers as decimal strings.
        w.lit(R"("intValue":")");
        w.number(a.number);
        w.ch('"');
        break;
      case attribute::type::text:
        w.lit(R"("stringValue":)");
        w.string(a.text);
        break;
    }
    w.lit("}}");
  }
}

void hex(json::raw_writer& w, uint64_t n) noexcept {
  write_hex(w.take(16), n);
}

} // namespace

void span_batch::add(const span& s) {
  // Encoding a span is on every sampled request's path: written into room
  // reserved at once.
  auto old = json.size();
  auto need = bound(s);
  if (json.capacity() < old + need)
    json.reserve(std::max<std::size_t>(2 * (old + need), 2048));
  json.resize(old + need);
  json::raw_writer w(json.data() + old);
  if (count++ > 0)
    w.ch(',');
  w.lit(R"({"traceId":")");
  hex(w, s.trace_hi);
  hex(w, s.trace_lo);
  w.lit(R"(","spanId":")");
  hex(w, s.id);
  w.ch('"');
  if (s.parent != 0) {
    w.lit(R"(,"parentSpanId":")");
    hex(w, s.parent);
    w.ch('"');
  }
  if (!s.state.empty()) {
    w.lit(R"(,"traceState":)");
    w.string(s.state);
  }
  w.lit(R"(,"name":)");
  w.string(s.name);
  w.lit(R"(,"kind":)");
  w.ch(static_cast<char>('0' + static_cast<int>(s.kind))); // 1 to 3
  w.lit(R"(,"startTimeUnixNano":")");
  w.number(s.start_ns);
  w.lit(R"(","endTimeUnixNano":")");
  w.number(s.end_ns);
  w.lit(R"(","attributes":[)");
  write_attributes(w, s);
  // Status codes: 0 unset, 1 ok, 2 error.
  if (s.error) {
    w.lit(R"(],"status":{"code":2,"message":)");
    w.string(s.status_message);
    w.lit("}}");
  } else {
    w.lit(R"(],"status":{"code":0}})");
  }
  json.resize(static_cast<std::size_t>(w.at() - json.data()));
}

std::vector<std::string> otlp_json_pieces(std::vector<span_batch> batches, const resource& r) {
  std::vector<std::string> pieces;
  pieces.reserve(2 * batches.size() + 2);
  std::string head = R"({"resourceSpans":[{"resource":{"attributes":[)";
  span res;
  res.with("service.name", r.service_name);
  if (!r.service_version.empty())
    res.with("service.version", r.service_version);
  if (!r.instance_id.empty())
    res.with("service.instance.id", r.instance_id);
  std::string attributes(attributes_bound(res), '\0');
  json::raw_writer w(attributes.data());
  write_attributes(w, res);
  head.append(attributes.data(), static_cast<std::size_t>(w.at() - attributes.data()));
  head.append(R"(]},"scopeSpans":[{"scope":{"name":"bulwark")");
  if (!r.service_version.empty()) {
    head.append(R"(,"version":)");
    json::write_string(head, r.service_version);
  }
  head.append(R"(},"spans":[)");
  pieces.push_back(std::move(head));
  bool first = true;
  for (auto& b : batches) {
    if (b.empty())
      continue;
    if (!first)
      pieces.emplace_back(",");
    first = false;
    pieces.push_back(std::move(b.json));
  }
  pieces.emplace_back("]}]}]}");
  return pieces;
}

} // namespace bulwark::trace
