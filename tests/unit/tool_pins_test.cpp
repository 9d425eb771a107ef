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

namespace {

/// The fleet's hash after `writes` were applied to `fleet` as Redis's
/// script does: each only over the state it was made from. Returns how
/// many met another state.
int write_to(json::value& fleet, const std::vector<pin_write>& writes) {
  int lost = 0;
  for (auto& w : writes) {
    const auto* cur = fleet.find(w.field);
    bool ok = w.expected.empty() ? cur == nullptr : cur != nullptr && cur->as_string().rfind(w.expected + "\n", 0) == 0;
    if (ok)
      fleet.set(w.field, w.text);
    else
      ++lost;
  }
  return lost;
}

} // namespace

TEST_CASE("tool pins: a fleet's book is written pin by pin, each over the state it was made from", "[gateway]") {
  json::value fleet(json::object{});
  pin_book a(true), b(true);
  json::value served;
  std::vector<std::string> held;
  a.adopt(fleet);
  b.adopt(fleet);
  CHECK(a.take_writes().empty());

  // a sees the tool first: one write, over nothing.
  a.apply("svc", list({tool("v1")}), false, served, held);
  auto w = a.take_writes();
  REQUIRE(w.size() == 1);
  CHECK(w[0].field == pin_book::field_of("svc", "lookup"));
  CHECK(w[0].expected.empty());
  CHECK(write_to(fleet, w) == 0);
  CHECK(a.take_writes().empty()); // taken once

  // b, which has not read the fleet's book since, sees another definition
  // first: its write meets a's, and after reading again it holds its
  // definition as a change.
  b.apply("svc", list({tool("v2")}), false, served, held);
  CHECK(write_to(fleet, b.take_writes()) == 1);
  b.adopt(fleet);
  held.clear();
  b.apply("svc", list({tool("v2")}), false, served, held);
  CHECK(held == std::vector<std::string>{"lookup"});
  CHECK(served.as_array().at(0)["description"].as_string() == "v1");
  CHECK(write_to(fleet, b.take_writes()) == 0);

  // a reads it: the change is held there too, and a's service still
  // showing the approved definition does not end the hold (nor does a
  // third definition replace it), so the instances do not undo each
  // other's writes.
  a.adopt(fleet);
  CHECK(a.held_count() == 1);
  a.apply("svc", list({tool("v1")}), false, served, held);
  a.apply("svc", list({tool("v3")}), false, served, held);
  CHECK(a.take_writes().empty());
  CHECK(a.held().as_array().at(0)["pending"]["description"].as_string() == "v2");

  // Approved through a: written over the held state; b follows on reading.
  CHECK(a.approve("svc", "lookup"));
  CHECK(write_to(fleet, a.take_writes()) == 0);
  b.adopt(fleet);
  CHECK(b.held_count() == 0);
  b.apply("svc", list({tool("v2")}), false, served, held);
  CHECK(served.as_array().at(0)["description"].as_string() == "v2");
}

TEST_CASE("tool pins: pins only this instance knows go to a fleet's book when it is read", "[gateway]") {
  pin_book book(true);
  json::value served;
  std::vector<std::string> held;
  // Pinned from the file, or while Redis was away.
  book.apply("svc", list({tool("v1")}), false, served, held);
  book.take_writes();
  json::value fleet(json::object{});
  fleet.set(pin_book::field_of("svc", "other"), std::string("not a pin"));
  book.adopt(fleet);
  auto w = book.take_writes();
  REQUIRE(w.size() == 1);
  CHECK(w[0].field == pin_book::field_of("svc", "lookup"));
  CHECK(w[0].expected.empty());
  CHECK(w[0].text.rfind(pin_book::hash_of(tool("v1")) + " -\n", 0) == 0);
  // The fleet's pin wins over this instance's.
  pin_book fresh(true);
  fresh.apply("svc", list({tool("v2")}), false, served, held);
  fresh.take_writes();
  json::value theirs(json::object{});
  write_to(theirs, w);
  fresh.adopt(theirs);
  CHECK(fresh.take_writes().empty());
  held.clear();
  fresh.apply("svc", list({tool("v2")}), false, served, held);
  CHECK(held == std::vector<std::string>{"lookup"});
}
