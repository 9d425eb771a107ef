#include "messages/schema.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <optional>
#include <regex>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "messages/text.hpp"

namespace bulwark::schema {

using json::kind;

namespace {

/// Deepest nesting of subschemas within one schema document.
constexpr int max_schema_depth = 128;
/// Deepest nesting of schema evaluations for one instance (a backstop under
/// `max_ref_depth`: each `$ref` may lead through many nested subschemas).
constexpr int max_eval_depth = 512;
/// Deepest group nesting in a `pattern`; the regex compiler recurses per
/// group and would overflow the stack on absurd nesting.
constexpr int max_pattern_groups = 64;
/// Largest automaton a `pattern` may compile to (estimated); the matcher
/// follows chains of states recursively.
constexpr double max_pattern_states = 20000;
/// Longest instance value quoted in an error message.
constexpr std::size_t max_shown = 80;
/// Most `enum` values listed in an error message.
constexpr std::size_t max_listed = 10;

// -- text --------------------------------------------------------------------

std::size_t code_points(std::string_view s) noexcept {
  std::size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

/// UTF-8 to code points, so that a pattern's `.` and classes see characters
/// rather than bytes. Malformed sequences become U+FFFD.
std::wstring widen(std::string_view s) {
  std::wstring out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(static_cast<wchar_t>(c));
      ++i;
      continue;
    }
    std::size_t extra = (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 0;
    uint32_t cp = c & (0x3F >> extra);
    bool good = extra > 0 && i + extra < s.size();
    for (std::size_t k = 1; good && k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      good = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!good || cp > 0x10FFFF) {
      out.push_back(static_cast<wchar_t>(0xFFFD));
      ++i;
      continue;
    }
    out.push_back(static_cast<wchar_t>(cp));
    i += extra + 1;
  }
  return out;
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

enum type_bit : uint8_t {
  t_null = 1,
  t_boolean = 2,
  t_integer = 4,
  t_number = 8,
  t_string = 16,
  t_array = 32,
  t_object = 64,
};

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

// -- equality for uniqueItems --------------------------------------------------

std::size_t mix(std::size_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

/// A hash that agrees with `json::value`'s equality: numbers hash by value
/// (1 and 1.0 alike), object members in any order.
std::size_t hash_of(const json::value& v) noexcept {
  switch (v.type()) {
    case kind::null:
      return 0x6e756c6cULL;
    case kind::boolean:
      return v.as_bool() ? 0x74727565ULL : 0x66616c73ULL;
    case kind::integer:
    case kind::number: {
      double d = v.as_double();
      if (d == 0)
        d = 0; // -0.0 equals 0.0
      return mix(std::hash<double>{}(d));
    }
    case kind::string:
      return std::hash<std::string>{}(v.as_string());
    case kind::array: {
      std::size_t h = 0x61727261ULL;
      for (auto& item : v.as_array())
        h = mix(h * 31 + hash_of(item));
      return h;
    }
    case kind::object: {
      std::size_t h = 0x6f626a65ULL;
      for (auto& [k, item] : v.as_object())
        h += mix(std::hash<std::string>{}(k) ^ (hash_of(item) * 0x9e3779b97f4a7c15ULL));
      return h;
    }
  }
  return 0;
}

/// The indices of two equal items, if any.
std::optional<std::pair<std::size_t, std::size_t>> find_duplicate(const json::array& a) {
  if (a.size() <= 16) {
    for (std::size_t i = 0; i < a.size(); ++i)
      for (std::size_t j = i + 1; j < a.size(); ++j)
        if (a[i] == a[j])
          return std::pair{i, j};
    return std::nullopt;
  }
  std::vector<std::pair<std::size_t, std::size_t>> keyed; // hash, index
  keyed.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    keyed.emplace_back(hash_of(a[i]), i);
  std::sort(keyed.begin(), keyed.end());
  for (std::size_t lo = 0; lo < keyed.size();) {
    std::size_t hi = lo + 1;
    while (hi < keyed.size() && keyed[hi].first == keyed[lo].first)
      ++hi;
    for (std::size_t i = lo; i < hi; ++i)
      for (std::size_t j = i + 1; j < hi; ++j)
        if (a[keyed[i].second] == a[keyed[j].second])
          return std::pair{keyed[i].second, keyed[j].second};
    lo = hi;
  }
  return std::nullopt;
}

// -- pattern cost ------------------------------------------------------------

/// An over-estimate of the automaton libstdc++ builds for an ECMAScript
/// pattern (it copies a repeated atom once per repetition), and the deepest
/// group nesting. Malformed patterns get some estimate; the regex compiler
/// rejects them afterwards.
struct pattern_cost {
  explicit pattern_cost(std::string_view p) : p(p) {
    while (i < p.size()) {
      states += alternation();
      ++i; // a stray ')'
    }
  }

  std::string_view p;
  std::size_t i = 0;
  int depth = 0;
  int deepest = 0;
  double states = 0;

private:
  double alternation() {
    double total = sequence();
    while (i < p.size() && p[i] == '|') {
      ++i;
      total += sequence() + 2;
    }
    return total;
  }

  double sequence() {
    double total = 0;
    while (i < p.size() && p[i] != '|' && p[i] != ')')
      total += quantified(atom());
    return total;
  }

  double atom() {
    char c = p[i++];
    if (c == '\\') {
      ++i;
      return 1;
    }
    if (c == '[') {
      while (i < p.size() && p[i] != ']')
        i += p[i] == '\\' ? 2 : 1;
      ++i;
      return 1;
    }
    if (c != '(')
      return 1;
    deepest = std::max(deepest, ++depth);
    if (depth > max_pattern_groups) {
      i = p.size(); // refused anyway
      return 0;
    }
    if (i < p.size() && p[i] == '?')
      i += 2; // (?: (?= (?!
    double inner = alternation() + 2;
    --depth;
    return inner;
  }

  double quantified(double atom) {
    if (i >= p.size())
      return atom;
    double times;
    if (p[i] == '*' || p[i] == '+' || p[i] == '?') {
      ++i;
      times = 1;
    } else if (p[i] == '{') {
      std::size_t j = i + 1;
      double low = 0, high = -1;
      while (j < p.size() && p[j] >= '0' && p[j] <= '9')
        low = std::min(low * 10 + (p[j++] - '0'), 1e9);
      if (j < p.size() && p[j] == ',') {
        ++j;
        if (j < p.size() && p[j] >= '0' && p[j] <= '9')
          high = 0;
        while (j < p.size() && p[j] >= '0' && p[j] <= '9')
          high = std::min(high * 10 + (p[j++] - '0'), 1e9);
      } else {
        high = low;
      }
      if (j >= p.size() || p[j] != '}' || j == i + 1)
        return atom; // a literal brace
      i = j + 1;
      times = std::max(low, high) + 1;
    } else {
      return atom;
    }
    if (i < p.size() && p[i] == '?')
      ++i; // lazy
    return atom * (times + 1) + 2;
  }
};

/// Whether `p` has a repetition count or a back-reference number of more
/// than nine digits (a run of digits right after `{`, `,` or `\`).
/// libstdc++'s regex compiler reads those into a `long` without checking for
/// overflow, which is undefined behaviour; no sensible pattern needs them.
bool oversized_count(std::string_view p) {
  for (std::size_t i = 0; i + 1 < p.size(); ++i) {
    if (p[i] != '{' && p[i] != ',' && p[i] != '\\')
      continue;
    std::size_t digits = 0;
    while (i + 1 + digits < p.size() && p[i + 1 + digits] >= '0' && p[i + 1 + digits] <= '9')
      ++digits;
    if (digits > 9)
      return true;
    if (p[i] == '\\')
      ++i; // an escaped '\', '{' or ',' starts nothing
  }
  return false;
}

} // namespace

// -- the compiled form ---------------------------------------------------------

struct validator::program {
  /// A compiled `pattern`.
  struct pattern {
    std::string source;
    /// `[\s\S]*?(?:source)`, run anchored at the start with the polynomial
    /// matcher: an unanchored search for `source`.
    std::wregex re;
  };

  /// One subschema. Children are indices into `nodes`; -1 means absent.
  struct node {
    bool trivial = true; ///< Has no constraint: accepts everything.
    bool reject = false; ///< The `false` schema.
    uint8_t types = 0;   ///< type_bit mask; 0 means any type.
    std::optional<json::value> const_value;
    std::optional<json::array> enum_values;
    // numbers
    std::optional<json::value> minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;
    // strings
    std::optional<std::size_t> min_length, max_length;
    int pattern = -1;
    // arrays
    std::vector<int> prefix_items;
    int items = -1;
    int contains = -1;
    std::optional<std::size_t> min_items, max_items, min_contains, max_contains;
    bool unique_items = false;
    // objects
    std::vector<std::pair<std::string, int>> properties; ///< Sorted by name.
    std::vector<std::pair<int, int>> pattern_properties; ///< Pattern, schema.
    int additional_properties = -1;
    int property_names = -1;
    std::vector<std::string> required;
    std::optional<std::size_t> min_properties, max_properties;
    std::vector<std::pair<std::string, std::vector<std::string>>> dependent_required;
    std::vector<std::pair<std::string, int>> dependent_schemas;
    // in-place applicators
    int ref = -1;
    std::vector<int> all_of, any_of, one_of;
    int not_schema = -1, if_schema = -1, then_schema = -1, else_schema = -1;

    /// The subschemas applied to the same instance, for cycle detection.
    template <class F>
    void for_each_in_place(F&& f) const {
      for (int i : {ref, not_schema, if_schema, then_schema, else_schema})
        if (i >= 0)
          f(i);
      for (auto* list : {&all_of, &any_of, &one_of})
        for (int i : *list)
          f(i);
      for (auto& [name, i] : dependent_schemas)
        f(i);
    }
  };

  std::vector<node> nodes;
  std::vector<pattern> patterns;
  int root = 0;
};

namespace {

using program = validator::program;
using node = program::node;

// -- compiling ---------------------------------------------------------------

class compiler {
public:
  compiler(const json::value& root, program& prog) : root_(root), prog_(prog) {}

  /// Compiles the whole document; false with `problem()` set on a malformed
  /// schema.
  bool run() {
    if (auto* id = root_.find("$id"); id && id->is_string())
      base_ = id->as_string().substr(0, id->as_string().find('#'));
    find_anchors(root_, 0);
    prog_.root = compile(root_, 0);
    // Compiling a reference's target may add further references.
    for (std::size_t i = 0; i < refs_.size() && !failed(); ++i) {
      auto r = refs_[i]; // a copy: resolving may add references
      resolve(r);
    }
    if (!failed())
      check_cycles();
    return !failed();
  }

  const std::string& problem() const noexcept { return problem_; }

private:
  struct pending_ref {
    int from;           ///< The node holding the `$ref`.
    std::string target; ///< The reference as written.
    std::string where;  ///< Its schema location, for messages.
  };

  bool failed() const noexcept { return !problem_.empty(); }

  /// Records the first problem, at the current schema location.
  int fail(std::string what) {
    if (problem_.empty())
      problem_ = "#" + where_ + ": " + what;
    return -1;
  }

  // Schema locations are tracked as JSON pointers for messages.
  struct descend {
    compiler& c;
    std::size_t mark;
    descend(compiler& c, std::string_view name) : c(c), mark(c.where_.size()) { append_name(c.where_, name); }
    descend(compiler& c, std::size_t index) : c(c), mark(c.where_.size()) { append_index(c.where_, index); }
    ~descend() { c.where_.resize(mark); }
  };

  void find_anchors(const json::value& v, int depth) {
    if (depth > max_schema_depth)
      return;
    if (v.is_array()) {
      for (auto& item : v.as_array())
        find_anchors(item, depth + 1);
      return;
    }
    if (!v.is_object())
      return;
    if (auto* a = v.find("$anchor"); a && a->is_string())
      anchors_.emplace(a->as_string(), &v); // the first one wins
    for (auto& [key, member] : v.as_object())
      if (key != "enum" && key != "const" && key != "default" && key != "examples")
        find_anchors(member, depth + 1);
  }

  /// The node for schema `s`; each JSON value compiles once, so references
  /// and ordinary nesting share nodes.
  int compile(const json::value& s, int depth) {
    if (failed())
      return -1;
    if (auto it = memo_.find(&s); it != memo_.end())
      return it->second;
    if (depth > max_schema_depth)
      return fail("schemas nest more than " + std::to_string(max_schema_depth) + " levels deep");
    if (!s.is_object() && !s.is_bool())
      return fail("a schema must be an object or a boolean");
    int index = static_cast<int>(prog_.nodes.size());
    prog_.nodes.emplace_back();
    memo_.emplace(&s, index);
    node n;
    if (s.is_bool()) {
      n.reject = !s.as_bool();
      n.trivial = s.as_bool();
    } else {
      compile_keywords(s, n, depth);
      n.trivial = !constrains(n);
    }
    prog_.nodes[index] = std::move(n);
    return failed() ? -1 : index;
  }

  /// A subschema under keyword `key` of the current schema.
  int child(const json::value& s, std::string_view key, int depth) {
    descend d(*this, key);
    return compile(s, depth + 1);
  }

  int child(const json::value& s, std::string_view key, std::size_t i, int depth) {
    descend d(*this, key);
    descend e(*this, i);
    return compile(s, depth + 1);
  }

  int child(const json::value& s, std::string_view key, std::string_view name, int depth) {
    descend d(*this, key);
    descend e(*this, name);
    return compile(s, depth + 1);
  }

  /// A non-negative integer keyword (`minLength`...).
  void count(const json::value& s, std::string_view key, std::optional<std::size_t>& out) {
    auto* v = s.find(key);
    if (!v)
      return;
    if (!integral(*v) || v->as_double() < 0) {
      descend d(*this, key);
      fail("must be a non-negative integer");
      return;
    }
    out = static_cast<std::size_t>(std::min(v->as_double(), 1e18));
  }

  /// A numeric keyword (`minimum`...).
  void number(const json::value& s, std::string_view key, std::optional<json::value>& out) {
    auto* v = s.find(key);
    if (!v)
      return;
    if (!v->is_number() || !std::isfinite(v->as_double())) {
      descend d(*this, key);
      fail("must be a number");
      return;
    }
    out = *v;
  }

  /// A list of subschemas (`allOf`...).
  void list(const json::value& s, std::string_view key, std::vector<int>& out, int depth,
            bool allow_empty = false) {
    auto* v = s.find(key);
    if (!v)
      return;
    if (!v->is_array() || (!allow_empty && v->as_array().empty())) {
      descend d(*this, key);
      fail(allow_empty ? "must be an array of schemas" : "must be a non-empty array of schemas");
      return;
    }
    for (std::size_t i = 0; i < v->as_array().size(); ++i)
      out.push_back(child(v->as_array()[i], key, i, depth));
  }

  /// One subschema (`not`...).
  void single(const json::value& s, std::string_view key, int& out, int depth) {
    if (auto* v = s.find(key))
      out = child(*v, key, depth);
  }

  /// A list of strings (`required`...).
  bool names(const json::value& v, std::vector<std::string>& out) {
    if (!v.is_array())
      return false;
    for (auto& item : v.as_array()) {
      if (!item.is_string())
        return false;
      out.push_back(item.as_string());
    }
    return true;
  }

  void compile_keywords(const json::value& s, node& n, int depth) {
    // -- any instance --
    if (auto* v = s.find("type")) {
      descend d(*this, "type");
      auto add = [&](const json::value& name) {
        uint8_t bit = name.is_string() ? type_bit_of(name.as_string()) : 0;
        if (!bit) {
          fail("must name JSON types (\"string\", \"integer\", ...), not " + shown(name));
          return false;
        }
        n.types |= bit;
        return true;
      };
      if (v->is_array() && !v->as_array().empty()) {
        for (auto& name : v->as_array())
          if (!add(name))
            break;
      } else if (!v->is_array()) {
        add(*v);
      } else {
        fail("must name at least one JSON type");
      }
    }
    if (auto* v = s.find("const"))
      n.const_value = *v;
    if (auto* v = s.find("enum")) {
      if (!v->is_array()) {
        descend d(*this, "enum");
        fail("must be an array");
      } else {
        n.enum_values = v->as_array();
      }
    }

    // -- numbers --
    number(s, "minimum", n.minimum);
    number(s, "maximum", n.maximum);
    // Draft-04 spelled exclusive bounds as booleans beside minimum/maximum.
    for (auto [key, bound, exclusive] : {std::tuple{"exclusiveMinimum", &n.minimum, &n.exclusive_minimum},
                                         std::tuple{"exclusiveMaximum", &n.maximum, &n.exclusive_maximum}}) {
      auto* v = s.find(key);
      if (v && v->is_bool()) {
        if (v->as_bool() && *bound) {
          *exclusive = std::move(*bound);
          bound->reset();
        }
      } else {
        number(s, key, *exclusive);
      }
    }
    number(s, "multipleOf", n.multiple_of);
    if (n.multiple_of && n.multiple_of->as_double() <= 0) {
      descend d(*this, "multipleOf");
      fail("must be greater than 0");
    }

    // -- strings --
    count(s, "minLength", n.min_length);
    count(s, "maxLength", n.max_length);
    if (auto* v = s.find("pattern")) {
      descend d(*this, "pattern");
      n.pattern = v->is_string() ? compile_pattern(v->as_string()) : fail("must be a string");
    }

    // -- arrays --
    count(s, "minItems", n.min_items);
    count(s, "maxItems", n.max_items);
    count(s, "minContains", n.min_contains);
    count(s, "maxContains", n.max_contains);
    if (auto* v = s.find("uniqueItems")) {
      if (!v->is_bool()) {
        descend d(*this, "uniqueItems");
        fail("must be a boolean");
      }
      n.unique_items = v->as_bool();
    }
    list(s, "prefixItems", n.prefix_items, depth);
    if (auto* v = s.find("items"); v && v->is_array()) {
      // Draft-07 tuples: `items` as a list, `additionalItems` for the rest.
      if (!n.prefix_items.empty()) {
        descend d(*this, "items");
        fail("must be a schema when prefixItems is given");
      }
      list(s, "items", n.prefix_items, depth, true);
      single(s, "additionalItems", n.items, depth);
    } else {
      single(s, "items", n.items, depth);
    }
    single(s, "contains", n.contains, depth);

    // -- objects --
    count(s, "minProperties", n.min_properties);
    count(s, "maxProperties", n.max_properties);
    if (auto* v = s.find("properties")) {
      if (!v->is_object()) {
        descend d(*this, "properties");
        fail("must be an object of schemas");
      }
      for (auto& [name, sub] : v->as_object())
        n.properties.emplace_back(name, child(sub, "properties", name, depth));
      std::stable_sort(n.properties.begin(), n.properties.end(),
                       [](auto& a, auto& b) { return a.first < b.first; });
      n.properties.erase(std::unique(n.properties.begin(), n.properties.end(),
                                     [](auto& a, auto& b) { return a.first == b.first; }),
                         n.properties.end());
    }
    if (auto* v = s.find("patternProperties")) {
      descend d(*this, "patternProperties");
      if (!v->is_object())
        fail("must be an object of schemas");
      for (auto& [source, sub] : v->as_object()) {
        int re;
        {
          descend e(*this, source);
          re = compile_pattern(source);
        }
        n.pattern_properties.emplace_back(re, child(sub, source, depth));
      }
    }
    single(s, "additionalProperties", n.additional_properties, depth);
    single(s, "propertyNames", n.property_names, depth);
    if (auto* v = s.find("required")) {
      if (!names(*v, n.required)) {
        descend d(*this, "required");
        fail("must be an array of property names");
      }
    }
    dependencies(s, "dependentRequired", n, depth);
    dependencies(s, "dependentSchemas", n, depth);
    dependencies(s, "dependencies", n, depth);

    // -- in-place applicators --
    if (auto* v = s.find("$ref")) {
      if (!v->is_string()) {
        descend d(*this, "$ref");
        fail("must be a string");
      } else {
        // Resolved once everything is compiled, as targets may come later.
        refs_.push_back({memo_.at(&s), v->as_string(), where_ + "/$ref"});
      }
    }
    list(s, "allOf", n.all_of, depth);
    list(s, "anyOf", n.any_of, depth);
    list(s, "oneOf", n.one_of, depth);
    single(s, "not", n.not_schema, depth);
    single(s, "if", n.if_schema, depth);
    single(s, "then", n.then_schema, depth);
    single(s, "else", n.else_schema, depth);

    // -- definitions, compiled so that they are checked and can be referenced --
    for (const char* key : {"$defs", "definitions"}) {
      if (auto* v = s.find(key)) {
        if (!v->is_object()) {
          descend d(*this, key);
          fail("must be an object of schemas");
        }
        for (auto& [name, sub] : v->as_object())
          child(sub, key, name, depth);
      }
    }
  }

  /// `dependentRequired` (lists), `dependentSchemas` (schemas) and draft-07
  /// `dependencies` (either).
  void dependencies(const json::value& s, std::string_view key, node& n, int depth) {
    auto* v = s.find(key);
    if (!v)
      return;
    descend d(*this, key);
    if (!v->is_object()) {
      fail("must be an object");
      return;
    }
    for (auto& [name, dep] : v->as_object()) {
      if (dep.is_array() && key != "dependentSchemas") {
        std::vector<std::string> needed;
        if (!names(dep, needed)) {
          descend e(*this, name);
          fail("must be an array of property names");
          return;
        }
        n.dependent_required.emplace_back(name, std::move(needed));
      } else if (key != "dependentRequired") {
        n.dependent_schemas.emplace_back(name, child(dep, name, depth));
      } else {
        descend e(*this, name);
        fail("must be an array of property names");
        return;
      }
    }
  }

  int compile_pattern(const std::string& source) {
    if (auto it = pattern_index_.find(source); it != pattern_index_.end())
      return it->second;
    // The regex compiler recurses per group and the matcher walks chains of
    // states recursively: refuse what could exhaust the stack.
    if (oversized_count(source))
      return fail("pattern has a repetition count or back-reference of more than nine digits");
    pattern_cost cost(source);
    if (cost.deepest > max_pattern_groups)
      return fail("pattern nests groups more than " + std::to_string(max_pattern_groups) + " deep");
    if (cost.states > max_pattern_states)
      return fail("pattern is too complex (about " + std::to_string(static_cast<long long>(cost.states))
                  + " matcher states; at most " + std::to_string(max_pattern_states) + ")");
    program::pattern p;
    p.source = source;
    auto wide = widen(source);
    namespace rc = std::regex_constants;
    try {
      p.re = std::wregex(wide, rc::ECMAScript); // checks the syntax as written
    } catch (const std::regex_error& e) {
      return fail("pattern " + shown(json::value(source)) + " is not a valid regular expression (" + e.what()
                  + ")");
    }
    // libstdc++'s unanchored search restarts the match at every position; a
    // leading `[\s\S]*?` finds a match anywhere in one pass. `^` and `$` keep
    // their meaning, as they test positions. The polynomial (breadth-first)
    // matcher cannot backtrack catastrophically, and its recursion depth
    // depends on the pattern, not on the string.
    try {
      p.re = std::wregex(L"[\\s\\S]*?(?:" + wide + L")", rc::ECMAScript | rc::__polynomial);
    } catch (const std::regex_error&) {
      // Only back-references compile for the backtracking matcher alone.
      return fail("pattern " + shown(json::value(source))
                  + " uses a back-reference, which Bulwark does not run (it can take exponential time)");
    }
    int index = static_cast<int>(prog_.patterns.size());
    prog_.patterns.push_back(std::move(p));
    pattern_index_.emplace(source, index);
    return index;
  }

  // -- references --

  /// The value a local reference names, or nullptr.
  const json::value* locate(std::string_view fragment) {
    if (fragment.empty())
      return &root_;
    if (fragment.front() != '/') {
      auto it = anchors_.find(std::string(fragment));
      return it == anchors_.end() ? nullptr : it->second;
    }
    const json::value* at = &root_;
    std::size_t pos = 1;
    while (at) {
      auto end = fragment.find('/', pos);
      auto raw = fragment.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
      std::string token;
      for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
          token.push_back(raw[i + 1] == '0' ? '~' : '/');
          ++i;
        } else {
          token.push_back(raw[i]);
        }
      }
      if (at->is_array()) {
        std::size_t i = 0;
        bool digits = !token.empty() && token.size() < 10;
        for (char c : token)
          digits = digits && c >= '0' && c <= '9';
        if (!digits || (i = std::stoul(token)) >= at->as_array().size())
          return nullptr;
        at = &at->as_array()[i];
      } else {
        at = at->find(token);
      }
      if (end == std::string_view::npos)
        break;
      pos = end + 1;
    }
    return at;
  }

  /// A fragment with its escapes decoded; as written when one is malformed.
  static std::string percent_decoded(std::string_view s) {
    std::string out;
    return text::percent_decode(s, out) ? out : std::string(s);
  }

  void resolve(const pending_ref& r) {
    std::string_view target = r.target;
    if (!base_.empty() && target.substr(0, base_.size()) == base_)
      target.remove_prefix(base_.size());
    if (target.empty())
      target = "#";
    if (target.front() != '#')
      return; // another document: not fetched, so not checked
    auto fragment = percent_decoded(target.substr(1));
    const json::value* at = locate(fragment);
    if (!at) {
      problem_ = "#" + r.where + ": reference " + shown(json::value(r.target)) + " points nowhere";
      return;
    }
    auto saved = std::move(where_);
    where_ = fragment.empty() || fragment.front() == '/' ? fragment : r.where;
    int index = compile(*at, 0);
    where_ = std::move(saved);
    if (index >= 0) {
      prog_.nodes[r.from].ref = index;
      prog_.nodes[r.from].trivial = false;
    }
  }

  /// Rejects subschemas that apply themselves to the same value without end,
  /// such as `{"$ref": "#"}` or two definitions that refer to each other
  /// through `allOf`: no instance could ever be decided.
  void check_cycles() {
    enum : uint8_t { unseen, open, done };
    std::vector<uint8_t> state(prog_.nodes.size(), unseen);
    std::vector<std::pair<int, std::vector<int>>> stack; // node, children left
    for (int start = 0; start < static_cast<int>(prog_.nodes.size()); ++start) {
      if (state[start] != unseen)
        continue;
      auto push = [&](int i) {
        std::vector<int> next;
        prog_.nodes[i].for_each_in_place([&](int j) { next.push_back(j); });
        state[i] = open;
        stack.emplace_back(i, std::move(next));
      };
      push(start);
      while (!stack.empty()) {
        auto& [at, next] = stack.back();
        if (next.empty()) {
          state[at] = done;
          stack.pop_back();
          continue;
        }
        int j = next.back();
        next.pop_back();
        if (state[j] == open) {
          problem_ =
            "#" + location_of(j)
            + ": a cycle of $ref/allOf/anyOf/oneOf/not/if applies this schema to the same value without end";
          return;
        }
        if (state[j] == unseen)
          push(j);
      }
    }
  }

  /// The schema location of node `i`, for messages.
  std::string location_of(int i) const {
    for (auto& [value, index] : memo_)
      if (index == i)
        return pointer_to(value);
    return "";
  }

  /// The JSON pointer of `target` within the document (a search; only used
  /// for the rare cycle message).
  std::string pointer_to(const json::value* target) const {
    std::string path;
    return find_path(root_, target, path, 0) ? path : "";
  }

  static bool find_path(const json::value& at, const json::value* target, std::string& path, int depth) {
    if (&at == target)
      return true;
    if (depth > max_schema_depth)
      return false;
    auto mark = path.size();
    if (at.is_object()) {
      for (auto& [key, member] : at.as_object()) {
        append_name(path, key);
        if (find_path(member, target, path, depth + 1))
          return true;
        path.resize(mark);
      }
    } else if (at.is_array()) {
      for (std::size_t i = 0; i < at.as_array().size(); ++i) {
        append_index(path, i);
        if (find_path(at.as_array()[i], target, path, depth + 1))
          return true;
        path.resize(mark);
      }
    }
    return false;
  }

  static bool constrains(const node& n) {
    return n.reject || n.types || n.const_value || n.enum_values || n.minimum || n.maximum
           || n.exclusive_minimum || n.exclusive_maximum || n.multiple_of || n.min_length || n.max_length
           || n.pattern >= 0 || !n.prefix_items.empty() || n.items >= 0 || n.contains >= 0 || n.min_items
           || n.max_items || n.unique_items || !n.properties.empty() || !n.pattern_properties.empty()
           || n.additional_properties >= 0 || n.property_names >= 0 || !n.required.empty() || n.min_properties
           || n.max_properties || !n.dependent_required.empty() || !n.dependent_schemas.empty()
           || !n.all_of.empty() || !n.any_of.empty() || !n.one_of.empty() || n.not_schema >= 0
           || (n.if_schema >= 0 && (n.then_schema >= 0 || n.else_schema >= 0));
  }

  const json::value& root_;
  program& prog_;
  std::string base_; ///< The root's `$id` without fragment.
  std::string where_;
  std::string problem_;
  std::unordered_map<const json::value*, int> memo_;
  std::unordered_map<std::string, const json::value*> anchors_;
  std::unordered_map<std::string, int> pattern_index_;
  std::vector<pending_ref> refs_;
};

// -- validating --------------------------------------------------------------

/// One validation of one instance. Errors go to `out`; while `out` is null
/// (probing an anyOf branch, an `if`...), evaluation stops at the first
/// failure and words nothing.
class evaluation {
public:
  evaluation(const program& prog, std::vector<error>* out, bool explain)
      : prog_(prog), out_(out), explain_(explain) {}

