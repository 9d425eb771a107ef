// Bulwark's configuration: defaults, then a JSON file, then environment
// variables, then the command line. One place knows every key; unknown keys
// and bad values are refused with the key's path.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/access_log.hpp"
#include "config/audit.hpp"
#include "config/log.hpp"
#include "messages/catalog.hpp"
#include "messages/mcp.hpp"
#include "messages/service.hpp"
#include "messages/settings.hpp"

namespace bulwark {

/// One refused setting: its key path (`$.http.port`; a flag or an
/// environment variable for those; empty for the file as a whole) and why.
struct config_error_entry {
  std::string path;
  std::string message;

  /// "config: PATH: MESSAGE" (without the path when there is none).
  std::string text() const;
};

/// A configuration error that names the offending key. A file with several
/// bad keys gives one entry for each; `what()` is the first one's text.
class config_error : public std::runtime_error {
public:
  /// One error from its text ("config: $.a.b: why" or "config: why").
  explicit config_error(const std::string& what);
  explicit config_error(std::vector<config_error_entry> errors);

  const std::vector<config_error_entry>& errors() const noexcept { return errors_; }

private:
  std::vector<config_error_entry> errors_;
};

/// `auth.mode`: how requests to the MCP endpoint are authenticated.
enum class auth_mode : uint8_t {
  none, ///< Everyone is admitted (loopback addresses only, unless overridden).
  keys, ///< A live API key of the key file (`Authorization: Bearer <key>`).
  oauth, ///< A JWT access token from an OAuth 2.1 authorization server.
};

struct auth_config {
  auth_mode mode = auth_mode::none;
  std::string key_file; ///< `auth.keyFile` or `--key-file`.
  /// Serve a non-loopback address with mode "none" (`--allow-unauthenticated`).
  bool allow_unauthenticated = false;
  /// `auth.oauth`: the resource server's settings for mode "oauth".
  oauth_settings oauth;
};

struct config {
  runtime_options runtime;
  http_options http;
  bool http_enabled = true;
  auth_config auth;
  /// The admin API and console page on their own listener: -1 serves them
  /// on the MCP server, 0 picks a free port (logged).
  int admin_port = -1;
  std::string admin_address = "127.0.0.1";
  bool stdio = false; ///< Serve one client on stdin/stdout.
  bool fixtures = false; ///< Register the conformance fixtures.
  bool fault_tools = false; ///< Register tools that fail on purpose.
  bool builtin_tools = true;
  log_level log = log_level::info;
  /// `errors.mode` (`--dev`): whether clients see internal error details.
  mcp::error_mode error_mode = mcp::error_mode::production;
  /// `audit.*`: the append-only audit log (off without a file).
  audit::settings audit;
  /// Extra secret field names and patterns for the log's redaction.
  std::vector<std::string> redact_keys, redact_patterns;
  /// `log.access`: one line per answered request.
  access_log::settings access;
  /// Downstream MCP servers (`mcpServers`) and their settings (`services`).
  gateway_config gateway;
  /// CAF scheduler: kind, worker threads and polling (see README, "Tuning").
  /// "fused" runs the HTTP I/O on the CAF workers; "stealing" is CAF's own
  /// work-stealing scheduler beside separate I/O threads.
  std::string scheduler = "fused";
  /// Fused scheduler: how long an idle worker polls before it sleeps.
  int spin_micros = 0;
  int workers = 1;
  int aggressive_poll_attempts = 100;
  int moderate_poll_attempts = 0;
  /// How long a graceful shutdown lets calls in flight finish.
  std::chrono::seconds drain{10};
  /// After SIGTERM, how long /ready fails while everything is still served,
  /// before the drain: a balancer's health checks take the instance out of
  /// rotation first.
  std::chrono::milliseconds ready_grace{0};
  std::string source = "embedded defaults"; ///< Where the settings came from.
  /// The configuration file as read (null without one): a reload compares
  /// the next one with it, key by key.
  json::value document;
};

/// Applies a JSON config text to `cfg`. Throws config_error with every
/// refused key; `cfg` is unchanged then.
void apply_json(config& cfg, const std::string& text, const std::string& origin);

/// Every error of a JSON config text read over the defaults (empty: valid).
std::vector<config_error_entry> check_json(const std::string& text);

/// Applies BULWARK_* environment variables. Throws config_error.
void apply_env(config& cfg);

/// Reads the `requestState` sealing keys that `sessions.stateKeyFile` and
/// `sessions.previousStateKeyFile` name. Throws config_error.
void read_state_keys(config& cfg);

/// Parses the command line (`--config FILE` is read first, wherever it
/// stands) and reads the files the settings name. Returns false when the
/// program should exit (after --help).
bool apply_args(config& cfg, int argc, char** argv);

/// True for addresses only this host can reach: 127.0.0.0/8, ::1 (also as
/// ::ffff:127.x.y.z) and "localhost".
bool loopback_address(const std::string& address);

/// The usage text for --help.
std::string usage();

/// The effective configuration (every key, secrets redacted), as the admin
/// API shows it; `describe` is its JSON text (--print-config and logs).
json::value effective_settings(const config& cfg);
std::string describe(const config& cfg);

} // namespace bulwark
