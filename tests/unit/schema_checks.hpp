// Helpers shared by the schema tests: compile a schema that must compile,
// and the errors an instance gets (`accepts` must agree with them).
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "messages/json.hpp"
#include "messages/schema.hpp"
#include "tests/unit/support.hpp"

namespace bulwark::test {

inline schema::validator compile(std::string_view schema_text) {
  schema::validator v(parse(schema_text));
  INFO(schema_text);
  INFO(v.problem());
  REQUIRE(v.usable());
  REQUIRE(v.problem().empty());
  return v;
}

/// The errors for one instance; `accepts` must agree with them.
inline std::vector<schema::error> errors(const schema::validator& v, std::string_view instance_text) {
  auto instance = parse(instance_text);
  auto errs = v.validate(instance);
  INFO(instance_text);
  CHECK(v.accepts(instance) == errs.empty());
  return errs;
}

inline bool valid(const schema::validator& v, std::string_view instance_text) {
  return errors(v, instance_text).empty();
}

/// The only error for `instance_text`.
inline schema::error single(const schema::validator& v, std::string_view instance_text) {
  auto errs = errors(v, instance_text);
  INFO(instance_text);
  INFO(schema::summary(errs));
  REQUIRE(errs.size() == 1);
  return errs.front();
}

inline bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

} // namespace bulwark::test
