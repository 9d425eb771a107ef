// actors/policy: the names downstream tools are exposed under, and the
// access policy's patterns.
#include <catch2/catch.hpp>

#include "actors/policy.hpp"

using namespace bulwark;

TEST_CASE("exposed tool names follow the prefix mode", "[policy]") {
  CHECK(exposed_tool_name("svc", "t", prefix_mode::always, "__", false) == "svc__t");
  CHECK(exposed_tool_name("svc", "t", prefix_mode::never, "__", true) == "t");
  CHECK(exposed_tool_name("svc", "t", prefix_mode::conditional, ".", false) == "t");
  CHECK(exposed_tool_name("svc", "t", prefix_mode::conditional, ".", true) == "svc.t");
}

TEST_CASE("policy patterns: deny wins, a non-empty allow list admits only matches", "[policy]") {
  CHECK(glob_match("memory:*", "memory:read_graph"));
  CHECK(glob_match("*:delete_*", "memory:delete_entities"));
  CHECK(glob_match("a*b*c", "axxbyyc"));
  CHECK_FALSE(glob_match("a*b*c", "axxbyy"));
  CHECK_FALSE(glob_match("memory:read", "memory:read_graph"));
  CHECK(glob_match("*", ""));

  access_policy open;
  CHECK(check_policy(open, "fx", "anything").allowed);

  access_policy p;
  p.allow = {"memory:*", "fx:test_*"};
  p.deny = {"memory:delete_*"};
  CHECK(check_policy(p, "memory", "read_graph").allowed);
  auto denied = check_policy(p, "memory", "delete_entities");
  CHECK_FALSE(denied.allowed);
  CHECK(denied.rule == "deny memory:delete_*");
  auto outside = check_policy(p, "everything", "echo");
  CHECK_FALSE(outside.allowed);
  CHECK(outside.rule == "not in the allow list");
}
