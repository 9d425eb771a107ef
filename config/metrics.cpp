#include "config/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>

namespace bulwark::metrics {

std::string_view to_string(kind k) noexcept {
  switch (k) {
    case kind::counter:
      return "counter";
    case kind::gauge:
      return "gauge";
    case kind::histogram:
      return "histogram";
  }
  return "untyped";
}

const std::vector<double>& default_latency_bounds() {
  static const std::vector<double> bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return bounds;
}

namespace {

// std::atomic<double> has no fetch_add before C++20.
void atomic_add(std::atomic<double>& target, double delta) noexcept {
  double cur = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(cur, cur + delta, std::memory_order_relaxed))
    ;
}

void check_bounds(const std::vector<double>& bounds) {
  if (bounds.empty())
    throw std::invalid_argument("histogram needs at least one finite bound");
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]))
      throw std::invalid_argument("histogram bounds must be finite (+Inf is implicit)");
    if (i > 0 && !(bounds[i - 1] < bounds[i]))
      throw std::invalid_argument("histogram bounds must be strictly ascending");
  }
}

bool is_metric_name(std::string_view s) noexcept {
  if (s.empty())
    return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok =
      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

bool is_label_name(std::string_view s) noexcept {
  if (s.empty())
    return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

void check_metric_name(std::string_view name) {
  if (!is_metric_name(name))
    throw std::invalid_argument("bad metric name '" + std::string(name) + "'");
}

// Length-prefixed parts, so that no label value, whatever bytes it holds, can
// make two different label sets encode alike.
void append_part(std::string& out, std::string_view part) {
  auto n = static_cast<uint32_t>(part.size());
  char len[sizeof n];
  std::memcpy(len, &n, sizeof n);
  out.append(len, sizeof n);
  out.append(part);
}

template <class Labels>
void encode(std::string& out, std::string_view family, const Labels& sorted, bool fold) {
  out.clear();
  append_part(out, family);
  for (auto& [name, value] : sorted) {
    append_part(out, name);
    append_part(out, fold ? registry::overflow_label_value : std::string_view(value));
  }
}

// -- text format ---------------------------------------------------------------------

// Integral values print as integers; others as the shortest text that reads
// back to the same double, with an exponent only for very large or small
// magnitudes (like Go's 'g', which Prometheus' own clients use).
void append_number(std::string& out, double d) {
  if (std::isnan(d)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(d)) {
    out.append(d > 0 ? "+Inf" : "-Inf");
    return;
  }
  char buf[32];
  std::to_chars_result res;
  if (d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) // 2^53
    res = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(d));
  else
    res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::general);
  out.append(buf, res.ptr);
}

void append_number(std::string& out, uint64_t n) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, res.ptr);
}

std::string number_text(double d) {
  std::string s;
  append_number(s, d);
  return s;
}

void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\')
      out.append("\\\\");
    else if (c == '\n')
      out.append("\\n");
    else
      out.push_back(c);
  }
}

void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\')
      out.append("\\\\");
    else if (c == '"')
      out.append("\\\"");
    else if (c == '\n')
      out.append("\\n");
    else
      out.push_back(c);
  }
}

// `{a="x",b="y"` (no closing brace, so that a caller can add `le`); nothing
// at all for no labels and no extra.
void append_labels(std::string& out, const label_vector& labels, std::string_view le = {}) {
  if (labels.empty() && le.empty())
    return;
  out.push_back('{');
  bool first = true;
  for (auto& [name, value] : labels) {
    if (!first)
      out.push_back(',');
    first = false;
    out.append(name);
    out.append("=\"");
    append_label_value(out, value);
    out.push_back('"');
  }
  if (!le.empty()) {
    if (!first)
      out.push_back(',');
    out.append("le=\"");
    out.append(le);
    out.push_back('"');
  }
  out.push_back('}');
}

json::value finite_or_null(double d) {
  return std::isfinite(d) ? json::value(d) : json::value();
}

} // namespace

// -- gauge ---------------------------------------------------------------------------

void gauge::add(double delta) noexcept {
  atomic_add(value_, delta);
}

// -- histogram -----------------------------------------------------------------------