  bool truncated() const noexcept { return truncated_; }

  bool eval(int index, const json::value& v) {
    const node& n = prog_.nodes[index];
    if (n.trivial)
      return true;
    if (n.reject)
      return note("false", "is not allowed");
    if (depth_ >= max_eval_depth)
      return note("$ref", "is nested too deeply to validate");
    ++depth_;
    bool ok = eval_node(n, v);
    --depth_;
    return ok;
  }

private:
  /// Records an error at the current path; returns false for `ok = note(...)`.
  bool note(std::string_view keyword, std::string message) {
    if (!out_)
      return false;
    if (out_->size() >= max_errors) {
      truncated_ = true;
      return false;
    }
    out_->push_back({path_, std::string(keyword), std::move(message)});
    return false;
  }

  /// Whether a failure ends this evaluation: always when probing, and once
  /// the error list is full.
  bool done() const noexcept { return !out_ || truncated_; }

  /// Whether `v` passes schema `index` without recording anything.
  bool probe(int index, const json::value& v) {
    auto* saved = out_;
    out_ = nullptr;
    bool ok = eval(index, v);
    out_ = saved;
    return ok;
  }

  /// Applies a child schema; a `false` child fails under the parent's keyword.
  bool apply(int index, const json::value& v, std::string_view keyword,
             const char* rejected = "is not allowed") {
    if (prog_.nodes[index].reject)
      return note(keyword, rejected);
    return eval(index, v);
  }

