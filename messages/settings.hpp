// The settings types: plain data that the config layer fills from the
// settings table (config/settings_table.cpp) and that the transports and
// actors take, one immutable snapshot per configuration generation. A host
// program may fill them itself. Nothing here does anything; the few
// functions are defaults and checks of single values.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/service.hpp"

namespace bulwark {

class authenticator;
class key_store;

// -- rate limits -----------------------------------------------------------------

/// `count` calls per `per`: a bucket that holds `count` tokens and refills
/// continuously at `count / per`.
struct rate_limit {
  uint64_t count = 0;
  std::chrono::milliseconds per{0};
};

/// Every budget the limiter enforces. A call must fit all windows of its
/// key's tier, of its service (if configured) and the global ones.
struct limiter_config {
  /// Per-key windows by tier name ("free", "paid").
  std::map<std::string, std::vector<rate_limit>> tiers;
  /// Windows shared by every call to one downstream service.
  std::map<std::string, std::vector<rate_limit>> services;
  /// Windows shared by every call through the gateway.
  std::vector<rate_limit> global;
};

/// free = 10/min + 300/hour, paid = 50/min + 2000/hour; no service or global
/// limits.
limiter_config default_limiter_config();

// -- the priority queue ----------------------------------------------------------

/// How urgent a call is; a lower value runs first.
enum class priority : uint8_t { critical = 0, high = 1, normal = 2, low = 3 };

/// "critical", "high", "normal" or "low"; nothing for any other text.
std::optional<priority> parse_priority(std::string_view text);
const char* to_string(priority p) noexcept;

struct queue_config {
  /// Entries held at most; beyond it lower-priority work is shed.
  std::size_t capacity = 1000;
  /// A waiting entry rises one priority level per this much waiting; zero
  /// turns aging off.
  std::chrono::milliseconds aging{5000};
  /// Calls that run at once, used only to estimate the retry-after time of a
  /// refused push.
  std::size_t concurrency = 1;
};

// -- alert rules -----------------------------------------------------------------

/// One alert rule; `name` is its config key and says what it checks.
struct alert_rule {
  std::string name;
  bool enabled = true;
  /// Compared with the rule's value; see `default_alert_config`.
  double threshold = 0;
  /// Least number of events in the window for a rate to mean anything.
  uint64_t min_count = 0;
  /// After firing for a subject, the rule stays quiet for it this long.
  std::chrono::milliseconds cooldown{std::chrono::minutes(15)};
  std::string severity = "warning";
};

struct alert_config {
  std::vector<alert_rule> rules;
};

/// The rules Bulwark knows, with their defaults:
/// - `error_rate`: errors/requests over the window above 0.05, with at least
///   100 requests in it.
/// - `upstream_budget`: a service has used more than 0.9 of its rate budget
///   (one alert per service).
/// - `cache_hit_rate`: hits/lookups over the window below 0.6, with at least
///   50 lookups in it.
/// - `p95_latency`: the 95th percentile request latency above 2.0 seconds.
/// - `breaker_open`: a service's circuit breaker is open (one alert per
///   service; "critical"; has no threshold).
/// - `queue_fill`: the request queue more than 0.8 full.
/// Comparisons are strict: a value equal to the threshold does not fire.
/// Every cooldown is 15 minutes.
alert_config default_alert_config();

/// Sets `key` of the rule named `rule` to `value`. Keys: `threshold`,
/// `minCount` (a whole number; only for the rate rules), `cooldownSeconds`,
/// `enabled` (0 or 1). Returns why it cannot be set (unknown rule or key, a
/// value out of range), or an empty string when it was set.
std::string apply_alert_setting(alert_config& cfg, const std::string& rule, const std::string& key, double value);

// -- operations ------------------------------------------------------------------

/// A configured API key (by the SHA-256 of the key, never the key itself).
struct key_settings {
  std::string tier; ///< Empty: the default tier for keys.
  std::optional<priority> prio; ///< Default priority of its calls.
  /// The key's own gateway policy (key file); null: the gateway's.
  std::shared_ptr<const access_policy> policy;
};

struct health_thresholds {
  double queue_fill = 0.8; ///< Fuller than this is degraded.
  uint64_t restart_storm = 10; ///< This many actor restarts within the storm window is degraded.
};

struct health_settings {
  std::chrono::milliseconds interval{1000}; ///< Between checks.
  /// One point of the admin page's charts (at least one check long).
  std::chrono::milliseconds history_step{5000};
  uint32_t enter_checks = 1; ///< Troubled checks in a row that switch degraded mode on.
  std::chrono::milliseconds exit_after{10000}; ///< Clean for this long switches it off.
  std::chrono::seconds storm_window{60};
  health_thresholds thresholds;
  /// Degraded mode multiplies rate budgets by this (tightens them).
  double degraded_budget_scale = 0.5;
  /// /ready waits for every downstream service's first start to end (ready
  /// or failed); false: Bulwark's own actors are enough.
  bool ready_waits_for_services = true;
};

/// Where alerts go besides the log.
struct webhook_settings {
  std::string url; ///< Empty: no webhook.
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{5000};
  uint32_t attempts = 3;
  std::chrono::milliseconds base_delay{500};
  service_tls tls; ///< For an https:// URL, as a service's `tls`.
};

/// Traces (`telemetry` config section): what is sampled and where the
/// exporter actor sends spans (OTLP over HTTP, JSON encoding).
struct telemetry_settings {
  /// The collector's base URL; spans go to `{endpoint}/v1/traces`. Empty:
  /// no export (calls still carry and pass on their trace context).
  std::string endpoint;
  /// Sent with every export; values may be `${env:NAME}` or `${file:PATH}`.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Share of new traces sampled (a caller's decision wins).
  double sample_ratio = 1.0;
  std::string service_name = "bulwark";
  /// Spans waiting for export at most; more are dropped and counted.
  std::size_t max_queue = 16384;
  /// Spans per export request at most (whole batches of the actors that
  /// recorded them: a single batch may be larger).
  std::size_t max_batch = 2048;
  /// How often waiting spans are sent (sooner when a batch is full).
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds timeout{5000};
};

/// Shared state of several instances through Redis (`redis` config section).
/// Without a URL every instance keeps its state in memory alone.
struct redis_settings {
  /// `redis://HOST:PORT/DB`; empty: no Redis.
  std::string url;
  /// Prepended to every key and channel, so that deployments can share a server.
  std::string key_prefix = "bulwark:";
  std::chrono::milliseconds connect_timeout{500};
  /// A command without an answer for this long counts as Redis unreachable.
  std::chrono::milliseconds command_timeout{500};
  /// While Redis is unreachable, how often a reconnection is tried.
  std::chrono::milliseconds retry_interval{1000};
  /// Session directory entries live this long after their last use (0: the
  /// sessions' idle timeout).
  std::chrono::seconds session_ttl{0};
  /// Upper bound of any cached copy's life in Redis (fresh plus stale).
  std::chrono::milliseconds cache_max_ttl{86400000};
  /// Published breaker states expire after this long without a refresh.
  std::chrono::milliseconds breaker_ttl{60000};
};

/// `*` matches any run of characters, everything else itself (policies'
/// `server:tool` patterns, scope patterns).
bool glob_match(std::string_view pattern, std::string_view text);

/// Scopes a caller's OAuth token needs (`auth.oauth.requiredScopes`), by
/// pattern over the names clients see (`*` matches any run of characters):
/// every matching pattern's scopes are needed.
struct scope_rules {
  using patterns = std::vector<std::pair<std::string, std::vector<std::string>>>;
  patterns tools, prompts, resources; ///< Resources by URI.
  /// The protected resource metadata URL for `insufficient_scope`
  /// challenges (set with auth.mode "oauth").
  std::string metadata_url;

