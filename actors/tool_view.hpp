// What clients see of a downstream service's tools: the operator's
// overrides (`services.<name>.tools`) applied to the definitions the
// service lists, hidden tools left out.
#pragma once

#include <map>
#include <string>

#include "messages/json.hpp"
#include "messages/service.hpp"

namespace bulwark {

/// The service's definition `tool` with `o` applied: a new name, title or
/// description, and hints set over its annotations (the other annotations
/// and every other member as the service has them).
json::value apply_override(const json::value& tool, const tool_override& o);

/// The service's tools (`tools`, a tools/list array) as clients see them:
/// overrides applied in the service's order, hidden ones left out.
/// `own_names` gets each shown name's tool name at the service.
json::value shown_tools(const json::value& tools, const std::map<std::string, tool_override>& overrides,
                        std::map<std::string, std::string>& own_names);

} // namespace bulwark
