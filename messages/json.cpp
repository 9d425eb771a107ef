#include "messages/json.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include <simdjson.h>

namespace bulwark::json {

namespace {

const std::string empty_string;
const array empty_array;
const object empty_object;
const value null_value;

} // namespace

// -- value -------------------------------------------------------------------

value::value(unsigned long i) noexcept : value(static_cast<unsigned long long>(i)) {}

value::value(unsigned long long i) noexcept {
  if (i <= static_cast<unsigned long long>(std::numeric_limits<int64_t>::max())) {
    kind_ = kind::integer;
    u_.i = static_cast<int64_t>(i);
  } else {
    kind_ = kind::number;
    u_.d = static_cast<double>(i);
  }
}

value::value(array a) : kind_(kind::array), a_(std::make_unique<array>(std::move(a))) {}

value::value(object o) : kind_(kind::object), o_(std::make_unique<object>(std::move(o))) {}

value::value(const value& other) : kind_(other.kind_), u_(other.u_), s_(other.s_) {
  if (other.a_)
    a_ = std::make_unique<array>(*other.a_);
  if (other.o_)
    o_ = std::make_unique<object>(*other.o_);
}

value& value::operator=(const value& other) {
  if (this != &other) {
    value tmp(other);
    *this = std::move(tmp);
  }
  return *this;
}

value value::make_object(std::initializer_list<std::pair<std::string, value>> members) {
  object o;
  o.reserve(members.size());
  for (auto& m : members)
    o.emplace_back(m.first, m.second);
  return value(std::move(o));
}

value value::make_array(std::initializer_list<value> items) {
  return value(array(items));
}

int64_t value::as_int() const noexcept {
  if (kind_ == kind::integer)
    return u_.i;
  if (kind_ == kind::number && std::isfinite(u_.d))
    return static_cast<int64_t>(u_.d);
  return 0;
}

double value::as_double() const noexcept {
  if (kind_ == kind::integer)
    return static_cast<double>(u_.i);
  if (kind_ == kind::number)
    return u_.d;
  return 0.0;
}

const std::string& value::as_string() const noexcept {
  return kind_ == kind::string ? s_ : empty_string;
}

const array& value::as_array() const noexcept {
  return kind_ == kind::array ? *a_ : empty_array;
}

const object& value::as_object() const noexcept {
  return kind_ == kind::object ? *o_ : empty_object;
}

array& value::mutable_array() {
  if (kind_ != kind::array) {
    *this = value(array{});
  }
  return *a_;
}

object& value::mutable_object() {
  if (kind_ != kind::object) {
    *this = value(object{});
  }
  return *o_;
}

const value* value::find(std::string_view key) const noexcept {
  if (kind_ != kind::object)
    return nullptr;
  for (auto& [k, v] : *o_)
    if (k == key)
      return &v;
  return nullptr;
}

value* value::find(std::string_view key) noexcept {
  if (kind_ != kind::object)
    return nullptr;
  for (auto& [k, v] : *o_)
    if (k == key)
      return &v;
  return nullptr;
}

const value& value::operator[](std::string_view key) const noexcept {
  auto* v = find(key);
  return v ? *v : null_value;
}

value& value::set(std::string key, value v) {
  auto& o = mutable_object();
  for (auto& [k, existing] : o) {
    if (k == key) {
      existing = std::move(v);
      return existing;
    }
  }
  o.emplace_back(std::move(key), std::move(v));
  return o.back().second;
}

value& value::push_back(value v) {
  auto& a = mutable_array();
  a.push_back(std::move(v));
  return a.back();
}

bool value::erase(std::string_view key) {
  if (kind_ != kind::object)
    return false;
  for (auto i = o_->begin(); i != o_->end(); ++i) {
    if (i->first == key) {
      o_->erase(i);
      return true;
    }
  }
  return false;
}

std::size_t value::size() const noexcept {
  switch (kind_) {
    case kind::array:
      return a_->size();
    case kind::object:
      return o_->size();
    case kind::string:
      return s_.size();
    default:
      return 0;
  }
}

bool operator==(const value& a, const value& b) noexcept {
  if (a.is_number() && b.is_number()) {
    if (a.is_integer() && b.is_integer())
      return a.u_.i == b.u_.i;
    return a.as_double() == b.as_double();
  }
  if (a.kind_ != b.kind_)
    return false;
  switch (a.kind_) {
    case kind::null:
      return true;
    case kind::boolean:
      return a.u_.b == b.u_.b;
    case kind::string:
      return a.s_ == b.s_;
    case kind::array:
      return *a.a_ == *b.a_;
    case kind::object: {
      // Member order does not matter for equality.
      if (a.o_->size() != b.o_->size())
        return false;
      for (auto& [k, v] : *a.o_) {
        auto* other = b.find(k);
        if (!other || !(*other == v))
          return false;
      }
      return true;
    }
    default:
      return false;
  }
}

// -- parsing -----------------------------------------------------------------

namespace {

namespace od = simdjson::ondemand;

/// Objects up to this many members look for a repeated name by a linear scan.
constexpr std::size_t small_object = 16;

struct converter {
  int max_depth;
  parse_error& err;