  bool empty() const noexcept { return tools.empty() && prompts.empty() && resources.empty(); }
  /// The scopes `name` of that kind ("tool", "prompt", "resource") needs,
  /// each once, in the order the patterns name them.
  std::vector<std::string> required(std::string_view kind, std::string_view name) const;
  /// Those of `required` not in `granted`.
  static std::vector<std::string> missing(const std::vector<std::string>& required,
                                          const std::vector<std::string>& granted);
};

struct operations_options {
  // -- scopes (auth.mode "oauth") --
  scope_rules scopes;

  // -- rate limits --
  limiter_config limits = default_limiter_config();
  /// Known keys by the SHA-256 (hex) of the key.
  std::map<std::string, key_settings> keys;
  /// The key file's live keys (`auth.mode` "keys"); an entry there wins over
  /// `keys`. Null without a key file.
  std::shared_ptr<key_store> api_keys;
  /// Tier of a bearer key not listed in `keys`.
  std::string default_tier = "free";
  /// Tier of callers without a key (empty: no per-caller limit). Binding a
  /// server without authentication to loopback is what makes this safe.
  std::string anonymous_tier;
  /// Park limited calls (up to `max_limit_wait`) instead of refusing them.
  bool queue_on_limit = false;
  std::chrono::milliseconds max_limit_wait{30000};
  /// Distinct callers with buckets at most (a flood of keys must not grow
  /// memory): beyond it, idle ones are forgotten and newcomers refused.
  std::size_t max_tracked_callers = 100000;

