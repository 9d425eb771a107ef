// JSON Schema validation of tool arguments: every keyword, error paths and
// wording, malformed schemas, the limits, and control-character stripping.
// `pattern`s have their own file (schema_pattern_test.cpp).
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "messages/json.hpp"
#include "messages/schema.hpp"
#include "tests/unit/schema_checks.hpp"

using namespace bulwark;
using namespace bulwark::test;
using json::value;

// -- types --------------------------------------------------------------------

TEST_CASE("schema type accepts the named JSON types") {
  CHECK(valid(compile(R"({"type":"string"})"), R"("x")"));
  CHECK(valid(compile(R"({"type":"number"})"), "3"));
  CHECK(valid(compile(R"({"type":"number"})"), "3.5"));
  CHECK(valid(compile(R"({"type":"boolean"})"), "false"));
  CHECK(valid(compile(R"({"type":"null"})"), "null"));
  CHECK(valid(compile(R"({"type":"array"})"), "[]"));
  CHECK(valid(compile(R"({"type":"object"})"), "{}"));
  CHECK_FALSE(valid(compile(R"({"type":"object"})"), "[]"));
  CHECK_FALSE(valid(compile(R"({"type":"array"})"), "{}"));
  CHECK_FALSE(valid(compile(R"({"type":"null"})"), "0"));
  CHECK_FALSE(valid(compile(R"({"type":"boolean"})"), "0"));
  CHECK_FALSE(valid(compile(R"({"type":"number"})"), R"("3")"));

  auto e = single(compile(R"({"type":"string"})"), "42");
  CHECK(e.path == "");
  CHECK(e.keyword == "type");
  CHECK(e.message == "must be a string, got 42");
}

TEST_CASE("schema integer means a number without a fraction") {
  auto v = compile(R"({"type":"integer"})");
  CHECK(valid(v, "3"));
  CHECK(valid(v, "3.0"));
  CHECK(valid(v, "-0"));
  CHECK(valid(v, "1e3"));
  CHECK(valid(v, "9223372036854775807"));
  CHECK_FALSE(valid(v, "3.5"));
  CHECK(single(v, "3.5").message == "must be an integer, got 3.5");
  CHECK(single(v, R"("3")").message == "must be an integer, got a string");
  CHECK(single(v, "true").message == "must be an integer, got true");
}

TEST_CASE("schema type lists accept any of their types") {
  auto v = compile(R"({"type":["string","null"]})");
  CHECK(valid(v, R"("x")"));
  CHECK(valid(v, "null"));
  CHECK(single(v, "[1]").message == "must be a string or null, got an array");
  auto w = compile(R"({"type":["integer","number","boolean"]})");
  CHECK(valid(w, "2.5"));
  CHECK(single(w, "{}").message == "must be a number or a boolean, got an object");
}

// -- objects ------------------------------------------------------------------

TEST_CASE("schema properties, required and paths") {
  auto v = compile(R"({
    "type":"object",
    "properties":{
      "name":{"type":"string"},
      "age":{"type":"integer","minimum":0},
      "address":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}
    },
    "required":["name"]
  })");
  CHECK(valid(v, R"({"name":"Ada"})"));
  CHECK(valid(v, R"({"name":"Ada","age":36,"address":{"city":"London"},"extra":1})"));

  auto e = single(v, R"({"age":3})");
  CHECK(e.path == "/name");
  CHECK(e.keyword == "required");
  CHECK(e.message == "is required");

  e = single(v, R"({"name":"Ada","address":{"city":7}})");
  CHECK(e.path == "/address/city");
  CHECK(e.keyword == "type");

  e = single(v, R"({"name":"Ada","address":{}})");
  CHECK(e.path == "/address/city");
  CHECK(e.keyword == "required");

  auto errs = errors(v, R"({"age":-1,"address":{"city":false}})");
  REQUIRE(errs.size() == 3);
  CHECK(schema::summary(errs)
        == "arguments are invalid: /name is required; /age must be at least 0; /address/city must be a "
           "string, got "
           "false");
}

TEST_CASE("schema paths escape ~ and / in property names") {
  auto v = compile(R"({"properties":{"a/b":{"type":"string"},"c~d":{"type":"string"}}})");
  auto errs = errors(v, R"({"a/b":1,"c~d":2})");
  REQUIRE(errs.size() == 2);
  CHECK(errs[0].path == "/a~1b");
  CHECK(errs[1].path == "/c~0d");
}