histogram::histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  check_bounds(bounds_);
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i)
    buckets_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double seconds) noexcept {
  if (std::isnan(seconds))
    return;
  // First bound >= seconds: `le` is less-or-equal. Past the end is +Inf.
  auto i = std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, seconds);
}

histogram_snapshot histogram::snapshot() const {
  histogram_snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

double histogram_snapshot::quantile(double q) const noexcept {
  if (std::isnan(q))
    return std::numeric_limits<double>::quiet_NaN();
  if (q < 0)
    return -std::numeric_limits<double>::infinity();
  if (q > 1)
    return std::numeric_limits<double>::infinity();
  if (count == 0 || cumulative.size() != bounds.size() + 1)
    return std::numeric_limits<double>::quiet_NaN();
  double rank = q * static_cast<double>(count);
  // The first non-empty-so-far bucket that reaches the rank (Prometheus takes
  // the first that reaches it, which for q = 0 may be empty and divide 0/0).
  std::size_t b = 0;
  while (b < bounds.size() && (cumulative[b] == 0 || static_cast<double>(cumulative[b]) < rank))
    ++b;
  if (b == bounds.size())
    return bounds.back(); // in +Inf: the largest finite bound is all we know
  if (b == 0 && bounds[0] <= 0)
    return bounds[0];
  double start = b == 0 ? 0.0 : bounds[b - 1];
  double end = bounds[b];
  double below = b == 0 ? 0.0 : static_cast<double>(cumulative[b - 1]);
  double in_bucket = static_cast<double>(cumulative[b]) - below;
  return start + (end - start) * ((rank - below) / in_bucket);
}

// -- registry ------------------------------------------------------------------------

struct registry::series {
  explicit series(kind t, const std::vector<double>& bounds) : type(t) {
    if (t == kind::histogram)
      hist = std::make_unique<metrics::histogram>(bounds);
  }

  kind type;
  metrics::counter count;
  metrics::gauge level;
  std::unique_ptr<metrics::histogram> hist; ///< Only in histogram families.
};

struct registry::family {
  kind type;
  std::string help;
  std::vector<double> bounds; ///< Histogram families only.
  /// Sorted label sets -> series; ordered so that output is stable.
  std::map<label_vector, std::unique_ptr<series>> by_labels;
};

registry::registry(std::size_t max_series_per_family) : max_series_(std::max<std::size_t>(max_series_per_family, 1)) {}

registry::~registry() = default;

namespace {

[[noreturn]] void type_clash(std::string_view name, kind have, kind want) {
  throw std::invalid_argument("metric '" + std::string(name) + "' is a " + std::string(to_string(have)) + ", not a "
                              + std::string(to_string(want)));
}

} // namespace

registry::family& registry::family_for(kind type, std::string_view name) {
  if (auto i = families_.find(name); i != families_.end()) {
    if (i->second->type != type)
      type_clash(name, i->second->type, type);
    return *i->second;
  }
  auto fam = std::make_unique<family>();
  fam->type = type;
  if (type == kind::histogram)
    fam->bounds = default_latency_bounds();
  auto& ref = *fam;
  families_.emplace(std::string(name), std::move(fam));
  return ref;
}

void registry::describe(std::string_view name, std::string_view help, kind type, std::vector<double> bounds) {
  check_metric_name(name);
  if (type != kind::histogram && !bounds.empty())
    throw std::invalid_argument("metric '" + std::string(name) + "': only histograms take bounds");
  if (type == kind::histogram) {
    if (bounds.empty())
      bounds = default_latency_bounds();
    check_bounds(bounds);
  }
  std::unique_lock<std::shared_mutex> lock(mtx_);
  auto& fam = family_for(type, name);
  if (type == kind::histogram && fam.bounds != bounds) {
    if (!fam.by_labels.empty())
      throw std::invalid_argument("metric '" + std::string(name) + "': bounds cannot change once it has series");
    fam.bounds = std::move(bounds);
  }
  fam.help = std::string(help);
}

registry::series& registry::find_or_add(kind type, std::string_view name, const label_view* labels, std::size_t n) {
  // Reused per thread, so that the hit path does not allocate.
  thread_local std::vector<label_view> sorted;
  thread_local std::string key;
  sorted.assign(labels, labels + n);
  std::sort(sorted.begin(), sorted.end(), [](const label_view& a, const label_view& b) { return a.first < b.first; });
  encode(key, name, sorted, false);
  {
    std::shared_lock<std::shared_mutex> lock(mtx_);
    if (auto i = index_.find(key); i != index_.end()) {
      if (i->second->type != type)
        type_clash(name, i->second->type, type);
      return *i->second;
    }
    // A full family sees new label values on every call when they come from
    // hostile input; its fold series is found without the exclusive lock.
    if (auto f = families_.find(name); f != families_.end() && f->second->by_labels.size() >= max_series_) {
      encode(key, name, sorted, true);
      if (auto i = index_.find(key); i != index_.end()) {
        if (i->second->type != type)
          type_clash(name, i->second->type, type);
        return *i->second;
      }
      encode(key, name, sorted, false);
    }
  }
  std::unique_lock<std::shared_mutex> lock(mtx_);
  return add(type, name, sorted, key);
}

registry::series& registry::add(kind type, std::string_view name, const std::vector<label_view>& sorted,
                                const std::string& key) {
  // Another thread may have added it between the locks.
  if (auto i = index_.find(key); i != index_.end()) {
    if (i->second->type != type)
      type_clash(name, i->second->type, type);
    return *i->second;
  }
  check_metric_name(name);
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    auto label = sorted[i].first;
    if (!is_label_name(label) || label.substr(0, 2) == "__")
      throw std::invalid_argument("metric '" + std::string(name) + "': bad label name '" + std::string(label) + "'");
    if (i > 0 && sorted[i - 1].first == label)
      throw std::invalid_argument("metric '" + std::string(name) + "': label '" + std::string(label) + "' given twice");
    if (type == kind::histogram && label == "le")
      throw std::invalid_argument("metric '" + std::string(name) + "': 'le' is reserved for histogram buckets");
  }
  auto& fam = family_for(type, name);
  bool fold = fam.by_labels.size() >= max_series_;
  std::string fold_key;
  if (fold) {
    encode(fold_key, name, sorted, true);
    if (auto i = index_.find(fold_key); i != index_.end())
      return *i->second;
  }
  label_vector labels;
  labels.reserve(sorted.size());
  for (auto& [label, value] : sorted)
    labels.emplace_back(label, fold ? overflow_label_value : value);
  auto s = std::make_unique<series>(type, fam.bounds);
  auto& ref = *s;
  // The index entry first: if the family's insert then fails, the index
  // would hold a dangling pointer, so undo it.
  auto [entry, _] = index_.emplace(fold ? std::move(fold_key) : key, &ref);
  try {
    fam.by_labels.emplace(std::move(labels), std::move(s));
  } catch (...) {
    index_.erase(entry);
    throw;
  }
  return ref;
}

