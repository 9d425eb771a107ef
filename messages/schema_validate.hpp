// The validating engine: one instance against a compiled program, its
// errors in instance order (at most max_errors, then `truncated`), or only
// whether it passes.
#pragma once

#include <vector>

#include "messages/json.hpp"
#include "messages/schema_program.hpp"

namespace bulwark::schema {

/// The errors of `instance`, worded, capped at max_errors plus `truncated`.
std::vector<error> errors_of(const validator::program& prog, const json::value& instance);

/// Whether `instance` passes; stops at the first failure.
bool passes(const validator::program& prog, const json::value& instance);

} // namespace bulwark::schema
