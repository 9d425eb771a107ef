// Distributed traces: the W3C trace context a call carries (`traceparent`,
// `tracestate`) and the spans Bulwark records of it, in OpenTelemetry's
// model, written as OTLP/JSON for the exporter actor.
//
// A call always has a trace: the one its caller named (an HTTP header or
// `_meta`), or one it starts. Its trace id is the `traceId` of any error it
// is answered with, and the one it passes on to downstream services. Spans
// are recorded only when the trace is sampled and an exporter is
// configured (`context::recording`).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulwark::trace {

/// Where a call stands in its trace.
struct context {
  uint64_t trace_hi = 0, trace_lo = 0; ///< The 128-bit trace id; both 0: none.
  uint64_t span = 0; ///< The call's own span here (its request span).
  uint64_t parent = 0; ///< The caller's span; 0 when the call began the trace.
  /// The W3C `sampled` flag, as decided for this trace (the caller's
  /// decision when it made one): passed on downstream.
  bool sampled = false;
  /// Spans of this call are recorded and exported (sampled, and an exporter
  /// is configured).
  bool recording = false;
  std::string state; ///< `tracestate`, passed on unchanged.

  bool valid() const noexcept { return trace_hi != 0 || trace_lo != 0; }
  /// The trace id: 32 lower-case hex digits.
  std::string trace_id() const;
  /// The same, written to `out` (32 characters, no terminator).
  void write_trace_id(char* out) const noexcept;
  /// The `traceparent` that names span `child` of this trace.
  std::string traceparent(uint64_t child) const;
};

/// Parses a `traceparent` value: version 00 exactly, or a later version's
/// leading fields (as W3C Trace Context asks). Nothing when it is malformed,
/// of version ff, or names the all-zero trace or span.
std::optional<context> parse_traceparent(std::string_view text);

/// A `tracestate` worth passing on: at most 512 characters of printable
/// ASCII, else empty (W3C lets a vendor drop a state it cannot keep).
std::string checked_tracestate(std::string_view text);

/// A fresh random span id (never 0).
uint64_t new_span_id() noexcept;

/// The context of a call: continues `parent` (what the caller sent, if
/// valid) with a new span of its own, or starts a trace. Without a parent
/// the call is sampled with probability `ratio`, decided from the trace id
/// so that every instance decides alike; with one, the parent's flag
/// decides. `exporting` says whether sampled spans have anywhere to go.
context begin(const std::optional<context>& parent, double ratio, bool exporting);

/// `t` in nanoseconds since the Unix epoch.
int64_t unix_nanos(std::chrono::steady_clock::time_point t) noexcept;

enum class span_kind : uint8_t { internal = 1, server = 2, client = 3 };

/// One attribute of a span: a string, an integer or a boolean. The key is
/// a literal of Bulwark's own, written as it is (never escaped); a string
/// value is a view, valid until the span is added to a batch (which
/// encodes it at once).
struct attribute {
  enum class type : uint8_t { text, integer, boolean };
  std::string_view key;
  type what = type::text;
  std::string_view text;
  int64_t number = 0;
};

/// One finished span, built where it ends and added to a `span_batch` at
/// once.
struct span {
  static constexpr std::size_t max_attributes = 8;

  uint64_t trace_hi = 0, trace_lo = 0;
  uint64_t id = 0;
  uint64_t parent = 0; ///< 0: a root span.
  std::string name;
  span_kind kind = span_kind::internal;
  int64_t start_ns = 0, end_ns = 0; ///< Unix nanoseconds.
  bool error = false;
  std::string status_message; ///< With `error`.
  std::string_view state; ///< The trace's `tracestate` (its context's).
  std::array<attribute, max_attributes> attributes{};
  std::size_t attribute_count = 0; ///< Attributes beyond the maximum are left out.

  /// A span of `c`'s trace from `start` to `end`.
  static span of(const context& c, uint64_t id, uint64_t parent, std::string name, span_kind kind,
                 std::chrono::steady_clock::time_point start, std::chrono::steady_clock::time_point end);
  span& with(std::string_view key, std::string_view text) { return add({key, attribute::type::text, text, 0}); }
  span& with(std::string_view key, const char* text) { return with(key, std::string_view(text)); }
  span& with(std::string_view key, long long n) { return add({key, attribute::type::integer, {}, n}); }
  span& with(std::string_view key, int n) { return with(key, static_cast<long long>(n)); }
  span& with(std::string_view key, bool b) { return add({key, attribute::type::boolean, {}, b ? 1 : 0}); }
  span& failed(std::string message) {
    error = true;
    status_message = std::move(message);
    return *this;
  }

private:
  span& add(attribute a) {
    if (attribute_count < max_attributes)
      attributes[attribute_count++] = a;
    return *this;
  }
};

/// Finished spans, already written as OTLP/JSON span objects (comma
/// separated): encoding where a span ends leaves the exporter only the
/// framing, and a batch owns everything it says.
struct span_batch {
  std::string json;
  std::size_t count = 0;

  void add(const span& s);
  bool empty() const noexcept { return count == 0; }
};

/// Names the process in exported spans (OTLP resource attributes).
struct resource {
  std::string service_name = "bulwark";
  std::string service_version;
  std::string instance_id; ///< `service.instance.id`
};

/// The OTLP/JSON `ExportTraceServiceRequest` carrying the spans of
/// `batches` (one resource, one instrumentation scope; ids as hex, times as
/// decimal strings), in pieces to be sent one after another: the framing,
/// and the batches' text moved in rather than copied.
std::vector<std::string> otlp_json_pieces(std::vector<span_batch> batches, const resource& r);

} // namespace bulwark::trace