  // Extends the instance path for the lifetime of the object.
  struct step {
    std::string& path;
    std::size_t mark;
    step(std::string& p, std::string_view name) : path(p), mark(p.size()) { append_name(p, name); }
    step(std::string& p, std::size_t i) : path(p), mark(p.size()) { append_index(p, i); }
    ~step() { path.resize(mark); }
  };

  bool eval_node(const node& n, const json::value& v) {
    if (n.types && !has_type(n.types, v))
      return note("type", type_message(n.types, v)); // the rest would only repeat it
    bool ok = true;
    if (n.const_value && !(v == *n.const_value)) {
      ok = note("const", "must be " + shown(*n.const_value));
      if (done())
        return false;
    }
    if (n.enum_values
        && std::none_of(n.enum_values->begin(), n.enum_values->end(),
                        [&](const json::value& e) { return e == v; })) {
      ok = note("enum", enum_message(*n.enum_values));
      if (done())
        return false;
    }
    bool typed = true;
    switch (v.type()) {
      case kind::integer:
      case kind::number:
        typed = check_number(n, v);
        break;
      case kind::string:
        typed = check_string(n, v.as_string());
        break;
      case kind::array:
        typed = check_array(n, v.as_array());
        break;
      case kind::object:
        typed = check_object(n, v.as_object());
        break;
      default:
        break;
    }
    if (!typed) {
      ok = false;
      if (done())
        return false;
    }
    return check_applicators(n, v) && ok;
  }

