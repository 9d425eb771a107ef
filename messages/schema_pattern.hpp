// JSON Schema `pattern`s (ECMA-262 regular expressions) on RE2.
//
// A pattern is translated into RE2's syntax once, when its schema compiles,
// and then matched over UTF-8 without backtracking: time linear in the
// string's length, memory bounded per pattern. ECMA-262 constructs RE2
// cannot run — back-references, lookahead and lookbehind — refuse the
// pattern, as syntax errors do.
//
// Dialect: ECMA-262 over code points, as with the `u` flag: `.` is any
// character but a line terminator; `\s` is ECMA-262's white space and line
// terminators; `\d`, `\w` and `\b` are ASCII; `\uXXXX` (surrogate pairs
// joined), `\u{X}`, `\xXX`, `\cX`, `\0`, `\p{...}` as RE2 names Unicode
// classes, named groups `(?<name>...)`. A `{` that starts no repetition
// count is refused (write `\{`). Inside a class, `\S` is RE2's (ASCII white
// space only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
} // namespace re2

namespace bulwark::schema {

/// Deepest group nesting in a `pattern`.
inline constexpr int max_pattern_groups = 64;
/// Largest repetition count in a `pattern` (RE2's own bound).
inline constexpr int max_pattern_repeat = 1000;
/// What one compiled pattern may use: its program and its matcher's state
/// cache. A pattern whose program does not fit is refused; a matcher that
/// fills its cache goes on more slowly, never with more memory.
inline constexpr std::int64_t max_pattern_memory = 2 << 20;

/// The RE2 form of the ECMA-262 pattern `ecma`; on a construct RE2 cannot
/// run, empty with `problem` saying which.
std::string translate_pattern(std::string_view ecma, std::string& problem);

/// A compiled pattern. Matching is const and safe from any number of
/// threads.
class pattern {
public:
  /// Compiles `source`; when it cannot be used, `usable()` is false and
  /// `problem()` says why ("uses a back-reference, ...").
  explicit pattern(std::string source);
  ~pattern();
  pattern(pattern&&) noexcept;
  pattern& operator=(pattern&&) noexcept;

  bool usable() const noexcept { return re_ != nullptr; }
  const std::string& problem() const noexcept { return problem_; }
  /// The pattern as the schema wrote it.
  const std::string& source() const noexcept { return source_; }

  /// Whether the pattern matches anywhere in the UTF-8 text `s` (anchors
  /// `^` and `$` keep their meaning).
  bool search(std::string_view s) const;

private:
  std::string source_;
  std::string problem_;
  std::unique_ptr<re2::RE2> re_;
};

} // namespace bulwark::schema
