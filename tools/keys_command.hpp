// `bulwark keys create|list|revoke`: manages the API key file.
#pragma once

namespace bulwark {

/// Runs `bulwark keys ...`; `argv[0]` is "keys". Returns the exit status:
/// 0 done, 1 the operation failed (file unreadable or unwritable, a name
/// taken or unknown), 2 a usage or configuration mistake.
int run_keys_command(int argc, char** argv);

} // namespace bulwark
