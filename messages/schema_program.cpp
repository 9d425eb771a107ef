#include "messages/schema_program.hpp"

#include <cfloat>
#include <cmath>

namespace bulwark::schema {

using json::kind;

namespace {

/// Longest instance value quoted in an error message.
constexpr std::size_t max_shown = 80;

} // namespace

// -- text --------------------------------------------------------------------

std::size_t code_points(std::string_view s) noexcept {
  std::size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

void append_name(std::string& path, std::string_view name) {
  path.push_back('/');
  for (char c : name) {
    if (c == '~')
      path.append("~0");
    else if (c == '/')
      path.append("~1");
    else
      path.push_back(c);
  }
}

void append_index(std::string& path, std::size_t i) {
  path.push_back('/');
  path.append(std::to_string(i));
}

/// Compact JSON of `v`, shortened for messages.
std::string shown(const json::value& v) {
  auto text = json::dump(v);
  if (text.size() > max_shown) {
    std::size_t cut = max_shown;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
      --cut; // do not split a character
    text.resize(cut);
    text.append("...");
  }
  return text;
}

std::string counted(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// -- numbers -----------------------------------------------------------------

bool integral(const json::value& v) noexcept {
  if (v.is_integer())
    return true;
  if (v.type() != kind::number)
    return false;
  double d = v.as_double();
  return std::isfinite(d) && std::floor(d) == d;
}

/// -1, 0 or 1; integers compare exactly.
int compare(const json::value& a, const json::value& b) noexcept {
  if (a.is_integer() && b.is_integer()) {
    auto x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  double x = a.as_double(), y = b.as_double();
  return x < y ? -1 : x > y ? 1 : 0;
}

/// Whether `x` is a multiple of `m` (> 0). Integers divide exactly; for
/// other numbers a remainder within two units in the last place of `x` is
/// rounding noise (0.3 is a multiple of 0.1).
bool multiple_of(const json::value& x, const json::value& m) noexcept {
  if (x.is_integer() && m.is_integer())
    return x.as_int() % m.as_int() == 0;
  double a = std::fabs(x.as_double()), b = m.as_double();
  if (!std::isfinite(a) || !std::isfinite(b))
    return false;
  double r = std::fmod(a, b);
  double noise = 2 * DBL_EPSILON * std::max(a, b);
  return r <= noise || b - r <= noise;
}

// -- types -------------------------------------------------------------------

uint8_t type_bit_of(std::string_view name) noexcept {
  if (name == "null")
    return t_null;
  if (name == "boolean")
    return t_boolean;
  if (name == "integer")
    return t_integer;
  if (name == "number")
    return t_number;
  if (name == "string")
    return t_string;
  if (name == "array")
    return t_array;
  if (name == "object")
    return t_object;
  return 0;
}

bool has_type(uint8_t mask, const json::value& v) noexcept {
  switch (v.type()) {
    case kind::null:
      return mask & t_null;
    case kind::boolean:
      return mask & t_boolean;
    case kind::integer:
      return mask & (t_integer | t_number);
    case kind::number:
      return (mask & t_number) || ((mask & t_integer) && integral(v));
    case kind::string:
      return mask & t_string;
    case kind::array:
      return mask & t_array;
    case kind::object:
      return mask & t_object;
  }
  return false;
}

/// "must be a string or null, got 42".
std::string type_message(uint8_t mask, const json::value& v) {
  static constexpr std::pair<uint8_t, const char*> names[] = {
    {t_object, "an object"},   {t_array, "an array"},    {t_string, "a string"}, {t_number, "a number"},
    {t_integer, "an integer"}, {t_boolean, "a boolean"}, {t_null, "null"},
  };
  std::vector<const char*> wanted;
  for (auto& [bit, name] : names)
    if ((mask & bit) && !(bit == t_integer && (mask & t_number)))
      wanted.push_back(name);
  std::string msg = "must be ";
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    if (i > 0)
      msg.append(i + 1 == wanted.size() ? " or " : ", ");
    msg.append(wanted[i]);
  }
  msg.append(", got ");
  switch (v.type()) {
    case kind::string:
      msg.append("a string");
      break;
    case kind::array:
      msg.append("an array");
      break;
    case kind::object:
      msg.append("an object");
      break;
    default:
      msg.append(shown(v)); // null, true, 3.5
  }
  return msg;
}

} // namespace bulwark::schema
