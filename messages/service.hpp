// Downstream services: how to reach them (the `mcpServers` entries MCP
// clients already use) and how Bulwark treats them (timeouts, retries,
// breaker, naming).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bulwark {

/// How downstream names appear to clients.
enum class prefix_mode : uint8_t {
  conditional, ///< `svc<sep>name` only where two services offer the same name.
  always, ///< Every name is `svc<sep>name`.
  never, ///< Names as the service has them; a clash fails start-up.
};

struct retry_settings {
  uint32_t attempts = 3; ///< Tries in all, the first included.
  std::chrono::milliseconds base_delay{100};
  std::chrono::milliseconds max_delay{2000};
  double jitter = 0.2; ///< Each delay varies by up to this fraction either way.
};

struct breaker_settings {
  uint32_t consecutive_failures = 5; ///< Opens after this many failures in a row.
  double failure_rate = 0.5; ///< ... or at this failure share over the window,
  std::chrono::seconds window{30}; ///< counted over this sliding window,
  uint32_t minimum_calls = 10; ///< once it holds at least this many calls.
  std::chrono::milliseconds open_duration{30000};
  uint32_t half_open_probes = 1; ///< Calls let through while half-open.
  uint32_t successes_to_close = 1; ///< Probe successes that close it again.
};

enum class fallback_mode : uint8_t {
  stale, ///< A stale cached result, then the static message, then an error.
  static_message, ///< The static message, then an error.
  none, ///< A typed error with `retry_after_seconds`.
};

/// TLS for an https:// service. The service's certificate is always
/// verified and must name the URL's host.
struct service_tls {
  std::string ca_file; ///< PEM certificates to trust; empty: the system's store.
  std::string cert_file; ///< A client certificate (PEM chain), with
  std::string key_file; ///< its key: both or neither.

  bool empty() const noexcept { return ca_file.empty() && cert_file.empty() && key_file.empty(); }
};

/// How one of a service's tools appears to clients (`services.<name>.tools`).
/// Unset fields keep the service's own.
struct tool_override {
  std::optional<std::string> name; ///< The name clients see (before any prefix).
  std::optional<std::string> title;
  std::optional<std::string> description;
  /// Annotation hints set here (readOnlyHint, idempotentHint,
  /// destructiveHint, openWorldHint), over the service's own.
  std::map<std::string, bool> hints;
  bool hidden = false; ///< Neither listed nor callable.

  bool operator==(const tool_override& o) const {
    return name == o.name && title == o.title && description == o.description && hints == o.hints && hidden == o.hidden;
  }
};

struct service_settings {
  std::chrono::milliseconds timeout{30000};
  retry_settings retry;
  breaker_settings breaker;
  std::chrono::milliseconds cache_ttl{0}; ///< 0: results are not cached.
  std::chrono::milliseconds max_stale{300000};
  std::vector<std::string> cacheable_tools; ///< Besides tools with `readOnlyHint`.
  /// Resource reads are cached too (with `cache_ttl`), per URI; an
  /// update of the URI or a changed resource list drops them.
  bool cache_resources = true;
  /// Cached results may be shared between callers ("public"); by default
  /// they are kept per caller ("private").
  bool cache_public = false;
  std::vector<std::string> idempotent_tools; ///< Besides tools with `idempotentHint`.
  uint32_t rate_per_minute = 0; ///< Upstream budget; 0: unlimited.
  std::string priority = "normal";
  fallback_mode fallback = fallback_mode::stale;
  std::string fallback_message;
  /// HTTP services: "auto" (2026-07-28 when the service answers
  /// server/discover, else 2025-11-25), "2025-11-25" or "2026-07-28".
  std::string protocol = "auto";
  std::optional<prefix_mode> prefix; ///< Unset: the gateway's default.
  std::optional<std::string> separator;
  service_tls tls;
  /// By the service's own tool name.
  std::map<std::string, tool_override> tools;
};

