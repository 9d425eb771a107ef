// What clients see of a service's tools: overrides applied, hidden ones
// left out, each shown name tied to the service's own.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "actors/tool_view.hpp"
#include "tests/unit/support.hpp"

using namespace bulwark;
using test::parse;

TEST_CASE("tool view: an override renames, retitles and sets hints over the service's annotations", "[gateway]") {
  auto tool = parse(R"({"name":"search","title":"Search","description":"d","inputSchema":{"type":"object"},
                        "annotations":{"readOnlyHint":false,"openWorldHint":false},"_meta":{"x":1}})");
  tool_override o;
  o.name = "find";
  o.description = "Finds.";
  o.hints = {{"readOnlyHint", true}, {"idempotentHint", true}};
  auto shown = apply_override(tool, o);
  CHECK(shown["name"].as_string() == "find");
  CHECK(shown["title"].as_string() == "Search");
  CHECK(shown["description"].as_string() == "Finds.");
  CHECK(shown["annotations"]["readOnlyHint"].as_bool());
  CHECK(shown["annotations"]["idempotentHint"].as_bool());
  CHECK(shown["annotations"]["openWorldHint"].is_bool());
  CHECK_FALSE(shown["annotations"]["openWorldHint"].as_bool());
  CHECK(shown["inputSchema"] == tool["inputSchema"]);
  CHECK(shown["_meta"] == tool["_meta"]);
  // Hints on a tool without annotations.
  tool_override hint;
  hint.hints = {{"destructiveHint", false}};
  CHECK(apply_override(parse(R"({"name":"t"})"), hint)["annotations"] == parse(R"({"destructiveHint":false})"));
}

TEST_CASE("tool view: hidden tools are left out and every shown name knows the service's", "[gateway]") {
  auto tools = parse(R"([{"name":"a"},{"name":"b"},{"name":"c"},{"title":"no name"}])");
  std::map<std::string, tool_override> overrides;
  overrides["a"].name = "alpha";
  overrides["b"].hidden = true;
  std::map<std::string, std::string> own;
  auto shown = shown_tools(tools, overrides, own);
  REQUIRE(shown.as_array().size() == 2);
  CHECK(shown.as_array()[0]["name"].as_string() == "alpha");
  CHECK(shown.as_array()[1]["name"].as_string() == "c");
  CHECK(own == std::map<std::string, std::string>{{"alpha", "a"}, {"c", "c"}});
  CHECK(shown_tools(json::value(), overrides, own).as_array().empty());
  CHECK(own.empty());
}
