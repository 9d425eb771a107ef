// JSON Schema `pattern`s: ECMA-262 on RE2 — where they search, the dialect,
// the length bound, what is refused, and time linear in the input.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "messages/json.hpp"
#include "messages/schema.hpp"
#include "messages/schema_pattern.hpp"
#include "tests/unit/schema_checks.hpp"

using namespace bulwark;
using namespace bulwark::test;
using json::value;

namespace {

/// Whether `pattern` compiles and finds a match in `text`.
bool matches(const std::string& pattern, const std::string& text) {
  schema::pattern p(pattern);
  INFO(pattern);
  INFO(p.problem());
  REQUIRE(p.usable());
  return p.search(text);
}

/// Why `pattern` is refused ("" if it is not).
std::string refusal(const std::string& pattern) {
  schema::pattern p(pattern);
  return p.usable() ? std::string() : p.problem();
}

} // namespace

TEST_CASE("schema pattern searches anywhere unless anchored") {
  auto v = compile(R"({"pattern":"b+"})");
  CHECK(valid(v, R"("abbc")"));
  CHECK(valid(v, R"("b")"));
  auto e = single(v, R"("acd")");
  CHECK(e.keyword == "pattern");
  CHECK(e.message == R"(must match the pattern "b+")");

  auto anchored = compile(R"({"pattern":"^[a-z]+$"})");
  CHECK(valid(anchored, R"("abc")"));
  CHECK_FALSE(valid(anchored, R"("abc1")"));
  CHECK_FALSE(valid(anchored, R"("1abc")"));
  CHECK_FALSE(valid(anchored, R"("")"));

  auto start = compile(R"({"pattern":"^b"})");
  CHECK(valid(start, R"("bc")"));
  CHECK_FALSE(valid(start, R"("ab")"));
  auto end = compile(R"({"pattern":"a$"})");
  CHECK(valid(end, R"("ba")"));
  CHECK_FALSE(valid(end, R"("ab")"));

  // ECMA-262 syntax: classes, alternation, word boundaries.
  CHECK(valid(compile(R"({"pattern":"^\\d{3}-\\d{4}$"})"), R"("555-1234")"));
  CHECK(valid(compile(R"({"pattern":"(cat|dog)s?\\b"})"), R"("hotdogs!")"));
  CHECK_FALSE(valid(compile(R"({"pattern":"\\bcat\\b"})"), R"("concatenate")"));
  // Realistic patterns stay well within the complexity bound.
  CHECK(valid(compile(R"({"pattern":"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"})"),
              R"("123e4567-e89b-12d3-a456-426614174000")"));
  CHECK(valid(compile(R"({"pattern":"^[a-zA-Z0-9._%+-]{1,64}@[a-zA-Z0-9-]{1,63}(\\.[a-zA-Z0-9-]{1,63}){1,8}$"})"),
              R"("ada@example.co.uk")"));
  CHECK(valid(compile(R"({"pattern":"^x{2}\\{1,2\\}$"})"), R"("xx{1,2}")")); // escaped braces
  // Patterns see characters, not bytes.
  auto single_char = compile(R"({"pattern":"^.$"})");
  CHECK(valid(single_char, "\"\xC3\xA9\""));
  CHECK(valid(single_char, "\"\xF0\x9F\x98\x80\""));
  CHECK(valid(compile("{\"pattern\":\"^[\xC3\xA0-\xC3\xBC]+$\"}"), "\"\xC3\xA9\xC3\xA8\""));
  CHECK(valid(compile(R"({"pattern":"^\\u00e9$"})"), "\"\xC3\xA9\""));
}

TEST_CASE("schema pattern does not run on strings over the bound") {
  auto v = compile(R"({"pattern":"^(a+)+$"})");
  std::string ok(schema::max_pattern_input, 'a');
  CHECK(valid(v, "\"" + ok + "\""));
  // Catastrophic for a backtracking matcher, fine for ours.
  CHECK_FALSE(valid(v, "\"" + std::string(schema::max_pattern_input - 1, 'a') + "b\""));
  std::string long_text(schema::max_pattern_input + 1, 'a');
  auto e = single(v, "\"" + long_text + "\"");
  CHECK(e.keyword == "pattern");
  CHECK(contains(e.message, "too long"));
  CHECK(e.message != R"(must match the pattern "^(a+)+$")");
  // The bound counts characters: 4096 two-byte characters are still checked.
  std::string wide;
  for (std::size_t i = 0; i < schema::max_pattern_input; ++i)
    wide += "\xC3\xA9";
  CHECK(valid(compile(R"({"pattern":"^.+$"})"), "\"" + wide + "\""));
  // Member names matched by patternProperties have the same bound.
  auto names = compile(R"({"patternProperties":{"^x":{}},"additionalProperties":false})");
  auto key = value::make_object({{std::string(schema::max_pattern_input + 1, 'x'), 1}});
  auto key_errors = names.validate(key);
  REQUIRE(key_errors.size() == 1);
  CHECK(key_errors[0].keyword == "patternProperties");
  CHECK(contains(key_errors[0].message, "too long"));
  // Strings without a pattern have no such limit.
  CHECK(valid(compile(R"({"type":"string"})"), "\"" + long_text + "\""));
}

