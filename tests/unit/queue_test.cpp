// The priority queue (priority_queue_core), driven by explicit time points,
// and checked against a naive model over random traffic.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "actors/queue.hpp"
#include "tests/unit/time_points.hpp"

using namespace bulwark;
using namespace std::chrono;
using namespace std::chrono_literals;

// -- priority queue -----------------------------------------------------------------

namespace {

using test::never;
using test::t0;
using test::time_point;

bool any_lane(const std::string&) {
  return true;
}

std::vector<uint64_t> drain(priority_queue_core& q, time_point now,
                            const std::function<bool(const std::string&)>& can_run = any_lane) {
  std::vector<uint64_t> out;
  while (auto id = q.pop(now, can_run))
    out.push_back(*id);
  return out;
}

bool push(priority_queue_core& q, uint64_t id, priority p, time_point at = t0, std::string lane = "svc") {
  return q.push(id, p, std::move(lane), at, at, never).accepted;
}

using ids = std::vector<uint64_t>;

} // namespace

TEST_CASE("priorities parse and print", "[queue]") {
  CHECK(parse_priority("critical") == priority::critical);
  CHECK(parse_priority("high") == priority::high);
  CHECK(parse_priority("normal") == priority::normal);
  CHECK(parse_priority("low") == priority::low);
  CHECK_FALSE(parse_priority("urgent"));
  CHECK_FALSE(parse_priority("Low"));
  CHECK(std::string(to_string(priority::low)) == "low");
  CHECK(std::string(to_string(priority::critical)) == "critical");
}

TEST_CASE("the queue is FIFO within a priority and strict across priorities", "[queue]") {
  priority_queue_core q;
  SECTION("FIFO") {
    for (uint64_t id = 1; id <= 5; ++id)
      CHECK(push(q, id, priority::normal));
    CHECK(drain(q, t0) == ids{1, 2, 3, 4, 5});
  }
  SECTION("priority order") {
    push(q, 1, priority::low);
    push(q, 2, priority::normal);
    push(q, 3, priority::critical);
    push(q, 4, priority::high);
    push(q, 5, priority::normal);
    push(q, 6, priority::critical);
    CHECK(q.depth() == std::array<std::size_t, 4>{2, 1, 2, 1});
    CHECK(q.size() == 6);
    CHECK(drain(q, t0) == ids{3, 6, 4, 2, 5, 1});
    CHECK(q.size() == 0);
    CHECK(q.depth() == std::array<std::size_t, 4>{0, 0, 0, 0});
    CHECK(q.counters().popped == 6);
  }
}

TEST_CASE("aging lets waiting work overtake younger work of higher priority", "[queue]") {
  priority_queue_core q({1000, 5s});
  SECTION("not yet one aging period") {
    push(q, 1, priority::low, t0);
    push(q, 2, priority::normal, t0 + 4s);
    CHECK(drain(q, t0 + 4s) == ids{2, 1});
  }
  SECTION("one period: LOW ranks as NORMAL and is older") {
    push(q, 1, priority::low, t0);
    push(q, 2, priority::normal, t0 + 6s);
    CHECK(q.position(1, t0 + 6s, 1)->prio == priority::normal);
    CHECK(drain(q, t0 + 6s) == ids{1, 2});
  }
  SECTION("two periods against a HIGH that waited one second") {
    push(q, 1, priority::low, t0);
    push(q, 2, priority::high, t0 + 9s);
    auto copy = q;
    CHECK(drain(copy, t0 + 9s) == ids{2, 1});
    CHECK(drain(q, t0 + 10s) == ids{1, 2});
  }
  SECTION("no entry rises above critical") {
    // At t0+15s the LOW entry has aged three levels, the CRITICAL one two:
    // both are critical, and the older goes first.
    push(q, 1, priority::low, t0);
    push(q, 2, priority::critical, t0 + 5s);
    CHECK(q.position(1, t0 + 15s, 1)->prio == priority::critical);
    CHECK(drain(q, t0 + 15s) == ids{1, 2});
  }
  SECTION("zero turns aging off") {
    priority_queue_core flat({1000, 0ms});
    push(flat, 1, priority::low, t0);
    push(flat, 2, priority::normal, t0 + hours(1));
    CHECK(drain(flat, t0 + hours(1)) == ids{2, 1});
  }
}