  // -- priority queue (downstream calls) --
  queue_config queue;
  /// Calls running at once per downstream service; more wait in the queue.
  uint32_t max_concurrent_per_service = 64;
  /// Priority per exposed tool name (beats the key's and the service's).
  std::map<std::string, priority> tool_priorities;

  // -- cache --
  std::size_t cache_entries = 10000;
  std::size_t cache_bytes = 64 << 20;

  // -- health and alerts --
  health_settings health;
  alert_config alerts = default_alert_config();
  webhook_settings webhook;
  telemetry_settings telemetry;
  /// Identities ("key:<sha256>") whose 2025-era sessions get alerts as log
  /// notifications.
  std::vector<std::string> admin_identities;

  // -- shared state (several instances) --
  redis_settings redis;

  // -- admin API --
  /// SHA-256 (hex) of the admin token; empty: views only, no actions.
  std::string admin_token_sha256;

  // -- metrics --
  /// SHA-256 (hex) of the token `/metrics` and `/metrics.json` demand as
  /// `Authorization: Bearer`; empty: they are open.
  std::string metrics_token_sha256;
  /// Served on the admin listener only (with `admin.port`), not on the MCP
  /// one.
  bool metrics_on_admin_only = false;
};

// -- shared state (Redis) --------------------------------------------------------

/// Where a `redis://HOST:PORT/DB` URL points.
struct redis_endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int db = 0;
  std::string user; ///< A Redis 6 ACL user; empty: the default user.
  std::string password;
};

/// Parses a `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` URL (user and
/// password percent-decoded); an empty host with `error` set when it is not
/// one.
redis_endpoint parse_redis_url(const std::string& url, std::string& error);

// -- HTTP and authentication -----------------------------------------------------

/// `auth.mode` "oauth": Bulwark as an OAuth 2.1 resource server. Access
/// tokens are JWTs from an authorization server, verified against its
/// public keys (a JWK Set file) and the claims below.
struct oauth_settings {
  /// The authorization server's issuer identifier (`iss`, compared exactly).
  std::string issuer;
  /// This server's canonical URI (RFC 8707): tokens must name it in `aud`;
  /// the protected resource metadata names it as `resource`.
  std::string resource;
  /// Listed in the metadata; empty: the issuer.
  std::vector<std::string> authorization_servers;
  /// The JWK Set file; re-read when it changes.
  std::string jwks_file;
  /// Leeway on `exp` and `nbf` for clocks that disagree.
  std::chrono::seconds clock_skew{60};
  /// `scopes_supported` in the metadata and `scope` in challenges (optional).
  std::vector<std::string> scopes_supported;
  /// Scopes granted by a claim's value ("groups=admins" -> scopes): a token
  /// whose claim is that string, or an array holding it, has them besides
  /// its `scope` claim (`auth.oauth.claimScopes`).
  std::map<std::string, std::vector<std::string>> claim_scopes;
};

/// Where the protected resource metadata is served (RFC 9728 §3): the
/// well-known path with the resource's path appended.
std::string resource_metadata_path(const oauth_settings& s);
/// The absolute URL of the metadata document.
std::string resource_metadata_url(const oauth_settings& s);

/// Checks oauth settings; returns what is wrong (with the config key's
/// path) or an empty string.
std::string check_oauth_settings(const oauth_settings& s);

/// The scheme and authority of an absolute URI ("https://host:port"); empty
/// when `uri` has no scheme.
std::string_view uri_origin(std::string_view uri);