  bool fail(const char* what, simdjson::error_code code) {
    err.message = std::string(what) + ": " + simdjson::error_message(code);
    return false;
  }

  template <class V>
  bool convert(V&& in, value& out, int depth) {
    if (depth > max_depth) {
      err.message = "nesting deeper than " + std::to_string(max_depth) + " levels";
      return false;
    }
    od::json_type t;
    if (auto code = in.type().get(t))
      return fail("invalid JSON", code);
    switch (t) {
      case od::json_type::null: {
        bool is_null = false;
        if (auto code = in.is_null().get(is_null); code || !is_null)
          return fail("invalid literal", code ? code : simdjson::INCORRECT_TYPE);
        out = value();
        return true;
      }
      case od::json_type::boolean: {
        bool b;
        if (auto code = in.get_bool().get(b))
          return fail("invalid literal", code);
        out = value(b);
        return true;
      }
      case od::json_type::number: {
        od::number n;
        if (auto code = in.get_number().get(n)) {
          // An integer beyond 64 bits is valid JSON (and what our writer
          // makes of a large integral double): read it as a double.
          double d;
          if (in.get_double().get(d))
            return fail("invalid number", code);
          out = value(d);
          return true;
        }
        switch (n.get_number_type()) {
          case od::number_type::signed_integer:
            out = value(static_cast<long long>(n.get_int64()));
            break;
          case od::number_type::unsigned_integer:
            out = value(static_cast<unsigned long long>(n.get_uint64()));
            break;
          default:
            out = value(n.get_double());
        }
        return true;
      }
      case od::json_type::string: {
        std::string_view s;
        if (auto code = in.get_string().get(s))
          return fail("invalid string", code);
        out = value(std::string(s));
        return true;
      }
      case od::json_type::array: {
        od::array arr;
        if (auto code = in.get_array().get(arr))
          return fail("invalid array", code);
        array items;
        for (auto element : arr) {
          od::value child;
          if (auto code = element.get(child))
            return fail("invalid array element", code);
          items.emplace_back();
          if (!convert(child, items.back(), depth + 1))
            return false;
        }
        out = value(std::move(items));
        return true;
      }
      case od::json_type::object: {
        od::object obj;
        if (auto code = in.get_object().get(obj))
          return fail("invalid object", code);
        object members;
        // A repeated name keeps its first position and takes its last value,
        // as JavaScript's JSON.parse does: what Bulwark checks (schemas,
        // policies, mirrored headers) is then what a service behind it reads.
        // Objects beyond a few members find repeats through an index.
        std::unordered_map<std::string, std::size_t> index;
        for (auto field : obj) {
          std::string_view key;
          if (auto code = field.unescaped_key().get(key))
            return fail("invalid object key", code);
          std::size_t slot = members.size();
          if (members.size() < small_object) {
            for (std::size_t i = 0; i < members.size(); ++i)
              if (members[i].first == key) {
                slot = i;
                break;
              }
          } else {
            if (index.empty())
              for (std::size_t i = 0; i < members.size(); ++i)
                index.emplace(members[i].first, i);
            slot = index.emplace(std::string(key), members.size()).first->second;
          }
          if (slot == members.size())
            members.emplace_back(std::string(key), value());
          od::value child;
          if (auto code = field.value().get(child))
            return fail("invalid object member", code);
          if (!convert(child, members[slot].second, depth + 1))
            return false;
        }
        out = value(std::move(members));
        return true;
      }
    }
    err.message = "invalid JSON";
    return false;
  }
};

thread_local od::parser tl_parser;

} // namespace

std::size_t padding() noexcept {
  return simdjson::SIMDJSON_PADDING;
}

bool parse_padded(std::string_view text, value& out, parse_error& err, int max_depth) {
  od::document doc;
  auto code = tl_parser.iterate(text.data(), text.size(), text.size() + simdjson::SIMDJSON_PADDING).get(doc);
  if (code) {
    err.message = std::string("invalid JSON: ") + simdjson::error_message(code);
    return false;
  }
  // Scalars at the top level need the document's own accessors.
  od::json_type t;
  if (auto c = doc.type().get(t)) {
    err.message = std::string("invalid JSON: ") + simdjson::error_message(c);
    return false;
  }
  converter conv{max_depth, err};
  if (t == od::json_type::object || t == od::json_type::array) {
    od::value root;
    if (auto c = doc.get_value().get(root)) {
      err.message = std::string("invalid JSON: ") + simdjson::error_message(c);
      return false;
    }
    if (!conv.convert(root, out, 1))
      return false;
  } else if (!conv.convert(doc, out, 1)) {
    return false;
  }
  // current_location() fails with OUT_OF_BOUNDS once the input is consumed.
  const char* rest = nullptr;
  if (doc.current_location().get(rest) == simdjson::SUCCESS) {
    err.message = "invalid JSON: trailing content after the value";
    return false;
  }
  return true;
}

bool parse(std::string_view text, value& out, parse_error& err, int max_depth) {
  simdjson::padded_string padded(text);
  return parse_padded(std::string_view(padded.data(), text.size()), out, err, max_depth);
}

// -- writing -----------------------------------------------------------------

namespace {

/// Length of the well-formed UTF-8 sequence at `p` (RFC 3629: no overlong
/// forms, no surrogates, at most U+10FFFF), or 0.
std::size_t utf8_sequence(const char* p, const char* end) noexcept {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(p[i]); };
  auto avail = static_cast<std::size_t>(end - p);
  auto cont = [&](std::size_t i) { return i < avail && (byte(i) & 0xC0) == 0x80; };
  unsigned char c = byte(0);
  if (c >= 0xC2 && c <= 0xDF)
    return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2))
      return 0;
    if ((c == 0xE0 && byte(1) < 0xA0) || (c == 0xED && byte(1) >= 0xA0))
      return 0; // overlong, or a surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3))
      return 0;
    if ((c == 0xF0 && byte(1) < 0x90) || (c == 0xF4 && byte(1) >= 0x90))
      return 0; // overlong, or beyond U+10FFFF
    return 4;
  }
  return 0;
}