TEST_CASE("a full queue refuses LOW work and sheds the youngest of the lowest priority", "[queue]") {
  priority_queue_core q({3, 5s});
  SECTION("refuse, then evict") {
    CHECK(push(q, 1, priority::normal, t0));
    CHECK(push(q, 2, priority::low, t0 + 1ms));
    CHECK(push(q, 3, priority::low, t0 + 2ms));
    CHECK(q.fill() == 1.0);

    auto r = q.push(4, priority::low, "svc", t0 + 3ms, t0 + 3ms, never);
    CHECK_FALSE(r.accepted);
    CHECK_FALSE(r.shed);
    CHECK(r.retry_after >= 1000ms);

    r = q.push(5, priority::high, "svc", t0 + 4ms, t0 + 4ms, never);
    CHECK(r.accepted);
    REQUIRE(r.shed);
    CHECK(*r.shed == 3);
    r = q.push(6, priority::normal, "svc", t0 + 5ms, t0 + 5ms, never);
    CHECK(r.accepted);
    CHECK(r.shed == std::optional<uint64_t>(2));
    // Nothing below NORMAL is left.
    r = q.push(7, priority::normal, "svc", t0 + 6ms, t0 + 6ms, never);
    CHECK_FALSE(r.accepted);
    CHECK_FALSE(r.shed);
    // A CRITICAL entry sheds the younger NORMAL one.
    r = q.push(8, priority::critical, "svc", t0 + 7ms, t0 + 7ms, never);
    CHECK(r.accepted);
    CHECK(r.shed == std::optional<uint64_t>(6));
    CHECK(q.size() == 3);
    CHECK(q.counters().pushed == 6);
    CHECK(q.counters().refused == 2);
    CHECK(q.counters().shed == 3);
    CHECK_FALSE(q.contains(6));
    CHECK(drain(q, t0 + 8ms) == ids{8, 5, 1});
  }
  SECTION("LOW goes before a younger NORMAL") {
    push(q, 1, priority::low, t0);
    push(q, 2, priority::normal, t0 + 1ms);
    push(q, 3, priority::normal, t0 + 2ms);
    auto r = q.push(4, priority::high, "svc", t0 + 3ms, t0 + 3ms, never);
    CHECK(r.shed == std::optional<uint64_t>(1));
  }
  SECTION("the youngest across lanes") {
    push(q, 1, priority::low, t0, "a");
    push(q, 2, priority::low, t0 + 1ms, "b");
    push(q, 3, priority::low, t0 + 2ms, "a");
    CHECK(q.push(4, priority::normal, "a", t0 + 3ms, t0 + 3ms, never).shed == std::optional<uint64_t>(3));
    CHECK(q.push(5, priority::normal, "a", t0 + 4ms, t0 + 4ms, never).shed == std::optional<uint64_t>(2));
    CHECK(drain(q, t0 + 5ms) == ids{4, 5, 1});
  }
}

TEST_CASE("shed_low refuses new LOW work even with room", "[queue]") {
  priority_queue_core q({100, 5s, 2});
  push(q, 1, priority::low);
  q.set_shed_low(true);
  auto r = q.push(2, priority::low, "svc", t0, t0, never);
  CHECK_FALSE(r.accepted);
  CHECK(r.retry_after == 1000ms); // the floor: little work ahead
  CHECK(push(q, 3, priority::normal));
  CHECK(q.size() == 2); // queued LOW work stays

  // The estimate follows the observed service time: 4 entries ahead, 1 s
  // each, 2 at a time.
  q.record_service_time(1s);
  push(q, 4, priority::high);
  push(q, 5, priority::critical);
  r = q.push(6, priority::low, "svc", t0, t0, never);
  CHECK_FALSE(r.accepted);
  CHECK(r.retry_after == 2000ms);

  q.set_shed_low(false);
  CHECK(push(q, 7, priority::low));
  CHECK(drain(q, t0) == ids{5, 4, 3, 1, 7});
}