  static std::string enum_message(const json::array& values) {
    if (values.empty())
      return "cannot have any value (the enum is empty)";
    std::string msg = values.size() == 1 ? "must be " : "must be one of ";
    for (std::size_t i = 0; i < values.size() && i < max_listed; ++i) {
      if (i > 0)
        msg.append(", ");
      msg.append(shown(values[i]));
    }
    if (values.size() > max_listed)
      msg.append(", ... (" + std::to_string(values.size()) + " values)");
    return msg;
  }

  /// A keyword failed: clears `ok`, records why, and says whether to stop.
  bool fails(bool& ok, const char* keyword, std::string msg) {
    ok = note(keyword, std::move(msg));
    return done();
  }

  bool check_number(const node& n, const json::value& v) {
    bool ok = true;
    if (n.minimum && compare(v, *n.minimum) < 0 && fails(ok, "minimum", "must be at least " + shown(*n.minimum)))
      return false;
    if (n.maximum && compare(v, *n.maximum) > 0 && fails(ok, "maximum", "must be at most " + shown(*n.maximum)))
      return false;
    if (n.exclusive_minimum && compare(v, *n.exclusive_minimum) <= 0
        && fails(ok, "exclusiveMinimum", "must be greater than " + shown(*n.exclusive_minimum)))
      return false;
    if (n.exclusive_maximum && compare(v, *n.exclusive_maximum) >= 0
        && fails(ok, "exclusiveMaximum", "must be less than " + shown(*n.exclusive_maximum)))
      return false;
    if (n.multiple_of && !multiple_of(v, *n.multiple_of)
        && fails(ok, "multipleOf", "must be a multiple of " + shown(*n.multiple_of)))
      return false;
    return ok;
  }