TEST_CASE("schema additionalProperties as a boolean and as a schema") {
  auto closed = compile(R"({"properties":{"a":{}},"additionalProperties":false})");
  CHECK(valid(closed, R"({"a":1})"));
  auto e = single(closed, R"({"a":1,"b":2})");
  CHECK(e.path == "/b");
  CHECK(e.keyword == "additionalProperties");
  CHECK(e.message == "is not allowed");

  auto typed = compile(R"({"properties":{"a":{}},"additionalProperties":{"type":"integer"}})");
  CHECK(valid(typed, R"({"a":"x","b":2,"c":3})"));
  e = single(typed, R"({"a":"x","b":"two"})");
  CHECK(e.path == "/b");
  CHECK(e.keyword == "type");

  // Names matched by patternProperties are not additional.
  auto patterned = compile(R"({"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false})");
  CHECK(valid(patterned, R"({"x-trace":"abc"})"));
  CHECK(single(patterned, R"({"x-trace":1})").keyword == "type");
  CHECK(single(patterned, R"({"trace":"abc"})").keyword == "additionalProperties");
}

TEST_CASE("schema minProperties, maxProperties, propertyNames and dependencies") {
  auto v = compile(R"({"minProperties":1,"maxProperties":2})");
  CHECK(valid(v, R"({"a":1})"));
  CHECK(single(v, "{}").message == "must have at least 1 property");
  CHECK(single(v, R"({"a":1,"b":2,"c":3})").message == "must have at most 2 properties");
  CHECK(valid(v, "[]")); // object keywords ignore other types

  auto names = compile(R"({"propertyNames":{"pattern":"^[a-z]+$","maxLength":5}})");
  CHECK(valid(names, R"({"abc":1})"));
  auto e = single(names, R"({"abc":1,"Bad":2})");
  CHECK(e.path == "/Bad");
  CHECK(e.keyword == "propertyNames");

  auto dep = compile(R"({"dependentRequired":{"card":["billing"]},
                          "dependentSchemas":{"gift":{"required":["message"]}}})");
  CHECK(valid(dep, R"({"name":"x"})"));
  CHECK(valid(dep, R"({"card":1,"billing":2})"));
  e = single(dep, R"({"card":1})");
  CHECK(e.path == "/billing");
  CHECK(e.keyword == "dependentRequired");
  CHECK(e.message == R"(is required when "card" is present)");
  e = single(dep, R"({"gift":true})");
  CHECK(e.path == "/message");
  CHECK(e.keyword == "required");

  // Draft-07 `dependencies` carries both forms.
  auto old = compile(R"({"dependencies":{"a":["b"],"c":{"properties":{"d":{"type":"string"}}}}})");
  CHECK(single(old, R"({"a":1})").path == "/b");
  CHECK(single(old, R"({"c":1,"d":2})").path == "/d");
  CHECK(valid(old, R"({"c":1,"d":"2"})"));
}

// -- enum and const -----------------------------------------------------------

TEST_CASE("schema enum lists the allowed values") {
  auto v = compile(R"({"enum":["phone","email"]})");
  CHECK(valid(v, R"("phone")"));
  auto e = single(v, R"("fax")");
  CHECK(e.keyword == "enum");
  CHECK(e.message == R"(must be one of "phone", "email")");
  auto mixed = compile(R"({"enum":[1,null,{"a":[1,2]}]})");
  CHECK(valid(mixed, "1.0"));
  CHECK(valid(mixed, "null"));
  CHECK(valid(mixed, R"({"a":[1,2.0]})"));
  CHECK_FALSE(valid(mixed, R"({"a":[2,1]})"));
  CHECK_FALSE(valid(mixed, R"("1")"));
}

TEST_CASE("schema const compares deeply") {
  auto v = compile(R"({"const":{"a":1,"b":[true,"x"]}})");
  CHECK(valid(v, R"({"b":[true,"x"],"a":1.0})"));
  auto e = single(v, R"({"a":1,"b":[true]})");
  CHECK(e.keyword == "const");
  CHECK(e.message == R"(must be {"a":1,"b":[true,"x"]})");
  auto one = compile(R"({"const":1})");
  CHECK(valid(one, "1.0"));
  CHECK_FALSE(valid(one, "true"));
  CHECK_FALSE(valid(one, R"("1")"));
}