TEST_CASE("not_before holds an entry back and next_ready tells when", "[queue]") {
  priority_queue_core q;
  CHECK_FALSE(q.next_ready(t0));
  CHECK(q.push(1, priority::normal, "svc", t0, t0 + 2s, never).accepted);
  push(q, 2, priority::low, t0);
  CHECK(q.next_ready(t0) == t0 + 2s);
  CHECK(q.pop(t0, any_lane) == std::optional<uint64_t>(2));
  CHECK_FALSE(q.pop(t0 + 1999ms, any_lane));
  CHECK_FALSE(q.next_ready(t0 + 2s)); // ready now, nothing later
  auto pos = q.position(1, t0, 1);
  REQUIRE(pos);
  CHECK(pos->position == 0);
  CHECK(pos->estimated_wait == 2000ms);
  CHECK(q.pop(t0 + 2s, any_lane) == std::optional<uint64_t>(1));
  CHECK_FALSE(q.next_ready(t0));
}

TEST_CASE("lanes that cannot run are skipped without losing order", "[queue]") {
  priority_queue_core q;
  push(q, 1, priority::normal, t0, "a");
  push(q, 2, priority::normal, t0, "b");
  push(q, 3, priority::normal, t0, "a");
  push(q, 4, priority::normal, t0, "b");
  push(q, 5, priority::normal, t0, "a");
  push(q, 6, priority::high, t0, "a");
  std::map<std::string, int> asked;
  auto not_a = [&](const std::string& lane) {
    ++asked[lane];
    return lane != "a";
  };
  CHECK(q.pop(t0, not_a) == std::optional<uint64_t>(2));
  CHECK(asked == std::map<std::string, int>{{"a", 1}, {"b", 1}}); // once per lane, not per entry
  CHECK(q.pop(t0, not_a) == std::optional<uint64_t>(4));
  CHECK_FALSE(q.pop(t0, not_a));
  CHECK(drain(q, t0) == ids{6, 1, 3, 5});
}

TEST_CASE("remove and expire take entries out", "[queue]") {
  priority_queue_core q;
  q.push(1, priority::normal, "svc", t0, t0, t0 + 1s);
  q.push(2, priority::normal, "svc", t0, t0, t0 + 5s);
  q.push(3, priority::normal, "svc", t0, t0, never);
  q.push(4, priority::low, "svc", t0, t0, t0 + 1s);
  q.push(5, priority::high, "svc", t0, t0 + 3s, t0 + 10s);
  CHECK(q.remove(2));
  CHECK_FALSE(q.remove(2));
  CHECK_FALSE(q.remove(99));
  CHECK(q.remove(5));
  CHECK_FALSE(q.next_ready(t0)); // 5's not_before went with it
  CHECK(q.next_deadline() == t0 + 1s);
  CHECK(q.expire(t0 + 999ms).empty());
  CHECK(q.expire(t0 + 1s) == ids{1, 4});
  CHECK_FALSE(q.next_deadline());
  CHECK(q.size() == 1);
  CHECK(q.depth() == std::array<std::size_t, 4>{0, 0, 1, 0});
  CHECK(q.counters().removed == 2);
  CHECK(q.counters().expired == 2);
  CHECK(drain(q, t0 + 1s) == ids{3});
  // An id can be queued again once it left.
  CHECK(push(q, 1, priority::normal));
  CHECK_FALSE(push(q, 1, priority::normal));
}