TEST_CASE("schema pattern dialect: ECMA-262 constructs as RE2 runs them") {
  // `.` is any character but a line terminator.
  CHECK(matches("^.$", "x"));
  CHECK_FALSE(matches("^.$", "\n"));
  CHECK_FALSE(matches("^.$", "\xE2\x80\xA8")); // U+2028
  // \s is ECMA-262's white space, beyond ASCII; \S its complement.
  CHECK(matches("^\\s$", "\xC2\xA0")); // no-break space
  CHECK(matches("^\\s$", "\xEF\xBB\xBF")); // byte order mark
  CHECK(matches("^\\s$", "\v"));
  CHECK_FALSE(matches("^\\S$", "\xC2\xA0"));
  CHECK(matches("^[\\s\\S]+$", "a b\nc"));
  // `$` is the end of the string only, not before a final line feed.
  CHECK_FALSE(matches("a$", "a\n"));
  // [] matches nothing, [^] anything.
  CHECK_FALSE(matches("[]", "abc"));
  CHECK(matches("^[^]$", "\n"));
  // Escapes: \u with surrogate pairs, \u{...}, \x, \c, \0, [\b].
  CHECK(matches("^\\uD83D\\uDE00$", "\xF0\x9F\x98\x80"));
  CHECK(matches("^\\u{1F600}$", "\xF0\x9F\x98\x80"));
  CHECK(matches("^\\x41$", "A"));
  CHECK(matches("^\\cJ$", "\n"));
  CHECK(matches("^a\\0b$", std::string("a\0b", 3)));
  CHECK(matches("^[\\b]$", "\b"));
  // Identity escapes and literal brackets.
  CHECK(matches("^\\/\\-\\e$", "/-e"));
  CHECK(matches("^a]$", "a]"));
  CHECK(matches("^[[]$", "["));
  // Named groups and Unicode classes.
  CHECK(matches("^(?<year>\\d{4})-(?<month>\\d{2})$", "2026-12"));
  CHECK(matches("^\\p{Greek}+$", "\xCE\xB1\xCE\xB2"));
  CHECK_FALSE(matches("^\\p{Greek}+$", "ab"));
}

TEST_CASE("schema pattern refusals say why") {
  CHECK(contains(refusal("(ab)\\1"), "back-reference"));
  CHECK(contains(refusal("(?<x>a)\\k<x>"), "back-reference"));
  CHECK(contains(refusal("(a)\\12345678901234567890"), "back-reference"));
  CHECK(contains(refusal("^(?=.*[0-9])[a-z0-9]+$"), "lookahead"));
  CHECK(contains(refusal("a(?!b)"), "lookahead"));
  CHECK(contains(refusal("(?<=a)b"), "lookbehind"));
  CHECK(contains(refusal("(?<!a)b"), "lookbehind"));
  CHECK(contains(refusal("a{0,30000}"), "more than 1000"));
  CHECK(contains(refusal("a{1,93290753385477518443}"), "more than 1000"));
  CHECK(contains(refusal("x{294775808,93290753385477518443138175217808,9"), "starts no repetition count"));
  CHECK(contains(refusal("a{"), "starts no repetition count"));
  CHECK(contains(refusal("(?:(a|b){0,200}c){0,200}"), "repetition count"));
  CHECK(contains(refusal("([a-z]"), "missing )"));
  CHECK(contains(refusal("[a-z"), "missing ]"));
  CHECK(contains(refusal("a)"), "unexpected )"));
  CHECK(contains(refusal("(?i)a"), "not a valid regular expression"));
  CHECK(contains(refusal("a\\"), "backslash"));
  CHECK(contains(refusal("\\uD800"), "surrogate"));
  CHECK(contains(refusal(std::string(100, '(') + "a" + std::string(100, ')')), "nests groups"));

  // In a schema: unusable, accepting everything, the location named.
  for (auto text :
       {R"({"pattern":"(?<=a)b"})", R"({"pattern":"(ab)\\1"})", R"({"pattern":"a{0,30000}"})",
        R"({"pattern":"a{1,93290753385477518443}"})", R"({"pattern":"x{294775808,93290753385477518443138175217808,9"})",
        R"({"pattern":"(a)\\12345678901234567890"})", R"({"pattern":"(?:(a|b){0,200}c){0,200}"})",
        R"({"properties":{"a":{"pattern":"([a-z]"}}})", R"({"patternProperties":{"(":{}}})"}) {
    INFO(text);
    schema::validator v(parse(text));
    CHECK_FALSE(v.usable());
    INFO(v.problem());
    CHECK((v.problem().rfind("#/pattern:", 0) == 0 || v.problem().rfind("#/properties/a/pattern:", 0) == 0
           || v.problem().rfind("#/patternProperties/(:", 0) == 0));
    CHECK(v.accepts(parse(R"("ab")")));
  }
  auto lookahead = schema::validator(parse(R"({"pattern":"^(?=.*[0-9])[a-z0-9]+$"})"));
  CHECK(lookahead.problem()
        == R"(#/pattern: pattern "^(?=.*[0-9])[a-z0-9]+$" uses a lookahead, which Bulwark's regular expression )"
           R"(engine (RE2) does not run)");
  // Absurd group nesting is refused before RE2 sees it.
  std::string deep = std::string(1000, '(') + "a" + std::string(1000, ')');
  schema::validator nested(value::make_object({{"pattern", deep}}));
  CHECK_FALSE(nested.usable());
  CHECK(contains(nested.problem(), "nests groups"));
}

TEST_CASE("schema pattern time is linear in the input, even for patterns that backtrack elsewhere") {
  // Exponential for a backtracking matcher: every split of the a's between
  // the two loops is tried before the final '!' fails them all.
  std::string text(100000, 'a');
  text += '!';
  for (auto p : {"^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "^(a*)*b$"}) {
    INFO(p);
    schema::pattern slow(p);
    REQUIRE(slow.usable());
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(slow.search(text));
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < std::chrono::seconds(1));
  }
  CHECK(matches("^(a+)+$", std::string(100000, 'a')));
}
