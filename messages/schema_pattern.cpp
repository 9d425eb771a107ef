#include "messages/schema_pattern.hpp"

#include <cstdint>
#include <cstdio>

#include <re2/re2.h>

namespace bulwark::schema {

namespace {

/// ECMA-262 white space and line terminators, as class members.
constexpr std::string_view ecma_space =
  "\\t\\n\\v\\f\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}";
/// ECMA-262 `.`: anything but a line terminator.
constexpr std::string_view ecma_dot = "[^\\n\\r\\x{2028}\\x{2029}]";

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string code_point(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\x{%x}", cp);
  return buf;
}

class translator {
public:
  explicit translator(std::string_view p) : p_(p) {}

  /// The RE2 pattern; empty with `problem` set on a refusal.
  std::string run(std::string& problem) {
    while (ok() && i_ < p_.size())
      top();
    if (ok() && depth_ > 0)
      refuse("is not a valid regular expression (missing ))");
    problem = problem_;
    return ok() ? out_ : std::string();
  }

private:
  bool ok() const { return problem_.empty(); }
  void refuse(std::string why) {
    if (ok())
      problem_ = std::move(why);
  }
  bool at(std::string_view s) const { return p_.substr(i_, s.size()) == s; }

  /// One piece of the pattern outside a class.
  void top() {
    char c = p_[i_];
    switch (c) {
      case '\\':
        ++i_;
        escape(false);
        return;
      case '[':
        ++i_;
        char_class();
        return;
      case '(':
        group();
        return;
      case ')':
        ++i_;
        --depth_; // one too many is RE2's syntax error
        out_ += ')';
        return;
      case '.':
        ++i_;
        out_ += ecma_dot;
        return;
      case '{':
        repetition();
        return;
      case '}':
      case ']':
        ++i_;
        out_ += '\\';
        out_ += c;
        return;
      default:
        ++i_;
        out_ += c; // UTF-8 bytes and operators alike
    }
  }

  void group() {
    ++i_;
    if (++depth_ > max_pattern_groups)
      return refuse("nests groups more than " + std::to_string(max_pattern_groups) + " deep");
    if (i_ >= p_.size() || p_[i_] != '?') {
      out_ += '(';
      return;
    }
    if (at("?:")) {
      i_ += 2;
      out_ += "(?:";
    } else if (at("?=") || at("?!")) {
      refuse("uses a lookahead, which Bulwark's regular expression engine (RE2) does not run");
    } else if (at("?<=") || at("?<!")) {
      refuse("uses a lookbehind, which Bulwark's regular expression engine (RE2) does not run");
    } else if (at("?<")) {
      i_ += 2;
      out_ += "(?P<";
    } else {
      refuse("is not a valid regular expression (unknown group kind '(?')");
    }
  }

  /// `{n}`, `{n,}` or `{n,m}`; a brace that starts none is refused.
  void repetition() {
    std::size_t j = i_ + 1;
    auto number = [&](long& n) {
      std::size_t start = j;
      n = 0;
      while (j < p_.size() && is_digit(p_[j])) {
        n = std::min<long>(n * 10 + (p_[j] - '0'), 1L << 40);
        ++j;
      }
      return j > start;
    };
    long low = 0, high = 0;
    bool good = number(low);
    high = low;
    if (good && j < p_.size() && p_[j] == ',') {
      ++j;
      if (!number(high))
        high = low;
    }
    if (!good || j >= p_.size() || p_[j] != '}')
      return refuse("has a '{' that starts no repetition count (write \\{ for the character)");
    if (low > max_pattern_repeat || high > max_pattern_repeat)
      return refuse("repeats more than " + std::to_string(max_pattern_repeat) + " times");
    out_.append(p_.substr(i_, j + 1 - i_));
    i_ = j + 1;
  }

