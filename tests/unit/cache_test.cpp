// The result cache: freshness, stale copies and LRU bounds on an injected
// clock, canonical keys, invalidation scopes, and the cache actor on CAF's
// deterministic test coordinator (TTL on the actor clock, lookups it never
// answers).
#include <optional>

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/cache.hpp"
#include "messages/actors.hpp"
#include "tests/unit/simulated.hpp"

using namespace bulwark;
using json::value;
using namespace std::chrono_literals;
using test::simulated;

TEST_CASE("result cache: fresh, then stale only on request, then gone; LRU within entry and byte bounds", "[cache]") {
  result_cache c(3, 1 << 20);
  auto t = result_cache::clock::time_point{} + 1h;
  auto v = [](int n) { return json::value::make_object({{"n", n}}); };
  c.put("svc\nt\n{}", v(1), 100ms, 1000ms, t);
  auto fresh = c.get("svc\nt\n{}", t + 50ms, false);
  REQUIRE(fresh);
  CHECK_FALSE(fresh->stale);
  CHECK(fresh->age == 50ms);
  CHECK_FALSE(c.get("svc\nt\n{}", t + 150ms, false)); // expired for normal answers
  auto stale = c.get("svc\nt\n{}", t + 150ms, true);
  REQUIRE(stale);
  CHECK(stale->stale);
  CHECK(stale->result["n"].as_int() == 1);
  CHECK_FALSE(c.get("svc\nt\n{}", t + 1200ms, true)); // past its stale age
  CHECK(c.size() == 0);

  c.put("a", v(1), 1s, 1s, t);
  c.put("b", v(2), 1s, 1s, t);
  c.put("c", v(3), 1s, 1s, t);
  REQUIRE(c.get("a", t, false)); // a is now the most recent
  c.put("d", v(4), 1s, 1s, t); // evicts b, the least recent
  CHECK(c.get("a", t, false));
  CHECK_FALSE(c.get("b", t, false));
  CHECK(c.evictions == 1);

  result_cache small(100, 60);
  small.put("k1", v(1), 1s, 1s, t); // ~8 + 2 bytes each
  small.put("k2", v(2), 1s, 1s, t);
  CHECK(small.bytes() <= 60);
  small.put("big", json::value::make_object({{"text", std::string(100, 'x')}}), 1s, 1s, t);
  CHECK_FALSE(small.get("big", t, false)); // larger than the whole cache

  c.put("svc1\nx", v(1), 1s, 1s, t);
  c.put("svc2\nx", v(2), 1s, 1s, t);
  CHECK(c.invalidate("svc1\n") == 1);
  CHECK(c.get("svc2\nx", t, false));
}

TEST_CASE("result cache: new bounds (a reload) evict the least recently used entries beyond them", "[cache]") {
  result_cache c(10, 1 << 20);
  auto t = result_cache::clock::time_point{} + 1h;
  for (int i = 0; i < 5; ++i)
    c.put("k" + std::to_string(i), json::value::make_object({{"n", i}}), 1s, 1s, t);
  REQUIRE(c.get("k0", t, false)); // k0 is now the most recent
  c.resize(2, 1 << 20);
  CHECK(c.size() == 2);
  CHECK(c.get("k0", t, false));
  CHECK(c.get("k4", t, false));
  CHECK_FALSE(c.get("k1", t, false));
  CHECK(c.evictions == 3);
  c.put("k5", json::value::make_object({{"n", 5}}), 1s, 1s, t); // the new bound holds
  CHECK(c.size() == 2);
  c.resize(10, 1 << 20);
  c.put("k6", json::value::make_object({{"n", 6}}), 1s, 1s, t);
  CHECK(c.size() == 3);
}

TEST_CASE("cache keys use canonical JSON: key order does not matter", "[cache]") {
  json::value a, b;
  json::parse_error err;
  REQUIRE(json::parse(R"({"b":1,"a":{"y":[1,{"q":2,"p":1}],"x":"s"}})", a, err));
  REQUIRE(json::parse(R"({"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1})", b, err));
  CHECK(canonical_json(a) == canonical_json(b));
  CHECK(canonical_json(a) == R"({"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1})");
}