metrics::counter& registry::counter(std::string_view name, label_list labels) {
  return find_or_add(kind::counter, name, labels.begin(), labels.size()).count;
}

metrics::gauge& registry::counter_total(std::string_view name, label_list labels) {
  return find_or_add(kind::counter, name, labels.begin(), labels.size()).level;
}

metrics::gauge& registry::gauge(std::string_view name, label_list labels) {
  return find_or_add(kind::gauge, name, labels.begin(), labels.size()).level;
}

metrics::histogram& registry::histogram(std::string_view name, label_list labels) {
  return *find_or_add(kind::histogram, name, labels.begin(), labels.size()).hist;
}

namespace {

// Views of run-time labels, in a per-thread buffer to keep lookups
// allocation-free.
const std::pair<std::string_view, std::string_view>* views_of(const label_vector& labels) {
  thread_local std::vector<std::pair<std::string_view, std::string_view>> views;
  views.clear();
  for (auto& [name, value] : labels)
    views.emplace_back(name, value);
  return views.data();
}

} // namespace

metrics::counter& registry::counter(std::string_view name, const label_vector& labels) {
  return find_or_add(kind::counter, name, views_of(labels), labels.size()).count;
}

metrics::gauge& registry::gauge(std::string_view name, const label_vector& labels) {
  return find_or_add(kind::gauge, name, views_of(labels), labels.size()).level;
}

