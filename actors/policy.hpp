// Naming and access policy of the gateway's tools: the name a downstream
// tool is exposed under (prefix modes), and whether a client's policy lets
// it use a service's tool (`server:tool` globs, deny before allow). Pure
// functions; the gateway applies them to its catalog and to every call.
#pragma once

#include <string>
#include <string_view>

#include "messages/service.hpp"
#include "messages/settings.hpp" // glob_match

namespace bulwark {

/// The exposed name of downstream tool `tool` of `service`, given which
/// services offer a tool of that name (in config order).
std::string exposed_tool_name(const std::string& service, const std::string& tool, prefix_mode mode,
                              const std::string& separator, bool clashes);

struct policy_decision {
  bool allowed = true;
  std::string rule; ///< The deciding rule, e.g. "deny memory:delete_*".
};

/// Whether `policy` lets a client use `server`'s `tool`.
policy_decision check_policy(const access_policy& policy, const std::string& server, const std::string& tool);

} // namespace bulwark