TEST_CASE("position and estimated wait", "[queue]") {
  priority_queue_core q({1000, 5s});
  push(q, 1, priority::normal, t0);
  push(q, 2, priority::high, t0);
  push(q, 3, priority::low, t0);
  push(q, 4, priority::normal, t0);
  CHECK_FALSE(q.position(99, t0, 1));
  CHECK(q.average_service_time() == 10ms);

  auto p = q.position(4, t0, 2);
  REQUIRE(p);
  CHECK(p->position == 2);
  CHECK(p->estimated_wait == 10ms); // 2 x 10 ms / 2
  CHECK(p->prio == priority::normal);
  CHECK(q.position(2, t0, 2)->position == 0);
  CHECK(q.position(2, t0, 2)->estimated_wait == 0ms);
  CHECK(q.position(3, t0, 1)->position == 3);
  CHECK(q.position(3, t0, 1)->estimated_wait == 30ms);

  q.record_service_time(40ms); // the first sample replaces the guess
  CHECK(q.position(4, t0, 2)->estimated_wait == 40ms);
  q.record_service_time(20ms); // then 0.8 x 40 + 0.2 x 20
  CHECK(q.average_service_time() == 36ms);
  CHECK(q.position(3, t0, 1)->estimated_wait == 108ms);
  CHECK(q.position(3, t0, 0)->estimated_wait == 108ms); // no concurrency counts as one

  // After 10 s, 1 and 4 rank critical with 2, and 1 is the oldest.
  CHECK(q.position(1, t0 + 10s, 1)->position == 0);
  CHECK(q.position(2, t0 + 10s, 1)->position == 1);
  CHECK(q.position(4, t0 + 10s, 1)->position == 2);
  CHECK(q.position(3, t0 + 10s, 1)->prio == priority::high);
  CHECK(drain(q, t0 + 10s) == ids{1, 2, 4, 3});
}

TEST_CASE("the queue's status", "[queue]") {
  priority_queue_core q({4, 5s});
  push(q, 1, priority::high, t0);
  push(q, 2, priority::low, t0 + 1s);
  q.set_shed_low(true);
  q.push(3, priority::low, "svc", t0 + 2s, t0 + 2s, never);
  auto s = q.status(t0 + 3s);
  CHECK(s["size"].as_int() == 2);
  CHECK(s["capacity"].as_int() == 4);
  CHECK(s["fill"].as_double() == 0.5);
  CHECK(s["depth"]["high"].as_int() == 1);
  CHECK(s["depth"]["low"].as_int() == 1);
  CHECK(s["depth"]["normal"].as_int() == 0);
  CHECK(s["shedLow"].as_bool());
  CHECK(s["oldestWaitMs"].as_int() == 3000);
  CHECK(s["refused"].as_int() == 1);
  CHECK(s["pushed"].as_int() == 2);
}

namespace {

/// The queue's rules, spelled out the slow way.
struct reference_queue {
  struct item {
    uint64_t id;
    unsigned prio;
    std::string lane;
    time_point enqueued, not_before, deadline;
    uint64_t seq;
  };
  std::size_t capacity;
  milliseconds aging;
  std::vector<item> items;
  uint64_t seq = 0;

