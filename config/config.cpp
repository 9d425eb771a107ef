#include "config/config.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include <arpa/inet.h>

#include "messages/crypto.hpp"
#include "messages/json.hpp"
#include "messages/text.hpp"
#include "transport/redis_client.hpp"

namespace bulwark {

namespace {

using json::value;

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  throw config_error("config: " + path + ": " + why);
}

/// Walks one object and refuses keys it does not know.
class section {
public:
  section(const value& v, std::string path) : v_(v), path_(std::move(path)) {
    if (!v_.is_object())
      bad(path_, "must be an object");
  }

  ~section() noexcept(false) {
    if (std::uncaught_exceptions() > 0)
      return;
    done();
  }

  /// Refuses the keys not read so far. Called before a check that spans
  /// several keys, so that a misspelt key ("comand") is named as unknown
  /// rather than reported as a missing one.
  void done() const {
    for (auto& [k, item] : v_.as_object())
      if (!seen_.count(k))
        bad(path_ + "." + k, "unknown key");
  }

  const value* get(const std::string& key) {
    seen_.insert(key);
    return v_.find(key);
  }

  std::string path(const std::string& key) const {
    return path_ + "." + key;
  }

  void str(const std::string& key, std::string& out) {
    if (auto* x = get(key)) {
      if (!x->is_string())
        bad(path(key), "must be a string");
      out = x->as_string();
    }
  }

  void boolean(const std::string& key, bool& out) {
    if (auto* x = get(key)) {
      if (!x->is_bool())
        bad(path(key), "must be true or false");
      out = x->as_bool();
    }
  }

