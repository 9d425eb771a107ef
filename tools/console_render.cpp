#include "tools/console_render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <set>

#include "messages/text.hpp"

namespace bulwark::console {

using json::value;

// -- formatting --------------------------------------------------------------

/// A server-supplied string made safe for a terminal: control characters
/// (escape codes among them) cannot reach it.
std::string clean(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c < 0x20 || c == 0x7f)
      out += '?';
    else
      out += static_cast<char>(c);
  }
  return out;
}

std::string fixed(double x, int decimals) {
  return bulwark::text::trimmed_number(x, decimals);
}

std::string number(double d) {
  return std::isfinite(d) ? fixed(d, 3) : "-";
}
std::string percent(double ratio) {
  return fixed(ratio * 100, 1) + "%";
}

std::string byte_size(double n) {
  static const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (n >= 1024 && u < 4) {
    n /= 1024;
    ++u;
  }
  return fixed(n, u == 0 ? 0 : 1) + " " + units[u];
}

std::string duration(double s) {
  if (!(s >= 0) || !std::isfinite(s))
    return "-";
  char b[48];
  auto t = static_cast<long long>(s);
  if (s < 10)
    std::snprintf(b, sizeof b, "%.1fs", s);
  else if (s < 60)
    std::snprintf(b, sizeof b, "%llds", t);
  else if (s < 3600)
    std::snprintf(b, sizeof b, "%lldm%02llds", t / 60, t % 60);
  else if (s < 86400)
    std::snprintf(b, sizeof b, "%lldh%02lldm", t / 3600, t % 3600 / 60);
  else
    std::snprintf(b, sizeof b, "%lldd%02lldh", t / 86400, t % 86400 / 3600);
  return b;
}

std::string clock_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char b[16];
  std::strftime(b, sizeof b, "%H:%M:%S", &tm);
  return b;
}

/// One cell's worth of a JSON value.
std::string text(const value& v) {
  switch (v.type()) {
    case json::kind::null:
      return "-";
    case json::kind::boolean:
      return v.as_bool() ? "yes" : "no";
    case json::kind::integer:
      return std::to_string(v.as_int());
    case json::kind::number:
      return number(v.as_double());
    case json::kind::string:
      return v.as_string().empty() ? "-" : clean(v.as_string());
    case json::kind::array: {
      std::string out;
      for (auto& e : v.as_array()) {
        if (e.is_array() || e.is_object())
          return std::to_string(v.size()) + " items";
        out += (out.empty() ? "" : ", ") + text(e);
      }
      return out.empty() ? "-" : out;
    }
    case json::kind::object:
      return v.size() == 0 ? "-" : std::to_string(v.size()) + " fields";
  }
  return "-";
}

/// "fastFailures" -> "fast failures".
std::string label(const std::string& key) {
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c >= 'A' && c <= 'Z') {
      if (i > 0 && !(key[i - 1] >= 'A' && key[i - 1] <= 'Z'))
        out += ' ';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c == '_' ? ' ' : c;
    }
  }
  return clean(out);
}

std::string header(const std::string& key) {
  auto s = label(key);
  for (auto& c : s)
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  return s;
}

void table::add(std::vector<std::string> row) {
  row.resize(right_.size());
  rows_.push_back(std::move(row));
}

