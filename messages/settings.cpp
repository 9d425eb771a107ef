#include "messages/settings.hpp"

#include <algorithm>
#include <cmath>

#include "messages/text.hpp"

namespace bulwark {

using namespace std::chrono;

// -- rate limits --------------------------------------------------------------------

limiter_config default_limiter_config() {
  limiter_config cfg;
  cfg.tiers["free"] = {{10, minutes(1)}, {300, hours(1)}};
  cfg.tiers["paid"] = {{50, minutes(1)}, {2000, hours(1)}};
  return cfg;
}

// -- the priority queue -------------------------------------------------------------

std::optional<priority> parse_priority(std::string_view text) {
  if (text == "critical")
    return priority::critical;
  if (text == "high")
    return priority::high;
  if (text == "normal")
    return priority::normal;
  if (text == "low")
    return priority::low;
  return std::nullopt;
}

const char* to_string(priority p) noexcept {
  switch (p) {
    case priority::critical:
      return "critical";
    case priority::high:
      return "high";
    case priority::normal:
      return "normal";
    case priority::low:
      return "low";
  }
  return "normal";
}

// -- alert rules ----------------------------------------------------------------------

namespace {

// What each known rule measures; `apply_alert_setting` uses it to reject keys
// that would mean nothing for a rule.
struct rule_traits {
  std::string_view name;
  bool has_threshold;
  bool fraction; ///< The threshold is a share between 0 and 1.
  bool has_count;
};

constexpr rule_traits known_rules[] = {
  {"error_rate", true, true, true},      {"upstream_budget", true, true, false}, {"cache_hit_rate", true, true, true},
  {"p95_latency", true, false, false},   {"breaker_open", false, false, false},  {"queue_fill", true, true, false},
  {"tool_changed", false, false, false},
};

const rule_traits* traits_of(std::string_view name) {
  for (auto& t : known_rules)
    if (t.name == name)
      return &t;
  return nullptr;
}

alert_rule make_rule(std::string name, double threshold, uint64_t min_count, std::string severity = "warning") {
  alert_rule r;
  r.name = std::move(name);
  r.threshold = threshold;
  r.min_count = min_count;
  r.severity = std::move(severity);
  return r;
}

std::string known_rule_names(const alert_config& cfg) {
  std::string out;
  for (auto& r : cfg.rules)
    out += (out.empty() ? "" : ", ") + r.name;
  return out;
}

} // namespace

alert_config default_alert_config() {
  alert_config cfg;
  cfg.rules.push_back(make_rule("error_rate", 0.05, 100));
  cfg.rules.push_back(make_rule("upstream_budget", 0.9, 0));
  cfg.rules.push_back(make_rule("cache_hit_rate", 0.6, 50));
  cfg.rules.push_back(make_rule("p95_latency", 2.0, 0));
  cfg.rules.push_back(make_rule("breaker_open", 0, 0, "critical"));
  cfg.rules.push_back(make_rule("queue_fill", 0.8, 0));
  cfg.rules.push_back(make_rule("tool_changed", 0, 0));
  return cfg;
}

std::string apply_alert_setting(alert_config& cfg, const std::string& rule, const std::string& key, double v) {
  alert_rule* r = nullptr;
  for (auto& candidate : cfg.rules)
    if (candidate.name == rule)
      r = &candidate;
  if (!r)
    return "unknown alert rule \"" + rule + "\" (known: " + known_rule_names(cfg) + ")";
  // A rule the config holds but this file does not know gets every key.
  rule_traits generic{rule, true, false, true};
  auto* t = traits_of(rule);
  if (!t)
    t = &generic;
  auto got = [&] { return ", got " + text::trimmed_number(v, 6); };
  if (!std::isfinite(v))
    return key + " of alert rule " + rule + " must be a finite number";
  if (key == "threshold" && t->has_threshold) {
    if (t->fraction && (v < 0 || v > 1))
      return "threshold of alert rule " + rule + " is a share and must be between 0 and 1" + got();
    if (v < 0)
      return "threshold of alert rule " + rule + " must not be negative" + got();
    r->threshold = v;
    return {};
  }
  if (key == "minCount" && t->has_count) {
    if (v < 0 || v != std::floor(v) || v > 9007199254740992.0)
      return "minCount of alert rule " + rule + " must be a whole number of at least 0" + got();
    r->min_count = static_cast<uint64_t>(v);
    return {};
  }
  if (key == "cooldownSeconds") {
    if (v < 0 || v > 31'536'000.0)
      return "cooldownSeconds of alert rule " + rule + " must be between 0 and 31536000 (a year)" + got();
    r->cooldown = milliseconds(std::llround(v * 1000.0));
    return {};
  }
  if (key == "enabled") {
    if (v != 0 && v != 1)
      return "enabled of alert rule " + rule + " must be 0 or 1" + got();
    r->enabled = v == 1;
    return {};
  }
  std::string known = t->has_threshold ? "threshold, " : "";
  if (t->has_count)
    known += "minCount, ";
  known += "cooldownSeconds, enabled";
  return "unknown key \"" + key + "\" of alert rule " + rule + " (known: " + known + ")";
}

// -- shared state (Redis) -------------------------------------------------------------

redis_endpoint parse_redis_url(const std::string& url, std::string& error) {
  redis_endpoint ep;
  const std::string scheme = "redis://";
  if (url.compare(0, scheme.size(), scheme) != 0) {
    error = "must start with redis://";
    return ep;
  }
  auto rest = url.substr(scheme.size());
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    // redis://:password@host, or redis://user:password@host for a Redis 6
    // ACL user; either may be percent-encoded.
    auto auth = std::string_view(rest).substr(0, at);
    auto colon = auth.find(':');
    if (colon == std::string::npos) {
      error = "a user needs a password (redis://USER:PASSWORD@HOST, or redis://:PASSWORD@HOST)";
      return ep;
    }
    if (!text::percent_decode(auth.substr(0, colon), ep.user)
        || !text::percent_decode(auth.substr(colon + 1), ep.password)) {
      error = "bad percent-encoding in the user or password";
      return ep;
    }
    if (ep.password.empty()) {
      error = "empty password";
      return ep;
    }
    rest = rest.substr(at + 1);
  }
  std::string hostport = rest, db;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    hostport = rest.substr(0, slash);
    db = rest.substr(slash + 1);
  }
  std::string port;
  if (!hostport.empty() && hostport.front() == '[') { // [v6]:port
    auto close = hostport.find(']');
    if (close == std::string::npos) {
      error = "unclosed '['";
      return ep;
    }
    if (close + 1 < hostport.size() && hostport[close + 1] == ':')
      port = hostport.substr(close + 2);
    hostport = hostport.substr(1, close - 1);
  } else if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
    port = hostport.substr(colon + 1);
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty()) {
    error = "needs a host";
    return ep;
  }
  ep.host = hostport;
  auto number = [&](const std::string& s, long lo, long hi, const char* what) -> long {
    if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) {
      error = std::string("bad ") + what + " '" + s + "'";
      return lo;
    }
    auto n = std::stol(s);
    if (n < lo || n > hi)
      error = std::string(what) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi);
    return n;
  };
  if (!port.empty())
    ep.port = static_cast<uint16_t>(number(port, 1, 65535, "port"));
  if (!db.empty())
    ep.db = static_cast<int>(number(db, 0, 100000, "database"));
  if (!error.empty())
    ep.host.clear();
  return ep;
}

