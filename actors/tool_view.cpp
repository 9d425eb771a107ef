#include "actors/tool_view.hpp"

namespace bulwark {

using json::value;

value apply_override(const value& tool, const tool_override& o) {
  value out = tool;
  if (o.name)
    out.set("name", *o.name);
  if (o.title)
    out.set("title", *o.title);
  if (o.description)
    out.set("description", *o.description);
  if (!o.hints.empty()) {
    value annotations = tool["annotations"].is_object() ? tool["annotations"] : value(json::object{});
    for (auto& [hint, b] : o.hints)
      annotations.set(hint, b);
    out.set("annotations", std::move(annotations));
  }
  return out;
}

value shown_tools(const value& tools, const std::map<std::string, tool_override>& overrides,
                  std::map<std::string, std::string>& own_names) {
  value out(json::array{});
  own_names.clear();
  if (!tools.is_array())
    return out;
  for (auto& tool : tools.as_array()) {
    if (!tool["name"].is_string())
      continue;
    const auto& name = tool["name"].as_string();
    auto o = overrides.find(name);
    if (o == overrides.end()) {
      own_names.emplace(name, name);
      out.push_back(tool);
      continue;
    }
    if (o->second.hidden)
      continue;
    auto shown = apply_override(tool, o->second);
    own_names.emplace(shown["name"].as_string(), name);
    out.push_back(std::move(shown));
  }
  return out;
}

} // namespace bulwark