/// "00" to "99".
constexpr auto digit_pairs = [] {
  std::array<char, 200> pairs{};
  for (int i = 0; i < 100; ++i) {
    pairs[2 * i] = static_cast<char>('0' + i / 10);
    pairs[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return pairs;
}();

/// Writes `v` (below 10^8) as exactly 8 digits.
char* eight_digits(char* p, uint32_t v) noexcept {
  uint32_t hi = v / 10000;
  uint32_t lo = v % 10000;
  std::memcpy(p, &digit_pairs[2 * (hi / 100)], 2);
  std::memcpy(p + 2, &digit_pairs[2 * (hi % 100)], 2);
  std::memcpy(p + 4, &digit_pairs[2 * (lo / 100)], 2);
  std::memcpy(p + 6, &digit_pairs[2 * (lo % 100)], 2);
  return p + 8;
}

/// Whether any of the 8 bytes at `p` needs escaping or checking in a JSON
/// string: below 0x20, 0x7f and above, '"' or '\\'. (Each test finds
/// whether some byte matches, exactly; which one does not matter here.)
bool needs_care(const char* p) noexcept {
  constexpr uint64_t ones = 0x0101010101010101ULL;
  constexpr uint64_t highs = 0x8080808080808080ULL;
  uint64_t v;
  std::memcpy(&v, p, 8);
  auto has_zero = [](uint64_t x) { return (x - ones) & ~x & highs; };
  uint64_t control = (v - 0x20 * ones) & ~v & highs;
  uint64_t high = (v | (v + ones)) & highs; // 0x7f becomes 0x80
  return (control | high | has_zero(v ^ ('"' * ones)) | has_zero(v ^ ('\\' * ones))) != 0;
}

} // namespace

void raw_writer::number(int64_t n) noexcept {
  // Times in nanoseconds have 19 digits: written 8 at a time with 32-bit
  // arithmetic, the head (and anything short) by to_chars.
  if (n < 100000000) {
    p_ = std::to_chars(p_, p_ + 20, n).ptr;
    return;
  }
  auto u = static_cast<uint64_t>(n);
  auto low = static_cast<uint32_t>(u % 100000000);
  u /= 100000000;
  if (u < 100000000) {
    p_ = std::to_chars(p_, p_ + 8, static_cast<uint32_t>(u)).ptr;
  } else {
    p_ = std::to_chars(p_, p_ + 4, static_cast<uint32_t>(u / 100000000)).ptr;
    p_ = eight_digits(p_, static_cast<uint32_t>(u % 100000000));
  }
  p_ = eight_digits(p_, low);
}

void raw_writer::string(std::string_view s) {
  // Printable ASCII without quotes or backslashes (names, ids, addresses:
  // nearly everything) is copied as it is; checked 8 bytes at a time.
  // The last bytes are checked as the eight that end the text, or, in a
  // text shorter than that, padded with spaces (which need no care).
  bool plain = true;
  std::size_t i = 0;
  for (; plain && i + 8 <= s.size(); i += 8)
    plain = !needs_care(s.data() + i);
  if (plain && i < s.size()) {
    if (s.size() >= 8) {
      plain = !needs_care(s.data() + s.size() - 8);
    } else {
      char padded[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
      for (std::size_t k = 0; k < s.size(); ++k)
        padded[k] = s[k];
      plain = !needs_care(padded);
    }
  }
  if (plain) {
    ch('"');
    bytes(s);
    ch('"');
    return;
  }
  thread_local std::string escaped;
  escaped.clear();
  write_string(escaped, s);
  bytes(escaped);
}

void write_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  const char* run = s.data();
  const char* end = s.data() + s.size();
  for (const char* p = run; p != end; ++p) {
    auto c = static_cast<unsigned char>(*p);
    if (c >= 0x80) {
      // Text from outside JSON (headers, a service's stderr) may not be
      // UTF-8; a byte that does not start a valid sequence becomes U+FFFD,
      // so that what we write is always JSON.
      if (auto n = utf8_sequence(p, end)) {
        p += n - 1;
        continue;
      }
      out.append(run, p);
      run = p + 1;
      out.append("\\ufffd");
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(run, p);
    run = p + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default: {
        char buf[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(buf, 6);
      }
    }
  }
  out.append(run, end);
  out.push_back('"');
}

void write(std::string& out, const value& v) {
  switch (v.type()) {
    case kind::null:
      out.append("null");
      return;
    case kind::boolean:
      out.append(v.as_bool() ? "true" : "false");
      return;
    case kind::integer: {
      char buf[24];
      auto res = std::to_chars(buf, buf + sizeof buf, v.as_int());
      out.append(buf, res.ptr);
      return;
    }
    case kind::number: {
      double d = v.as_double();
      if (!std::isfinite(d)) {
        out.append("null");
        return;
      }
      if (d == 0 && std::signbit(d)) {
        // "-0" would read back as the integer 0.
        out.append("-0.0");
        return;
      }
      char buf[32];
      auto res = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, res.ptr);
      return;
    }
    case kind::string:
      write_string(out, v.as_string());
      return;
    case kind::array: {
      out.push_back('[');
      bool first = true;
      for (auto& item : v.as_array()) {
        if (!first)
          out.push_back(',');
        first = false;
        write(out, item);
      }
      out.push_back(']');
      return;
    }
    case kind::object: {
      out.push_back('{');
      bool first = true;
      for (auto& [k, item] : v.as_object()) {
        if (!first)
          out.push_back(',');
        first = false;
        write_string(out, k);
        out.push_back(':');
        write(out, item);
      }
      out.push_back('}');
      return;
    }
  }
}

std::string dump(const value& v) {
  std::string out;
  write(out, v);
  return out;
}

} // namespace bulwark::json
