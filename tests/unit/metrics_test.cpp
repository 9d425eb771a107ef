// The metrics registry: exact concurrent counts, bucket placement, quantile
// estimates, Prometheus text that a strict line parser accepts, the series
// cap and name checks.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "config/metrics.hpp"

using namespace bulwark;
using metrics::kind;
using metrics::registry;

namespace {

// -- a strict reader of the text exposition format ------------------------------------

struct sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels; // as written, unescaped
  double value = 0;
  std::string value_text;

  std::optional<std::string> label(const std::string& key) const {
    for (auto& [k, v] : labels)
      if (k == key)
        return v;
    return std::nullopt;
  }
};

bool metric_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

bool label_name_char(char c, bool first) {
  return c != ':' && metric_name_char(c, first);
}

std::optional<double> parse_value(const std::string& s) {
  if (s == "NaN")
    return std::numeric_limits<double>::quiet_NaN();
  if (s == "+Inf")
    return std::numeric_limits<double>::infinity();
  if (s == "-Inf")
    return -std::numeric_limits<double>::infinity();
  if (s.empty() || s.find_first_not_of("0123456789.eE+-") != std::string::npos)
    return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size())
    return std::nullopt;
  return d;
}

// Parses `name{l="v",...} value` (no timestamp); nullopt when malformed.
std::optional<sample> parse_sample(const std::string& line) {
  sample out;
  std::size_t i = 0;
  while (i < line.size() && metric_name_char(line[i], i == 0))
    ++i;
  if (i == 0)
    return std::nullopt;
  out.name = line.substr(0, i);
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      std::size_t start = i;
      while (i < line.size() && label_name_char(line[i], i == start))
        ++i;
      if (i == start)
        return std::nullopt;
      std::string key = line.substr(start, i - start);
      if (line.compare(i, 2, "=\"") != 0)
        return std::nullopt;
      i += 2;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= line.size())
            return std::nullopt;
          char e = line[i++];
          if (e == '\\')
            value.push_back('\\');
          else if (e == '"')
            value.push_back('"');
          else if (e == 'n')
            value.push_back('\n');
          else
            return std::nullopt;
        } else {
          value.push_back(c);
        }
      }
      if (!closed)
        return std::nullopt;
      out.labels.emplace_back(key, value);
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      return std::nullopt;
    }
  }
  if (i >= line.size() || line[i] != ' ')
    return std::nullopt;
  out.value_text = line.substr(i + 1);
  auto v = parse_value(out.value_text);
  if (!v)
    return std::nullopt;
  out.value = *v;
  return out;
}

struct exposition {
  std::map<std::string, std::string> types; // family -> type
  std::map<std::string, std::string> help; // family -> help as written
  std::vector<sample> samples;
};

std::string without_label(const sample& s, const std::string& key) {
  std::string out;
  for (auto& [k, v] : s.labels)
    if (k != key)
      out += k + "=" + v + ";";
  return out;
}