// -- numbers ------------------------------------------------------------------

TEST_CASE("schema numeric bounds") {
  auto v = compile(R"({"minimum":0,"maximum":10})");
  CHECK(valid(v, "0"));
  CHECK(valid(v, "10"));
  CHECK(valid(v, "9.99"));
  CHECK(single(v, "-1").message == "must be at least 0");
  CHECK(single(v, "10.5").message == "must be at most 10");
  CHECK(single(v, "11").keyword == "maximum");
  CHECK(valid(v, R"("not a number")")); // numeric keywords ignore other types

  auto x = compile(R"({"exclusiveMinimum":0,"exclusiveMaximum":1.5})");
  CHECK(valid(x, "0.1"));
  CHECK(single(x, "0").message == "must be greater than 0");
  CHECK(single(x, "1.5").message == "must be less than 1.5");
  CHECK(single(x, "1.5").keyword == "exclusiveMaximum");

  // Draft-04 spelled them as booleans beside minimum and maximum.
  auto old = compile(R"({"minimum":0,"exclusiveMinimum":true,"maximum":5,"exclusiveMaximum":false})");
  CHECK(single(old, "0").keyword == "exclusiveMinimum");
  CHECK(valid(old, "5"));
}

TEST_CASE("schema multipleOf") {
  auto two = compile(R"({"multipleOf":2})");
  CHECK(valid(two, "4"));
  CHECK(valid(two, "-6"));
  CHECK(valid(two, "0"));
  CHECK(valid(two, "4.0"));
  CHECK(single(two, "7").message == "must be a multiple of 2");
  CHECK_FALSE(valid(two, "4.5"));

  auto tenth = compile(R"({"multipleOf":0.1})");
  CHECK(valid(tenth, "0.3"));
  CHECK(valid(tenth, "0.7"));
  CHECK(valid(tenth, "1.1"));
  CHECK(valid(tenth, "12"));
  CHECK_FALSE(valid(tenth, "0.35"));

  auto cents = compile(R"({"multipleOf":0.01})");
  CHECK(valid(cents, "19.99"));
  CHECK(valid(cents, "4.35"));
  CHECK_FALSE(valid(cents, "19.995"));

  auto one = compile(R"({"multipleOf":1})");
  CHECK_FALSE(valid(one, "1.0000001"));
  CHECK(valid(one, "1e300"));
}

// -- strings ------------------------------------------------------------------

TEST_CASE("schema string lengths count code points") {
  auto v = compile(R"({"minLength":2,"maxLength":3})");
  CHECK(valid(v, R"("ab")"));
  CHECK(valid(v, R"("abc")"));
  CHECK(single(v, R"("a")").message == "must be at least 2 characters long");
  CHECK(single(v, R"("abcd")").message == "must be at most 3 characters long");
  // "é" is two bytes and the emoji four: still one character each.
  CHECK(valid(v, "\"\xC3\xA9\xC3\xA9\xC3\xA9\""));
  CHECK(valid(v, "\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\""));
  CHECK(single(v, "\"\xF0\x9F\x98\x80\"").keyword == "minLength");
  CHECK(single(v, "\"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\"").keyword == "maxLength");
  auto one = compile(R"({"maxLength":1})");
  CHECK(single(one, R"("ab")").message == "must be at most 1 character long");
  CHECK(valid(one, "\"\xF0\x9F\x98\x80\""));
}

// -- arrays -------------------------------------------------------------------

