// Tool-definition pinning: a tool is pinned as first seen, a change is held
// (the approved definition served, or the tool hidden) until approved, and
// the book survives in its file.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "actors/tool_pins.hpp"
#include "tests/unit/support.hpp"

using namespace bulwark;
using test::parse;

namespace {

json::value tool(const std::string& description, const std::string& title = "T") {
  return parse(R"({"name":"lookup","title":")" + title + R"(","description":")" + description
               + R"(","inputSchema":{"type":"object"}})");
}

json::value list(std::vector<json::value> tools) {
  json::value out(json::array{});
  for (auto& t : tools)
    out.push_back(std::move(t));
  return out;
}

} // namespace

TEST_CASE("tool pins: the hash covers name, description, input schema and annotations only", "[gateway]") {
  CHECK(pin_book::hash_of(tool("a")) == pin_book::hash_of(tool("a", "another title")));
  CHECK(pin_book::hash_of(tool("a")) != pin_book::hash_of(tool("b")));
  auto annotated = tool("a");
  annotated.set("annotations", parse(R"({"destructiveHint":true})"));
  CHECK(pin_book::hash_of(annotated) != pin_book::hash_of(tool("a")));
  // Member order does not matter.
  CHECK(pin_book::hash_of(parse(R"({"name":"x","inputSchema":{"a":1,"b":2}})"))
        == pin_book::hash_of(parse(R"({"inputSchema":{"b":2,"a":1},"name":"x"})")));
}

TEST_CASE("tool pins: a change is held until approved, served as approved or hidden", "[gateway]") {
  for (bool hide : {false, true}) {
    pin_book book;
    json::value served;
    std::vector<std::string> held;
    CHECK(book.apply("svc", list({tool("v1")}), hide, served, held)); // pinned: to be saved
    CHECK(held.empty());
    CHECK(served.as_array().at(0)["description"].as_string() == "v1");
    CHECK_FALSE(book.apply("svc", list({tool("v1")}), hide, served, held)); // nothing new

    CHECK(book.apply("svc", list({tool("v2")}), hide, served, held));
    CHECK(held == std::vector<std::string>{"lookup"});
    if (hide)
      CHECK(served.as_array().empty());
    else
      CHECK(served.as_array().at(0)["description"].as_string() == "v1");
    CHECK(book.held_count() == 1);
    auto view = book.held().as_array().at(0);
    CHECK(view["tool"].as_string() == "lookup");
    REQUIRE(view["changes"].as_array().size() == 1);
    CHECK(view["changes"].as_array()[0]["field"].as_string() == "description");
    CHECK(view["changes"].as_array()[0]["before"].as_string() == "v1");
    CHECK(view["changes"].as_array()[0]["after"].as_string() == "v2");
    // Seen again: still held, not held anew.
    held.clear();
    CHECK_FALSE(book.apply("svc", list({tool("v2")}), hide, served, held));
    CHECK(held.empty());

    CHECK_FALSE(book.approve("svc", "other"));
    CHECK(book.approve("svc", "lookup"));
    CHECK_FALSE(book.approve("svc", "lookup"));
    CHECK(book.held_count() == 0);
    book.apply("svc", list({tool("v2")}), hide, served, held);
    CHECK(served.as_array().at(0)["description"].as_string() == "v2");
  }
}

TEST_CASE("tool pins: a service that goes back to the approved definition ends the hold", "[gateway]") {
  pin_book book;
  json::value served;
  std::vector<std::string> held;
  book.apply("svc", list({tool("v1")}), false, served, held);
  book.apply("svc", list({tool("v2")}), false, served, held);
  CHECK(book.held_count() == 1);
  CHECK(book.apply("svc", list({tool("v1")}), false, served, held));
  CHECK(book.held_count() == 0);
}

TEST_CASE("tool pins: the book survives in its file", "[gateway]") {
  auto path = "/tmp/bulwark-unit-" + std::to_string(getpid()) + "-pins.json";
  std::remove(path.c_str());
  pin_book book;
  std::string error;
  CHECK(book.load(path, error)); // none yet
  json::value served;
  std::vector<std::string> held;
  book.apply("svc", list({tool("v1")}), false, served, held);
  book.apply("svc", list({tool("v2")}), false, served, held);
  REQUIRE(book.save(path, error));
  pin_book again;
  REQUIRE(again.load(path, error));
  CHECK(again.held_count() == 1);
  held.clear();
  again.apply("svc", list({tool("v2")}), false, served, held);
  CHECK(held.empty()); // held before, not anew
  CHECK(served.as_array().at(0)["description"].as_string() == "v1");
  std::ofstream(path) << "[1,2]";
  CHECK_FALSE(again.load(path, error));
  CHECK(error.find("is no pin book") != std::string::npos);
  std::remove(path.c_str());
}
