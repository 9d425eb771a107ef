// The one table of settings: every configuration key with its type,
// default, bounds, environment variable, command-line flag, help text and
// whether a running server takes a change of it. The JSON reader, the
// environment and flags, --help, --print-config, docs/configuration.md and
// config/examples/default.json all come from it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "messages/json.hpp"

namespace bulwark {

enum class setting_type : uint8_t {
  boolean,
  integer,
  seconds, ///< An integer count of seconds.
  milliseconds, ///< An integer count of milliseconds.
  number,
  string,
  string_list,
  string_map, ///< An object of string values.
  enumeration,
  section, ///< A map or list of objects read by hand (`mcpServers`, `rateLimits.tiers`).
};

/// What the documentation, --help and the environment know of a key.
struct setting_info {
  /// Dotted path without the leading "$"; `<name>` stands for a key the
  /// user chooses (`services.<name>.timeoutMs`).
  std::string path;
  setting_type type = setting_type::string;
  double lo = 0, hi = 0; ///< Bounds of numbers (inclusive).
  std::vector<std::string> values; ///< The words of an enumeration.
  std::string refusal; ///< An enumeration's message for other words.
  std::string env; ///< BULWARK_* variable, if any.
  /// The variable holds a token; the key keeps its SHA-256 (hex).
  bool env_hashed = false;
  std::string flag; ///< Command-line flag, if any.
  std::string flag_arg; ///< The flag's argument ("N"); empty: a switch.
  std::string flag_value; ///< What a switch sets ("false", "development").
  std::string help;
  bool live = false; ///< A running server applies a change on reload.
  bool secret = false; ///< Shown as "[redacted]" when set.
  bool example = true; ///< Listed with its default in config/examples/default.json.
  bool described = false; ///< Documented here, read by its section's own reader.
  json::value default_value;

  // -- building the table --

  setting_info& with_env(std::string name);
  setting_info& with_token_env(std::string name);
  setting_info& with_flag(std::string name, std::string arg);
  setting_info& with_switch(std::string name, std::string sets);
  setting_info& is_secret();
  setting_info& not_in_example();

  /// The type as the reference shows it ("integer", "one of a, b").
  std::string type_name() const;
  /// The bounds as the reference shows them ("1..3600"), or "".
  std::string bounds() const;
  /// "between LO and HI".
  std::string range() const;
};

/// A key of the settings struct `T` (`config`, or a service's settings).
template <class T>
struct setting : setting_info {
  /// The value as shown (--print-config, the defaults).
  std::function<json::value(const T&)> get;
  /// Stores a value that has passed the type and bound checks.
  std::function<void(T&, const json::value&)> set;
  /// A further rule for one value: adds errors (at `path`) to refuse it.
  std::function<void(const json::value&, const std::string& path, std::vector<config_error_entry>&)> check;
  /// A section's own reader (type `section`).
  std::function<void(T&, const json::value&, const std::string& path, std::vector<config_error_entry>&)> read;
};

/// A rule over several keys of one object, checked after the object was
/// read without errors (`retry.maxDelayMs` not below `retry.baseDelayMs`).
template <class T>
struct setting_rule {
  std::string section; ///< Table path of the object ("services.<name>.retry").
  std::function<void(const T&, const std::string& path, std::vector<config_error_entry>&)> check;
};

/// The keys of `config` in reading order, sections included.
const std::vector<setting<config>>& config_settings();

/// Every key of every part of the configuration, top-level section by
/// section, for the reference and the live list.
std::vector<const setting_info*> all_settings();

/// Reads a JSON document into `cfg` through the table; appends an entry for
/// each refused key and goes on with the others.
void read_settings(config& cfg, const json::value& root, std::vector<config_error_entry>& errors);

/// Sets one key from a string (an environment variable or a flag's
/// argument); `label` names the source in errors. Throws config_error.
void set_from_text(config& cfg, const setting<config>& s, const std::string& text, const std::string& label);

/// The effective configuration as a JSON object, secrets redacted.
json::value settings_values(const config& cfg);

/// docs/configuration.md.
std::string settings_reference_markdown();
/// config/examples/default.json.
std::string settings_reference_json();

} // namespace bulwark