TEST_CASE("schema items, prefixItems and item counts") {
  auto v = compile(R"({"type":"array","items":{"type":"string"},"minItems":1,"maxItems":3})");
  CHECK(valid(v, R"(["a"])"));
  CHECK(single(v, "[]").message == "must have at least 1 item");
  CHECK(single(v, R"(["a","b","c","d"])").message == "must have at most 3 items");
  auto e = single(v, R"(["a","b",3])");
  CHECK(e.path == "/2");
  CHECK(e.keyword == "type");

  auto tuple = compile(R"({"prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})");
  CHECK(valid(tuple, R"(["a",1])"));
  CHECK(valid(tuple, R"(["a"])"));
  CHECK(single(tuple, R"([1,1])").path == "/0");
  e = single(tuple, R"(["a",1,true])");
  CHECK(e.path == "/2");
  CHECK(e.keyword == "items");
  CHECK(e.message == "is not allowed (at most 2 items)");

  auto rest = compile(R"({"prefixItems":[{"type":"string"}],"items":{"type":"integer"}})");
  CHECK(valid(rest, R"(["a",1,2])"));
  CHECK(single(rest, R"(["a",1,"b"])").path == "/2");

  // Draft-07 tuples.
  auto old = compile(R"({"items":[{"type":"string"}],"additionalItems":{"type":"integer"}})");
  CHECK(valid(old, R"(["a",1])"));
  CHECK(single(old, R"([1])").path == "/0");
  CHECK(single(old, R"(["a","b"])").path == "/1");

  auto nested = compile(R"({"properties":{"tags":{"items":{"enum":["x","y"]}}}})");
  CHECK(single(nested, R"({"tags":["x","y","z"]})").path == "/tags/2");
}

TEST_CASE("schema uniqueItems uses deep equality") {
  auto v = compile(R"({"uniqueItems":true})");
  CHECK(valid(v, R"([1,2,"1",[1],{"a":1}])"));
  auto e = single(v, R"([1,2,1.0])");
  CHECK(e.keyword == "uniqueItems");
  CHECK(e.message == "must not contain duplicates (items 0 and 2 are equal)");
  CHECK_FALSE(valid(v, R"([{"a":1,"b":2},{"b":2,"a":1}])"));
  CHECK_FALSE(valid(v, R"([[1,[2]],[1,[2.0]]])"));
  CHECK(valid(compile(R"({"uniqueItems":false})"), "[1,1]"));

  // Long arrays are compared through hashes.
  std::string many = "[";
  for (int i = 0; i < 500; ++i)
    many += std::to_string(i) + ",";
  CHECK(valid(v, many + "\"end\"]"));
  auto dup = single(v, many + "250.0]");
  CHECK(dup.message == "must not contain duplicates (items 250 and 500 are equal)");
}

TEST_CASE("schema contains, minContains and maxContains") {
  auto v = compile(R"({"contains":{"type":"integer"}})");
  CHECK(valid(v, R"(["a",1])"));
  auto e = single(v, R"(["a","b"])");
  CHECK(e.keyword == "contains");
  CHECK(e.message == "must contain at least 1 item matching the contains schema");
  auto counted = compile(R"({"contains":{"type":"integer"},"minContains":2,"maxContains":3})");
  CHECK(valid(counted, "[1,2]"));
  CHECK(single(counted, R"([1,"a"])").keyword == "minContains");
  CHECK(single(counted, "[1,2,3,4]").keyword == "maxContains");
  CHECK(valid(compile(R"({"contains":{"type":"integer"},"minContains":0})"), R"(["a"])"));
}

// -- combinators --------------------------------------------------------------

TEST_CASE("schema allOf reports the failing parts") {
  auto v = compile(R"({"allOf":[{"type":"string"},{"minLength":2},{"maxLength":4}]})");
  CHECK(valid(v, R"("abc")"));
  CHECK(single(v, R"("a")").keyword == "minLength");
  CHECK(single(v, "1").keyword == "type");
}

TEST_CASE("schema anyOf reports one error at its location") {
  auto v = compile(R"({"properties":{"id":{"anyOf":[{"type":"string","minLength":3},{"type":"integer"}]}}})");
  CHECK(valid(v, R"({"id":"abc"})"));
  CHECK(valid(v, R"({"id":7})"));
  auto e = single(v, R"({"id":"ab"})");
  CHECK(e.path == "/id");
  CHECK(e.keyword == "anyOf");
  CHECK(e.message == "must match at least one of 2 schemas (closest: must be at least 3 characters long)");
  e = single(v, R"({"id":1.5})");
  CHECK(e.keyword == "anyOf");
}

