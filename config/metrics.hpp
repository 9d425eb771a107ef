// Bulwark's metrics: counters, gauges and latency histograms that request
// paths update directly (atomics, no actor hop), held by a registry that the
// `/metrics` (Prometheus text format 0.0.4) and `/metrics.json` endpoints
// render.
//
// There is no global registry: the runtime owns one and hands out references.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "messages/json.hpp"

namespace bulwark::metrics {

/// What a family's series are.
enum class kind : uint8_t { counter, gauge, histogram };

/// "counter", "gauge" or "histogram", as the `# TYPE` line spells it.
std::string_view to_string(kind k) noexcept;

/// Upper bounds (seconds) of the default latency buckets, 100us to 10s;
/// +Inf is implicit.
const std::vector<double>& default_latency_bounds();

// -- series types ------------------------------------------------------------------

/// A monotonic count.
class counter {
public:
  void inc(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }
  /// Follows a count kept elsewhere: takes `v` when it is higher.
  void raise_to(uint64_t v) noexcept {
    auto now = value_.load(std::memory_order_relaxed);
    while (now < v && !value_.compare_exchange_weak(now, v, std::memory_order_relaxed)) {
    }
  }

private:
  std::atomic<uint64_t> value_{0};
};

/// A value that goes up and down.
class gauge {
public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double delta) noexcept;
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<double> value_{0.0};
};

/// A histogram read at one moment: what renderers and quantiles work from.
struct histogram_snapshot {
  /// The finite upper bounds, ascending.
  std::vector<double> bounds;
  /// Cumulative counts per bucket (`le` semantics), one more than `bounds`:
  /// the last is the +Inf bucket and equals `count`.
  std::vector<uint64_t> cumulative;
  uint64_t count = 0;
  double sum = 0.0;

  /// Estimates the q-quantile (0 <= q <= 1) the way Prometheus'
  /// histogram_quantile does: linear interpolation inside the bucket that
  /// holds the rank, 0 as the lower edge of the first bucket, and the
  /// largest finite bound when the rank falls into +Inf. NaN when empty
  /// or q is NaN; -Inf for q < 0 and +Inf for q > 1.
  double quantile(double q) const noexcept;
};

/// Observations counted into buckets with fixed upper bounds; a value equal
/// to a bound falls into that bound's bucket. `observe` is lock-free.
class histogram {
public:
  /// Throws std::invalid_argument unless `bounds` is non-empty, finite and
  /// strictly ascending.
  explicit histogram(std::vector<double> bounds = default_latency_bounds());

  histogram(const histogram&) = delete;
  histogram& operator=(const histogram&) = delete;

  /// Counts one observation; NaN is dropped (it would poison the sum).
  void observe(double seconds) noexcept;

  const std::vector<double>& bounds() const noexcept { return bounds_; }
  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

  /// Reads the buckets. Concurrent observations may land between the reads;
  /// `count` is taken from the buckets so that +Inf always equals it.
  histogram_snapshot snapshot() const;
  /// Shorthand for `snapshot().quantile(q)`.
  double quantile(double q) const { return snapshot().quantile(q); }

private:
  std::vector<double> bounds_;
  /// Per-bucket (not cumulative) counts; the last is +Inf.
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// -- registry ----------------------------------------------------------------------

/// Label pairs as callers write them: `{{"tool", name}, {"outcome", "ok"}}`.
/// Order does not matter; the registry sorts by label name.
using label_list = std::initializer_list<std::pair<std::string_view, std::string_view>>;
/// Label pairs built at run time.
using label_vector = std::vector<std::pair<std::string, std::string>>;

/// Families of series by name. Lookups of existing series take a shared lock
/// and one hashed lookup, without allocating; only a new series takes the
/// exclusive lock. Returned references stay valid for the registry's life.
///
/// Each family holds at most `max_series_per_family` label sets; further
/// ones fold into one series whose label values are all "other", so label
/// values taken from requests (tool names, say) cannot grow memory without
/// bound.
class registry {
public:
  static constexpr std::size_t default_max_series_per_family = 1000;
  /// The label value that series beyond the cap fold into.
  static constexpr std::string_view overflow_label_value = "other";

  explicit registry(std::size_t max_series_per_family = default_max_series_per_family);
  ~registry();

  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // -- registration --------------------------------------------------------------

  /// Declares a family with its help text. Families used without it get an
  /// empty help and the type of their first use. `bounds` (histograms only;
  /// empty means the default latency bounds) apply to all of the family's
  /// series. Calling it again replaces the help. Throws std::invalid_argument
  /// on a bad name, a type other than the family's, bounds for a non-histogram,
  /// or new bounds for a histogram family that already has series.
  void describe(std::string_view family, std::string_view help, kind type, std::vector<double> bounds = {});

  // -- series --------------------------------------------------------------------

  /// The series of `family` with `labels`, created on first use. Throws
  /// std::invalid_argument on a bad family or label name, a repeated label
  /// name, a label named "le" on a histogram, or a family of another type.
  metrics::counter& counter(std::string_view family, label_list labels = {});
  metrics::counter& counter(std::string_view family, const label_vector& labels);
  /// A counter whose running total is read from elsewhere (a process's CPU
  /// seconds): it renders as a counter with the total last set, fractions
  /// kept.
  metrics::gauge& counter_total(std::string_view family, label_list labels = {});
  metrics::gauge& gauge(std::string_view family, label_list labels = {});
  metrics::gauge& gauge(std::string_view family, const label_vector& labels);
  metrics::histogram& histogram(std::string_view family, label_list labels = {});
  metrics::histogram& histogram(std::string_view family, const label_vector& labels);

  /// Series in `family` (0 for an unknown family).
  std::size_t series_count(std::string_view family) const;

  // -- rendering -----------------------------------------------------------------

  /// Prometheus text exposition format 0.0.4: families in name order, each
  /// with `# HELP` (when it has help) and `# TYPE`, series in label order.
  std::string prometheus() const;

  /// `{family: {type, help, series: [{labels, value}]}}`; histogram series
  /// carry count, sum, p50, p95, p99 (seconds) and buckets [{le, count}]
  /// instead of value. Non-finite numbers become null.
  json::value to_json() const;

private:
  struct series;
  struct family;
  using label_view = std::pair<std::string_view, std::string_view>;

  series& find_or_add(kind type, std::string_view family, const label_view* labels, std::size_t n);
  series& add(kind type, std::string_view family, const std::vector<label_view>& sorted, const std::string& key);
  family& family_for(kind type, std::string_view name);

  std::size_t max_series_;
  mutable std::shared_mutex mtx_;
  /// By name, so that rendering walks them in order.
  std::map<std::string, std::unique_ptr<family>, std::less<>> families_;
  /// Encoded family + sorted labels -> series, for the hit path.
  std::unordered_map<std::string, series*> index_;
};

} // namespace bulwark::metrics