  /// 1 for a match, 0 for none, -1 when `s` is too long to try.
  int search(int pattern, const std::string& s, std::size_t length) const {
    if (length > max_pattern_input)
      return -1;
    auto wide = widen(s);
    return std::regex_search(wide, prog_.patterns[pattern].re, std::regex_constants::match_continuous);
  }

  bool check_string(const node& n, const std::string& s) {
    if (!n.min_length && !n.max_length && n.pattern < 0)
      return true;
    bool ok = true;
    std::size_t length = code_points(s);
    if (n.min_length && length < *n.min_length
        && fails(ok, "minLength",
                 "must be at least " + counted(*n.min_length, "character", "characters") + " long"))
      return false;
    if (n.max_length && length > *n.max_length
        && fails(ok, "maxLength",
                 "must be at most " + counted(*n.max_length, "character", "characters") + " long"))
      return false;
    if (n.pattern >= 0) {
      int found = search(n.pattern, s, length);
      if (found < 0
          && fails(ok, "pattern", "is too long to check against the pattern (" + std::to_string(length)
                                    + " characters; at most " + std::to_string(max_pattern_input)
                                    + " are checked)"))
        return false;
      if (found == 0
          && fails(ok, "pattern",
                   "must match the pattern " + shown(json::value(prog_.patterns[n.pattern].source))))
        return false;
    }
    return ok;
  }

