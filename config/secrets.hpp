// Secret references in settings that carry credentials: a value
// `${env:NAME}` stands for the environment variable NAME, `${file:PATH}`
// for the file's contents (without a trailing newline). Anything else is
// the literal value. References are resolved where the credential is used,
// so that a changed file or variable takes effect on the next reload.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bulwark::secrets {

/// The value `text` stands for; nothing (and `error` says why) when it
/// names a variable that is not set or a file that cannot be read.
std::optional<std::string> resolve(std::string_view text, std::string& error);

} // namespace bulwark::secrets
