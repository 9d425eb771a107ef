// Live reconfiguration: which keys of a new configuration file differ from
// the running one, which of them a running server takes, and what an
// operator may see of a configuration (secrets redacted).
#pragma once

#include <string>
#include <vector>

#include "messages/json.hpp"

namespace bulwark {

struct reload_plan {
  /// Key paths whose value differs (`$.mcpServers.memory`, `$.log.level`);
  /// an object present on one side only is one path.
  std::vector<std::string> changed;
  /// Those of them a running server cannot take (listen address, scheduler,
  /// ...): a reload that changes one is refused whole.
  std::vector<std::string> restart_required;
};

/// Compares two configuration documents (null: no file, all defaults).
reload_plan plan_reload(const json::value& before, const json::value& after);

/// True for a key path a running server applies in place.
bool live_key(const std::string& path);

/// The key paths a running server applies in place, as prefixes (for
/// messages and the documentation).
const std::vector<std::string>& live_keys();

/// A configuration document with every secret replaced by "[redacted]":
/// service headers and environment values, webhook headers, token hashes,
/// the password of a Redis URL.
json::value redacted(const json::value& document);

/// A configuration error's text ("config: $.a.b: why") as `{path, message}`.
json::value error_entry(const std::string& what);

} // namespace bulwark
