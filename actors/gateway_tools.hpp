// The gateway's own tools: list_servers, get_server_tools and execute_tool
// (for agents that discover tools lazily instead of reading one long
// tools/list), and queue_status (where the caller's calls stand in the
// priority queue). They ask the router and the queue for what they show.
#pragma once

#include <vector>

#include "actors/gateway_calls.hpp"

namespace bulwark {

/// list_servers, get_server_tools and execute_tool.
std::vector<tool_spec> gateway_tools(const gateway_context_ptr& ctx);

/// queue_status.
tool_spec queue_status_tool(const gateway_context_ptr& ctx);

} // namespace bulwark