  bool check_array(const node& n, const json::array& a) {
    bool ok = true;
    if (n.min_items && a.size() < *n.min_items
        && fails(ok, "minItems", "must have at least " + counted(*n.min_items, "item", "items")))
      return false;
    if (n.max_items && a.size() > *n.max_items
        && fails(ok, "maxItems", "must have at most " + counted(*n.max_items, "item", "items")))
      return false;
    std::size_t i = 0;
    for (; i < a.size() && i < n.prefix_items.size(); ++i) {
      step s(path_, i);
      if (!apply(n.prefix_items[i], a[i], "prefixItems")) {
        ok = false;
        if (done())
          return false;
      }
    }
    if (n.items >= 0 && i < a.size()) {
      std::string too_many = "is not allowed";
      if (prog_.nodes[n.items].reject)
        too_many += " (at most " + counted(n.prefix_items.size(), "item", "items") + ")";
      for (; i < a.size(); ++i) {
        step s(path_, i);
        if (!apply(n.items, a[i], "items", too_many.c_str())) {
          ok = false;
          if (done())
            return false;
        }
      }
    }
    if (n.contains >= 0) {
      std::size_t matching = 0;
      for (auto& item : a)
        matching += probe(n.contains, item);
      std::size_t least = n.min_contains.value_or(1);
      if (matching < least
          && fails(ok, n.min_contains ? "minContains" : "contains", "must contain at least "
                                                                      + counted(least, "item", "items")
                                                                      + " matching the contains schema"))
        return false;
      if (n.max_contains && matching > *n.max_contains
          && fails(ok, "maxContains", "must contain at most " + counted(*n.max_contains, "item", "items")
                                        + " matching the contains schema"))
        return false;
    }
    if (n.unique_items) {
      if (auto dup = find_duplicate(a)) {
        if (fails(ok, "uniqueItems", "must not contain duplicates (items " + std::to_string(dup->first) + " and "
                                       + std::to_string(dup->second) + " are equal)"))
          return false;
      }
    }
    return ok;
  }