/// The HTTP transport: where it listens and what it admits.
struct http_options {
  std::string address = "127.0.0.1";
  uint16_t port = 8080; ///< 0 picks a free port.
  std::string path = "/mcp"; ///< Empty: no MCP endpoint (an admin-only listener).
  std::size_t body_limit = 1 << 20; ///< Larger bodies get 413.
  std::size_t header_limit = 16 << 10; ///< Larger header blocks get 431.
  std::size_t max_connections = 1024;
  /// Connections from one client address that no request has yet named a
  /// caller for (new ones, and those whose requests went elsewhere than the
  /// MCP path); more are answered with 503 and closed at once. A coarse
  /// flood guard: it is checked before anything is read.
  std::size_t max_connections_per_address = 512;
  /// Connections one identity holds from one client address, counted from
  /// its first request on the MCP path (the identity is known then); a
  /// request that would take more is answered with 503 and its connection
  /// closed. (HTTP/1.1 runs one request per connection at a time, so this
  /// also bounds one caller's stateless requests in flight.) A caller that
  /// floods an address with connections uses up its own share, not the
  /// address: other callers from the same host are still served.
  std::size_t max_connections_per_identity = 512;
  std::chrono::seconds read_timeout{30}; ///< To receive one whole request.
  std::chrono::seconds idle_timeout{120}; ///< Keep-alive between requests.
  /// A write the client takes no byte of for this long ends the connection
  /// (and the SSE stream on it) with a reset. While bytes wait for the
  /// client, the idle and read timeouts wait too.
  std::chrono::seconds write_timeout{30};
  /// An event stream with nothing to send this long sends a comment, so
  /// that proxies with an idle timeout keep it (0: never).
  std::chrono::seconds sse_keep_alive{15};
  /// Bytes of answers waiting for the client to take them, per connection
  /// (an SSE stream is one connection's answer). A write that would queue
  /// more ends the connection with a reset; one answer larger than this
  /// still goes out when nothing else waits.
  std::size_t write_queue_limit = 4 << 20;
  std::chrono::seconds sse_keepalive{15}; ///< Comment lines on quiet streams.
  /// Origins allowed besides loopback ones (exact `scheme://host[:port]`).
  std::vector<std::string> allowed_origins;
  /// `Access-Control-Max-Age` of preflight answers to allowed origins.
  int cors_max_age = 600;
  /// Host names allowed besides loopback ones (without port).
  std::vector<std::string> allowed_hosts;
  /// Check Host and Origin against loopback names (DNS-rebinding defence).
  bool check_origin = true;
  int threads = 1;
  /// Who may use the MCP path (`auth.mode`); null admits everyone, named
  /// by their bearer key or as `anonymous`. Other paths are not asked.
  std::shared_ptr<const authenticator> auth;
  /// Answer every POST with an empty result on the I/O thread, bypassing the
  /// actors: the ceiling the benchmark compares the real path against.
  bool echo_mode = false;
};

// -- the protocol core -----------------------------------------------------------

/// Settings of the protocol core; the config layer fills them.
struct runtime_options {
  std::string server_name = "bulwark";
  std::string server_version = "0.1.0";
  std::string instructions;
  /// Items per page of tools/list, resources/list, prompts/list, ...
  std::size_t page_size = 100;
  /// `ttlMs` on 2026-07-28 list results and resource reads.
  int64_t list_ttl_ms = 60000;
  /// Tasks (the tasks extension): how long a task is kept from its
  /// creation (its `ttlMs`), the polling interval suggested to clients, and
  /// how many tasks one identity may hold at once (the oldest finished ones
  /// make room; past that a new task is refused with -32008, HTTP 429).
  int64_t task_ttl_ms = 3600000;
  int64_t task_poll_interval_ms = 500;
  std::size_t max_tasks_per_identity = 64;
  /// Events kept per SSE stream for `Last-Event-ID` replay.
  std::size_t replay_events = 256;
  /// 2025-era sessions idle for longer than this are ended.
  std::chrono::seconds session_idle_timeout{3600};
  /// 2025-era sessions one identity (an API key, or `anonymous`) may hold
  /// at once; `initialize` beyond it is refused with session_limit.
  std::size_t max_sessions_per_identity = 256;
  std::size_t max_sessions = 10000; ///< 2025-era sessions of all callers at once.
  /// Requests of one 2025-era session in flight at once; more are refused
  /// with session_limit (HTTP 429).
  std::size_t max_concurrent_requests = 32;
  /// SSE streams of one 2025-era session: its GET stream and the POST
  /// answers that became streams.
  std::size_t max_streams = 8;
  /// Restart intensity of each supervisor: at most `max_restarts` restarts
  /// of its children within `restart_window`, then escalate. (A session
  /// actor has its own: a crash-looping session ends alone.)
  uint32_t max_restarts = 5;
  std::chrono::seconds restart_window{10};
  /// Back-off between restarts in one window: the first is immediate, then
  /// `restart_backoff_initial`, doubling up to `restart_backoff_max`.
  std::chrono::milliseconds restart_backoff_initial{50};
  std::chrono::milliseconds restart_backoff_max{2000};
  /// Check tools/call arguments against the tool's input schema (-32602
  /// listing every failing field).
  bool validate_arguments = true;
  /// Files holding the keys that seal `requestState` (`sessions.stateKeyFile`,
  /// `sessions.previousStateKeyFile`): every instance of a fleet seals with
  /// the same key, so any of them continues a round another began.
  std::string state_key_file, previous_state_key_file;
  /// What those files hold (read when the configuration is read). With no
  /// file, a key shared through Redis, or without Redis one of this
  /// process's own.
  std::string state_key, previous_state_key;
  /// Rate limits, queue, cache bounds, health checks and alerts.
  operations_options ops;
};

} // namespace bulwark
