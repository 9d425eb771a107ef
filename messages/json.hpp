// A small JSON document model for Bulwark: values parsed by simdjson (On
// Demand) and written by our own escape-correct writer.
//
// Objects keep their members in insertion order, so tool schemas and results
// travel through Bulwark unchanged.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulwark::json {

class value;

/// An ordered list of members; lookups are linear, which beats hashing for
/// the small objects that MCP messages consist of.
using object = std::vector<std::pair<std::string, value>>;
using array = std::vector<value>;

enum class kind : uint8_t { null, boolean, integer, number, string, array, object };

class value {
public:
  // -- construction ----------------------------------------------------------

  value() noexcept : kind_(kind::null) {}
  value(std::nullptr_t) noexcept : kind_(kind::null) {}
  value(bool b) noexcept : kind_(kind::boolean) { u_.b = b; }
  value(int i) noexcept : kind_(kind::integer) { u_.i = i; }
  value(long i) noexcept : kind_(kind::integer) { u_.i = i; }
  value(long long i) noexcept : kind_(kind::integer) { u_.i = i; }
  value(unsigned i) noexcept : kind_(kind::integer) { u_.i = i; }
  value(unsigned long i) noexcept;
  value(unsigned long long i) noexcept;
  value(double d) noexcept : kind_(kind::number) { u_.d = d; }
  value(const char* s) : kind_(kind::string), s_(s) {}
  value(std::string s) noexcept : kind_(kind::string), s_(std::move(s)) {}
  value(std::string_view s) : kind_(kind::string), s_(s) {}
  value(array a);
  value(object o);

  value(const value& other);
  value(value&& other) noexcept = default;
  value& operator=(const value& other);
  value& operator=(value&& other) noexcept = default;
  ~value() = default;

  /// Builds an object from `{key, value}` pairs.
  static value make_object(std::initializer_list<std::pair<std::string, value>> members = {});
  static value make_array(std::initializer_list<value> items = {});

  // -- inspection ------------------------------------------------------------

  kind type() const noexcept { return kind_; }
  bool is_null() const noexcept { return kind_ == kind::null; }
  bool is_bool() const noexcept { return kind_ == kind::boolean; }
  bool is_integer() const noexcept { return kind_ == kind::integer; }
  bool is_number() const noexcept { return kind_ == kind::integer || kind_ == kind::number; }
  bool is_string() const noexcept { return kind_ == kind::string; }
  bool is_array() const noexcept { return kind_ == kind::array; }
  bool is_object() const noexcept { return kind_ == kind::object; }

  bool as_bool() const noexcept { return kind_ == kind::boolean && u_.b; }
  int64_t as_int() const noexcept;
  double as_double() const noexcept;
  /// The string, or an empty one for any other kind.
  const std::string& as_string() const noexcept;
  const array& as_array() const noexcept;
  const object& as_object() const noexcept;
  array& mutable_array();
  object& mutable_object();

  /// Member lookup; nullptr when this is not an object or has no such key.
  const value* find(std::string_view key) const noexcept;
  value* find(std::string_view key) noexcept;
  /// Member lookup that yields a shared null value when absent.
  const value& operator[](std::string_view key) const noexcept;
  /// Sets (or replaces) a member; turns a null into an object first.
  value& set(std::string key, value v);
  /// Appends to an array; turns a null into an array first.
  value& push_back(value v);
  bool erase(std::string_view key);
  std::size_t size() const noexcept;

  friend bool operator==(const value& a, const value& b) noexcept;
  friend bool operator!=(const value& a, const value& b) noexcept { return !(a == b); }

private:
  kind kind_;
  union {
    bool b;
    int64_t i;
    double d;
  } u_{};
  std::string s_;
  // Arrays and objects live behind one pointer to keep scalars small.
  std::unique_ptr<array> a_;
  std::unique_ptr<object> o_;
};

// -- parsing -----------------------------------------------------------------

/// Why a parse failed.
struct parse_error {
  std::string message;
};

/// Parses `text` (any buffer; it is copied into padded storage when needed).
/// Returns false and fills `err` on malformed input or nesting deeper than
/// `max_depth`.
bool parse(std::string_view text, value& out, parse_error& err, int max_depth = 128);

/// Parses a buffer that already has simdjson's padding readable after
/// `text.size()` bytes (see `padding()`), avoiding a copy.
bool parse_padded(std::string_view text, value& out, parse_error& err, int max_depth = 128);

/// Bytes of readable padding simdjson needs after the input.
std::size_t padding() noexcept;

// -- writing -----------------------------------------------------------------

/// Appends the compact JSON text of `v` to `out`.
void write(std::string& out, const value& v);
/// Appends `s` as a quoted, escaped JSON string.
void write_string(std::string& out, std::string_view s);
/// Returns the compact JSON text of `v`.
std::string dump(const value& v);

/// Room `s` takes as a JSON string at most: quotes, and six bytes for each
/// escaped byte (`\u001f`, `\ufffd`).
constexpr std::size_t string_bound(std::string_view s) noexcept {
  return 2 + 6 * s.size();
}

/// Writes JSON text into room the caller reserved (a string resized to a
/// bound, `string_bound` for each string): for lines written on every
/// request (spans, access log lines), where a fixed piece costs a few
/// moves instead of a call into std::string per piece.
class raw_writer {
public:
  explicit raw_writer(char* at) noexcept : p_(at) {}

  /// A piece of JSON text known when compiling.
  template <std::size_t N>
  void lit(const char (&s)[N]) noexcept {
    std::memcpy(p_, s, N - 1);
    p_ += N - 1;
  }
  void ch(char c) noexcept { *p_++ = c; }
  /// Text that needs no escaping (ids, words of our own), as it is.
  void bytes(std::string_view s) noexcept {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  /// `n` bytes the caller writes itself (hex digits, say).
  char* take(std::size_t n) noexcept {
    auto at = p_;
    p_ += n;
    return at;
  }
  void number(int64_t n) noexcept;
  /// `s` as a quoted JSON string, escaped as write_string escapes it.
  void string(std::string_view s);
  char* at() const noexcept { return p_; }

private:
  char* p_;
};

} // namespace bulwark::json