TEST_CASE("schema oneOf needs exactly one match") {
  auto v = compile(R"({"oneOf":[{"type":"integer"},{"minimum":10}]})");
  CHECK(valid(v, "3")); // only the first
  CHECK(valid(v, "10.5")); // only the second
  auto e = single(v, "12");
  CHECK(e.keyword == "oneOf");
  CHECK(e.message == "must match exactly one of 2 schemas, but matches more than one (schemas 0 and 1)");
  e = single(v, "2.5");
  CHECK(e.keyword == "oneOf");
  CHECK(contains(e.message, "but matches none"));

  // A tagged union: the closest branch names the actual problem.
  auto tagged = compile(R"({"oneOf":[
    {"properties":{"kind":{"const":"circle"},"r":{"type":"number"}},"required":["kind","r"]},
    {"properties":{"kind":{"const":"square"},"side":{"type":"number"}},"required":["kind","side"]}]})");
  CHECK(valid(tagged, R"({"kind":"circle","r":1})"));
  e = single(tagged, R"({"kind":"square","side":"big"})");
  CHECK(e.path == "");
  CHECK(contains(e.message, "closest: /side must be a number, got a string"));
}

TEST_CASE("schema not") {
  auto v = compile(R"({"not":{"type":"string"}})");
  CHECK(valid(v, "1"));
  auto e = single(v, R"("x")");
  CHECK(e.keyword == "not");
  CHECK(e.message == R"(must not match the schema in "not")");
}

TEST_CASE("schema if, then and else") {
  auto v = compile(R"({
    "if":{"properties":{"country":{"const":"US"}},"required":["country"]},
    "then":{"properties":{"zip":{"pattern":"^[0-9]{5}$"}}},
    "else":{"properties":{"zip":{"pattern":"^[A-Z0-9 ]+$"}}}
  })");
  CHECK(valid(v, R"({"country":"US","zip":"12345"})"));
  CHECK(single(v, R"({"country":"US","zip":"AB1 2CD"})").path == "/zip");
  CHECK(valid(v, R"({"country":"UK","zip":"AB1 2CD"})"));
  CHECK_FALSE(valid(v, R"({"country":"UK","zip":"ab1"})"));
  CHECK(valid(v, R"({"zip":"X1"})"));

  // A lone `if` has no effect; `then` and `else` may stand alone.
  CHECK(valid(compile(R"({"if":{"type":"string"}})"), "1"));
  auto then_only = compile(R"({"if":{"type":"integer"},"then":{"minimum":0}})");
  CHECK(valid(then_only, R"("x")"));
  CHECK(single(then_only, "-1").keyword == "minimum");
  auto then_false = compile(R"({"if":{"type":"integer"},"then":false})");
  CHECK(single(then_false, "1").keyword == "then");
}

// -- references ---------------------------------------------------------------

TEST_CASE("schema $ref to $defs, definitions, anchors and the root") {
  auto v = compile(R"({
    "$defs":{"positive":{"type":"integer","exclusiveMinimum":0},
             "named":{"$anchor":"nameDef","type":"string","minLength":1}},
    "definitions":{"old":{"type":"boolean"}},
    "properties":{
      "count":{"$ref":"#/$defs/positive"},
      "name":{"$ref":"#nameDef"},
      "flag":{"$ref":"#/definitions/old"},
      "other":{"$ref":"#/properties/count"}
    }
  })");
  CHECK(valid(v, R"({"count":1,"name":"x","flag":true,"other":2})"));
  CHECK(single(v, R"({"count":0})").path == "/count");
  CHECK(single(v, R"({"name":""})").keyword == "minLength");
  CHECK(single(v, R"({"flag":1})").keyword == "type");
  CHECK(single(v, R"({"other":-1})").keyword == "exclusiveMinimum");

  // Keywords beside $ref apply too (2020-12).
  auto beside = compile(R"({"$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s","maxLength":2})");
  CHECK(valid(beside, R"("ab")"));
  CHECK(single(beside, R"("abc")").keyword == "maxLength");
  CHECK(single(beside, "1").keyword == "type");

  // Escaped pointer tokens and percent-encoding.
  auto escaped = compile(R"({"$defs":{"a/b":{"type":"integer"},"c d":{"type":"string"}},
                            "properties":{"x":{"$ref":"#/$defs/a~1b"},"y":{"$ref":"#/$defs/c%20d"}}})");
  CHECK_FALSE(valid(escaped, R"({"x":"1"})"));
  CHECK_FALSE(valid(escaped, R"({"y":1})"));

  // A reference through the root's own $id is local.
  auto with_id = compile(R"({"$id":"https://example.com/s.json","$defs":{"n":{"type":"null"}},
                            "properties":{"z":{"$ref":"https://example.com/s.json#/$defs/n"}}})");
  CHECK_FALSE(valid(with_id, R"({"z":1})"));
}