metrics::histogram& registry::histogram(std::string_view name, const label_vector& labels) {
  return *find_or_add(kind::histogram, name, views_of(labels), labels.size()).hist;
}

std::size_t registry::series_count(std::string_view name) const {
  std::shared_lock<std::shared_mutex> lock(mtx_);
  auto i = families_.find(name);
  return i == families_.end() ? 0 : i->second->by_labels.size();
}

// -- rendering -----------------------------------------------------------------------

std::string registry::prometheus() const {
  std::string out;
  std::shared_lock<std::shared_mutex> lock(mtx_);
  for (auto& [name, fam] : families_) {
    if (!fam->help.empty()) {
      out.append("# HELP ").append(name).push_back(' ');
      append_help(out, fam->help);
      out.push_back('\n');
    }
    out.append("# TYPE ").append(name).push_back(' ');
    out.append(to_string(fam->type)).push_back('\n');
    for (auto& [labels, s] : fam->by_labels) {
      switch (fam->type) {
        case kind::counter:
          out.append(name);
          append_labels(out, labels);
          out.push_back(' ');
          if (auto total = s->level.value(); total != 0) // see counter_total
            append_number(out, total);
          else
            append_number(out, s->count.value());
          out.push_back('\n');
          break;
        case kind::gauge:
          out.append(name);
          append_labels(out, labels);
          out.push_back(' ');
          append_number(out, s->level.value());
          out.push_back('\n');
          break;
        case kind::histogram: {
          auto snap = s->hist->snapshot();
          for (std::size_t i = 0; i <= snap.bounds.size(); ++i) {
            out.append(name).append("_bucket");
            auto le = i < snap.bounds.size() ? number_text(snap.bounds[i]) : "+Inf";
            append_labels(out, labels, le);
            out.push_back(' ');
            append_number(out, snap.cumulative[i]);
            out.push_back('\n');
          }
          out.append(name).append("_sum");
          append_labels(out, labels);
          out.push_back(' ');
          append_number(out, snap.sum);
          out.push_back('\n');
          out.append(name).append("_count");
          append_labels(out, labels);
          out.push_back(' ');
          append_number(out, snap.count);
          out.push_back('\n');
          break;
        }
      }
    }
  }
  return out;
}

json::value registry::to_json() const {
  auto out = json::value::make_object();
  std::shared_lock<std::shared_mutex> lock(mtx_);
  for (auto& [name, fam] : families_) {
    json::value list = json::value::make_array();
    for (auto& [labels, s] : fam->by_labels) {
      auto label_obj = json::value::make_object();
      for (auto& [label, value] : labels)
        label_obj.set(label, json::value(value));
      auto item = json::value::make_object({{"labels", std::move(label_obj)}});
      switch (fam->type) {
        case kind::counter:
          if (auto total = s->level.value(); total != 0) // see counter_total
            item.set("value", finite_or_null(total));
          else
            item.set("value", json::value(s->count.value()));
          break;
        case kind::gauge:
          item.set("value", finite_or_null(s->level.value()));
          break;
        case kind::histogram: {
          auto snap = s->hist->snapshot();
          item.set("count", json::value(snap.count));
          item.set("sum", finite_or_null(snap.sum));
          item.set("p50", finite_or_null(snap.quantile(0.50)));
          item.set("p95", finite_or_null(snap.quantile(0.95)));
          item.set("p99", finite_or_null(snap.quantile(0.99)));
          auto buckets = json::value::make_array();
          for (std::size_t i = 0; i <= snap.bounds.size(); ++i) {
            auto le = i < snap.bounds.size() ? json::value(snap.bounds[i]) : json::value("+Inf");
            buckets.push_back(
              json::value::make_object({{"le", std::move(le)}, {"count", json::value(snap.cumulative[i])}}));
          }
          item.set("buckets", std::move(buckets));
          break;
        }
      }
      list.push_back(std::move(item));
    }
    out.set(name, json::value::make_object({{"type", json::value(to_string(fam->type))},
                                            {"help", json::value(fam->help)},
                                            {"series", std::move(list)}}));
  }
  return out;
}

} // namespace bulwark::metrics
