// The compiled form of a JSON Schema, shared by the two engines over it:
// messages/schema_compile (schema -> program) and messages/schema_validate
// (program + instance -> errors); and what both use to word their messages
// and to read JSON numbers and types. Internal to the validator
// (messages/schema.hpp is the interface).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/json.hpp"
#include "messages/schema.hpp"
#include "messages/schema_pattern.hpp"

namespace bulwark::schema {

struct validator::program {
  /// One subschema. Children are indices into `nodes`; -1 means absent.
  struct node {
    bool trivial = true; ///< Has no constraint: accepts everything.
    bool reject = false; ///< The `false` schema.
    uint8_t types = 0; ///< type_bit mask; 0 means any type.
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

// -- text ----------------------------------------------------------------------

/// Characters (code points) in UTF-8 text.
std::size_t code_points(std::string_view s) noexcept;

/// `path` + "/" + `name` as a JSON pointer token (~ and / escaped).
void append_name(std::string& path, std::string_view name);
void append_index(std::string& path, std::size_t i);

/// Compact JSON of `v`, shortened for messages.
std::string shown(const json::value& v);

/// "1 item", "3 items".
std::string counted(std::size_t n, const char* one, const char* many);

// -- numbers -------------------------------------------------------------------

/// An integer, or a finite number without a fraction.
bool integral(const json::value& v) noexcept;

/// -1, 0 or 1; integers compare exactly.
int compare(const json::value& a, const json::value& b) noexcept;

/// Whether `x` is a multiple of `m` (> 0).
bool multiple_of(const json::value& x, const json::value& m) noexcept;

// -- types ---------------------------------------------------------------------

enum type_bit : uint8_t {
  t_null = 1,
  t_boolean = 2,
  t_integer = 4,
  t_number = 8,
  t_string = 16,
  t_array = 32,
  t_object = 64,
};

/// The bit for a `type` name; 0 for an unknown name.
uint8_t type_bit_of(std::string_view name) noexcept;

/// Whether `v` has one of the types in `mask`.
bool has_type(uint8_t mask, const json::value& v) noexcept;

/// "must be a string or null, got 42".
std::string type_message(uint8_t mask, const json::value& v);

} // namespace bulwark::schema