  bool check_object(const node& n, const json::object& o) {
    bool ok = true;
    auto failed = [&]() {
      ok = false;
      return done();
    };
    if (n.min_properties && o.size() < *n.min_properties
        && fails(ok, "minProperties",
                 "must have at least " + counted(*n.min_properties, "property", "properties")))
      return false;
    if (n.max_properties && o.size() > *n.max_properties
        && fails(ok, "maxProperties",
                 "must have at most " + counted(*n.max_properties, "property", "properties")))
      return false;
    auto has = [&](const std::string& name) {
      return std::any_of(o.begin(), o.end(), [&](auto& m) { return m.first == name; });
    };
    for (auto& name : n.required) {
      if (has(name))
        continue;
      step s(path_, name);
      if (fails(ok, "required", "is required"))
        return false;
    }
    for (auto& [name, needed] : n.dependent_required) {
      if (!has(name))
        continue;
      for (auto& other : needed) {
        if (has(other))
          continue;
        step s(path_, other);
        if (fails(ok, "dependentRequired", "is required when " + shown(json::value(name)) + " is present"))
          return false;
      }
    }
    bool per_member = !n.properties.empty() || !n.pattern_properties.empty() || n.additional_properties >= 0
                      || n.property_names >= 0;
    for (std::size_t m = 0; per_member && m < o.size(); ++m) {
      auto& [name, value] = o[m];
      step s(path_, name);
      bool known = false;
      auto prop = std::lower_bound(n.properties.begin(), n.properties.end(), name,
                                   [](auto& p, const std::string& key) { return p.first < key; });
      if (prop != n.properties.end() && prop->first == name) {
        known = true;
        if (!apply(prop->second, value, "properties") && failed())
          return false;
      }
      for (auto& [p, schema] : n.pattern_properties) {
        int found = search(p, name, code_points(name));
        if (found != 0)
          known = true; // a name too long to try is reported once, here
        if (found < 0 && fails(ok, "patternProperties", "has a name too long to check against the pattern"))
          return false;
        if (found > 0 && !apply(schema, value, "patternProperties") && failed())
          return false;
      }
      if (!known && n.additional_properties >= 0
          && !apply(n.additional_properties, value, "additionalProperties") && failed())
        return false;
      if (n.property_names >= 0 && !probe(n.property_names, json::value(name))
          && fails(ok, "propertyNames", "is not an allowed property name"))
        return false;
    }
    return ok;
  }

  /// " (closest: /phone is required)" for a failed anyOf/oneOf: the branch
  /// with the fewest errors, described by its first one.
  std::string closest(const std::vector<int>& branches, const json::value& v) {
    if (!explain_ || !out_)
      return "";
    std::vector<error> best;
    bool have = false;
    for (int b : branches) {
      std::vector<error> errs;
      evaluation sub(prog_, &errs, false);
      sub.path_ = path_;
      sub.depth_ = depth_;
      sub.ref_depth_ = ref_depth_;
      sub.eval(b, v);
      if (!errs.empty() && (!have || errs.size() < best.size())) {
        best = std::move(errs);
        have = true;
      }
    }
    if (!have)
      return "";
    auto& e = best.front();
    // The anyOf's own location goes without saying.
    std::string text = " (closest: " + (e.path == path_ ? e.message : e.path + " " + e.message);
    if (best.size() > 1)
      text += "; " + counted(best.size() - 1, "more problem", "more problems");
    return text + ")";
  }

