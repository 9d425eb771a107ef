// Shared state without a Redis server: the unknown session ids remembered
// for a while, and the leases of shared rate-limit tokens. (Against a real
// redis-server: the redis-scale-out end-to-end test.)
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

TEST_CASE("leases: a sixteenth of the smallest limit, spent until they end, then given back once", "[shared_state]") {
  using std::chrono::milliseconds;
  auto per_minute = [](uint64_t n) { return rate_limit{n, milliseconds(60000)}; };
  CHECK(lease_book::size_for({per_minute(6)}, 1.0) == 1); // a small limit: every call in Redis
  CHECK(lease_book::size_for({per_minute(160)}, 1.0) == 10);
  CHECK(lease_book::size_for({per_minute(160)}, 0.5) == 5); // degraded budgets
  CHECK(lease_book::size_for({per_minute(160), per_minute(50000)}, 1.0) == 10); // the smallest decides
  CHECK(lease_book::size_for({per_minute(100000000)}, 1.0) == lease_book::max_lease);

  lease_book book;
  auto t0 = lease_book::clock::time_point{} + std::chrono::hours(1);
  CHECK_FALSE(book.spend("a", t0));
  book.keep("a", 3, std::any(7), t0);
  CHECK(book.spend("a", t0));
  CHECK(book.give_back("a", t0)); // a refund goes back into the lease
  CHECK(book.spend("a", t0));
  CHECK(book.spend("a", t0 + milliseconds(10)));
  CHECK(book.spend("a", t0 + milliseconds(20)));
  CHECK_FALSE(book.spend("a", t0 + milliseconds(30))); // all three spent
  book.keep("b", 5, std::any(8), t0);
  CHECK(book.spend("b", t0));
  // Over: nothing more is spent, and what is left comes back once.
  auto over = t0 + lease_book::life;
  CHECK_FALSE(book.spend("b", over));
  CHECK_FALSE(book.give_back("b", over));
  auto back = book.expired(over);
  REQUIRE(back.size() == 1);
  CHECK(back[0].first == "b");
  CHECK(back[0].second.tokens == 4);
  CHECK(std::any_cast<int>(back[0].second.plan) == 8);
  CHECK(book.expired(over + milliseconds(300)).empty());
  CHECK(book.size() == 0);
  // A lease renewed after it ended gives its old tokens back first.
  book.keep("c", 2, std::any(9), t0);
  book.keep("c", 4, std::any(9), over);
  auto old = book.expired(over + milliseconds(600));
  REQUIRE(old.size() == 1);
  CHECK(old[0].second.tokens == 2);
  for (int i = 0; i < 4; ++i)
    CHECK(book.spend("c", over + milliseconds(600)));
  CHECK_FALSE(book.spend("c", over + milliseconds(600)));
}