TEST_CASE("shared cache: an invalidation prefix starts a new generation of the scope that covers it", "[cache]") {
  CHECK(invalidation_scope("web\n") == "s:web");
  CHECK(invalidation_scope("web\ntools/call\n") == "m:web\ntools/call");
  // Deeper than a method: the whole method (more than asked, never less).
  CHECK(invalidation_scope("web\ntools/call\n*\n{\"name\":\"x\"}") == "m:web\ntools/call");
  // A partial method or service name.
  CHECK(invalidation_scope("web\ntools/") == "s:web");
  CHECK(invalidation_scope("we") == "all");
  CHECK(invalidation_scope("") == "all");
  // Services whose names share a beginning are separate scopes.
  CHECK(invalidation_scope("web2\n") != invalidation_scope("web\n"));
}

namespace {

/// Stands in for the asking session: hands each answer to `f`.
template <class F>
caf::actor answers_to(test::simulated& s, F f) {
  return s.sys->spawn([f](caf::event_based_actor*) -> caf::behavior {
    return {[f](atom::found, uint64_t, std::optional<cache_hit>& hit) mutable { f(std::move(hit)); }};
  });
}

} // namespace

TEST_CASE("cache actor: fresh for the TTL, then stale until max stale, on the actor clock", "[cache]") {
  simulated s;
  auto cache = spawn_cache(*s.sys, 100, 1 << 20);
  s.spawned.push_back(caf::actor_cast<caf::actor>(cache));
  std::optional<cache_hit> got;
  bool answered = false;
  auto session = answers_to(s, [&](std::optional<cache_hit> h) {
    got = std::move(h);
    answered = true;
  });
  auto lookup = [&](bool stale) {
    answered = false;
    caf::anon_send(cache, atom::get_v,
                   std::make_shared<cache_lookup>("svc\ntools/call\n*\n{}", stale, session, uint64_t{1}));
    s.sched->run();
    REQUIRE(answered);
  };
  caf::anon_send(cache, atom::put_v, std::string("svc\ntools/call\n*\n{}"), value::make_object({{"n", 1}}),
                 int64_t{1000}, int64_t{5000});
  s.sched->run();
  lookup(false);
  REQUIRE(got);
  CHECK_FALSE(got->stale);
  s.sched->advance_time(1001ms);
  lookup(false);
  CHECK_FALSE(got); // expired for fresh answers
  lookup(true);
  REQUIRE(got);
  CHECK(got->stale);
  CHECK(got->age == 1001ms);
  s.sched->advance_time(5000ms);
  lookup(true);
  CHECK_FALSE(got); // past max stale too
  // Invalidation by prefix drops what a service's list_changed touches.
  caf::anon_send(cache, atom::put_v, std::string("svc\ntools/call\n*\n{}"), value::make_object({{"n", 2}}),
                 int64_t{1000}, int64_t{5000});
  caf::anon_send(cache, atom::drop_v, std::string("svc\ntools/call\n"));
  s.sched->run();
  lookup(true);
  CHECK_FALSE(got);
}

TEST_CASE("cache actor: a lookup it never answers (killed first, or gone) is a miss, answered once", "[cache]") {
  simulated s;
  auto cache = spawn_cache(*s.sys, 100, 1 << 20);
  const std::string key = "svc\ntools/call\n*\n{}";
  caf::anon_send(cache, atom::put_v, key, value::make_object({{"n", 1}}), int64_t{60000}, int64_t{60000});
  s.sched->run();
  int answers = 0;
  std::optional<cache_hit> got;
  auto session = answers_to(s, [&](std::optional<cache_hit> h) {
    ++answers;
    got = std::move(h);
  });
  auto look_up = [&](bool stale) {
    caf::anon_send(cache, atom::get_v, std::make_shared<cache_lookup>(key, stale, session, uint64_t{1}));
  };
  look_up(false);
  s.sched->run();
  CHECK(answers == 1); // a live cache answers once
  CHECK(got);

  answers = 0;
  caf::anon_send_exit(cache, caf::exit_reason::kill);
  look_up(false);
  s.sched->run();
  CHECK(answers == 1);
  CHECK_FALSE(got);

  answers = 0;
  look_up(true); // the dead incarnation
  s.sched->run();
  CHECK(answers == 1);
  CHECK_FALSE(got);
}
