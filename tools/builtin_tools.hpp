// Bulwark's built-in tools, registered through the public API like any
// host program's tools.
#pragma once

namespace bulwark {

class runtime;

/// Registers `echo`, `add` and `sleep`.
void register_builtin_tools(runtime& rt);

/// Registers the tools, resources and prompts the MCP conformance suite
/// expects (see tests/e2e/conformance.sh).
void register_conformance_fixtures(runtime& rt);

} // namespace bulwark
