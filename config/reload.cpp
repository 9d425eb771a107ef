#include "config/reload.hpp"

#include "config/settings_table.hpp"

#include <algorithm>
#include <set>

namespace bulwark {

using json::value;

namespace {

bool under(const std::string& path, const std::string& prefix) {
  return path == prefix
         || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0
             && (path[prefix.size()] == '.' || path[prefix.size()] == '['));
}

/// Appends the paths where `a` and `b` differ. A section present on one
/// side only is one path where the server takes it whole (a service), and
/// its keys one by one elsewhere (so that each is judged on its own).
void diff(const value& a, const value& b, const std::string& path, std::vector<std::string>& out) {
  static const value empty(json::object{});
  bool whole = path != "$" && live_key(path);
  if (!whole && a.is_object() != b.is_object() && (a.is_null() || b.is_null()))
    return diff(a.is_null() ? empty : a, b.is_null() ? empty : b, path, out);
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (auto& [k, v] : a.as_object())
      keys.insert(k);
    for (auto& [k, v] : b.as_object())
      keys.insert(k);
    static const value absent;
    for (auto& k : keys) {
      const auto* x = a.find(k);
      const auto* y = b.find(k);
      diff(x ? *x : absent, y ? *y : absent, path + "." + k, out);
    }
    return;
  }
  if (a != b)
    out.push_back(path);
}

} // namespace

namespace {

/// "services.<name>.timeoutMs" -> "services": the part before a name the
/// user chooses, which a reload compares as a whole.
std::string fixed_part(const std::string& path) {
  auto angle = path.find(".<");
  return angle == std::string::npos ? path : path.substr(0, angle);
}

/// The live keys of the table, each as its widest prefix under which
/// every key is live (`queue`, `auth.oauth`, `gateway.prefix`).
std::vector<std::string> derive_live_keys() {
  std::vector<std::pair<std::string, bool>> keys;
  for (auto* s : all_settings())
    keys.emplace_back(fixed_part(s->path), s->live);
  auto all_live_under = [&](const std::string& prefix) {
    return std::all_of(keys.begin(), keys.end(), [&](auto& k) { return !under(k.first, prefix) || k.second; });
  };
  std::vector<std::string> out;
  for (auto& [path, live] : keys) {
    if (!live)
      continue;
    auto widest = path;
    for (auto dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1))
      if (all_live_under(path.substr(0, dot))) {
        widest = path.substr(0, dot);
        break;
      }
    if (std::find(out.begin(), out.end(), "$." + widest) == out.end())
      out.push_back("$." + widest);
  }
  return out;
}

} // namespace

const std::vector<std::string>& live_keys() {
  static const std::vector<std::string> keys = derive_live_keys();
  return keys;
}

bool live_key(const std::string& path) {
  const auto& keys = live_keys();
  return std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return under(path, k); });
}

reload_plan plan_reload(const value& before, const value& after) {
  static const value empty(json::object{});
  reload_plan plan;
  diff(before.is_object() ? before : empty, after.is_object() ? after : empty, "$", plan.changed);
  for (auto& path : plan.changed)
    if (!live_key(path))
      plan.restart_required.push_back(path);
  return plan;
}

namespace {

const char* const redacted_text = "[redacted]";

void redact_values(value& obj) {
  if (!obj.is_object())
    return;
  for (auto& [k, v] : obj.mutable_object())
    v = value(redacted_text);
}

std::string without_password(const std::string& url) {
  auto scheme = url.find("://");
  auto at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme)
    return url;
  return url.substr(0, scheme + 3) + redacted_text + url.substr(at);
}

} // namespace

value redacted(const value& document) {
  value out = document;
  if (!out.is_object())
    return out;
  if (auto* servers = out.find("mcpServers"); servers && servers->is_object())
    for (auto& [name, s] : servers->mutable_object())
      if (s.is_object()) {
        if (auto* h = s.find("headers"))
          redact_values(*h);
        if (auto* e = s.find("env"))
          redact_values(*e);
        if (auto* a = s.find("auth"); a && a->is_object())
          if (auto* secret = a->find("clientSecret"); secret && secret->is_string())
            *secret = value(redacted_text);
      }
  if (auto* alerts = out.find("alerts"); alerts && alerts->is_object())
    if (auto* w = alerts->find("webhook"); w && w->is_object())
      if (auto* h = w->find("headers"))
        redact_values(*h);
  for (auto* section : {"admin", "metrics"})
    if (auto* s = out.find(section); s && s->is_object())
      if (auto* t = s->find("tokenSha256"); t && t->is_string() && !t->as_string().empty())
        *t = value(redacted_text);
  if (auto* r = out.find("redis"); r && r->is_object())
    if (auto* u = r->find("url"); u && u->is_string())
      *u = value(without_password(u->as_string()));
  if (auto* auth = out.find("auth"); auth && auth->is_object())
    if (auto* o = auth->find("oauth"); o && o->is_object())
      if (auto* secret = o->find("clientSecret"))
        *secret = value(redacted_text);
  return out;
}

value error_entry(const std::string& what) {
  std::string text = what;
  if (text.rfind("config: ", 0) == 0)
    text = text.substr(8);
  if (text.rfind("$", 0) == 0) {
    auto colon = text.find(": ");
    if (colon != std::string::npos)
      return value::make_object({{"path", text.substr(0, colon)}, {"message", text.substr(colon + 2)}});
  }
  return value::make_object({{"path", "$"}, {"message", text}});
}

} // namespace bulwark
