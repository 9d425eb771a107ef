// stdio transport: newline-delimited JSON-RPC on stdin/stdout. Logs go to
// stderr only, so stdout carries nothing but protocol messages.
#pragma once

#include <cstddef>
#include <cstdio>

namespace bulwark {

class mcp_endpoint;

struct stdio_options {
  std::size_t line_limit = 1 << 20; ///< Longer lines are answered with an error.
};

/// Reads messages from `in` until EOF and answers on `out`; returns when the
/// input ends and every answer has been written (or `drain` passed).
void serve_stdio(mcp_endpoint& rt, stdio_options opts = {}, std::FILE* in = stdin, std::FILE* out = stdout);

} // namespace bulwark