// Reads the whole text; FAILs (with the line) on anything malformed: unknown
// comment, bad sample, a sample before its family's TYPE, a repeated TYPE,
// histogram buckets that are not cumulative or do not end in +Inf = _count.
// Returns false when it found a problem, so that tests can also check that
// the reader itself rejects bad input.
bool read_exposition(const std::string& text, exposition& out) {
  if (!text.empty() && text.back() != '\n') {
    UNSCOPED_INFO("text does not end in a newline");
    return false;
  }
  std::istringstream in(text);
  std::string line;
  std::string current; // family whose samples may follow
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      auto name = rest.substr(0, sp);
      if (name.empty() || out.help.count(name) || out.types.count(name)) {
        UNSCOPED_INFO("bad or late HELP: " << line);
        return false;
      }
      out.help[name] = sp == std::string::npos ? "" : rest.substr(sp + 1);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type, extra;
      words >> name >> type;
      if (name.empty() || (words >> extra) || (type != "counter" && type != "gauge" && type != "histogram")
          || out.types.count(name)) {
        UNSCOPED_INFO("bad TYPE: " << line);
        return false;
      }
      out.types[name] = type;
      current = name;
      continue;
    }
    auto s = parse_sample(line);
    if (!s) {
      UNSCOPED_INFO("not a comment nor a sample: " << line);
      return false;
    }
    // The family this sample belongs to must be the one whose TYPE came last.
    bool belongs = false;
    if (out.types.count(current)) {
      auto& type = out.types[current];
      if (type == "histogram")
        belongs = s->name == current + "_bucket" || s->name == current + "_sum" || s->name == current + "_count";
      else
        belongs = s->name == current;
    }
    if (!belongs) {
      UNSCOPED_INFO("sample outside its family's TYPE block: " << line);
      return false;
    }
    out.samples.push_back(*s);
  }
  // Histogram invariants, per series (labels other than le).
  for (auto& [family, type] : out.types) {
    if (type != "histogram")
      continue;
    std::map<std::string, std::vector<const sample*>> buckets;
    std::map<std::string, double> counts;
    for (auto& s : out.samples) {
      if (s.name == family + "_bucket") {
        if (!s.label("le")) {
          UNSCOPED_INFO("bucket without le in " << family);
          return false;
        }
        buckets[without_label(s, "le")].push_back(&s);
      } else if (s.name == family + "_count") {
        counts[without_label(s, "")] = s.value;
      }
    }
    for (auto& [series, list] : buckets) {
      double prev_le = -std::numeric_limits<double>::infinity();
      double prev_count = 0;
      for (auto* s : list) {
        auto le = parse_value(*s->label("le"));
        if (!le || !(*le > prev_le) || s->value < prev_count) {
          UNSCOPED_INFO("buckets not ascending and cumulative in " << family);
          return false;
        }
        prev_le = *le;
        prev_count = s->value;
      }
      if (!std::isinf(prev_le) || !counts.count(series) || counts[series] != prev_count) {
        UNSCOPED_INFO("last bucket of " << family << " is not +Inf = _count");
        return false;
      }
    }
  }
  return true;
}

const sample* find_sample(const exposition& e, const std::string& name,
                          const std::vector<std::pair<std::string, std::string>>& labels) {
  for (auto& s : e.samples)
    if (s.name == name && s.labels == labels)
      return &s;
  return nullptr;
}

} // namespace

// -- counters and gauges ------------------------------------------------------------------

TEST_CASE("counters and gauges sum exactly under concurrent updates", "[metrics]") {
  registry reg;
  constexpr int threads = 4;
  constexpr int per_thread = 50000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&reg, t] {
      auto self = std::to_string(t);
      for (int i = 0; i < per_thread; ++i) {
        // Looked up on every call, as request paths do.
        reg.counter("calls_total", {{"outcome", "ok"}}).inc();
        reg.counter("bytes_total").inc(3);
        reg.gauge("in_flight").add(0.5);
        reg.counter("per_thread_total", {{"thread", self}, {"bucket", std::to_string(i % 7)}}).inc();
      }
      reg.gauge("in_flight").add(-0.25 * per_thread);
    });
  }
  for (auto& th : pool)
    th.join();
  CHECK(reg.counter("calls_total", {{"outcome", "ok"}}).value() == uint64_t(threads) * per_thread);
  CHECK(reg.counter("bytes_total").value() == 3ull * threads * per_thread);
  CHECK(reg.gauge("in_flight").value() == 0.25 * threads * per_thread);
  CHECK(reg.series_count("per_thread_total") == threads * 7);
  uint64_t total = 0;
  for (int t = 0; t < threads; ++t)
    for (int b = 0; b < 7; ++b)
      total += reg.counter("per_thread_total", {{"bucket", std::to_string(b)}, {"thread", std::to_string(t)}}).value();
  CHECK(total == uint64_t(threads) * per_thread);
}

TEST_CASE("rendering while series are added and updated stays well-formed", "[metrics]") {
  registry reg;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      reg.counter("tool_calls_total", {{"tool", "t" + std::to_string(i % 300)}}).inc();
      reg.histogram("tool_latency_seconds", {{"tool", "t" + std::to_string(i % 50)}}).observe(i * 1e-4);
    }
    done = true;
  });
  int renders = 0;
  while (!done || renders == 0) {
    exposition e;
    INFO("render " << renders);
    REQUIRE(read_exposition(reg.prometheus(), e));
    ++renders;
  }
  writer.join();
  exposition e;
  REQUIRE(read_exposition(reg.prometheus(), e));
  CHECK(reg.series_count("tool_calls_total") == 300);
}

