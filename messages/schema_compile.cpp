#include "messages/schema_compile.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>

#include "messages/text.hpp"

namespace bulwark::schema {

using json::kind;

namespace {

using program = validator::program;
using node = program::node;

/// Deepest nesting of subschemas within one schema document.
constexpr int max_schema_depth = 128;

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
    int from; ///< The node holding the `$ref`.
    std::string target; ///< The reference as written.
    std::string where; ///< Its schema location, for messages.
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
  void list(const json::value& s, std::string_view key, std::vector<int>& out, int depth, bool allow_empty = false) {
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
      std::stable_sort(n.properties.begin(), n.properties.end(), [](auto& a, auto& b) { return a.first < b.first; });
      n.properties.erase(
        std::unique(n.properties.begin(), n.properties.end(), [](auto& a, auto& b) { return a.first == b.first; }),
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
    pattern p(source);
    if (!p.usable())
      return fail("pattern " + shown(json::value(source)) + " " + p.problem());
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
          problem_ = "#" + location_of(j)
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
    return n.reject || n.types || n.const_value || n.enum_values || n.minimum || n.maximum || n.exclusive_minimum
           || n.exclusive_maximum || n.multiple_of || n.min_length || n.max_length || n.pattern >= 0
           || !n.prefix_items.empty() || n.items >= 0 || n.contains >= 0 || n.min_items || n.max_items || n.unique_items
           || !n.properties.empty() || !n.pattern_properties.empty() || n.additional_properties >= 0
           || n.property_names >= 0 || !n.required.empty() || n.min_properties || n.max_properties
           || !n.dependent_required.empty() || !n.dependent_schemas.empty() || !n.all_of.empty() || !n.any_of.empty()
           || !n.one_of.empty() || n.not_schema >= 0
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

} // namespace

std::shared_ptr<const validator::program> compile(const json::value& schema, std::string& problem) {
  auto prog = std::make_shared<program>();
  compiler c(schema, *prog);
  if (c.run())
    return prog;
  problem = c.problem();
  return nullptr;
}

} // namespace bulwark::schema
