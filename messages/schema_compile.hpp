// The schema compiler: a JSON Schema document into a validator::program
// (subschemas as nodes, references resolved, patterns compiled, constraints
// decoded), or the first problem with its schema location.
#pragma once

#include <memory>
#include <string>

#include "messages/json.hpp"
#include "messages/schema_program.hpp"

namespace bulwark::schema {

/// The program for `schema`; null with `problem` set ("#/minimum: must be a
/// number") when the schema is malformed.
std::shared_ptr<const validator::program> compile(const json::value& schema, std::string& problem);

} // namespace bulwark::schema
