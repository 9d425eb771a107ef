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
      if (!p["hash"].is_string() || !p["definition"].is_object())
        continue;
      pin x;
      x.hash = p["hash"].as_string();
      x.definition = p["definition"];
      x.approved_at = p["approvedAt"].as_string();
      if (const auto& c = p["pending"]; c.is_object() && c["hash"].is_string())
        x.pending = change{c["hash"].as_string(), c["definition"], c["seenAt"].as_string()};
      pins_[service][tool] = std::move(x);
    }
  }
  return true;
}

bool pin_book::save(const std::string& path, std::string& error) const {
  value services(json::object{});
  for (auto& [service, tools] : pins_) {
    value out(json::object{});
    for (auto& [tool, p] : tools) {
      auto v = value::make_object({{"hash", p.hash}, {"definition", p.definition}, {"approvedAt", p.approved_at}});
      if (p.pending)
        v.set("pending",
              value::make_object(
                {{"hash", p.pending->hash}, {"definition", p.pending->definition}, {"seenAt", p.pending->seen_at}}));
      out.set(tool, std::move(v));
    }
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
      book[name] = pin{hash, tool, now_text(), std::nullopt};
      served.push_back(tool);
      changed = true;
      continue;
    }
    if (p->second.hash == hash) {
      if (p->second.pending) { // the service went back to the approved one
        p->second.pending.reset();
        changed = true;
      }
      served.push_back(tool);
      continue;
    }
    if (!p->second.pending || p->second.pending->hash != hash) {
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