  template <class Int>
  void integer(const std::string& key, Int& out, long long lo, long long hi) {
    if (auto* x = get(key)) {
      if (!x->is_integer())
        bad(path(key), "must be an integer");
      auto n = x->as_int();
      if (n < lo || n > hi)
        bad(path(key), "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
      out = static_cast<Int>(n);
    }
  }

  void seconds(const std::string& key, std::chrono::seconds& out, long long lo, long long hi) {
    long long n = out.count();
    integer(key, n, lo, hi);
    out = std::chrono::seconds(n);
  }

  void millis(const std::string& key, std::chrono::milliseconds& out, long long lo, long long hi) {
    long long n = out.count();
    integer(key, n, lo, hi);
    out = std::chrono::milliseconds(n);
  }

  void number(const std::string& key, double& out, double lo, double hi) {
    if (auto* x = get(key)) {
      if (!x->is_number())
        bad(path(key), "must be a number");
      auto n = x->as_double();
      if (n < lo || n > hi)
      {
        std::ostringstream why;
        why << "must be between " << lo << " and " << hi;
        bad(path(key), why.str());
      }
      out = n;
    }
  }

  /// An object of string values, in document order.
  void string_pairs(const std::string& key, std::vector<std::pair<std::string, std::string>>& out) {
    if (auto* x = get(key)) {
      if (!x->is_object())
        bad(path(key), "must be an object of strings");
      out.clear();
      for (auto& [k, v] : x->as_object()) {
        if (!v.is_string())
          bad(path(key) + "." + k, "must be a string");
        out.emplace_back(k, v.as_string());
      }
    }
  }

  void strings(const std::string& key, std::vector<std::string>& out) {
    if (auto* x = get(key)) {
      if (!x->is_array())
        bad(path(key), "must be an array of strings");
      out.clear();
      for (auto& s : x->as_array()) {
        if (!s.is_string())
          bad(path(key), "must be an array of strings");
        out.push_back(s.as_string());
      }
    }
  }

private:
  const value& v_;
  std::string path_;
  std::set<std::string> seen_;
};

prefix_mode prefix_of(const std::string& path, const std::string& s) {
  if (s == "conditional")
    return prefix_mode::conditional;
  if (s == "always")
    return prefix_mode::always;
  if (s == "never")
    return prefix_mode::never;
  bad(path, "must be one of conditional, always, never");
}

void check_separator(const std::string& path, const std::string& sep) {
  if (sep.empty() || sep.size() > 8)
    bad(path, "must be 1 to 8 characters");
  for (char c : sep)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/'))
      bad(path, "may hold only letters, digits, '_', '-', '.' and '/'");
}

bool is_https(const std::string& url) {
  return url.rfind("https://", 0) == 0;
}

/// The URL of an HTTP peer (a service, the alert webhook).
void check_http_url(const std::string& path, const std::string& url) {
  if (!is_https(url) && url.rfind("http://", 0) != 0)
    bad(path, "must be an http:// or https:// URL");
  auto host = url.find("://") + 3;
  auto at = url.find('@', host);
  if (at != std::string::npos && at < url.find_first_of("/?#", host))
    bad(path, "user information (user:password@) is not supported: send credentials in \"headers\"");
}

/// The `tls` key of `sec` (at `path`): files to trust and to present for
/// an https:// URL (the caller checks that the URL is one).
void parse_tls(section& sec, const std::string& path, service_tls& tls) {
  auto* t = sec.get("tls");
  if (!t)
    return;
  section ts(*t, path + ".tls");
  ts.str("caFile", tls.ca_file);
  ts.str("certFile", tls.cert_file);
  ts.str("keyFile", tls.key_file);
  ts.done();
  if (tls.cert_file.empty() != tls.key_file.empty())
    bad(path + ".tls", "certFile and keyFile go together");
  // Readable now, so that a typo fails start-up rather than every call.
  for (auto [key, file] : {std::pair{"caFile", &tls.ca_file}, std::pair{"certFile", &tls.cert_file},
                           std::pair{"keyFile", &tls.key_file}})
    if (!file->empty() && !std::ifstream(*file))
      bad(path + ".tls." + key, "cannot read '" + *file + "'");
}

void parse_settings(const value& v, const std::string& path, service_settings& st) {
  section sec(v, path);
  sec.millis("timeoutMs", st.timeout, 1, 3600000);
  if (auto* r = sec.get("retry")) {
    section rs(*r, path + ".retry");
    rs.integer("attempts", st.retry.attempts, 1, 10);
    rs.millis("baseDelayMs", st.retry.base_delay, 0, 600000);
    rs.millis("maxDelayMs", st.retry.max_delay, 0, 600000);
    rs.number("jitter", st.retry.jitter, 0, 1);
    rs.done();
    if (st.retry.max_delay < st.retry.base_delay)
      bad(path + ".retry.maxDelayMs", "must not be below baseDelayMs");
  }
  if (auto* b = sec.get("breaker")) {
    section bs(*b, path + ".breaker");
    bs.integer("consecutiveFailures", st.breaker.consecutive_failures, 1, 100000);
    bs.number("failureRate", st.breaker.failure_rate, 0.01, 1);
    bs.seconds("windowSeconds", st.breaker.window, 1, 86400);
    bs.integer("minimumCalls", st.breaker.minimum_calls, 1, 1000000);
    bs.millis("openMs", st.breaker.open_duration, 1, 86400000);
    bs.integer("halfOpenProbes", st.breaker.half_open_probes, 1, 1000);
    bs.integer("successesToClose", st.breaker.successes_to_close, 1, 1000);
  }
  if (auto* c = sec.get("cache")) {
    section cs(*c, path + ".cache");
    cs.millis("ttlMs", st.cache_ttl, 0, 86400000LL * 7);
    cs.millis("maxStaleMs", st.max_stale, 0, 86400000LL * 7);
    cs.strings("tools", st.cacheable_tools);
    cs.boolean("resources", st.cache_resources);
    std::string scope;
    cs.str("scope", scope);
    if (scope == "public")
      st.cache_public = true;
    else if (scope == "private")
      st.cache_public = false;
    else if (!scope.empty())
      bad(path + ".cache.scope", "must be \"private\" or \"public\"");
  }
  sec.strings("idempotentTools", st.idempotent_tools);
  sec.integer("ratePerMinute", st.rate_per_minute, 0, 100000000);
  sec.str("priority", st.priority);
  if (st.priority != "critical" && st.priority != "high" && st.priority != "normal" && st.priority != "low")
    bad(path + ".priority", "must be one of critical, high, normal, low");
  std::string fb;
  sec.str("fallback", fb);
  if (fb == "stale")
    st.fallback = fallback_mode::stale;
  else if (fb == "static")
    st.fallback = fallback_mode::static_message;
  else if (fb == "none")
    st.fallback = fallback_mode::none;
  else if (!fb.empty())
    bad(path + ".fallback", "must be one of stale, static, none");
  sec.str("fallbackMessage", st.fallback_message);
  sec.str("protocol", st.protocol);
  if (st.protocol != "auto" && st.protocol != "2025-11-25" && st.protocol != "2026-07-28")
    bad(path + ".protocol", "must be one of auto, 2025-11-25, 2026-07-28");
  std::string pm;
  sec.str("prefix", pm);
  if (!pm.empty())
    st.prefix = prefix_of(path + ".prefix", pm);
  if (auto* sp = sec.get("separator")) {
    if (!sp->is_string())
      bad(path + ".separator", "must be a string");
    check_separator(path + ".separator", sp->as_string());
    st.separator = sp->as_string();
  }
  parse_tls(sec, path, st.tls);
  sec.done();
  if (st.fallback == fallback_mode::static_message && st.fallback_message.empty())
    bad(path + ".fallbackMessage", "is required when fallback is \"static\"");
}

/// `mcpServers` (how to reach each service) and `services` (how to treat it).
void parse_gateway(section& top, gateway_config& gw) {
  if (auto* g = top.get("gateway")) {
    section sec(*g, "$.gateway");
    std::string pm;
    sec.str("prefix", pm);
    if (!pm.empty())
      gw.prefix = prefix_of("$.gateway.prefix", pm);
    sec.str("separator", gw.separator);
    check_separator("$.gateway.separator", gw.separator);
    sec.integer("childMaxRestarts", gw.child_max_restarts, 0, 1000);
    sec.boolean("gatewayTools", gw.gateway_tools);
    auto read_policy = [](const value& v, const std::string& path, access_policy& out) {
      section ps(v, path);
      ps.strings("allow", out.allow);
      ps.strings("deny", out.deny);
      for (auto* list : {&out.allow, &out.deny})
        for (auto& pattern : *list)
          if (pattern.find(':') == std::string::npos)
            bad(path, "pattern '" + pattern + "' must have the form server:tool (wildcards allowed)");
    };
    if (auto* p = sec.get("policy"))
      read_policy(*p, "$.gateway.policy", gw.policy);
    if (auto* a = sec.get("agents")) {
      if (!a->is_object())
        bad("$.gateway.agents", "must be an object keyed by client name");
      for (auto& [agent, pv] : a->as_object())
        read_policy(pv, "$.gateway.agents." + agent, gw.agents[agent]);
    }
    sec.seconds("childRestartWindowSeconds", gw.child_restart_window, 1, 86400);
  }
  if (auto* m = top.get("mcpServers")) {
    if (!m->is_object())
      bad("$.mcpServers", "must be an object of servers");
    gw.services.clear();
    for (auto& [name, entry] : m->as_object()) {
      auto path = "$.mcpServers." + name;
      if (name.empty() || name.size() > 64)
        bad(path, "a server name must be 1 to 64 characters");
      for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
          bad(path, "a server name may hold only letters, digits, '_' and '-'");
      service_config svc;
      svc.name = name;
      section sec(entry, path);
      sec.str("command", svc.command);
      sec.strings("args", svc.args);
      std::vector<std::pair<std::string, std::string>> env;
      sec.string_pairs("env", env);
      svc.env.insert(env.begin(), env.end());
      sec.str("cwd", svc.cwd);
      sec.strings("inheritEnv", svc.inherit_env);
      sec.str("url", svc.url);
      sec.string_pairs("headers", svc.headers);
      // Other clients' way of naming the transport; when given, it must
      // agree with what the entry holds.
      std::string type;
      sec.str("type", type);
      sec.done();
      if (!type.empty() && type != "stdio" && type != "http" && type != "streamable-http")
        bad(path + ".type", "must be stdio, http or streamable-http (sse is not supported)");
      if (svc.command.empty() == svc.url.empty())
        bad(path, "needs exactly one of \"command\" (stdio) or \"url\" (Streamable HTTP)");
      if (type == "stdio" && !svc.url.empty())
        bad(path + ".type", "is \"stdio\", but the entry has a \"url\" (stdio servers are started by \"command\")");
      if ((type == "http" || type == "streamable-http") && !svc.command.empty())
        bad(path + ".type", "is \"" + type + "\", but the entry has a \"command\" (HTTP servers are reached by \"url\")");
      for (auto& name : svc.inherit_env)
        if (name.empty() || name.find('=') != std::string::npos)
          bad(path + ".inheritEnv", "holds \"" + name + "\", which is no variable name");
      if (!svc.url.empty())
        check_http_url(path + ".url", svc.url);
      if (!svc.url.empty() && (!svc.args.empty() || !svc.env.empty() || !svc.cwd.empty() || !svc.inherit_env.empty()))
        bad(path, "args, env, inheritEnv and cwd apply to stdio servers (\"command\") only");
      if (!svc.command.empty() && !svc.headers.empty())
        bad(path + ".headers", "headers apply to HTTP servers (\"url\") only");
      gw.services.push_back(std::move(svc));
    }
  }
  if (auto* s = top.get("services")) {
    if (!s->is_object())
      bad("$.services", "must be an object keyed by server name");
    for (auto& [name, settings] : s->as_object()) {
      auto it = std::find_if(gw.services.begin(), gw.services.end(),
                             [&](const service_config& c) { return c.name == name; });
      if (it == gw.services.end())
        bad("$.services." + name, "no server of that name in mcpServers");
      parse_settings(settings, "$.services." + name, it->settings);
      if (!it->settings.tls.empty() && !is_https(it->url))
        bad("$.services." + name + ".tls", "applies to https:// servers only");
    }
  }
}

/// `{"perSecond": n, "perMinute": n, "perHour": n, "perDay": n}` -> windows.
std::vector<rate_limit> parse_windows(const value& v, const std::string& path) {
  section sec(v, path);
  std::vector<rate_limit> out;
  const std::pair<const char*, std::chrono::milliseconds> spans[] = {
    {"perSecond", std::chrono::seconds(1)}, {"perMinute", std::chrono::minutes(1)},
    {"perHour", std::chrono::hours(1)}, {"perDay", std::chrono::hours(24)}};
  for (auto& [key, per] : spans) {
    long long n = -1;
    sec.integer(key, n, 1, 1000000000);
    if (n > 0)
      out.push_back(rate_limit{static_cast<uint64_t>(n), per});
  }
  for (auto& [key, item] : v.as_object())
    if (std::none_of(std::begin(spans), std::end(spans), [&](auto& s) { return key == s.first; }))
      bad(path + "." + key, "unknown key (expected perSecond, perMinute, perHour or perDay)");
  if (out.empty())
    bad(path, "needs at least one of perSecond, perMinute, perHour, perDay");
  return out;
}

priority priority_of(const std::string& path, const std::string& s) {
  auto p = parse_priority(s);
  if (!p)
    bad(path, "must be one of critical, high, normal, low");
  return *p;
}

void parse_operations(section& top, config& cfg) {
  auto& ops = cfg.runtime.ops;
  if (auto* r = top.get("rateLimits")) {
    section sec(*r, "$.rateLimits");
    if (auto* t = sec.get("tiers")) {
      if (!t->is_object())
        bad("$.rateLimits.tiers", "must be an object keyed by tier name");
      for (auto& [name, windows] : t->as_object())
        ops.limits.tiers[name] = parse_windows(windows, "$.rateLimits.tiers." + name);
    }
    if (auto* g = sec.get("global"))
      ops.limits.global = parse_windows(*g, "$.rateLimits.global");
    if (auto* k = sec.get("keys")) {
      if (!k->is_object())
        bad("$.rateLimits.keys", "must be an object keyed by the SHA-256 (hex) of each API key");
      for (auto& [hash, entry] : k->as_object()) {
        auto path = "$.rateLimits.keys." + hash;
        if (hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos)
          bad(path, "a key is named by the lower-case hex SHA-256 of the key (64 characters), never the key itself");
        section ks(entry, path);
        key_settings settings;
        ks.str("tier", settings.tier);
        std::string prio;
        ks.str("priority", prio);
        if (!prio.empty())
          settings.prio = priority_of(path + ".priority", prio);
        ops.keys[hash] = settings;
      }
    }
    sec.str("defaultTier", ops.default_tier);
    sec.str("anonymousTier", ops.anonymous_tier);
    std::string mode;
    sec.str("onLimit", mode);
    if (mode == "queue")
      ops.queue_on_limit = true;
    else if (mode == "refuse")
      ops.queue_on_limit = false;
    else if (!mode.empty())
      bad("$.rateLimits.onLimit", "must be \"refuse\" or \"queue\"");
    sec.millis("maxQueueWaitMs", ops.max_limit_wait, 1, 3600000);
    sec.integer("maxTrackedCallers", ops.max_tracked_callers, 1, 100000000);
  }
  auto check_tier = [&](const std::string& path, const std::string& tier) {
    if (!tier.empty() && !ops.limits.tiers.count(tier))
      bad(path, "no tier named '" + tier + "' in rateLimits.tiers");
  };
  check_tier("$.rateLimits.defaultTier", ops.default_tier);
  check_tier("$.rateLimits.anonymousTier", ops.anonymous_tier);
  for (auto& [hash, k] : ops.keys)
    check_tier("$.rateLimits.keys." + hash + ".tier", k.tier);
  if (auto* q = top.get("queue")) {
    section sec(*q, "$.queue");
    sec.integer("capacity", ops.queue.capacity, 1, 10000000);
    sec.millis("agingMs", ops.queue.aging, 0, 3600000);
    sec.integer("maxConcurrentPerService", ops.max_concurrent_per_service, 1, 100000);
    std::vector<std::pair<std::string, std::string>> prios;
    sec.string_pairs("toolPriorities", prios);
    for (auto& [tool, p] : prios)
      ops.tool_priorities[tool] = priority_of("$.queue.toolPriorities." + tool, p);
  }
  if (auto* c = top.get("cache")) {
    section sec(*c, "$.cache");
    sec.integer("maxEntries", ops.cache_entries, 1, 100000000);
    sec.integer("maxBytes", ops.cache_bytes, 1024, 1LL << 40);
  }
  if (auto* h = top.get("health")) {
    section sec(*h, "$.health");
    sec.millis("intervalMs", ops.health.interval, 50, 600000);
    sec.integer("enterChecks", ops.health.enter_checks, 1, 1000);
    sec.millis("exitAfterMs", ops.health.exit_after, 0, 86400000);
    sec.seconds("stormWindowSeconds", ops.health.storm_window, 1, 86400);
    sec.integer("restartStorm", ops.health.thresholds.restart_storm, 0, 1000000);
    sec.number("queueFill", ops.health.thresholds.queue_fill, 0, 1);
    sec.number("degradedBudgetScale", ops.health.degraded_budget_scale, 0.01, 1);
  }
  if (auto* a = top.get("admin")) {
    section sec(*a, "$.admin");
    sec.str("tokenSha256", ops.admin_token_sha256);
    sec.integer("port", cfg.admin_port, -1, 65535);
    sec.str("address", cfg.admin_address);
    auto& t = ops.admin_token_sha256;
    if (!t.empty() && (t.size() != 64 || t.find_first_not_of("0123456789abcdef") != std::string::npos))
      bad("$.admin.tokenSha256", "must be the lower-case hex SHA-256 of the admin token (64 characters)");
  }
  if (auto* m = top.get("metrics")) {
    section sec(*m, "$.metrics");
    sec.str("tokenSha256", ops.metrics_token_sha256);
    std::string listener;
    sec.str("listener", listener);
    sec.done();
    auto& t = ops.metrics_token_sha256;
    if (!t.empty() && (t.size() != 64 || t.find_first_not_of("0123456789abcdef") != std::string::npos))
      bad("$.metrics.tokenSha256", "must be the lower-case hex SHA-256 of the metrics token (64 characters)");
    if (listener == "admin")
      ops.metrics_on_admin_only = true;
    else if (!listener.empty() && listener != "main")
      bad("$.metrics.listener", "must be \"main\" or \"admin\"");
    if (ops.metrics_on_admin_only && cfg.admin_port < 0)
      bad("$.metrics.listener", "is \"admin\", but there is no admin listener (set admin.port)");
  }
  if (auto* a = top.get("alerts")) {
    section sec(*a, "$.alerts");
    if (auto* rules = sec.get("rules")) {
      if (!rules->is_object())
        bad("$.alerts.rules", "must be an object keyed by rule name");
      for (auto& [rule, settings] : rules->as_object()) {
        auto path = "$.alerts.rules." + rule;
        if (!settings.is_object())
          bad(path, "must be an object");
        for (auto& [key, v] : settings.as_object()) {
          double n = v.is_bool() ? (v.as_bool() ? 1 : 0) : v.as_double();
          if (!v.is_bool() && !v.is_number())
            bad(path + "." + key, "must be a number (enabled: true or false)");
          auto err = apply_alert_setting(ops.alerts, rule, key, n);
          if (!err.empty())
            bad(path + "." + key, err);
        }
      }
    }
    if (auto* w = sec.get("webhook")) {
      section ws(*w, "$.alerts.webhook");
      ws.str("url", ops.webhook.url);
      parse_tls(ws, "$.alerts.webhook", ops.webhook.tls);
      ws.string_pairs("headers", ops.webhook.headers);
      ws.millis("timeoutMs", ops.webhook.timeout, 1, 600000);
      ws.integer("attempts", ops.webhook.attempts, 1, 20);
      ws.millis("baseDelayMs", ops.webhook.base_delay, 0, 600000);
      ws.done();
      check_http_url("$.alerts.webhook.url", ops.webhook.url);
      if (!ops.webhook.tls.empty() && !is_https(ops.webhook.url))
        bad("$.alerts.webhook.tls", "applies to https:// URLs only");
    }
    sec.strings("adminKeys", ops.admin_identities);
    for (auto& k : ops.admin_identities) {
      if (k.size() != 64 || k.find_first_not_of("0123456789abcdef") != std::string::npos)
        bad("$.alerts.adminKeys", "each entry is the lower-case hex SHA-256 of an API key");
      k = "key:" + k;
    }
  }
}

/// A Redis URL fit for logs: its password replaced.
/// Whatever its scheme (a mistyped one included), everything before the
/// last '@' after it is taken for credentials.
std::string without_password(const std::string& url) {
  auto at = url.rfind('@');
  if (at == std::string::npos)
    return url;
  auto scheme = url.find("://");
  auto from = scheme == std::string::npos || scheme > at ? 0 : scheme + 3;
  return url.substr(0, from) + "***" + url.substr(at);
}

/// An empty URL is "no Redis"; anything else must be a redis:// URL. The
/// error shows the URL without its password.
void check_redis_url(const std::string& path, const std::string& url) {
  if (url.empty())
    return;
  std::string error;
  parse_redis_url(url, error);
  if (!error.empty())
    bad(path, "\"" + without_password(url) + "\": " + error + " (expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB])");
}

log_level level_of(const std::string& path, const std::string& s) {
  auto lvl = parse_log_level(s);
  if (!lvl)
    bad(path, "must be one of debug, info, notice, warning, error, critical, alert, emergency");
  return *lvl;
}

} // namespace

void apply_json(config& cfg, const std::string& text, const std::string& origin) {
  value root;
  json::parse_error err;
  if (!json::parse(text, root, err))
    throw config_error("config: " + origin + ": " + err.message);
  section top(root, "$");
  if (auto* s = top.get("server")) {
    section sec(*s, "$.server");
    sec.str("name", cfg.runtime.server_name);
    sec.str("version", cfg.runtime.server_version);
    sec.str("instructions", cfg.runtime.instructions);
  }
  if (auto* h = top.get("http")) {
    section sec(*h, "$.http");
    sec.boolean("enabled", cfg.http_enabled);
    sec.str("address", cfg.http.address);
    sec.integer("port", cfg.http.port, 0, 65535);
    sec.str("path", cfg.http.path);
    if (cfg.http.path.empty() || cfg.http.path.front() != '/')
      bad("$.http.path", "must start with '/'");
    sec.integer("bodyLimitBytes", cfg.http.body_limit, 1024, 64LL << 20);
    sec.integer("headerLimitBytes", cfg.http.header_limit, 1024, 1 << 20);
    sec.integer("maxConnections", cfg.http.max_connections, 1, 1000000);
    sec.seconds("readTimeoutSeconds", cfg.http.read_timeout, 1, 3600);
    sec.seconds("idleTimeoutSeconds", cfg.http.idle_timeout, 1, 86400);
    sec.seconds("writeTimeoutSeconds", cfg.http.write_timeout, 1, 3600);
    sec.integer("writeQueueLimitBytes", cfg.http.write_queue_limit, 16 << 10, 1LL << 30);
    sec.strings("allowedOrigins", cfg.http.allowed_origins);
    sec.strings("allowedHosts", cfg.http.allowed_hosts);
    sec.integer("threads", cfg.http.threads, 1, 64);
    sec.integer("maxConnectionsPerAddress", cfg.http.max_connections_per_address, 1, 1000000);
    sec.integer("maxConnectionsPerIdentity", cfg.http.max_connections_per_identity, 1, 1000000);
    sec.integer("corsMaxAgeSeconds", cfg.http.cors_max_age, 0, 86400);
  }
  if (auto* a = top.get("auth")) {
    section sec(*a, "$.auth");
    std::string mode;
    sec.str("mode", mode);
    if (mode == "none")
      cfg.auth.mode = auth_mode::none;
    else if (mode == "keys")
      cfg.auth.mode = auth_mode::keys;
    else if (mode == "oauth")
      cfg.auth.mode = auth_mode::oauth;
    else if (!mode.empty())
      bad("$.auth.mode", "must be \"none\", \"keys\" or \"oauth\"");
    sec.str("keyFile", cfg.auth.key_file);
    sec.boolean("allowUnauthenticated", cfg.auth.allow_unauthenticated);
    if (auto* o = sec.get("oauth")) {
      section osec(*o, "$.auth.oauth");
      auto& oauth = cfg.auth.oauth;
      osec.str("issuer", oauth.issuer);
      osec.str("resource", oauth.resource);
      osec.strings("authorizationServers", oauth.authorization_servers);
      osec.str("jwksFile", oauth.jwks_file);
      osec.seconds("clockSkewSeconds", oauth.clock_skew, 0, 600);
      osec.strings("scopesSupported", oauth.scopes_supported);
    }
  }
  if (auto* s = top.get("errors")) {
    section sec(*s, "$.errors");
    std::string mode;
    sec.str("mode", mode);
    if (mode == "production")
      cfg.error_mode = mcp::error_mode::production;
    else if (mode == "development")
      cfg.error_mode = mcp::error_mode::development;
    else if (!mode.empty())
      bad("$.errors.mode", "must be \"production\" or \"development\"");
  }
  if (auto* s = top.get("audit")) {
    section sec(*s, "$.audit");
    sec.str("file", cfg.audit.file);
    sec.integer("maxBytes", cfg.audit.max_bytes, 1024, 1LL << 40);
    sec.integer("maxFiles", cfg.audit.max_files, 1, 1000);
  }
  if (auto* s = top.get("stdio")) {
    section sec(*s, "$.stdio");
    sec.boolean("enabled", cfg.stdio);
  }
  if (auto* s = top.get("sessions")) {
    section sec(*s, "$.sessions");
    sec.seconds("idleTimeoutSeconds", cfg.runtime.session_idle_timeout, 1, 7 * 86400);
    sec.integer("replayEvents", cfg.runtime.replay_events, 0, 100000);
    sec.integer("pageSize", cfg.runtime.page_size, 1, 10000);
    sec.integer("listTtlMs", cfg.runtime.list_ttl_ms, 0, 86400000LL);
    sec.integer("maxPerIdentity", cfg.runtime.max_sessions_per_identity, 1, 1000000);
    sec.integer("max", cfg.runtime.max_sessions, 1, 10000000);
    sec.integer("maxConcurrentRequests", cfg.runtime.max_concurrent_requests, 1, 100000);
    sec.integer("maxStreams", cfg.runtime.max_streams, 1, 1000);
  }
  if (auto* s = top.get("shutdown")) {
    section sec(*s, "$.shutdown");
    sec.seconds("drainSeconds", cfg.drain, 0, 3600);
  }
  if (auto* s = top.get("supervision")) {
    section sec(*s, "$.supervision");
    sec.integer("maxRestarts", cfg.runtime.max_restarts, 0, 1000);
    sec.seconds("windowSeconds", cfg.runtime.restart_window, 1, 3600);
    sec.millis("backoffInitialMs", cfg.runtime.restart_backoff_initial, 0, 60000);
    sec.millis("backoffMaxMs", cfg.runtime.restart_backoff_max, 0, 600000);
  }
  if (auto* s = top.get("actors")) {
    section sec(*s, "$.actors");
    sec.str("scheduler", cfg.scheduler);
    if (cfg.scheduler != "fused" && cfg.scheduler != "stealing")
      bad("$.actors.scheduler", "expected \"fused\" or \"stealing\", got \"" + cfg.scheduler
                         + "\"");
    sec.integer("workers", cfg.workers, 1, 64);
    sec.integer("spinMicros", cfg.spin_micros, 0, 10000);
    sec.integer("aggressivePollAttempts", cfg.aggressive_poll_attempts, 0, 100000);
    sec.integer("moderatePollAttempts", cfg.moderate_poll_attempts, 0, 100000);
  }
  parse_gateway(top, cfg.gateway);
  parse_operations(top, cfg);
  if (auto* r = top.get("redis")) {
    section sec(*r, "$.redis");
    auto& rs = cfg.runtime.ops.redis;
    sec.str("url", rs.url);
    check_redis_url("$.redis.url", rs.url);
    sec.str("keyPrefix", rs.key_prefix);
    sec.millis("connectTimeoutMs", rs.connect_timeout, 1, 60000);
    sec.millis("commandTimeoutMs", rs.command_timeout, 1, 60000);
    sec.millis("retryMs", rs.retry_interval, 10, 600000);
    sec.seconds("sessionTtlSeconds", rs.session_ttl, 0, 30 * 86400);
    sec.millis("cacheMaxTtlMs", rs.cache_max_ttl, 1000, 30 * 86400000LL);
    sec.millis("breakerTtlMs", rs.breaker_ttl, 1000, 86400000LL);
  }
  // A service budget is the gateway's `ratePerMinute`.
  for (auto& s : cfg.gateway.services)
    if (s.settings.rate_per_minute > 0)
      cfg.runtime.ops.limits.services[s.name] = {rate_limit{s.settings.rate_per_minute, std::chrono::minutes(1)}};
  if (auto* s = top.get("tools")) {
    section sec(*s, "$.tools");
    sec.boolean("builtin", cfg.builtin_tools);
    sec.boolean("conformanceFixtures", cfg.fixtures);
    sec.boolean("faultTools", cfg.fault_tools);
    sec.boolean("validateArguments", cfg.runtime.validate_arguments);
  }
  if (auto* s = top.get("log")) {
    section sec(*s, "$.log");
    std::string lvl;
    sec.str("level", lvl);
    if (!lvl.empty())
      cfg.log = level_of("$.log.level", lvl);
    sec.strings("redactKeys", cfg.redact_keys);
    sec.strings("redactPatterns", cfg.redact_patterns);
    for (std::size_t i = 0; i < cfg.redact_patterns.size(); ++i) {
      try {
        std::regex check(cfg.redact_patterns[i], std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        bad("$.log.redactPatterns[" + std::to_string(i) + "]", std::string("does not compile: ") + e.what());
      }
    }
  }
  cfg.source = origin;
  cfg.document = root; // (a copy: `top` still reads it when it ends)
}

void apply_env(config& cfg) {
  auto num = [](const char* name, long long lo, long long hi) -> std::optional<long long> {
    const char* v = std::getenv(name);
    if (!v || !*v)
      return std::nullopt;
    char* end = nullptr;
    long long n = std::strtoll(v, &end, 10);
    if (*end != '\0' || n < lo || n > hi)
      throw config_error(std::string("config: environment ") + name + ": must be an integer between "
                         + std::to_string(lo) + " and " + std::to_string(hi));
    return n;
  };
  if (auto p = num("BULWARK_PORT", 0, 65535))
    cfg.http.port = static_cast<uint16_t>(*p);
  if (const char* a = std::getenv("BULWARK_ADDRESS"); a && *a)
    cfg.http.address = a;
  if (const char* l = std::getenv("BULWARK_LOG_LEVEL"); l && *l)
    cfg.log = level_of("environment BULWARK_LOG_LEVEL", l);
  if (const char* t = std::getenv("BULWARK_ADMIN_TOKEN"); t && *t)
    cfg.runtime.ops.admin_token_sha256 = crypto::sha256_hex(t);
  if (const char* t = std::getenv("BULWARK_METRICS_TOKEN"); t && *t)
    cfg.runtime.ops.metrics_token_sha256 = crypto::sha256_hex(t);
  if (auto w = num("BULWARK_WORKERS", 1, 64))
    cfg.workers = static_cast<int>(*w);
  if (const char* r = std::getenv("BULWARK_REDIS"); r && *r) {
    cfg.runtime.ops.redis.url = r;
    check_redis_url("environment BULWARK_REDIS", r);
  }
}

bool loopback_address(const std::string& address) {
  if (text::lowered(address) == "localhost")
    return true;
  unsigned char raw[16];
  if (inet_pton(AF_INET, address.c_str(), raw) == 1)
    return raw[0] == 127;
  auto bare = address.size() > 2 && address.front() == '[' && address.back() == ']'
                ? address.substr(1, address.size() - 2)
                : address;
  if (inet_pton(AF_INET6, bare.c_str(), raw) != 1)
    return false;
  static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::equal(raw, raw + 16, v6_loopback) || (std::equal(raw, raw + 12, v4_mapped) && raw[12] == 127);
}

std::string usage() {
  return R"(usage: bulwark [options]

Serves MCP over Streamable HTTP (default 127.0.0.1:8080/mcp) and/or stdio.

  --config FILE        JSON config file (see config/examples/)
  --address ADDR       HTTP bind address (default 127.0.0.1)
  --port N             HTTP port (0 = pick a free one; the chosen port is logged)
  --no-http            do not serve HTTP
  --stdio              serve one client on stdin/stdout
  --fixtures           register the MCP conformance-suite fixtures
  --fault-tools        register tools that fail on purpose (gateway tests)
  --no-builtin-tools   do not register the built-in tools
  --key-file FILE      the API key file (auth.keyFile)
  --allow-unauthenticated
                       serve a non-loopback address with auth.mode "none"
  --dev                errors.mode "development": internal details in errors
  --workers N          CAF scheduler threads (default 1)
  --redis URL          share state with other instances through Redis (redis://HOST:PORT/DB)
  --log-level LEVEL    debug, info, notice, warning, error, critical, alert, emergency
  --print-config       print the effective configuration and exit
  --check-config FILE  check FILE as the server would read it (with the environment
                       and the other flags) and exit: 0, or 2 naming the key
  --help               this text

Environment: BULWARK_CONFIG, BULWARK_ADDRESS, BULWARK_PORT, BULWARK_LOG_LEVEL, BULWARK_WORKERS, BULWARK_REDIS,
BULWARK_ADMIN_TOKEN (the admin API's token; config holds only its SHA-256), BULWARK_METRICS_TOKEN
(the token /metrics demands; config: metrics.tokenSha256).

SIGHUP (or POST /admin/api/config/reload, or the console's reload) reads the
configuration again and applies what changed; keys that need a restart are refused.

API keys: bulwark keys create|list|revoke ... (see bulwark keys --help).
)";
}

bool apply_args(config& cfg, int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // The file comes first so that flags override it.
  std::string file;
  if (const char* env = std::getenv("BULWARK_CONFIG"); env && *env)
    file = env;
  for (std::size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--config") {
      if (i + 1 >= args.size())
        throw config_error("config: --config needs a file name");
      file = args[i + 1];
    }
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in)
      throw config_error("config: cannot read " + file);
    std::stringstream ss;
    ss << in.rdbuf();
    apply_json(cfg, ss.str(), file);
  }
  apply_env(cfg);
  bool print = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= args.size())
        throw config_error("config: " + a + " needs a value");
      return args[++i];
    };
    auto number = [&](long long lo, long long hi) {
      auto s = next();
      char* end = nullptr;
      long long n = std::strtoll(s.c_str(), &end, 10);
      if (s.empty() || *end != '\0' || n < lo || n > hi)
        throw config_error("config: " + a + ": must be an integer between " + std::to_string(lo)
                           + " and " + std::to_string(hi));
      return n;
    };
    if (a == "--config")
      ++i;
    else if (a == "--address")
      cfg.http.address = next();
    else if (a == "--port")
      cfg.http.port = static_cast<uint16_t>(number(0, 65535));
    else if (a == "--no-http")
      cfg.http_enabled = false;
    else if (a == "--stdio")
      cfg.stdio = true;
    else if (a == "--fixtures")
      cfg.fixtures = true;
    else if (a == "--fault-tools")
      cfg.fault_tools = true;
    else if (a == "--no-builtin-tools")
      cfg.builtin_tools = false;
    else if (a == "--key-file")
      cfg.auth.key_file = next();
    else if (a == "--allow-unauthenticated")
      cfg.auth.allow_unauthenticated = true;
    else if (a == "--dev")
      cfg.error_mode = mcp::error_mode::development;
    else if (a == "--workers")
      cfg.workers = static_cast<int>(number(1, 64));
    else if (a == "--redis") {
      cfg.runtime.ops.redis.url = next();
      check_redis_url("--redis", cfg.runtime.ops.redis.url);
    } else if (a == "--log-level")
      cfg.log = level_of("--log-level", next());
    else if (a == "--print-config")
      print = true;
    else if (a == "--help" || a == "-h") {
      std::cout << usage();
      return false;
    } else
      throw config_error("config: unknown option " + a + " (see --help)");
  }
  if (!cfg.http_enabled && !cfg.stdio)
    throw config_error("config: nothing to serve: enable HTTP or --stdio");
  if (cfg.auth.mode == auth_mode::keys && cfg.auth.key_file.empty())
    throw config_error("config: $.auth.keyFile: is required when auth.mode is \"keys\" (or pass --key-file)");
  if (cfg.auth.mode == auth_mode::oauth)
    if (auto why = check_oauth_settings(cfg.auth.oauth); !why.empty())
      throw config_error("config: " + why);
  if (cfg.http_enabled && cfg.auth.mode == auth_mode::none && !cfg.auth.allow_unauthenticated
      && !loopback_address(cfg.http.address))
    throw config_error("config: $.auth.mode: \"none\" serves anyone who can reach " + cfg.http.address
                       + ", which is not a loopback address; set auth.mode to \"keys\" (with auth.keyFile) or \"oauth\", "
                       "or auth.allowUnauthenticated to true (--allow-unauthenticated) to serve it without "
                       "authentication");
  if (print) {
    std::cout << describe(cfg) << "\n";
    return false;
  }
  return true;
}