TEST_CASE("schema recursive $ref validates trees") {
  auto tree = compile(R"({"type":"object","properties":{
    "value":{"type":"integer"},
    "children":{"type":"array","items":{"$ref":"#"}}},"required":["value"]})");
  CHECK(valid(tree, R"({"value":1,"children":[{"value":2},{"value":3,"children":[{"value":4}]}]})"));
  auto e = single(tree, R"({"value":1,"children":[{"value":2},{"value":3,"children":[{"value":"x"}]}]})");
  CHECK(e.path == "/children/1/children/0/value");
  CHECK(single(tree, R"({"value":1,"children":[{}]})").path == "/children/0/value");
}

TEST_CASE("schema $ref depth is bounded") {
  // A legitimate recursive schema, with an instance nested past the bound:
  // an error, not a stack overflow.
  auto v = compile(R"({"$defs":{"list":{"type":"object","properties":{"next":{"$ref":"#/$defs/list"}}}},
                       "$ref":"#/$defs/list"})");
  std::string shallow = "{}";
  for (int i = 0; i < 10; ++i)
    shallow = R"({"next":)" + shallow + "}";
  CHECK(valid(v, shallow));
  std::string deep = "{}";
  for (int i = 0; i < 100; ++i)
    deep = R"({"next":)" + deep + "}";
  auto errs = errors(v, deep);
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].keyword == "$ref");
  CHECK(contains(errs[0].message, "nested too deeply"));
}

TEST_CASE("schema $ref cycles that never reach a value leave the schema unusable") {
  for (auto text :
       {R"({"$ref":"#"})", R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})",
        R"({"anyOf":[{"type":"string"},{"$ref":"#"}]})",
        R"({"$defs":{"a":{"allOf":[{"$ref":"#/$defs/a"}]}},"properties":{"x":{"$ref":"#/$defs/a"}}})"}) {
    INFO(text);
    schema::validator v(parse(text));
    CHECK_FALSE(v.usable());
    CHECK(contains(v.problem(), "cycle"));
    CHECK(v.validate(parse("1")).empty());
    CHECK(v.accepts(parse(R"({"x":1})")));
  }
}

TEST_CASE("schema references to other documents are not followed") {
  auto v = compile(R"({"properties":{"a":{"$ref":"https://example.com/other.json#/x"},
                                      "b":{"$ref":"other.json"},"c":{"type":"string"}}})");
  CHECK(valid(v, R"({"a":1,"b":[]})"));
  CHECK_FALSE(valid(v, R"({"a":1,"c":2})"));

  schema::validator dangling(parse(R"({"properties":{"a":{"$ref":"#/$defs/missing"}}})"));
  CHECK_FALSE(dangling.usable());
  CHECK(contains(dangling.problem(), "#/properties/a/$ref"));
  CHECK(contains(dangling.problem(), "points nowhere"));
}

// -- boolean and unusual schemas ----------------------------------------------

TEST_CASE("schema booleans") {
  auto yes = compile("true");
  CHECK(valid(yes, "1"));
  CHECK(valid(yes, R"({"a":[null]})"));
  auto no = compile("false");
  auto e = single(no, "1");
  CHECK(e.path == "");
  CHECK(e.keyword == "false");
  CHECK(e.message == "is not allowed");
  auto prop = compile(R"({"properties":{"secret":false}})");
  CHECK(valid(prop, R"({"other":1})"));
  e = single(prop, R"({"secret":1})");
  CHECK(e.path == "/secret");
  CHECK(e.keyword == "properties");
  CHECK(valid(compile("{}"), "[1,2]"));
}

TEST_CASE("schema ignores annotations and unknown keywords") {
  auto v = compile(R"({"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"urn:x","$comment":"c",
    "title":"T","description":"D","default":5,"examples":[1],"format":"email","x-internal":{"type":"string"},
    "deprecated":true,"readOnly":true,"contentMediaType":"text/plain","type":"integer"})");
  CHECK(valid(v, "7"));
  CHECK(single(v, R"("x")").keyword == "type");
}