  /// The escape after a backslash, inside a class or not.
  void escape(bool in_class) {
    if (i_ >= p_.size())
      return refuse("is not a valid regular expression (it ends with a backslash)");
    char c = p_[i_++];
    switch (c) {
      case 'd':
      case 'D':
      case 'w':
      case 'W':
      case 'f':
      case 'n':
      case 'r':
      case 't':
      case 'v':
        out_ += '\\';
        out_ += c;
        return;
      case 's':
        out_ += in_class ? std::string(ecma_space) : "[" + std::string(ecma_space) + "]";
        return;
      case 'S':
        out_ += in_class ? std::string("\\S") : "[^" + std::string(ecma_space) + "]";
        return;
      case 'b':
        out_ += in_class ? "\\x08" : "\\b";
        return;
      case 'B':
        if (in_class)
          return refuse("is not a valid regular expression (\\B in a class)");
        out_ += "\\B";
        return;
      case '0':
        if (i_ < p_.size() && is_digit(p_[i_]))
          return refuse("uses an octal escape, which Bulwark does not run");
        out_ += "\\x00";
        return;
      case 'k':
        if (i_ < p_.size() && p_[i_] == '<')
          return refuse("uses a back-reference, which Bulwark does not run (it can take exponential time)");
        out_ += 'k';
        return;
      case 'c':
        if (i_ < p_.size() && ((p_[i_] >= 'a' && p_[i_] <= 'z') || (p_[i_] >= 'A' && p_[i_] <= 'Z'))) {
          out_ += code_point(static_cast<uint32_t>(p_[i_++]) % 32);
          return;
        }
        out_ += "\\\\c"; // a backslash and a c
        return;
      case 'x':
        if (i_ + 1 < p_.size() && is_hex(p_[i_]) && is_hex(p_[i_ + 1])) {
          out_ += code_point(static_cast<uint32_t>(std::stoul(std::string(p_.substr(i_, 2)), nullptr, 16)));
          i_ += 2;
          return;
        }
        out_ += 'x';
        return;
      case 'u':
        unicode_escape();
        return;
      case 'p':
      case 'P':
        if (i_ < p_.size() && p_[i_] == '{') {
          auto close = p_.find('}', i_);
          if (close == std::string_view::npos)
            return refuse("is not a valid regular expression (unterminated \\p{)");
          out_ += '\\';
          out_ += c;
          out_.append(p_.substr(i_, close + 1 - i_));
          i_ = close + 1;
          return;
        }
        out_ += c;
        return;
      default:
        if (is_digit(c))
          return refuse(in_class ? "uses an octal escape, which Bulwark does not run"
                                 : "uses a back-reference, which Bulwark does not run (it can take exponential time)");
        if (is_alnum(c) || static_cast<unsigned char>(c) >= 0x80) {
          out_ += c; // an identity escape: the character itself
          return;
        }
        out_ += '\\';
        out_ += c;
    }
  }

  /// After `\u`: XXXX (a surrogate pair joined), {X...}, or a plain `u`.
  void unicode_escape() {
    auto four = [&](std::size_t at, uint32_t& v) {
      if (at + 4 > p_.size())
        return false;
      for (std::size_t k = 0; k < 4; ++k)
        if (!is_hex(p_[at + k]))
          return false;
      v = static_cast<uint32_t>(std::stoul(std::string(p_.substr(at, 4)), nullptr, 16));
      return true;
    };
    uint32_t cp = 0;
    if (four(i_, cp)) {
      i_ += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t low = 0;
        if (p_.substr(i_, 2) == "\\u" && four(i_ + 2, low) && low >= 0xDC00 && low <= 0xDFFF) {
          i_ += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
      }
      if (cp >= 0xD800 && cp <= 0xDFFF)
        return refuse("names a lone surrogate, which no UTF-8 text holds");
      out_ += code_point(cp);
      return;
    }
    if (i_ < p_.size() && p_[i_] == '{') {
      std::size_t j = i_ + 1;
      while (j < p_.size() && is_hex(p_[j]) && j - i_ <= 6)
        ++j;
      if (j > i_ + 1 && j < p_.size() && p_[j] == '}') {
        cp = static_cast<uint32_t>(std::stoul(std::string(p_.substr(i_ + 1, j - i_ - 1)), nullptr, 16));
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
          return refuse("is not a valid regular expression (\\u{" + std::string(p_.substr(i_ + 1, j - i_ - 1))
                        + "} is no character)");
        i_ = j + 1;
        out_ += code_point(cp);
        return;
      }
    }
    out_ += 'u';
  }