void table::print(std::ostream& out, const std::string& indent) const {
  std::vector<std::size_t> width(right_.size(), 0);
  for (auto& r : rows_)
    for (std::size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  for (auto& r : rows_) {
    std::string line = indent;
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::size_t pad = width[i] - r[i].size();
      if (right_[i])
        line.append(pad, ' ').append(r[i]);
      else
        line.append(r[i]).append(pad, ' ');
      if (i + 1 < r.size())
        line += "  ";
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  }
}

/// `label  value` lines, values aligned; a value's further lines line up
/// under its first.
void print_pairs(std::ostream& out, const pairs& lines, const std::string& indent) {
  std::size_t width = 0;
  for (auto& [k, v] : lines)
    width = std::max(width, k.size());
  for (auto& [k, v] : lines) {
    out << indent << k << std::string(width - k.size() + 2, ' ');
    std::size_t start = 0;
    for (;;) {
      auto nl = v.find('\n', start);
      out << v.substr(start, nl - start) << "\n";
      if (nl == std::string::npos)
        break;
      out << indent << std::string(width + 2, ' ');
      start = nl + 1;
    }
  }
}

bool is_nested(const value& v) {
  if (v.is_object())
    return v.size() > 0;
  if (v.is_array())
    for (auto& e : v.as_array())
      if (e.is_object() || e.is_array())
        return true;
  return false;
}

/// Records as a table: the `preferred` columns first (those present), then
/// every other member that fits in a cell, in the order first seen.
void render_rows(std::ostream& out, const json::array& rows, const std::vector<std::string>& preferred,
                 const std::string& indent, names style) {
  auto fits = [](const value& v) { return !is_nested(v) || v.is_object(); };
  std::vector<std::string> keys;
  auto present = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) != keys.end(); };
  for (auto& k : preferred)
    for (auto& r : rows)
      if (r.find(k) && !present(k)) {
        keys.push_back(k);
        break;
      }
  for (auto& r : rows)
    for (auto& [k, m] : r.as_object())
      if (fits(m) && !m.is_object() && !present(k))
        keys.push_back(k);
  if (keys.empty()) {
    for (auto& r : rows)
      out << indent << text(r) << "\n";
    return;
  }
  std::vector<std::string> headers;
  for (auto& k : keys)
    headers.push_back(style == names::verbatim ? clean(k) : header(k));
  table t(headers);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    // Numbers line up on the right; a column of only nulls is not numeric.
    bool numbers = false, others = false;
    for (auto& r : rows)
      if (auto* m = r.find(keys[i]); m && !m->is_null())
        (m->is_number() ? numbers : others) = true;
    if (numbers && !others)
      t.align_right(i);
  }
  for (auto& r : rows) {
    std::vector<std::string> cells;
    for (auto& k : keys)
      cells.push_back(text(r[k]));
    t.add(std::move(cells));
  }
  t.print(out, indent);
}

/// An object: `first`, then its plain members as aligned lines, then its
/// nested members under their labels. `skip` names members shown elsewhere.
void render_object(std::ostream& out, const value& obj, const std::string& indent, pairs first = {},
                   const std::set<std::string>& skip = {}, names style = names::labels) {
  auto name = [&](const std::string& k) { return style == names::verbatim ? clean(k) : label(k); };
  std::vector<std::pair<std::string, const value*>> later;
  for (auto& [k, m] : obj.as_object()) {
    if (skip.count(k))
      continue;
    if (is_nested(m))
      later.emplace_back(k, &m);
    else
      first.emplace_back(name(k), text(m));
  }
  print_pairs(out, first, indent);
  for (auto& [k, m] : later) {
    out << indent << name(k) << ":\n";
    render(out, *m, indent + "  ", style);
  }
}

void render(std::ostream& out, const value& v, const std::string& indent, names style) {
  if (v.is_object())
    render_object(out, v, indent, {}, {}, style);
  else if (v.is_array())
    render_rows(out, v.as_array(), {}, indent, style);
  else
    out << indent << text(v) << "\n";
}

/// Records from an answer that is an array of objects, or an object keyed by
/// `key` (either possibly wrapped in a member named `wrapper`).
json::array records(const value& v, const std::string& wrapper, const std::string& key) {
  const value* src = &v;
  if (auto* w = v.find(wrapper); w && (w->is_array() || w->is_object()))
    src = w;
  json::array out;
  if (src->is_array()) {
    for (auto& e : src->as_array())
      if (e.is_object())
        out.push_back(e);
  } else {
    for (auto& [k, m] : src->as_object()) {
      if (!m.is_object())
        continue;
      if (m.find(key)) {
        out.push_back(m);
        continue;
      }
      value r = value::make_object({{key, k}});
      for (auto& [mk, mv] : m.as_object())
        r.set(mk, mv);
      out.push_back(std::move(r));
    }
  }
  return out;
}

// -- views -------------------------------------------------------------------

