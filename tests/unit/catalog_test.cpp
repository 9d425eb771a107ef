// The catalog's pieces: URI templates, and the resource watches that count
// each watched URI once and bound what a holder, a caller and the server
// watch.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "messages/catalog.hpp"

using namespace bulwark;
using json::value;

TEST_CASE("URI templates match one segment per variable", "[catalog]") {
  value vars(json::object{});
  CHECK(match_uri_template("test://template/{id}/data", "test://template/123/data", vars));
  CHECK(vars["id"].as_string() == "123");
  value none(json::object{});
  CHECK_FALSE(match_uri_template("test://template/{id}/data", "test://template/1/2/data", none));
  CHECK_FALSE(match_uri_template("test://template/{id}/data", "test://template//data", none));
  CHECK_FALSE(match_uri_template("test://template/{id}/data", "test://template/1/datax", none));
}

TEST_CASE("resource watches count each URI once per holder and are given back however the holder ends", "[catalog]") {
  auto watches = std::make_shared<resource_watches>();
  int changes = 0;
  watches->on_change([&] { ++changes; });
  // Whether `set` newly holds `uri` (and nothing refused it).
  auto insert = [&](watch_set& set, const std::string& uri) {
    bool added = false;
    REQUIRE(set.insert(watches, uri, "alice", added) == watch_refusal::none);
    return added;
  };
  {
    watch_set a;
    CHECK(insert(a, "test://one"));
    CHECK_FALSE(insert(a, "test://one")); // held already: counted once
    CHECK(changes == 1);
    watch_set b;
    CHECK(insert(b, "test://one"));
    CHECK(changes == 1); // a second watcher changes nothing outside
    CHECK(watches->watched() == std::vector<std::string>{"test://one"});
    CHECK(a.erase("test://one"));
    CHECK_FALSE(a.erase("test://one"));
    CHECK(watches->watched() == std::vector<std::string>{"test://one"}); // b still watches
    CHECK(changes == 1);
    // Moving a set moves its URIs, which stay counted once.
    watch_set c = std::move(b);
    CHECK(watches->watched() == std::vector<std::string>{"test://one"});
    insert(a, "test://two");
    CHECK(changes == 2);
    c = std::move(a); // c gives back test://one, takes test://two
    CHECK(watches->watched() == std::vector<std::string>{"test://two"});
    CHECK(changes == 3);
  } // c destroyed
  CHECK(watches->watched().empty());
  CHECK(changes == 4);
}

TEST_CASE("watched resources are bounded in count and bytes, per holder, per caller and per server", "[catalog]") {
  auto watches = std::make_shared<resource_watches>();
  bool added = false;
  watch_set s;
  CHECK(s.insert(watches, "file:///" + std::string(max_uri_bytes, 'A'), "alice", added) == watch_refusal::uri_too_long);
  CHECK_FALSE(added);
  // Bytes per holder: 8 KiB URIs fill 256 KiB after 32.
  auto big = [](int i) { return "file:///" + std::to_string(i) + std::string(max_uri_bytes - 20, 'A'); };
  int i = 0;
  while (s.insert(watches, big(i), "alice", added) == watch_refusal::none) {
    REQUIRE(added);
    REQUIRE(++i < 100);
  }
  CHECK(s.insert(watches, big(i), "alice", added) == watch_refusal::session_bytes);
  CHECK(i == static_cast<int>(max_watched_bytes / (max_uri_bytes - 12)));
  CHECK(watches->watched().size() == static_cast<std::size_t>(i));
  // Bytes per caller over all its holders: four more sets, and the fifth is refused.
  std::vector<watch_set> more(4);
  watch_refusal last = watch_refusal::none;
  for (auto& m : more)
    for (int j = 0; j < i && last == watch_refusal::none; ++j)
      last = m.insert(watches, big(1000 + static_cast<int>(&m - more.data()) * 100 + j), "alice", added);
  CHECK(last == watch_refusal::identity_bytes);
  // Another caller has its own budget.
  watch_set bob;
  CHECK(bob.insert(watches, big(5000), "bob", added) == watch_refusal::none);
  CHECK(added);
  // Count per holder.
  watch_set many;
  for (std::size_t k = 0; k < max_watched_resources; ++k)
    REQUIRE(many.insert(watches, "test://" + std::to_string(k), "carol", added) == watch_refusal::none);
  CHECK(many.insert(watches, "test://one-more", "carol", added) == watch_refusal::too_many);
  // What a refused insert would have taken is given back with the rest.
  s = watch_set();
  more.clear();
  bob = watch_set();
  many = watch_set();
  CHECK(watches->watched().empty());
  watch_set again;
  CHECK(again.insert(watches, big(1), "alice", added) == watch_refusal::none);
}