  /// After `[`: up to and including the closing `]`.
  void char_class() {
    bool negated = i_ < p_.size() && p_[i_] == '^';
    if (negated)
      ++i_;
    if (i_ < p_.size() && p_[i_] == ']') {
      // `[]` matches nothing, `[^]` any character.
      ++i_;
      out_ += negated ? "[\\x{0}-\\x{10ffff}]" : "[^\\x{0}-\\x{10ffff}]";
      return;
    }
    out_ += negated ? "[^" : "[";
    while (ok() && i_ < p_.size() && p_[i_] != ']') {
      char c = p_[i_++];
      if (c == '\\')
        escape(true);
      else if (c == '[')
        out_ += "\\["; // not the start of a POSIX class, as RE2 would read `[:`
      else
        out_ += c;
    }
    if (!ok())
      return;
    if (i_ >= p_.size())
      return refuse("is not a valid regular expression (missing ])");
    ++i_;
    out_ += ']';
  }

  std::string_view p_;
  std::size_t i_ = 0;
  int depth_ = 0;
  std::string out_;
  std::string problem_;
};

/// RE2's complaint in words that do not quote the translated pattern.
std::string syntax_error(RE2::ErrorCode code) {
  switch (code) {
    case RE2::ErrorBadEscape:
      return "a bad escape sequence";
    case RE2::ErrorBadCharClass:
    case RE2::ErrorBadCharRange:
      return "a bad character class";
    case RE2::ErrorMissingBracket:
      return "missing ]";
    case RE2::ErrorMissingParen:
      return "missing )";
    case RE2::ErrorUnexpectedParen:
      return "unexpected )";
    case RE2::ErrorTrailingBackslash:
      return "it ends with a backslash";
    case RE2::ErrorRepeatArgument:
      return "nothing to repeat";
    case RE2::ErrorRepeatSize:
      return "a bad repetition count: a minimum over its maximum, or nested counts multiplying beyond "
             + std::to_string(max_pattern_repeat);
    case RE2::ErrorRepeatOp:
      return "a bad repetition operator";
    case RE2::ErrorBadUTF8:
      return "invalid UTF-8";
    case RE2::ErrorBadNamedCapture:
      return "a bad group name";
    default:
      return "rejected by RE2";
  }
}

} // namespace

std::string translate_pattern(std::string_view ecma, std::string& problem) {
  return translator(ecma).run(problem);
}

pattern::pattern(std::string source) : source_(std::move(source)) {
  auto translated = translate_pattern(source_, problem_);
  if (!problem_.empty())
    return;
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingUTF8);
  o.set_log_errors(false);
  o.set_max_mem(max_pattern_memory);
  o.set_never_capture(true); // only whether it matches
  auto re = std::make_unique<RE2>(translated, o);
  if (!re->ok()) {
    problem_ =
      re->error_code() == RE2::ErrorPatternTooLarge
        ? "is too complex (its matcher would need more than " + std::to_string(max_pattern_memory >> 20) + " MiB)"
        : "is not a valid regular expression (" + syntax_error(re->error_code()) + ")";
    return;
  }
  re_ = std::move(re);
}

pattern::~pattern() = default;
pattern::pattern(pattern&&) noexcept = default;
pattern& pattern::operator=(pattern&&) noexcept = default;

bool pattern::search(std::string_view s) const {
  return re_ && re_->Match(re2::StringPiece(s.data(), s.size()), 0, s.size(), RE2::UNANCHORED, nullptr, 0);
}

} // namespace bulwark::schema
