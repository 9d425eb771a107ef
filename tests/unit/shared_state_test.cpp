// Shared state without a Redis server: the unknown session ids remembered
// for a while. (Against a real redis-server: the redis-scale-out end-to-end
// test.)
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "actors/shared_state.hpp"

using namespace bulwark;
using namespace std::chrono_literals;

TEST_CASE("unknown session ids: remembered for a while, bounded, forgotten on demand", "[shared_state]") {
  using clock = recent_misses::clock;
  recent_misses m(3, 5000ms);
  auto t = clock::now();
  CHECK_FALSE(m.contains("a", t));
  m.add("a", t);
  CHECK(m.contains("a", t + 4999ms));
  CHECK_FALSE(m.contains("a", t + 5000ms)); // expired, and dropped
  CHECK(m.size() == 0);
  // At most three: the oldest goes first.
  for (auto id : {"a", "b", "c", "d"})
    m.add(id, t);
  CHECK(m.size() == 3);
  CHECK_FALSE(m.contains("a", t));
  CHECK(m.contains("d", t));
  // Added again, an id counts from its latest addition.
  m.add("b", t + 1000ms);
  m.add("e", t + 1000ms);
  CHECK(m.contains("b", t + 5500ms));
  CHECK_FALSE(m.contains("c", t)); // the oldest of the others went
  // Created or ended here: asked again at once.
  m.forget("b");
  CHECK_FALSE(m.contains("b", t + 1000ms));
  // Many additions keep it bounded.
  for (int i = 0; i < 1000; ++i)
    m.add("x" + std::to_string(i % 7), t);
  CHECK(m.size() <= 3);
  recent_misses none(0, 5000ms);
  none.add("a", t);
  CHECK_FALSE(none.contains("a", t));
}