/// The actor tree, each actor under its parent; parents that are not actors
/// themselves (the root supervisor) head their subtrees.
void render_actors(std::ostream& out, const value& tree) {
  const auto& actors = tree["actors"].as_array();
  std::set<std::string> names;
  std::map<std::string, std::vector<const value*>> children;
  for (auto& a : actors) {
    names.insert(a["name"].as_string());
    children[a["parent"].as_string()].push_back(&a);
  }
  for (auto& [parent, kids] : children)
    std::sort(kids.begin(), kids.end(),
              [](const value* x, const value* y) { return (*x)["name"].as_string() < (*y)["name"].as_string(); });

  table t({"NAME", "KIND", "STATE", "MAILBOX", "RESTARTS", "UPTIME", "LAST EXIT"});
  t.align_right(3);
  t.align_right(4);
  t.align_right(5);
  std::set<std::string> shown;
  auto row = [&](const value& a, int depth) {
    const auto& mailbox = a["mailbox"];
    bool running = a["state"].as_string() == "running";
    t.add({std::string(2 * depth, ' ') + clean(a["name"].as_string()), text(a["kind"]), text(a["state"]),
           mailbox.is_number() ? text(mailbox) : "-", text(a["restarts"]),
           running && a["uptimeSeconds"].is_number() ? duration(a["uptimeSeconds"].as_double()) : "-",
           text(a["lastExit"])});
  };
  std::function<void(const std::string&, int)> under = [&](const std::string& parent, int depth) {
    auto it = children.find(parent);
    if (it == children.end())
      return;
    for (auto* a : it->second) {
      const auto& name = (*a)["name"].as_string();
      if (!shown.insert(name).second)
        continue;
      row(*a, depth);
      under(name, depth + 1);
    }
  };
  for (auto& [parent, kids] : children) {
    if (names.count(parent))
      continue;
    if (parent.empty()) {
      under(parent, 0);
    } else {
      t.add({clean(parent), "supervisor", "-", "-", "-", "-", "-"});
      under(parent, 1);
    }
  }
  // A parent cycle would leave actors unreached; list them rather than lose them.
  for (auto& a : actors)
    if (!shown.count(a["name"].as_string())) {
      shown.insert(a["name"].as_string());
      row(a, 0);
    }
  t.print(out);
  if (const auto& sups = tree["supervisors"]; sups.size() > 0) {
    // The tree above shows who the children are; here, how many.
    json::array rows;
    for (auto& sup : sups.as_array()) {
      value r = sup;
      if (sup["children"].is_array())
        r.set("children", static_cast<unsigned long long>(sup["children"].size()));
      rows.push_back(std::move(r));
    }
    out << "supervisors:\n";
    render_rows(out, rows, {"name", "strategy", "maxRestarts", "windowSeconds", "children", "escalated"}, "  ");
  }
  if (const auto& recent = tree["recentEscalations"]; recent.size() > 0) {
    out << "recent escalations:\n";
    render_rows(out, recent.as_array(), {"supervisor", "child", "reason", "secondsAgo"}, "  ");
  }
  out << "restarts " << text(tree["restarts"]) << "   escalations " << text(tree["escalations"]) << "   degraded "
      << text(tree["degraded"]) << "\n";
}

std::string degraded_text(const value& health) {
  std::string s = health["degraded"].as_bool() ? "yes" : "no";
  if (auto* forced = health.find("degradedForced"))
    s += forced->is_bool() ? (forced->as_bool() ? " (forced on)" : " (forced off)") : " (automatic)";
  return s;
}

/// One line about a component of the health report.
std::string component_summary(const std::string& name, const value& c) {
  auto join = [](const std::vector<std::string>& parts) {
    std::string out;
    for (auto& p : parts)
      out += (out.empty() ? "" : ", ") + p;
    return out.empty() ? std::string("-") : out;
  };
  std::vector<std::string> parts;
  if (name == "breakers") {
    for (auto& b : records(c, "breakers", "service"))
      parts.push_back(text(b["service"]) + " " + text(b["state"]));
    return join(parts);
  }
  if (name == "connectors") {
    for (auto& x : records(c, "connectors", "service")) {
      std::string s = text(x["service"]) + " " + text(x["phase"]);
      if (x.find("transport"))
        s += " (" + text(x["transport"]) + (x.find("tools") ? ", " + text(x["tools"]) + " tools" : "") + ")";
      parts.push_back(s);
    }
    return join(parts);
  }
  if (name == "queue")
    return text(c["size"]) + " of " + text(c["capacity"]) + " waiting";
  if (name == "cache")
    return text(c["entries"]) + " entries, " + byte_size(c["bytes"].as_double()) + ", hit rate "
           + percent(c["hitRate"].as_double());
  if (name == "limiter") {
    long long refused = 0;
    for (auto& [k, v] : c["refusals"].as_object())
      refused += v.as_int();
    return "admitted " + text(c["admitted"]) + ", delayed " + text(c["delayed"]) + ", refused "
           + std::to_string(refused);
  }
  if (name == "alerts")
    return std::to_string(c["rules"].size()) + " rules, fired " + text(c["fired"]) + ", suppressed "
           + text(c["suppressed"]);
  if (name == "supervision")
    return "restarts " + text(c["restarts"]) + ", escalations " + text(c["escalations"]);
  if (auto* s = c.find("status"))
    return text(*s);
  if (auto* up = c.find("up"))
    return up->as_bool() ? "up" : "down";
  for (auto& [k, v] : c.as_object())
    if (!is_nested(v) && !v.is_object() && parts.size() < 4)
      parts.push_back(label(k) + " " + text(v));
  return join(parts);
}

