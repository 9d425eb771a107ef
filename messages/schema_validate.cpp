#include "messages/schema_validate.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

namespace bulwark::schema {

using json::kind;

namespace {

using program = validator::program;
using node = program::node;

/// Deepest nesting of schema evaluations for one instance (a backstop under
/// `max_ref_depth`: each `$ref` may lead through many nested subschemas).
constexpr int max_eval_depth = 512;
/// Most `enum` values listed in an error message.
constexpr std::size_t max_listed = 10;

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

/// One validation of one instance. Errors go to `out`; while `out` is null
/// (probing an anyOf branch, an `if`...), evaluation stops at the first
/// failure and words nothing.
class evaluation {
public:
  evaluation(const program& prog, std::vector<error>* out, bool explain) : prog_(prog), out_(out), explain_(explain) {}

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
  bool apply(int index, const json::value& v, std::string_view keyword, const char* rejected = "is not allowed") {
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
        && std::none_of(n.enum_values->begin(), n.enum_values->end(), [&](const json::value& e) { return e == v; })) {
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
  int search(int index, const std::string& s, std::size_t length) const {
    if (length > max_pattern_input)
      return -1;
    return prog_.patterns[index].search(s);
  }

  bool check_string(const node& n, const std::string& s) {
    if (!n.min_length && !n.max_length && n.pattern < 0)
      return true;
    bool ok = true;
    std::size_t length = code_points(s);
    if (n.min_length && length < *n.min_length
        && fails(ok, "minLength", "must be at least " + counted(*n.min_length, "character", "characters") + " long"))
      return false;
    if (n.max_length && length > *n.max_length
        && fails(ok, "maxLength", "must be at most " + counted(*n.max_length, "character", "characters") + " long"))
      return false;
    if (n.pattern >= 0) {
      int found = search(n.pattern, s, length);
      if (found < 0
          && fails(ok, "pattern",
                   "is too long to check against the pattern (" + std::to_string(length) + " characters; at most "
                     + std::to_string(max_pattern_input) + " are checked)"))
        return false;
      if (found == 0
          && fails(ok, "pattern", "must match the pattern " + shown(json::value(prog_.patterns[n.pattern].source()))))
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
          && fails(ok, n.min_contains ? "minContains" : "contains",
                   "must contain at least " + counted(least, "item", "items") + " matching the contains schema"))
        return false;
      if (n.max_contains && matching > *n.max_contains
          && fails(ok, "maxContains",
                   "must contain at most " + counted(*n.max_contains, "item", "items")
                     + " matching the contains schema"))
        return false;
    }
    if (n.unique_items) {
      if (auto dup = find_duplicate(a)) {
        if (fails(ok, "uniqueItems",
                  "must not contain duplicates (items " + std::to_string(dup->first) + " and "
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
        && fails(ok, "minProperties", "must have at least " + counted(*n.min_properties, "property", "properties")))
      return false;
    if (n.max_properties && o.size() > *n.max_properties
        && fails(ok, "maxProperties", "must have at most " + counted(*n.max_properties, "property", "properties")))
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
    bool per_member =
      !n.properties.empty() || !n.pattern_properties.empty() || n.additional_properties >= 0 || n.property_names >= 0;
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
      if (!known && n.additional_properties >= 0 && !apply(n.additional_properties, value, "additionalProperties")
          && failed())
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
        note("$ref",
             "is nested too deeply to validate (more than " + std::to_string(max_ref_depth) + " levels of $ref)");
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
        note("anyOf",
             "must match at least one of " + counted(n.any_of.size(), "schema", "schemas") + closest(n.any_of, v));
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

std::vector<error> errors_of(const program& prog, const json::value& instance) {
  std::vector<error> errors;
  evaluation run(prog, &errors, true);
  run.eval(prog.root, instance);
  if (run.truncated())
    errors.push_back(
      {"", "truncated", "more errors not shown (only the first " + std::to_string(max_errors) + " are listed)"});
  return errors;
}

bool passes(const program& prog, const json::value& instance) {
  evaluation run(prog, nullptr, false);
  return run.eval(prog.root, instance);
}

} // namespace bulwark::schema
