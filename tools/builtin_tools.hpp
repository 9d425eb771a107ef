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

/// Tools that fail on purpose (hang, exit, write garbage, count executions),
/// for testing Bulwark as a gateway in front of a failing downstream.
void register_fault_tools(runtime& rt);

} // namespace bulwark