TEST_CASE("schema that is malformed accepts everything and says why") {
  struct bad {
    const char* schema;
    const char* where;
  };
  for (auto [text, where] : {
         bad{R"({"properties":[{"type":"string"}]})", "#/properties:"},
         bad{R"({"properties":{"a":{"pattern":"([a-z]"}}})", "#/properties/a/pattern:"},
         bad{R"({"type":7})", "#/type:"},
         bad{R"({"type":["string","strin"]})", "#/type:"},
         bad{R"({"minLength":-1})", "#/minLength:"},
         bad{R"({"maxItems":1.5})", "#/maxItems:"},
         bad{R"({"multipleOf":0})", "#/multipleOf:"},
         bad{R"({"minimum":"3"})", "#/minimum:"},
         bad{R"({"required":"name"})", "#/required:"},
         bad{R"({"enum":"a"})", "#/enum:"},
         bad{R"({"anyOf":[]})", "#/anyOf:"},
         bad{R"({"items":3})", "#/items:"},
         bad{R"({"allOf":[{"not":"x"}]})", "#/allOf/0/not:"},
         bad{R"({"patternProperties":{"(":{}}})", "#/patternProperties/(:"},
         bad{"7", "#:"},
       }) {
    INFO(text);
    schema::validator v(parse(text));
    CHECK_FALSE(v.usable());
    INFO(v.problem());
    CHECK(v.problem().rfind(where, 0) == 0);
    CHECK(v.validate(parse(R"({"a":"?"})")).empty());
    CHECK(v.accepts(parse("[1]")));
  }
  schema::validator none;
  CHECK_FALSE(none.usable());
  CHECK(none.problem().empty());
  CHECK(none.validate(parse("1")).empty());
}

// -- limits and reporting -----------------------------------------------------

TEST_CASE("schema errors are capped") {
  std::string schema_text = R"({"required":[)";
  for (int i = 0; i < 30; ++i)
    schema_text += (i ? ",\"p" : "\"p") + std::to_string(i) + "\"";
  schema_text += "]}";
  auto v = compile(schema_text);
  auto errs = errors(v, "{}");
  REQUIRE(errs.size() == schema::max_errors + 1);
  CHECK(errs[0].path == "/p0");
  CHECK(errs[schema::max_errors - 1].path == "/p19");
  CHECK(errs.back().keyword == "truncated");
  CHECK(contains(schema::summary(errs), "more errors not shown"));

  // Exactly at the cap: no truncation entry.
  auto twenty = compile(R"({"items":{"type":"string"}})");
  std::string items = "[";
  for (std::size_t i = 0; i < schema::max_errors; ++i)
    items += i ? ",1" : "1";
  CHECK(errors(twenty, items + "]").size() == schema::max_errors);
  CHECK(errors(twenty, items + ",1]").size() == schema::max_errors + 1);
}

TEST_CASE("schema errors as JSON and as a summary") {
  auto v = compile(R"({"type":"object","properties":{"age":{"minimum":0}},"required":["name"]})");
  auto errs = errors(v, R"({"age":-1})");
  CHECK(json::dump(schema::errors_to_json(errs))
        == R"([{"path":"/name","keyword":"required","message":"is required"},)"
           R"({"path":"/age","keyword":"minimum","message":"must be at least 0"}])");
  CHECK(schema::summary(errs) == "arguments are invalid: /name is required; /age must be at least 0");
  CHECK(schema::summary(errors(v, "[]")) == "arguments are invalid: the arguments must be an object, got an array");
  CHECK(json::dump(schema::errors_to_json({})) == "[]");
}

TEST_CASE("schema validators are shared safely between threads") {
  auto v = compile(R"({"properties":{"n":{"type":"integer","multipleOf":3},"s":{"pattern":"^[a-z]+$"}},
                       "required":["n"]})");
  auto good = parse(R"({"n":9,"s":"abc"})");
  auto bad = parse(R"({"n":10,"s":"ABC"})");
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        if (!v.validate(good).empty() || v.validate(bad).size() != 2)
          ++failures[t];
      }
    });
  }
  for (auto& t : threads)
    t.join();
  CHECK(failures == std::vector<int>(4, 0));
  auto copy = v; // copies share the compiled schema
  CHECK(copy.validate(bad).size() == 2);
}