TEST_CASE("gauges set, add and go negative", "[metrics]") {
  metrics::gauge g;
  CHECK(g.value() == 0.0);
  g.set(2.5);
  g.add(-4);
  CHECK(g.value() == -1.5);
  metrics::counter c;
  c.inc();
  c.inc(41);
  CHECK(c.value() == 42);
}

// -- histograms ---------------------------------------------------------------------------

TEST_CASE("a value equal to a bound falls into that bound's bucket", "[metrics]") {
  metrics::histogram h({0.1, 0.5, 1});
  h.observe(0.1); // le=0.1
  h.observe(0.1000001); // le=0.5
  h.observe(0.5); // le=0.5
  h.observe(1); // le=1
  h.observe(1.0000001); // +Inf
  h.observe(-3); // le=0.1 (below everything)
  h.observe(std::nan("")); // dropped
  auto s = h.snapshot();
  REQUIRE(s.cumulative.size() == 4);
  CHECK(s.cumulative == std::vector<uint64_t>{2, 4, 5, 6});
  CHECK(s.count == 6);
  CHECK(h.count() == 6);
  CHECK(s.sum == Approx(0.1 + 0.1000001 + 0.5 + 1 + 1.0000001 - 3));

  SECTION("the default latency bounds, exactly at 5ms and just above") {
    metrics::histogram lat;
    auto& b = lat.bounds();
    REQUIRE(b.size() == 16);
    CHECK(b.front() == 0.0001);
    CHECK(b.back() == 10);
    lat.observe(0.005);
    lat.observe(0.0050001);
    lat.observe(10);
    lat.observe(11);
    auto ls = lat.snapshot();
    std::size_t i5 = 5; // 0.0001 0.00025 0.0005 0.001 0.0025 [0.005]
    REQUIRE(b[i5] == 0.005);
    CHECK(ls.cumulative[i5 - 1] == 0);
    CHECK(ls.cumulative[i5] == 1);
    CHECK(ls.cumulative[i5 + 1] == 2);
    CHECK(ls.cumulative[15] == 3); // le=10
    CHECK(ls.cumulative[16] == 4); // +Inf
  }
}

