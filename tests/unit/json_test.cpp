// The JSON model: parsing, writing and the 2026-07-28 example messages.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "messages/json.hpp"

using namespace bulwark;
using json::value;

namespace {

value parse_ok(std::string_view text) {
  value v;
  json::parse_error err;
  INFO(text);
  REQUIRE(json::parse(text, v, err));
  return v;
}

std::string parse_fail(std::string_view text) {
  value v;
  json::parse_error err;
  CHECK_FALSE(json::parse(text, v, err));
  return err.message;
}

} // namespace

TEST_CASE("JSON scalars and containers round-trip") {
  auto v = parse_ok(R"({"a":1,"b":-2.5,"c":"x\ny\u0001\"","d":[true,false,null],"e":{}})");
  CHECK(v["a"].as_int() == 1);
  CHECK(v["b"].as_double() == -2.5);
  CHECK(v["c"].as_string() == "x\ny\x01\"");
  CHECK(v["d"].size() == 3);
  CHECK(json::dump(v) == R"({"a":1,"b":-2.5,"c":"x\ny\u0001\"","d":[true,false,null],"e":{}})");
}

TEST_CASE("JSON objects keep member order") {
  auto v = parse_ok(R"({"z":1,"a":2,"m":3})");
  CHECK(json::dump(v) == R"({"z":1,"a":2,"m":3})");
}

TEST_CASE("JSON writer escapes what it must and keeps UTF-8") {
  value v(std::string("tab\there \xE2\x82\xAC back\\slash"));
  CHECK(json::dump(v) == "\"tab\\there \xE2\x82\xAC back\\\\slash\"");
}

TEST_CASE("JSON writer turns bytes that are not UTF-8 into U+FFFD, so its output parses") {
  // A lone continuation byte, a truncated sequence, an overlong '/', a
  // surrogate, beyond U+10FFFF; then valid 2-, 3- and 4-byte sequences.
  std::string bad = "a\x80"
                    "b\xE2\x82"
                    "c\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80";
  std::string good = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  auto text = json::dump(value(bad + good));
  CHECK(text.find("\\ufffd") != std::string::npos);
  auto back = parse_ok(text);
  CHECK(back.as_string().substr(0, 1) == "a");
  CHECK(back.as_string().size() >= good.size());
  CHECK(back.as_string().substr(back.as_string().size() - good.size()) == good);
  CHECK(json::dump(value(good)) == "\"" + good + "\"");
}

TEST_CASE("JSON large integers and doubles") {
  auto v = parse_ok(R"([9223372036854775807,18446744073709551615,1e300,0.1])");
  CHECK(v.as_array()[0].is_integer());
  CHECK(v.as_array()[1].is_number());
  CHECK_FALSE(v.as_array()[1].is_integer());
  CHECK(v.as_array()[3].as_double() == 0.1);
}

TEST_CASE("JSON integers beyond 64 bits are read as doubles, and what we write reads back") {
  auto v = parse_ok(R"([18446744073709551616,-9223372036854775809,123456789012345678901234567890])");
  CHECK(v.as_array()[0].as_double() == 18446744073709551616.0);
  CHECK(v.as_array()[1].as_double() == -9223372036854775809.0);
  CHECK(v.as_array()[2].as_double() == 123456789012345678901234567890.0);
  // 2^64 - 1 becomes the double 2^64, written as its 20 digits.
  auto big = parse_ok("18446744073709551615");
  auto again = parse_ok(json::dump(big));
  CHECK(again == big);
  CHECK_FALSE(parse_fail("1.2.3").empty());
  // Negative zero (also what -1e-400 becomes) stays a double zero.
  auto zero = parse_ok("-1e-400");
  CHECK(json::dump(zero) == "-0.0");
  CHECK(json::dump(parse_ok(json::dump(zero))) == "-0.0");
}

TEST_CASE("JSON repeated member names keep the first position and the last value") {
  auto v = parse_ok(R"({"name":"allowed","x":1,"name":"other"})");
  CHECK(v.size() == 2);
  CHECK(v["name"].as_string() == "other");
  CHECK(json::dump(v) == R"({"name":"other","x":1})");
  CHECK(v == parse_ok(json::dump(v)));
  // Large objects too (they look repeats up in an index).
  std::string big = "{";
  for (int i = 0; i < 100; ++i)
    big += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  big += R"("k3":"last","k99":null})";
  auto b = parse_ok(big);
  CHECK(b.size() == 100);
  CHECK(b["k3"].as_string() == "last");
  CHECK(b["k99"].is_null());
  CHECK(b.as_object()[3].first == "k3");
}