// -- the conformance fixture ----------------------------------------------------

TEST_CASE("schema conformance fixture: contact details") {
  // Verbatim, split across lines.
  auto v = compile(R"({"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",)"
                   R"("$defs":{"address":{"$anchor":"addressDef","type":"object","properties":)"
                   R"({"street":{"type":"string"},"city":{"type":"string"}}}},"properties":)"
                   R"({"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},)"
                   R"("contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},)"
                   R"("email":{"type":"string"}},"allOf":[{"anyOf":[{"required":["phone"]},)"
                   R"({"required":["email"]}]}],"if":{"properties":{"contactMethod":{"const":"phone"}},)"
                   R"("required":["contactMethod"]},"then":{"required":["phone"]},"else":{"required":["email"]},)"
                   R"("additionalProperties":false})");

  CHECK(valid(v, R"({"name":"Ada","contactMethod":"phone","phone":"555"})"));
  CHECK(valid(v, R"({"name":"Ada","contactMethod":"email","email":"a@b.c"})"));
  CHECK(valid(v, R"({"email":"a@b.c"})"));
  CHECK(valid(v, R"({"email":"a@b.c","address":{"street":"1 Main St","city":"Springfield"}})"));
  CHECK(valid(v, R"({"contactMethod":"phone","phone":"555","email":"a@b.c"})"));

  // Phone chosen but missing.
  auto errs = errors(v, R"({"contactMethod":"phone","email":"a@b.c"})");
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].path == "/phone");
  CHECK(errs[0].keyword == "required");

  // No contact at all: the anyOf and the else branch.
  errs = errors(v, R"({"name":"Ada"})");
  REQUIRE(errs.size() == 2);
  CHECK(errs[0].path == "");
  CHECK(errs[0].keyword == "anyOf");
  CHECK(errs[0].message == "must match at least one of 2 schemas (closest: /phone is required)");
  CHECK(errs[1].path == "/email");
  CHECK(errs[1].keyword == "required");

  // Unknown members, wrong types, an unlisted method, a bad address.
  auto e = single(v, R"({"email":"a@b.c","fax":"1"})");
  CHECK(e.path == "/fax");
  CHECK(e.keyword == "additionalProperties");
  e = single(v, R"({"email":"a@b.c","name":5})");
  CHECK(e.path == "/name");
  CHECK(e.message == "must be a string, got 5");
  e = single(v, R"({"email":"a@b.c","contactMethod":"fax"})");
  CHECK(e.path == "/contactMethod");
  CHECK(e.message == R"(must be one of "phone", "email")");
  e = single(v, R"({"email":"a@b.c","address":{"city":12}})");
  CHECK(e.path == "/address/city");
  CHECK(single(v, R"({"email":"a@b.c","address":"Main St"})").path == "/address");
  CHECK(single(v, R"(["email"])").keyword == "type");
}

// -- sanitizing ----------------------------------------------------------------

TEST_CASE("strip_control_characters cleans strings and names") {
  auto v = parse(R"({"a":"x\u0000y\u0007z\u007f","b":["ok\ttab\nline\r",{"c\u0001":"\u001b[31mred"}],"n":1})");
  CHECK(schema::strip_control_characters(v));
  CHECK(json::dump(v) == R"({"a":"xyz","b":["ok\ttab\nline\r",{"c":"[31mred"}],"n":1})");
  CHECK_FALSE(schema::strip_control_characters(v));

  auto clean = parse("{\"text\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\",\"list\":[1,true,null]}");
  auto before = json::dump(clean);
  CHECK_FALSE(schema::strip_control_characters(clean));
  CHECK(json::dump(clean) == before);

  // Names that become equal keep the first member.
  auto clash = parse(R"({"key":1,"ke\u0002y":2,"other\u0003":3})");
  CHECK(schema::strip_control_characters(clash));
  CHECK(json::dump(clash) == R"({"key":1,"other":3})");

  value s("\x01\x02");
  CHECK(schema::strip_control_characters(s));
  CHECK(s.as_string().empty());
}