TEST_CASE("histogram bounds must be finite and ascending", "[metrics]") {
  CHECK_THROWS_AS(metrics::histogram(std::vector<double>{}), std::invalid_argument);
  CHECK_THROWS_AS(metrics::histogram({1, 0.5}), std::invalid_argument);
  CHECK_THROWS_AS(metrics::histogram({1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(metrics::histogram({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  CHECK_NOTHROW(metrics::histogram({-1, 0, 1}));
}

TEST_CASE("quantiles interpolate linearly inside the bucket", "[metrics]") {
  metrics::histogram h({1, 2, 4});
  CHECK(std::isnan(h.quantile(0.5))); // empty

  for (int i = 0; i < 4; ++i)
    h.observe(0.5); // (0, 1]
  for (int i = 0; i < 4; ++i)
    h.observe(3); // (2, 4]
  CHECK(h.quantile(0.25) == Approx(0.5)); // rank 2 of 4 in (0, 1]
  CHECK(h.quantile(0.5) == Approx(1.0)); // rank 4: top of the first bucket
  CHECK(h.quantile(0.75) == Approx(3.0)); // rank 6: half-way through (2, 4]
  CHECK(h.quantile(1.0) == Approx(4.0));
  CHECK(h.quantile(0.0) == Approx(0.0));
  CHECK(h.quantile(1.5) == std::numeric_limits<double>::infinity());
  CHECK(h.quantile(-0.1) == -std::numeric_limits<double>::infinity());

  SECTION("a rank in +Inf reports the largest finite bound") {
    h.observe(100);
    h.observe(100);
    h.observe(100);
    h.observe(100);
    h.observe(100); // 13 in all, 5 in +Inf
    CHECK(h.quantile(0.99) == 4.0);
  }

  SECTION("uniform data gives quantiles close to the truth") {
    metrics::histogram lat; // default bounds
    for (int i = 1; i <= 1000; ++i)
      lat.observe(i / 1000.0); // 1ms .. 1s
    CHECK(lat.quantile(0.5) == Approx(0.5));
    CHECK(lat.quantile(0.95) == Approx(0.95));
    CHECK(lat.quantile(0.99) == Approx(0.99));
    CHECK(lat.quantile(0.1) == Approx(0.1));
  }
}

// -- registry -----------------------------------------------------------------------------

TEST_CASE("series are found by family and label set in any order", "[metrics]") {
  registry reg;
  auto& a = reg.counter("calls_total", {{"tool", "echo"}, {"outcome", "ok"}});
  auto& b = reg.counter("calls_total", {{"outcome", "ok"}, {"tool", "echo"}});
  metrics::label_vector labels{{"tool", "echo"}, {"outcome", "ok"}};
  auto& c = reg.counter("calls_total", labels);
  CHECK(&a == &b);
  CHECK(&a == &c);
  auto& other = reg.counter("calls_total", {{"tool", "echo"}, {"outcome", "error"}});
  CHECK(&other != &a);
  // Label values that would collide under a naive "name=value," key.
  auto& x = reg.counter("tricky_total", {{"a", "1,b=2"}});
  auto& y = reg.counter("tricky_total", {{"a", "1"}, {"b", "2"}});
  CHECK(&x != &y);
  CHECK(reg.series_count("calls_total") == 2);
  CHECK(reg.series_count("tricky_total") == 2);
  CHECK(reg.series_count("nothing") == 0);

  // References survive many later insertions (node-based storage).
  a.inc();
  for (int i = 0; i < 500; ++i)
    reg.counter("calls_total", {{"tool", "t" + std::to_string(i)}, {"outcome", "ok"}});
  a.inc();
  CHECK(reg.counter("calls_total", {{"tool", "echo"}, {"outcome", "ok"}}).value() == 2);
}

TEST_CASE("the series cap folds new label sets into \"other\"", "[metrics]") {
  registry reg(3);
  auto& first = reg.counter("tool_calls_total", {{"tool", "t0"}, {"outcome", "ok"}});
  for (int i = 0; i < 10; ++i)
    reg.counter("tool_calls_total", {{"tool", "t" + std::to_string(i)}, {"outcome", "ok"}}).inc();
  CHECK(reg.series_count("tool_calls_total") == 4); // three + the fold series
  CHECK(first.value() == 1);
  auto& folded = reg.counter("tool_calls_total", {{"tool", "other"}, {"outcome", "other"}});
  CHECK(folded.value() == 7);
  // A label set first seen beyond the cap keeps folding.
  reg.counter("tool_calls_total", {{"tool", "t9"}, {"outcome", "ok"}}).inc();
  reg.counter("tool_calls_total", {{"tool", "fresh"}, {"outcome", "error"}}).inc();
  CHECK(folded.value() == 9);
  CHECK(reg.series_count("tool_calls_total") == 4);
  // Series made before the cap are still their own.
  reg.counter("tool_calls_total", {{"tool", "t1"}, {"outcome", "ok"}}).inc();
  CHECK(reg.counter("tool_calls_total", {{"tool", "t1"}, {"outcome", "ok"}}).value() == 2);
  // Another family has its own budget.
  reg.gauge("queue_depth", {{"service", "a"}}).set(1);
  CHECK(reg.series_count("queue_depth") == 1);

  exposition e;
  REQUIRE(read_exposition(reg.prometheus(), e));
  auto* s = find_sample(e, "tool_calls_total", {{"outcome", "other"}, {"tool", "other"}});
  REQUIRE(s);
  CHECK(s->value == 9);

  SECTION("histograms fold too") {
    registry small(2);
    small.histogram("latency_seconds", {{"tool", "a"}}).observe(0.1);
    small.histogram("latency_seconds", {{"tool", "b"}}).observe(0.1);
    small.histogram("latency_seconds", {{"tool", "c"}}).observe(0.1);
    small.histogram("latency_seconds", {{"tool", "d"}}).observe(0.2);
    CHECK(small.series_count("latency_seconds") == 3);
    CHECK(small.histogram("latency_seconds", {{"tool", "other"}}).count() == 2);
  }
}

TEST_CASE("bad names and mismatched types are rejected", "[metrics]") {
  registry reg;
  CHECK_THROWS_AS(reg.counter("9lives"), std::invalid_argument);
  CHECK_THROWS_AS(reg.counter("has-dash"), std::invalid_argument);
  CHECK_THROWS_AS(reg.counter(""), std::invalid_argument);
  CHECK_THROWS_AS(reg.gauge("spa ce"), std::invalid_argument);
  CHECK_THROWS_AS(reg.counter("ok_total", {{"bad-label", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(reg.counter("ok_total", {{"ns:label", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(reg.counter("ok_total", {{"1st", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(reg.counter("ok_total", {{"__name__", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(reg.counter("ok_total", {{"a", "x"}, {"a", "y"}}), std::invalid_argument);
  CHECK_THROWS_AS(reg.histogram("lat_seconds", {{"le", "1"}}), std::invalid_argument);
  CHECK_THROWS_AS(reg.describe("bad name", "x", kind::counter), std::invalid_argument);
  CHECK_THROWS_AS(reg.describe("ok_gauge", "x", kind::gauge, {1, 2}), std::invalid_argument);
  CHECK_THROWS_AS(reg.describe("ok_hist", "x", kind::histogram, {2, 1}), std::invalid_argument);
  // Rejected registrations leave nothing behind.
  CHECK(reg.series_count("ok_total") == 0);
  CHECK(reg.prometheus().empty());

  // Colons are fine in metric names, and a value may be any text.
  CHECK_NOTHROW(reg.counter("bulwark:calls_total", {{"le", "not a histogram"}}));

  reg.counter("used_total").inc();
  CHECK_THROWS_AS(reg.gauge("used_total"), std::invalid_argument);
  CHECK_THROWS_AS(reg.histogram("used_total"), std::invalid_argument);
  CHECK_THROWS_AS(reg.describe("used_total", "x", kind::gauge), std::invalid_argument);
  reg.describe("lat_seconds", "latency", kind::histogram, {0.1, 1});
  reg.histogram("lat_seconds").observe(0.5);
  CHECK_THROWS_AS(reg.describe("lat_seconds", "latency", kind::histogram, {0.2, 1}), std::invalid_argument);
  CHECK(reg.histogram("lat_seconds").bounds() == std::vector<double>{0.1, 1});
}

// -- Prometheus text ----------------------------------------------------------------------

TEST_CASE("Prometheus output is well-formed text format 0.0.4", "[metrics]") {
  registry reg;
  reg.describe("bulwark_calls_total", "Tool calls by outcome.", kind::counter);
  reg.describe("bulwark_in_flight", "Calls in flight.\nPer service, back\\slash.", kind::gauge);
  reg.describe("bulwark_call_seconds", "Call latency.", kind::histogram);
  reg.counter("bulwark_calls_total", {{"tool", "echo"}, {"outcome", "ok"}}).inc(3);
  reg.counter("bulwark_calls_total", {{"tool", "echo"}, {"outcome", "error"}}).inc();
  reg.gauge("bulwark_in_flight", {{"service", "a"}}).set(0.5);
  reg.gauge("bulwark_in_flight", {{"service", "b"}}).set(std::nan(""));
  reg.gauge("bulwark_in_flight", {{"service", "c"}}).set(-std::numeric_limits<double>::infinity());
  reg.gauge("bulwark_in_flight", {{"service", "d"}}).set(12);
  reg.gauge("aaa_undescribed").set(1.0 / 3);
  auto& h = reg.histogram("bulwark_call_seconds", {{"service", "a"}});
  for (double v : {0.00005, 0.0001, 0.003, 0.003, 0.2, 0.75, 42.0})
    h.observe(v);
  reg.histogram("bulwark_call_seconds", {{"service", "b"}}).observe(0.01);
  reg.histogram("zzz_unlabelled_seconds").observe(1);

  auto text = reg.prometheus();
  INFO(text);
  exposition e;
  REQUIRE(read_exposition(text, e));

  CHECK(e.types["bulwark_calls_total"] == "counter");
  CHECK(e.types["bulwark_in_flight"] == "gauge");
  CHECK(e.types["bulwark_call_seconds"] == "histogram");
  CHECK(e.types["aaa_undescribed"] == "gauge");
  CHECK(e.help["bulwark_in_flight"] == "Calls in flight.\\nPer service, back\\\\slash.");
  CHECK(e.help.count("aaa_undescribed") == 0); // no help, no HELP line

  // Families in name order.
  CHECK(text.find("# TYPE aaa_undescribed") < text.find("# TYPE bulwark_call_seconds"));
  CHECK(text.find("# TYPE bulwark_call_seconds") < text.find("# TYPE bulwark_calls_total"));
  CHECK(text.find("# TYPE bulwark_in_flight") < text.find("# TYPE zzz_unlabelled_seconds"));

  // Labels sorted by name; integers without a decimal point.
  CHECK(text.find("bulwark_calls_total{outcome=\"ok\",tool=\"echo\"} 3\n") != std::string::npos);
  CHECK(text.find("bulwark_calls_total{outcome=\"error\",tool=\"echo\"} 1\n")
        < text.find("bulwark_calls_total{outcome=\"ok\",tool=\"echo\"} 3\n"));
  CHECK(text.find("bulwark_in_flight{service=\"a\"} 0.5\n") != std::string::npos);
  CHECK(text.find("bulwark_in_flight{service=\"b\"} NaN\n") != std::string::npos);
  CHECK(text.find("bulwark_in_flight{service=\"c\"} -Inf\n") != std::string::npos);
  CHECK(text.find("bulwark_in_flight{service=\"d\"} 12\n") != std::string::npos);
  auto third = find_sample(e, "aaa_undescribed", {});
  REQUIRE(third);
  CHECK(third->value == 1.0 / 3); // round-trips exactly

  // Histogram lines.
  CHECK(text.find("bulwark_call_seconds_bucket{service=\"a\",le=\"0.0001\"} 2\n") != std::string::npos);
  CHECK(text.find("bulwark_call_seconds_bucket{service=\"a\",le=\"0.00025\"} 2\n") != std::string::npos);
  CHECK(text.find("bulwark_call_seconds_bucket{service=\"a\",le=\"0.005\"} 4\n") != std::string::npos);
  CHECK(text.find("bulwark_call_seconds_bucket{service=\"a\",le=\"1\"} 6\n") != std::string::npos);
  CHECK(text.find("bulwark_call_seconds_bucket{service=\"a\",le=\"+Inf\"} 7\n") != std::string::npos);
  CHECK(text.find("bulwark_call_seconds_count{service=\"a\"} 7\n") != std::string::npos);
  auto sum = find_sample(e, "bulwark_call_seconds_sum", {{"service", "a"}});
  REQUIRE(sum);
  CHECK(sum->value == Approx(0.00005 + 0.0001 + 0.003 + 0.003 + 0.2 + 0.75 + 42.0));
  CHECK(text.find("zzz_unlabelled_seconds_bucket{le=\"+Inf\"} 1\n") != std::string::npos);
  CHECK(text.find("zzz_unlabelled_seconds_count 1\n") != std::string::npos);
  CHECK(text.find("zzz_unlabelled_seconds_sum 1\n") != std::string::npos);
  // 17 buckets + sum + count, for each of three histogram series.
  std::size_t histogram_lines = 0;
  for (auto& s : e.samples)
    if (s.name.rfind("bulwark_call_seconds", 0) == 0 || s.name.rfind("zzz_", 0) == 0)
      ++histogram_lines;
  CHECK(histogram_lines == 3 * 19);
}

TEST_CASE("the test's exposition reader rejects malformed text", "[metrics]") {
  exposition e;
  CHECK_FALSE(read_exposition("x 1\n", e)); // no TYPE before it
  e = {};
  CHECK_FALSE(read_exposition("# TYPE x counter\nx{a=\"b} 1\n", e));
  e = {};
  CHECK_FALSE(read_exposition("# TYPE x counter\nx{a=\"b\\t\"} 1\n", e));
  e = {};
  CHECK_FALSE(read_exposition("# TYPE x counter\nx 1.0.0\n", e));
  e = {};
  CHECK_FALSE(read_exposition("# TYPE x counter\ny 1\n", e));
  e = {};
  CHECK_FALSE(read_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                              "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                              e)); // not cumulative
  e = {};
  CHECK_FALSE(read_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                              "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
                              e)); // +Inf != _count
  e = {};
  CHECK(read_exposition("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                        "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
                        e));
}

TEST_CASE("label values and help text are escaped", "[metrics]") {
  registry reg;
  std::string nasty = "say \"hi\"\\now\nnext} line,x=\"y\"";
  reg.describe("escaped_total", "a\\b\nc \"quoted\"", kind::counter);
  reg.counter("escaped_total", {{"tool", nasty}}).inc(5);
  auto text = reg.prometheus();
  INFO(text);
  CHECK(text.find("escaped_total{tool=\"say \\\"hi\\\"\\\\now\\nnext} line,x=\\\"y\\\"\"} 5\n") != std::string::npos);
  CHECK(text.find("# HELP escaped_total a\\\\b\\nc \"quoted\"\n") != std::string::npos);
  exposition e;
  REQUIRE(read_exposition(text, e));
  REQUIRE(e.samples.size() == 1);
  CHECK(e.samples[0].label("tool") == nasty);
  CHECK(e.samples[0].value == 5);
}

// -- JSON -----------------------------------------------------------------------------------

TEST_CASE("to_json lists families with their series", "[metrics]") {
  registry reg;
  reg.describe("calls_total", "Calls.", kind::counter);
  reg.counter("calls_total", {{"tool", "echo"}}).inc(2);
  reg.gauge("level").set(std::nan(""));
  auto& h = reg.histogram("lat_seconds", {{"tool", "echo"}});
  for (int i = 1; i <= 1000; ++i)
    h.observe(i / 1000.0);
  reg.histogram("idle_seconds"); // no observations: quantiles unknown

  auto doc = reg.to_json();
  // Survives a round trip through the writer and parser.
  json::value back;
  json::parse_error err;
  REQUIRE(json::parse(json::dump(doc), back, err));
  CHECK(back == doc);

  auto& calls = doc["calls_total"];
  CHECK(calls["type"].as_string() == "counter");
  CHECK(calls["help"].as_string() == "Calls.");
  REQUIRE(calls["series"].size() == 1);
  auto& first = calls["series"].as_array()[0];
  CHECK(first["labels"]["tool"].as_string() == "echo");
  CHECK(first["value"].as_int() == 2);

  CHECK(doc["level"]["help"].as_string().empty());
  CHECK(doc["level"]["series"].as_array()[0]["value"].is_null());

  auto& lat = doc["lat_seconds"]["series"].as_array()[0];
  CHECK(doc["lat_seconds"]["type"].as_string() == "histogram");
  CHECK(lat["count"].as_int() == 1000);
  CHECK(lat["sum"].as_double() == Approx(500.5));
  CHECK(lat["p50"].as_double() == Approx(0.5));
  CHECK(lat["p95"].as_double() == Approx(0.95));
  CHECK(lat["p99"].as_double() == Approx(0.99));
  auto& buckets = lat["buckets"].as_array();
  REQUIRE(buckets.size() == 17);
  CHECK(buckets[0]["le"].as_double() == 0.0001);
  CHECK(buckets[0]["count"].as_int() == 0);
  CHECK(buckets[11]["le"].as_double() == 0.5);
  CHECK(buckets[11]["count"].as_int() == 500);
  CHECK(buckets[16]["le"].as_string() == "+Inf");
  CHECK(buckets[16]["count"].as_int() == 1000);

  auto& idle = doc["idle_seconds"]["series"].as_array()[0];
  CHECK(idle["count"].as_int() == 0);
  CHECK(idle["p50"].is_null());
}