  unsigned eff(const item& i, time_point now) const {
    auto periods = static_cast<unsigned>((now - i.enqueued) / aging);
    return periods >= i.prio ? 0 : i.prio - periods;
  }
  bool before(const item& a, const item& b, time_point now) const {
    auto ea = eff(a, now), eb = eff(b, now);
    return ea != eb ? ea < eb : a.seq < b.seq;
  }
  std::pair<bool, std::optional<uint64_t>> push(uint64_t id, unsigned prio, std::string lane, time_point now,
                                                time_point nb, time_point deadline) {
    std::optional<uint64_t> shed;
    if (items.size() >= capacity) {
      std::optional<std::size_t> victim;
      for (std::size_t k = 0; k < items.size(); ++k) {
        auto& c = items[k];
        if (c.prio <= prio)
          continue;
        if (!victim || c.prio > items[*victim].prio || (c.prio == items[*victim].prio && c.seq > items[*victim].seq))
          victim = k;
      }
      if (!victim)
        return {false, std::nullopt};
      shed = items[*victim].id;
      items.erase(items.begin() + static_cast<std::ptrdiff_t>(*victim));
    }
    items.push_back({id, prio, std::move(lane), now, nb, deadline, ++seq});
    return {true, shed};
  }
  std::optional<uint64_t> pop(time_point now, const std::set<std::string>& blocked) {
    std::optional<std::size_t> best;
    for (std::size_t k = 0; k < items.size(); ++k) {
      auto& c = items[k];
      if (c.not_before > now || blocked.count(c.lane))
        continue;
      if (!best || before(c, items[*best], now))
        best = k;
    }
    if (!best)
      return std::nullopt;
    auto id = items[*best].id;
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(*best));
    return id;
  }
  std::size_t position(uint64_t id, time_point now) const {
    auto& t = *std::find_if(items.begin(), items.end(), [&](auto& i) { return i.id == id; });
    return static_cast<std::size_t>(
      std::count_if(items.begin(), items.end(), [&](auto& i) { return before(i, t, now); }));
  }
};

} // namespace

TEST_CASE("the queue agrees with a naive model over random traffic", "[queue]") {
  std::mt19937_64 rng(20260728);
  auto roll = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  const std::vector<std::string> lanes{"a", "b", "c", "d"};
  priority_queue_core q({40, 2s});
  reference_queue ref{40, 2s, {}};
  auto now = t0;
  uint64_t next_id = 1;
  int pops = 0, sheds = 0;
  for (int step = 0; step < 6000; ++step) {
    now += milliseconds(roll(40));
    auto op = roll(10);
    if (op < 5) {
      auto prio = static_cast<unsigned>(roll(4));
      auto lane = lanes[static_cast<std::size_t>(roll(4))];
      auto nb = roll(4) == 0 ? now + milliseconds(roll(3000)) : now;
      auto deadline = roll(3) == 0 ? now + milliseconds(roll(20'000)) : never;
      auto id = next_id++;
      auto r = q.push(id, static_cast<priority>(prio), lane, now, nb, deadline);
      auto [accepted, shed] = ref.push(id, prio, lane, now, nb, deadline);
      REQUIRE(r.accepted == accepted);
      REQUIRE(r.shed == shed);
      sheds += shed ? 1 : 0;
    } else if (op < 9) {
      std::set<std::string> blocked;
      for (auto& l : lanes)
        if (roll(3) == 0)
          blocked.insert(l);
      auto got = q.pop(now, [&](const std::string& l) { return blocked.count(l) == 0; });
      REQUIRE(got == ref.pop(now, blocked));
      pops += got ? 1 : 0;
    } else {
      auto expired = q.expire(now);
      std::set<uint64_t> gone(expired.begin(), expired.end());
      std::set<uint64_t> due;
      for (auto& i : ref.items)
        if (i.deadline <= now)
          due.insert(i.id);
      REQUIRE(gone == due);
      ref.items.erase(std::remove_if(ref.items.begin(), ref.items.end(), [&](auto& i) { return due.count(i.id); }),
                      ref.items.end());
      if (!ref.items.empty()) {
        auto& some = ref.items[static_cast<std::size_t>(roll(static_cast<int>(ref.items.size())))];
        REQUIRE(q.position(some.id, now, 1)->position == ref.position(some.id, now));
        if (roll(2) == 0) {
          REQUIRE(q.remove(some.id));
          ref.items.erase(std::find_if(ref.items.begin(), ref.items.end(), [&](auto& i) { return i.id == some.id; }));
        }
      }
    }
    REQUIRE(q.size() == ref.items.size());
  }
  // The run exercised what it meant to.
  CHECK(pops > 1000);
  CHECK(sheds > 10);
}
