// The settings' own checks: Redis URLs.
#include <catch2/catch.hpp>

#include <string>

#include "messages/settings.hpp"

using namespace bulwark;

TEST_CASE("redis URL: host, port, database and password; anything else is refused", "[settings]") {
  std::string err;
  auto ep = parse_redis_url("redis://10.0.0.5:6380/3", err);
  CHECK(err.empty());
  CHECK(ep.host == "10.0.0.5");
  CHECK(ep.port == 6380);
  CHECK(ep.db == 3);
  ep = parse_redis_url("redis://:s3cret@cache.internal", err);
  CHECK(err.empty());
  CHECK(ep.host == "cache.internal");
  CHECK(ep.port == 6379);
  CHECK(ep.password == "s3cret");
  CHECK(ep.user.empty());
  ep = parse_redis_url("redis://[::1]:7000/0", err);
  CHECK(err.empty());
  CHECK(ep.host == "::1");
  CHECK(ep.port == 7000);
  // An ACL user, and credentials that hold the URL's own delimiters.
  ep = parse_redis_url("redis://bw%2Dgw:p%40ss%3Aw%2frd@cache.internal:6380/1", err);
  CHECK(err.empty());
  CHECK(ep.user == "bw-gw");
  CHECK(ep.password == "p@ss:w/rd");
  CHECK(ep.host == "cache.internal");
  CHECK(ep.db == 1);
  for (auto* bad : {"http://127.0.0.1:6379", "redis://", "redis://h:0", "redis://h:99999", "redis://h:6379/x",
                    "redis://h:port", "redis://user@h", "redis://:@h", "redis://:pa%4@h", "redis://:pa%zz@h"}) {
    err.clear();
    parse_redis_url(bad, err);
    CHECK_FALSE(err.empty());
  }
  err.clear();
  parse_redis_url("redis://alice@h", err);
  CHECK(err.find("a user needs a password") == 0);
}

TEST_CASE("scope rules: every matching pattern's scopes are needed, each once", "[settings]") {
  scope_rules r;
  r.tools = {{"*", {"mcp:tools"}}, {"crm__*", {"crm.read", "mcp:tools"}}, {"crm__delete*", {"crm.admin"}}};
  r.resources = {{"file:///secret/*", {"files.secret"}}};
  CHECK(r.required("tool", "echo") == std::vector<std::string>{"mcp:tools"});
  CHECK(r.required("tool", "crm__delete_all") == std::vector<std::string>{"mcp:tools", "crm.read", "crm.admin"});
  CHECK(r.required("prompt", "crm__x").empty());
  CHECK(r.required("resource", "file:///secret/a/b") == std::vector<std::string>{"files.secret"});
  CHECK(r.required("resource", "file:///public/a").empty());
  CHECK(scope_rules::missing({"a", "b", "c"}, {"b"}) == std::vector<std::string>{"a", "c"});
  CHECK(scope_rules::missing({}, {}).empty());
  CHECK_FALSE(r.empty());
  CHECK(scope_rules{}.empty());
}