// -- HTTP and authentication ------------------------------------------------------------

std::string_view uri_origin(std::string_view uri) {
  auto scheme = uri.find("://");
  if (scheme == std::string_view::npos)
    return {};
  return uri.substr(0, uri.find_first_of("/?#", scheme + 3));
}

std::string check_oauth_settings(const oauth_settings& s) {
  if (s.issuer.empty())
    return "$.auth.oauth.issuer: is required when auth.mode is \"oauth\"";
  if (s.resource.empty())
    return "$.auth.oauth.resource: is required when auth.mode is \"oauth\" (this server's canonical URI, "
           "e.g. \"https://mcp.example.com/mcp\")";
  auto origin = uri_origin(s.resource);
  if (origin.empty() || origin.size() <= origin.find("://") + 3
      || (origin.substr(0, 8) != "https://" && origin.substr(0, 7) != "http://"))
    return "$.auth.oauth.resource: must be an absolute http(s) URI";
  if (s.resource.find('#') != std::string::npos)
    return "$.auth.oauth.resource: must not have a fragment";
  if (s.jwks_file.empty())
    return "$.auth.oauth.jwksFile: is required when auth.mode is \"oauth\"";
  for (auto& sc : s.scopes_supported)
    if (sc.empty() || sc.find_first_of(" \"\\") != std::string::npos)
      return "$.auth.oauth.scopesSupported: scopes are non-empty and have no spaces or quotes";
  return {};
}

std::string resource_metadata_path(const oauth_settings& s) {
  std::string path = "/.well-known/oauth-protected-resource";
  auto origin = uri_origin(s.resource);
  auto rest = std::string_view(s.resource).substr(origin.size());
  rest = rest.substr(0, rest.find_first_of("?#"));
  if (!rest.empty() && rest != "/")
    path.append(rest);
  return path;
}

std::string resource_metadata_url(const oauth_settings& s) {
  return std::string(uri_origin(s.resource)) + resource_metadata_path(s);
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Greedy, backtracking to the last '*'.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

std::vector<std::string> scope_rules::required(std::string_view kind, std::string_view name) const {
  const auto& rules = kind == "tool" ? tools : kind == "prompt" ? prompts : resources;
  std::vector<std::string> out;
  for (auto& [pattern, scopes] : rules)
    if (glob_match(pattern, name))
      for (auto& s : scopes)
        if (std::find(out.begin(), out.end(), s) == out.end())
          out.push_back(s);
  return out;
}

std::vector<std::string> scope_rules::missing(const std::vector<std::string>& required,
                                              const std::vector<std::string>& granted) {
  std::vector<std::string> out;
  for (auto& s : required)
    if (std::find(granted.begin(), granted.end(), s) == granted.end())
      out.push_back(s);
  return out;
}

} // namespace bulwark