/// How Bulwark proves itself to an HTTP service. Values marked "secret"
/// may be `${env:NAME}` or `${file:PATH}` references (config/secrets.hpp).
struct service_auth {
  enum class kind : uint8_t {
    headers, ///< Only the configured `headers` (the default).
    /// OAuth 2.0 client credentials (RFC 6749 4.4): a token from `token_url`,
    /// sent as `Authorization: Bearer`, renewed before it expires.
    client_credentials,
    /// OAuth 2.0 token exchange (RFC 8693): each call goes with a token the
    /// endpoint exchanged the caller's own for, cached per caller; Bulwark's
    /// own requests (start, lists) go with a client-credentials token.
    token_exchange,
  };
  kind type = kind::headers;
  std::string token_url;
  std::string client_id; ///< Secret.
  std::string client_secret; ///< Secret.
  std::vector<std::string> scopes;
  /// RFC 8707 `resource`: the service the token is for; empty: its URL.
  std::string resource;
  /// RFC 8693 `audience` of an exchanged token; empty: none asked for.
  std::string audience;
  /// How the client authenticates at the token endpoint: HTTP Basic (true,
  /// RFC 6749 2.3.1's default) or `client_id`/`client_secret` in the body.
  bool basic = true;
  /// Calls go with the caller's own OAuth token (`passthrough: true`).
  bool passthrough = false;

  /// Bulwark's own requests need a token from `token_url`.
  bool own_token() const noexcept { return type != kind::headers; }
  /// Calls need the caller's OAuth access token.
  bool acts_for_caller() const noexcept { return passthrough || type == kind::token_exchange; }

  bool operator==(const service_auth& o) const {
    return type == o.type && token_url == o.token_url && client_id == o.client_id && client_secret == o.client_secret
           && scopes == o.scopes && resource == o.resource && audience == o.audience && basic == o.basic
           && passthrough == o.passthrough;
  }
  bool operator!=(const service_auth& o) const { return !(*this == o); }
};

/// A token endpoint's answer (RFC 6749 5.1 and 5.2), as the connector is
/// told of it.
struct token_grant {
  std::string access_token; ///< Empty when the request failed.
  /// How long the token is valid (`expires_in`); 0: the endpoint did not say.
  std::chrono::milliseconds lifetime{0};
  /// Why there is no token, as callers may see it: the endpoint's status
  /// and OAuth `error` code, or that it could not be reached (no address,
  /// file or secret).
  std::string error;
  /// For the log: the transport's own words (addresses, system errors).
  std::string detail;
  /// The endpoint's HTTP status (0: no answer).
  int status = 0;
};

struct service_config {
  std::string name;
  // stdio child
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  /// Variables of Bulwark's own environment passed on to the child besides
  /// the small default set (PATH, HOME, LANG, ...); nothing else is.
  std::vector<std::string> inherit_env;
  std::string cwd;
  // Streamable HTTP
  std::string url;
  /// Values may be secret references.
  std::vector<std::pair<std::string, std::string>> headers;
  service_auth auth;

  service_settings settings;

  bool is_stdio() const noexcept { return !command.empty(); }
};

/// Allow and deny patterns over `server:tool` (`*` matches any run of
/// characters). Deny rules win; a non-empty allow list admits only matches.
struct access_policy {
  std::vector<std::string> allow;
  std::vector<std::string> deny;
};

struct gateway_config {
  std::vector<service_config> services;
  /// Offer list_servers, get_server_tools and execute_tool.
  bool gateway_tools = false;
  /// For every client, and per agent (the client's `clientInfo.name`), which
  /// then replaces the default.
  access_policy policy;
  std::map<std::string, access_policy> agents;
  prefix_mode prefix = prefix_mode::conditional;
  std::string separator = "__";
  /// Tool-definition pinning: "off", "keep" (a changed tool keeps its
  /// approved definition until approved) or "hide" (it is hidden until
  /// then); the pins are kept in `pinning_file`.
  std::string pinning = "off";
  std::string pinning_file;
  /// A call of a service's tool from a client that declared the tasks
  /// extension becomes a task of the gateway's once it has gone on this
  /// long (0: never).
  std::chrono::milliseconds task_after{5000};
  /// Restarts of a stdio child within `restart_window` before it is left down.
  uint32_t child_max_restarts = 5;
  std::chrono::seconds child_restart_window{60};
};

} // namespace bulwark