  bool check_applicators(const node& n, const json::value& v) {
    bool ok = true;
    auto failed = [&]() {
      ok = false;
      return done();
    };
    if (n.ref >= 0) {
      if (ref_depth_ >= max_ref_depth) {
        note("$ref", "is nested too deeply to validate (more than " + std::to_string(max_ref_depth)
                       + " levels of $ref)");
        if (failed())
          return false;
      } else {
        ++ref_depth_;
        bool good = eval(n.ref, v);
        --ref_depth_;
        if (!good && failed())
          return false;
      }
    }
    for (int sub : n.all_of)
      if (!apply(sub, v, "allOf") && failed())
        return false;
    for (auto& [name, sub] : n.dependent_schemas) {
      if (v.find(name) && !apply(sub, v, "dependentSchemas") && failed())
        return false;
    }
    if (!n.any_of.empty()) {
      bool any = std::any_of(n.any_of.begin(), n.any_of.end(), [&](int b) { return probe(b, v); });
      if (!any) {
        note("anyOf", "must match at least one of " + counted(n.any_of.size(), "schema", "schemas")
                        + closest(n.any_of, v));
        if (failed())
          return false;
      }
    }
    if (!n.one_of.empty()) {
      std::size_t matches = 0, matched[2] = {0, 0};
      for (std::size_t b = 0; b < n.one_of.size() && matches < 2; ++b)
        if (probe(n.one_of[b], v))
          matched[matches++] = b;
      if (matches != 1) {
        std::string msg = "must match exactly one of " + counted(n.one_of.size(), "schema", "schemas");
        if (matches == 0)
          msg += ", but matches none" + closest(n.one_of, v);
        else
          msg += ", but matches more than one (schemas " + std::to_string(matched[0]) + " and "
                 + std::to_string(matched[1]) + ")";
        note("oneOf", std::move(msg));
        if (failed())
          return false;
      }
    }
    if (n.not_schema >= 0 && probe(n.not_schema, v)) {
      note("not", "must not match the schema in \"not\"");
      if (failed())
        return false;
    }
    if (n.if_schema >= 0 && (n.then_schema >= 0 || n.else_schema >= 0)) {
      bool holds = probe(n.if_schema, v);
      int next = holds ? n.then_schema : n.else_schema;
      if (next >= 0 && !apply(next, v, holds ? "then" : "else") && failed())
        return false;
    }
    return ok;
  }

  const program& prog_;
  std::vector<error>* out_;
  bool explain_;
  bool truncated_ = false;
  int depth_ = 0;
  int ref_depth_ = 0;
  std::string path_;
};

} // namespace

// -- validator -----------------------------------------------------------------

validator::validator(const json::value& schema) {
  try {
    auto prog = std::make_shared<program>();
    compiler c(schema, *prog);
    if (c.run())
      program_ = std::move(prog);
    else
      problem_ = c.problem();
  } catch (const std::exception& e) {
    // Only allocation failures are expected here; the schema stays unread.
    problem_ = std::string("cannot compile the schema: ") + e.what();
  }
}

std::vector<error> validator::validate(const json::value& instance) const {
  std::vector<error> errors;
  if (!program_)
    return errors;
  evaluation run(*program_, &errors, true);
  run.eval(program_->root, instance);
  if (run.truncated())
    errors.push_back(
      {"", "truncated",
       "more errors not shown (only the first " + std::to_string(max_errors) + " are listed)"});
  return errors;
}

bool validator::accepts(const json::value& instance) const {
  if (!program_)
    return true;
  evaluation run(*program_, nullptr, false);
  return run.eval(program_->root, instance);
}

// -- reporting -----------------------------------------------------------------

json::value errors_to_json(const std::vector<error>& errors) {
  json::array out;
  out.reserve(errors.size());
  for (auto& e : errors)
    out.push_back(
      json::value::make_object({{"path", e.path}, {"keyword", e.keyword}, {"message", e.message}}));
  return json::value(std::move(out));
}

std::string summary(const std::vector<error>& errors) {
  if (errors.empty())
    return "arguments are valid";
  std::string text = "arguments are invalid: ";
  for (std::size_t i = 0; i < errors.size(); ++i) {
    auto& e = errors[i];
    if (i > 0)
      text.append("; ");
    if (e.keyword == "truncated")
      text.append(e.message);
    else if (e.path.empty())
      text.append("the arguments ").append(e.message);
    else
      text.append(e.path).append(" ").append(e.message);
  }
  return text;
}

// -- sanitizing ----------------------------------------------------------------

namespace {

bool stripped(unsigned char c) noexcept {
  return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F;
}

bool strip(std::string& s) {
  auto end =
    std::remove_if(s.begin(), s.end(), [](char c) { return stripped(static_cast<unsigned char>(c)); });
  if (end == s.end())
    return false;
  s.erase(end, s.end());
  return true;
}

} // namespace

bool has_control_characters(const json::value& v) {
  auto dirty = [](const std::string& s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return stripped(static_cast<unsigned char>(c)); });
  };
  if (v.is_string())
    return dirty(v.as_string());
  if (v.is_array())
    return std::any_of(v.as_array().begin(), v.as_array().end(),
                       [](const json::value& x) { return has_control_characters(x); });
  if (v.is_object())
    for (auto& [k, x] : v.as_object())
      if (dirty(k) || has_control_characters(x))
        return true;
  return false;
}

bool strip_control_characters(json::value& v) {
  switch (v.type()) {
    case kind::string: {
      auto& s = v.as_string();
      if (std::none_of(s.begin(), s.end(), [](char c) { return stripped(static_cast<unsigned char>(c)); }))
        return false;
      std::string copy = s;
      strip(copy);
      v = json::value(std::move(copy));
      return true;
    }
    case kind::array: {
      bool changed = false;
      for (auto& item : v.mutable_array())
        changed |= strip_control_characters(item);
      return changed;
    }
    case kind::object: {
      auto& members = v.mutable_object();
      bool changed = false, renamed = false;
      for (auto& [key, member] : members) {
        renamed |= strip(key);
        changed |= strip_control_characters(member);
      }
      if (renamed) {
        // Keep the first of members whose names now coincide.
        json::object kept;
        kept.reserve(members.size());
        for (auto& m : members)
          if (std::none_of(kept.begin(), kept.end(), [&](auto& k) { return k.first == m.first; }))
            kept.push_back(std::move(m));
        members = std::move(kept);
      }
      return changed || renamed;
    }
    default:
      return false;
  }
}

} // namespace bulwark::schema
