#include "actors/tool_pins.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "actors/cache.hpp"
#include "config/log.hpp"
#include "messages/crypto.hpp"

namespace bulwark {

using json::value;

namespace {

/// The members a definition is pinned by.
constexpr const char* pinned_members[] = {"name", "description", "inputSchema", "annotations"};

std::string now_text() {
  return log::utc(std::chrono::system_clock::now(), log::time_digits::millis);
}

} // namespace

std::string pin_book::hash_of(const value& tool) {
  value pinned(json::object{});
  for (auto* m : pinned_members)
    if (auto* v = tool.find(m))
      pinned.set(m, *v);
  return crypto::sha256_hex(canonical_json(pinned));
}

bool pin_book::load(const std::string& path, std::string& error) {
  pins_.clear();
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return true; // none yet: every tool is new
  std::ostringstream text;
  text << in.rdbuf();
  value doc;
  json::parse_error err;
  if (!json::parse(text.str(), doc, err) || !doc.is_object() || !doc["services"].is_object()) {
    error = path + " is no pin book: " + (err.message.empty() ? "expected {\"services\": {...}}" : err.message);
    return false;
  }
  for (auto& [service, tools] : doc["services"].as_object()) {
    if (!tools.is_object())
      continue;
    for (auto& [tool, p] : tools.as_object()) {
      pin x;
      if (read_entry(p, x))
        pins_[service][tool] = std::move(x);
    }
  }
  return true;
}

value pin_book::entry_of(const pin& p) {
  auto v = value::make_object({{"hash", p.hash}, {"definition", p.definition}, {"approvedAt", p.approved_at}});
  if (p.pending)
    v.set("pending",
          value::make_object(
            {{"hash", p.pending->hash}, {"definition", p.pending->definition}, {"seenAt", p.pending->seen_at}}));
  return v;
}

bool pin_book::read_entry(const value& p, pin& x) {
  if (!p["hash"].is_string() || !p["definition"].is_object())
    return false;
  x.hash = p["hash"].as_string();
  x.definition = p["definition"];
  x.approved_at = p["approvedAt"].is_string() ? p["approvedAt"].as_string() : std::string();
  x.pending.reset();
  if (const auto& c = p["pending"]; c.is_object() && c["hash"].is_string() && c["hash"].as_string() != x.hash)
    x.pending =
      change{c["hash"].as_string(), c["definition"], c["seenAt"].is_string() ? c["seenAt"].as_string() : std::string()};
  return true;
}

std::string pin_book::state_of(const pin& p) {
  return p.hash + ' ' + (p.pending ? p.pending->hash : std::string("-"));
}

std::string pin_book::text_of(const pin& p) {
  return state_of(p) + '\n' + json::dump(entry_of(p));
}

std::string pin_book::field_of(const std::string& service, const std::string& tool) {
  return service + '\n' + tool;
}

void pin_book::touch(const std::string& service, const std::string& tool, const pin* before) {
  touched_.emplace(field_of(service, tool), before ? state_of(*before) : std::string());
}

std::vector<pin_write> pin_book::take_writes() {
  std::vector<pin_write> out;
  for (auto& [field, expected] : touched_) {
    auto nl = field.find('\n');
    auto s = pins_.find(field.substr(0, nl));
    if (s == pins_.end())
      continue;
    auto p = s->second.find(field.substr(nl + 1));
    if (p != s->second.end())
      out.push_back({field, expected, text_of(p->second)});
  }
  touched_.clear();
  return out;
}

void pin_book::adopt(const value& fleet) {
  std::map<std::string, std::map<std::string, pin>> next;
  if (fleet.is_object())
    for (auto& [field, text] : fleet.as_object()) {
      auto nl = field.find('\n');
      if (nl == std::string::npos || !text.is_string())
        continue;
      const auto& t = text.as_string();
      auto body = t.find('\n');
      value entry;
      json::parse_error err;
      pin x;
      if (body == std::string::npos || !json::parse(std::string_view(t).substr(body + 1), entry, err)
          || !read_entry(entry, x))
        continue;
      next[field.substr(0, nl)][field.substr(nl + 1)] = std::move(x);
    }
  touched_.clear();
  // What only this book knows goes to the fleet's book.
  for (auto& [service, tools] : pins_)
    for (auto& [tool, p] : tools) {
      auto& there = next[service];
      if (there.emplace(tool, p).second)
        touched_.emplace(field_of(service, tool), std::string());
    }
  pins_ = std::move(next);
}

bool pin_book::save(const std::string& path, std::string& error) const {
  value services(json::object{});
  for (auto& [service, tools] : pins_) {
    value out(json::object{});
    for (auto& [tool, p] : tools)
      out.set(tool, entry_of(p));
    services.set(service, std::move(out));
  }
  auto text = json::dump(value::make_object({{"version", 1}, {"services", std::move(services)}}));
  auto temp = path + ".new";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text << '\n';
    if (!out.flush()) {
      error = "cannot write " + temp;
      return false;
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    error = "cannot rename " + temp + " to " + path;
    return false;
  }
  return true;
}

bool pin_book::apply(const std::string& service, const value& tools, bool hide, value& served,
                     std::vector<std::string>& newly_held) {
  served = value(json::array{});
  bool changed = false;
  if (!tools.is_array())
    return false;
  auto& book = pins_[service];
  for (auto& tool : tools.as_array()) {
    if (!tool["name"].is_string())
      continue;
    const auto& name = tool["name"].as_string();
    auto hash = hash_of(tool);
    auto p = book.find(name);
    if (p == book.end()) {
      // Trust on first use.
      touch(service, name, nullptr);
      book[name] = pin{hash, tool, now_text(), std::nullopt};
      served.push_back(tool);
      changed = true;
      continue;
    }
    if (p->second.hash == hash) {
      if (p->second.pending && !shared_) { // the service went back to the approved one
        touch(service, name, &p->second);
        p->second.pending.reset();
        changed = true;
      }
      served.push_back(tool);
      continue;
    }
    if (!p->second.pending || (p->second.pending->hash != hash && !shared_)) {
      touch(service, name, &p->second);
      p->second.pending = change{hash, tool, now_text()};
      newly_held.push_back(name);
      changed = true;
    }
    if (!hide)
      served.push_back(p->second.definition);
  }
  return changed;
}

bool pin_book::approve(const std::string& service, const std::string& tool) {
  auto s = pins_.find(service);
  if (s == pins_.end())
    return false;
  auto p = s->second.find(tool);
  if (p == s->second.end() || !p->second.pending)
    return false;
  touch(service, tool, &p->second);
  p->second.hash = p->second.pending->hash;
  p->second.definition = std::move(p->second.pending->definition);
  p->second.approved_at = now_text();
  p->second.pending.reset();
  return true;
}

value pin_book::held() const {
  value out(json::array{});
  for (auto& [service, tools] : pins_)
    for (auto& [tool, p] : tools) {
      if (!p.pending)
        continue;
      value changes(json::array{});
      for (auto* m : pinned_members) {
        const auto& before = p.definition[m];
        const auto& after = p.pending->definition[m];
        if (canonical_json(before) != canonical_json(after))
          changes.push_back(value::make_object({{"field", m}, {"before", before}, {"after", after}}));
      }
      out.push_back(value::make_object({{"service", service},
                                        {"tool", tool},
                                        {"approved", p.definition},
                                        {"pending", p.pending->definition},
                                        {"changes", std::move(changes)},
                                        {"seenAt", p.pending->seen_at}}));
    }
  return out;
}

std::size_t pin_book::held_count() const {
  std::size_t n = 0;
  for (auto& [service, tools] : pins_)
    for (auto& [tool, p] : tools)
      n += p.pending ? 1 : 0;
  return n;
}

} // namespace bulwark