TEST_CASE("JSON parse errors are reported, never thrown") {
  CHECK_FALSE(parse_fail("{").empty());
  CHECK_FALSE(parse_fail(R"({"a":})").empty());
  CHECK_FALSE(parse_fail("[1,2").empty());
  CHECK_FALSE(parse_fail(R"({"a":1} trailing)").empty());
  CHECK_FALSE(parse_fail("\"\xff\xfe\"").empty()); // invalid UTF-8
  CHECK_FALSE(parse_fail("").empty());
}

TEST_CASE("JSON nesting is bounded") {
  std::string deep(1000, '[');
  deep += std::string(1000, ']');
  auto msg = parse_fail(deep);
  CHECK(msg.find("nesting") != std::string::npos);
  std::string ok(100, '[');
  ok += std::string(100, ']');
  parse_ok(ok);
}

TEST_CASE("JSON equality ignores member order and number representation") {
  CHECK(parse_ok(R"({"a":1,"b":[1,2]})") == parse_ok(R"({"b":[1,2.0],"a":1})"));
  CHECK(parse_ok(R"({"a":1})") != parse_ok(R"({"a":2})"));
}

TEST_CASE("2026-07-28 example messages round-trip unchanged") {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(BULWARK_SPEC_DIR) / "2026-07-28" / "examples";
  // The examples come with ../shared beside the checkout; without them this
  // test fails rather than passing on nothing.
  INFO("the spec examples are expected at " << dir.string());
  REQUIRE(fs::exists(dir));
  std::size_t files = 0;
  for (auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json")
      continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    INFO(entry.path().string());
    auto original = parse_ok(ss.str());
    auto again = parse_ok(json::dump(original));
    CHECK(again == original);
    // Writing is deterministic: a second round gives the same text.
    CHECK(json::dump(again) == json::dump(original));
    ++files;
  }
  CHECK(files >= 80);
}

namespace {

/// What raw_writer writes for `write`, given room for `bound` bytes.
template <class Write>
std::string raw(std::size_t bound, Write write) {
  std::string out(bound, '\0');
  json::raw_writer w(out.data());
  write(w);
  out.resize(static_cast<std::size_t>(w.at() - out.data()));
  return out;
}

} // namespace

TEST_CASE("raw_writer numbers: every length and both ends of int64 read as to_chars writes them") {
  std::vector<int64_t> numbers{0,
                               7,
                               -7,
                               99'999'999,
                               100'000'000,
                               100'000'001,
                               9'999'999'999'999'999,
                               10'000'000'000'000'000,
                               1'796'652'107'310'181'588,
                               std::numeric_limits<int64_t>::max(),
                               std::numeric_limits<int64_t>::min()};
  for (int64_t p = 1, i = 0; i < 18; ++i, p *= 10)
    for (int64_t n : {p - 1, p, p + 1, 5 * p + 3})
      numbers.push_back(n);
  for (auto n : numbers) {
    INFO(n);
    CHECK(raw(20, [n](json::raw_writer& w) { w.number(n); }) == std::to_string(n));
  }
}

TEST_CASE("raw_writer strings: a character that needs care is found wherever it sits") {
  // Each such byte at each place of texts of 1 to 20 bytes (in the 8-byte
  // blocks, in a tail shorter than a block, in a text shorter than one),
  // and plain neighbours that look alike.
  for (std::size_t length = 1; length <= 20; ++length) {
    std::string base = std::string("abcdefghijklmnopqrst").substr(0, length);
    for (const std::string& special :
         std::vector<std::string>{"\"", "\\", "\n", std::string(1, '\0'), "\x1f", "\x7f", "\xc3\xa9", "\xff"}) {
      for (std::size_t at = 0; at + special.size() <= base.size(); ++at) {
        auto text = base;
        text.replace(at, special.size(), special);
        std::string expected;
        json::write_string(expected, text);
        INFO("byte " << static_cast<int>(static_cast<unsigned char>(special[0])) << " at " << at << " of " << length);
        CHECK(raw(json::string_bound(text), [&](json::raw_writer& w) { w.string(text); }) == expected);
      }
    }
  }
  for (const std::string& plain :
       std::vector<std::string>{"", " ", "~", "a b", " !#[]~~~~~~~~~~", "~}|{ !!!!!!!!!!!!!!", "0123456789ABCDEF0"}) {
    INFO(plain);
    CHECK(raw(json::string_bound(plain), [&](json::raw_writer& w) { w.string(plain); }) == "\"" + plain + "\"");
  }
}