std::string describe(const config& cfg) {
  value origins(json::array{});
  for (auto& o : cfg.http.allowed_origins)
    origins.push_back(o);
  auto v = value::make_object({
    {"source", cfg.source},
    {"server", value::make_object({{"name", cfg.runtime.server_name},
                                   {"version", cfg.runtime.server_version}})},
    {"http", value::make_object({{"enabled", cfg.http_enabled},
                                 {"address", cfg.http.address},
                                 {"port", static_cast<int>(cfg.http.port)},
                                 {"path", cfg.http.path},
                                 {"bodyLimitBytes", static_cast<unsigned long long>(cfg.http.body_limit)},
                                 {"allowedOrigins", std::move(origins)},
                                 {"maxConnections", static_cast<unsigned long long>(cfg.http.max_connections)},
                                 {"maxConnectionsPerAddress", static_cast<unsigned long long>(cfg.http.max_connections_per_address)},
                                 {"maxConnectionsPerIdentity", static_cast<unsigned long long>(cfg.http.max_connections_per_identity)},
                                 {"threads", cfg.http.threads}})},
    {"auth", value::make_object({{"mode", cfg.auth.mode == auth_mode::keys    ? "keys"
                                          : cfg.auth.mode == auth_mode::oauth ? "oauth"
                                                                              : "none"},
                                 {"keyFile", cfg.auth.key_file},
                                 {"allowUnauthenticated", cfg.auth.allow_unauthenticated},
                                 {"oauth", value::make_object({{"issuer", cfg.auth.oauth.issuer},
                                                               {"resource", cfg.auth.oauth.resource},
                                                               {"jwksFile", cfg.auth.oauth.jwks_file},
                                                               {"clockSkewSeconds", static_cast<long long>(cfg.auth.oauth.clock_skew.count())}})}})},
    {"stdio", value::make_object({{"enabled", cfg.stdio}})},
    {"tools", value::make_object({{"builtin", cfg.builtin_tools},
                                  {"conformanceFixtures", cfg.fixtures},
                                  {"faultTools", cfg.fault_tools}})},
    {"actors", value::make_object({{"scheduler", cfg.scheduler},
                                   {"workers", cfg.workers},
                                   {"spinMicros", cfg.spin_micros},
                                   {"aggressivePollAttempts", cfg.aggressive_poll_attempts},
                                   {"moderatePollAttempts", cfg.moderate_poll_attempts}})},
    {"log", value::make_object({{"level", std::string(to_string(cfg.log))}})},
    {"redis", value::make_object({{"url", without_password(cfg.runtime.ops.redis.url)},
                                  {"keyPrefix", cfg.runtime.ops.redis.key_prefix}})},
    {"errors", value::make_object({{"mode", cfg.error_mode == mcp::error_mode::development ? "development" : "production"}})},
    {"audit", value::make_object({{"file", cfg.audit.file},
                                  {"maxBytes", static_cast<unsigned long long>(cfg.audit.max_bytes)},
                                  {"maxFiles", cfg.audit.max_files}})},
  });
  return json::dump(v);
}

} // namespace bulwark