void render_health(std::ostream& out, const value& h) {
  pairs p{{"status", text(h["status"])}, {"degraded", degraded_text(h)}};
  if (h.find("ready"))
    p.emplace_back("ready", text(h["ready"]));
  std::string reasons;
  for (auto& r : h["reasons"].as_array())
    reasons += (reasons.empty() ? "" : "\n") + text(r);
  p.emplace_back("reasons", reasons.empty() ? "-" : reasons);
  if (h.find("unreachedServices"))
    p.emplace_back("unreached", text(h["unreachedServices"]));
  if (h.find("version"))
    p.emplace_back("version", text(h["version"]));
  if (h["uptimeSeconds"].is_number())
    p.emplace_back("uptime", duration(h["uptimeSeconds"].as_double()));
  print_pairs(out, p, "");
  if (h["components"].size() == 0)
    return;
  out << "components:\n";
  pairs c;
  for (auto& [name, comp] : h["components"].as_object())
    c.emplace_back(clean(name), component_summary(name, comp));
  print_pairs(out, c, "  ");
}

/// A few lines of health for the live view.
void render_health_brief(std::ostream& out, const value& h) {
  const auto& c = h["components"];
  pairs p{{"health", text(h["status"]) + ", degraded " + degraded_text(h)}};
  std::string reasons;
  for (auto& r : h["reasons"].as_array())
    reasons += (reasons.empty() ? "" : "; ") + text(r);
  if (!reasons.empty())
    p.emplace_back("reasons", reasons);
  for (const char* name : {"breakers", "queue", "cache", "alerts", "supervision"})
    if (c[name].is_object())
      p.emplace_back(name, component_summary(name, c[name]));
  print_pairs(out, p, "");
}

void render_queue(std::ostream& out, const value& q) {
  pairs p{{"size", text(q["size"]) + " of " + text(q["capacity"])
                     + (q["fill"].is_number() ? " (" + percent(q["fill"].as_double()) + ")" : "")}};
  if (q["depth"].is_object()) {
    std::string d;
    for (auto& [k, v] : q["depth"].as_object())
      d += (d.empty() ? "" : "   ") + clean(k) + " " + text(v);
    p.emplace_back("depth", d);
  }
  if (q.find("oldestWaitMs"))
    p.emplace_back("oldest wait", text(q["oldestWaitMs"]) + " ms");
  if (q["running"].is_object()) {
    std::string r;
    for (auto& [k, v] : q["running"].as_object())
      r += (r.empty() ? "" : ", ") + clean(k) + " " + text(v);
    p.emplace_back("running", r.empty() ? "-" : r);
  }
  const auto& entries = q["entries"];
  if (entries.is_array() && entries.size() == 0)
    p.emplace_back("waiting", "none");
  render_object(out, q, "", p, {"size", "capacity", "fill", "depth", "oldestWaitMs", "running", "entries"});
  if (entries.size() > 0) {
    out << "waiting:\n";
    render_rows(out, entries.as_array(), {"id", "service", "method", "tool", "priority", "waitMs"}, "  ");
  }
}

