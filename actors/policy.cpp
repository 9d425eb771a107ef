#include "actors/policy.hpp"

namespace bulwark {

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
