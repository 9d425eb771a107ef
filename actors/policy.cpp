#include "actors/policy.hpp"

namespace bulwark {

bool glob_match(std::string_view pattern, std::string_view text) {
  // Greedy match with backtracking to the last '*'.
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

policy_decision check_policy(const access_policy& policy, const std::string& server, const std::string& tool) {
  auto subject = server + ":" + tool;
  for (auto& rule : policy.deny)
    if (glob_match(rule, subject))
      return {false, "deny " + rule};
  if (policy.allow.empty())
    return {true, {}};
  for (auto& rule : policy.allow)
    if (glob_match(rule, subject))
      return {true, "allow " + rule};
  return {false, "not in the allow list"};
}

std::string exposed_tool_name(const std::string& service, const std::string& tool, prefix_mode mode,
                              const std::string& separator, bool clashes) {
  switch (mode) {
    case prefix_mode::always:
      return service + separator + tool;
    case prefix_mode::never:
      return tool;
    case prefix_mode::conditional:
      return clashes ? service + separator + tool : tool;
  }
  return tool;
}

} // namespace bulwark