void render_cache(std::ostream& out, const value& c) {
  pairs p;
  std::set<std::string> shown{"bytes", "hitRate"};
  if (c["entries"].is_number()) {
    p.emplace_back("entries", text(c["entries"]));
    shown.insert("entries");
  }
  if (c["bytes"].is_number())
    p.emplace_back("size", byte_size(c["bytes"].as_double()));
  if (c["hitRate"].is_number())
    p.emplace_back("hit rate", percent(c["hitRate"].as_double()));
  render_object(out, c, "", p, shown);
}

void render_held_tools(std::ostream& out, const value& t) {
  const auto& mode = t["pinning"].as_string();
  if (mode.empty() || mode == "off") {
    out << "pinning is off: a service's changed tools are served at once (gateway.pinning.mode)\n";
    return;
  }
  const auto& held = t["held"].as_array();
  if (held.empty()) {
    out << "no held tool changes (pinning: " << clean(mode) << ")\n";
    return;
  }
  // A JSON value on one line, cut at 200 characters.
  auto shown = [](const value& v) {
    auto s = v.is_string() ? v.as_string() : json::dump(v);
    return clean(s.size() > 200 ? s.substr(0, 197) + "..." : s);
  };
  for (auto& h : held) {
    out << clean(h["service"].as_string()) << ":" << clean(h["tool"].as_string()) << "  held since "
        << clean(h["seenAt"].as_string()) << " (" << (mode == "hide" ? "hidden" : "approved definition served")
        << "; approve " << clean(h["service"].as_string()) << " " << clean(h["tool"].as_string()) << ")\n";
    for (auto& c : h["changes"].as_array()) {
      out << "  " << clean(c["field"].as_string()) << "\n";
      out << "    - " << shown(c["before"]) << "\n";
      out << "    + " << shown(c["after"]) << "\n";
    }
  }
}

void render_alerts(std::ostream& out, const value& a) {
  const auto& rules = a["rules"];
  if (rules.size() > 0) {
    out << "rules:\n";
    render_rows(out, rules.as_array(),
                {"name", "enabled", "severity", "threshold", "fired", "suppressed", "lastFiredAt"}, "  ");
  }
  render_object(out, a, "", {}, {"rules", "history"});
  const auto& history = a["history"].as_array();
  if (!history.empty()) {
    // The most recent ten.
    json::array recent(history.size() > 10 ? history.end() - 10 : history.begin(), history.end());
    out << "recent:\n";
    render_rows(out, recent, {"at", "time", "rule", "name", "severity"}, "  ");
  }
}

void render_breakers(std::ostream& out, const json::array& rows) {
  if (rows.empty()) {
    out << "no breakers (no services configured)\n";
    return;
  }
  render_rows(out, rows,
              {"service", "state", "calls", "failures", "fastFailures", "inFlight", "retries", "transitions"}, "");
}

void render_config(std::ostream& out, const value& answer) {
  pairs p{{"generation", text(answer["generation"])},
          {"source", text(answer["source"])},
          {"loaded at", text(answer["loadedAt"])}};
  print_pairs(out, p, "");
  const auto& config = answer["config"];
  if (!config.is_object() || config.size() == 0) {
    out << "config: -\n";
    return;
  }
  out << "config:\n";
  // Keys as they are written in a configuration file.
  render(out, config, "  ", names::verbatim);
}

bool render_reload(std::ostream& out, const value& answer) {
  auto lines = [](const value& list) {
    std::string s;
    if (list.is_array())
      for (auto& e : list.as_array())
        s += (s.empty() ? "" : "\n") + text(e);
    return s;
  };
  const auto& outcome = answer["outcome"];
  bool refused = !outcome.is_string() || outcome.as_string() == "refused";
  pairs p{{"outcome", text(outcome)}, {"generation", text(answer["generation"])}};
  if (!refused) {
    auto changed = lines(answer["changed"]);
    p.emplace_back("changed", changed.empty() ? "nothing" : changed);
    print_pairs(out, p, "");
    return true;
  }
  print_pairs(out, p, "");
  if (const auto& errors = answer["errors"]; errors.is_array() && errors.size() > 0) {
    out << "errors:\n";
    for (auto& e : errors.as_array())
      out << "  " << (e.is_object() ? text(e["path"]) + ": " + text(e["message"]) : text(e)) << "\n";
  }
  if (const auto& restart = answer["restartRequired"]; restart.is_array() && restart.size() > 0)
    out << "needs a restart: " << text(restart) << "\n";
  return false;
}

} // namespace bulwark::console
