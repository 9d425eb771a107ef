// JSON Schema validation of tool arguments: Bulwark checks `tools/call`
// arguments against the tool's `inputSchema` before a tool runs or a call is
// forwarded, and answers -32602 with every failing field.
//
// A `validator` compiles a schema once (references resolved, patterns
// compiled, constraints decoded) and then validates any number of instances
// from any number of threads: `validate` is const and touches no shared
// mutable state.
//
// The dialect is JSON Schema 2020-12 as MCP tools use it, plus the older
// spellings that generated schemas still carry (draft-07 `definitions`,
// array-form `items` with `additionalItems` and `dependencies`; draft-04
// boolean `exclusiveMinimum`/`exclusiveMaximum`).
// Not supported, and accepted without checking: `unevaluatedProperties`,
// `unevaluatedItems`, `$dynamicRef`, `format`, `contentMediaType`, references
// to other documents, and base-URI changes through a nested `$id`.
//
// `pattern`s follow ECMA-262 over code points and run on RE2
// (messages/schema_pattern.hpp has the dialect): matching takes time linear
// in the string's length (bounded) and never backtracks, with memory bounded
// per pattern. Patterns RE2 cannot run (back-references, lookahead,
// lookbehind) or whose matcher would be too large make the schema unusable,
// like syntax errors do.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "messages/json.hpp"

namespace bulwark::schema {

// -- limits ------------------------------------------------------------------

/// `validate` lists at most this many errors, then one `truncated` entry.
inline constexpr std::size_t max_errors = 20;
/// Longest string (in code points) matched against a `pattern`; longer
/// strings fail with their own error instead of running the expression.
inline constexpr std::size_t max_pattern_input = 4096;
/// Deepest chain of `$ref`s followed while validating one instance.
inline constexpr int max_ref_depth = 64;

// -- errors ------------------------------------------------------------------

/// One reason an instance does not match its schema.
struct error {
  /// JSON pointer to the offending part of the instance: "" for the whole
  /// instance, "/address/city", "/tags/2". A missing required property is
  /// reported at the path it should have had.
  std::string path;
  /// The schema keyword that failed (`type`, `required`, `anyOf`...), or
  /// `truncated` for the final entry of a capped list.
  std::string keyword;
  /// Plain English naming what was expected: "must be at most 10",
  /// "is required", "must be one of \"phone\", \"email\"".
  std::string message;
};

/// `[{"path":..., "keyword":..., "message":...}, ...]`, for the `data` of a
/// -32602 answer.
json::value errors_to_json(const std::vector<error>& errors);

/// One line for people: "arguments are invalid: /age must be at least 0;
/// /name is required". Errors about the whole instance read "the arguments
/// must ..."; no errors at all read "arguments are valid".
std::string summary(const std::vector<error>& errors);

// -- validator ---------------------------------------------------------------

/// A compiled schema.
class validator {
public:
  /// A validator without a schema: accepts everything.
  validator() = default;

  /// Compiles `schema`. Never throws on a malformed schema: the result is
  /// then not `usable()`, says why in `problem()`, and accepts everything,
  /// so that a tool whose schema Bulwark cannot read still works.
  explicit validator(const json::value& schema);

  /// Whether the schema compiled; false also for a default-constructed one.
  bool usable() const noexcept { return program_ != nullptr; }

  /// Why the schema could not be compiled, with the schema location:
  /// "#/properties/age/minimum: must be a number". Empty when usable or
  /// default-constructed.
  const std::string& problem() const noexcept { return problem_; }

  /// The errors of `instance`, in instance order; empty when it is valid.
  /// Holds at most `max_errors` errors plus a final `truncated` entry.
  std::vector<error> validate(const json::value& instance) const;

  /// Whether `instance` is valid; cheaper than `validate` on failure, as it
  /// stops at the first error and words nothing.
  bool accepts(const json::value& instance) const;

  /// The compiled form, shared by copies of a validator. Defined in
  /// messages/schema_program.hpp.
  struct program;

private:
  std::shared_ptr<const program> program_;
  std::string problem_;
};

// -- sanitizing --------------------------------------------------------------

/// Removes C0 control characters other than tab, line feed and carriage
/// return, and DEL, from every string and member name in `v`. When cleaning
/// makes two member names equal, the first member is kept. Returns whether
/// anything changed.
bool strip_control_characters(json::value& v);

/// Whether `strip_control_characters` would change `v` (without copying it).
bool has_control_characters(const json::value& v);

} // namespace bulwark::schema
