// The JSON model: parsing, writing and the 2026-07-28 example messages.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

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

TEST_CASE("JSON large integers and doubles") {
  auto v = parse_ok(R"([9223372036854775807,18446744073709551615,1e300,0.1])");
  CHECK(v.as_array()[0].is_integer());
  CHECK(v.as_array()[1].is_number());
  CHECK_FALSE(v.as_array()[1].is_integer());
  CHECK(v.as_array()[3].as_double() == 0.1);
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
  if (!fs::exists(dir)) {
    WARN("spec examples not found at " << dir << "; skipped");
    return;
  }
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
