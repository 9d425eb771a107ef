// A downstream service's OAuth tokens: one request in flight per slot, the
// renewal ahead of expiry, a failure remembered for a second, a refused
// token dropped unless a newer one came, callers' slots bounded.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "actors/token_keeper.hpp"

using namespace bulwark;
using namespace std::chrono_literals;
using clock_type = token_keeper::clock;

namespace {

service_auth exchange_auth() {
  service_auth a;
  a.type = service_auth::kind::token_exchange;
  a.token_url = "http://idp/token";
  a.client_id = "gw";
  a.client_secret = "s";
  return a;
}

token_grant granted(std::string token, std::chrono::milliseconds lifetime) {
  token_grant g;
  g.access_token = std::move(token);
  g.lifetime = lifetime;
  g.status = 200;
  return g;
}

token_grant failed(int status, std::string error) {
  token_grant g;
  g.status = status;
  g.error = std::move(error);
  return g;
}

} // namespace

TEST_CASE("token keeper: one request per slot at a time, and every waiting exchange goes with its answer", "[token]") {
  token_keeper k(exchange_auth(), "http://svc/mcp");
  auto t0 = clock_type::now();
  auto first = k.begin("", t0);
  REQUIRE(first);
  REQUIRE(first->request);
  CHECK(first->request->body.rfind("grant_type=client_credentials", 0) == 0);
  CHECK_FALSE(k.begin("", t0)); // in flight
  k.at("", t0).waiting.push_back({7, "tools/call", "{}", "", {}});
  k.at("", t0).waiting.push_back({8, "tools/call", "{}", "", {}});
  // A caller's slot is its own: its request is an exchange of its token.
  auto caller = k.begin("caller-token", t0);
  REQUIRE(caller);
  CHECK(caller->request->body.find("subject_token=caller-token") != std::string::npos);
  CHECK(caller->serial != first->serial);

  std::deque<held_exchange> held;
  auto stale = granted("old", 60s);
  CHECK_FALSE(k.take("", first->serial + 100, stale, t0, held)); // not the request in flight
  auto g = granted("tok", 100s);
  REQUIRE(k.take("", first->serial, g, t0, held));
  CHECK(held.size() == 2);
  CHECK(held.front().id == 7);
  auto& own = k.own();
  CHECK(own.token == "tok");
  CHECK(own.usable(t0 + 99s));
  CHECK_FALSE(own.usable(t0 + 100s));
  CHECK(own.renew_at == t0 + 90s); // a tenth ahead
  CHECK_FALSE(own.fetching);
  // A long life is renewed a minute ahead, no more.
  auto again = k.begin("", t0);
  REQUIRE(again);
  auto long_life = granted("tok2", 3600s);
  REQUIRE(k.take("", again->serial, long_life, t0, held));
  CHECK(k.own().renew_at == t0 + 3540s);
  // Without expires_in: used until refused.
  auto third = k.begin("", t0);
  auto forever = granted("tok3", 0ms);
  REQUIRE(k.take("", third->serial, forever, t0, held));
  CHECK(k.own().usable(t0 + 24h * 365));
  CHECK(k.own().renew_at == clock_type::time_point::max());
}

TEST_CASE("token keeper: a failure answers for a second; a failed renewal keeps the token and retries", "[token]") {
  token_keeper k(exchange_auth(), "http://svc/mcp");
  auto t0 = clock_type::now();
  std::deque<held_exchange> held;
  auto s = k.begin("", t0);
  auto down = failed(503, "the token endpoint answered HTTP 503");
  REQUIRE(k.take("", s->serial, down, t0, held));
  CHECK(k.own().failing(t0 + 999ms));
  CHECK_FALSE(k.own().failing(t0 + 1000ms));
  CHECK(k.own().error == "the token endpoint answered HTTP 503");
  CHECK_FALSE(k.own().caller_refused); // Bulwark's own: the service's trouble

  s = k.begin("", t0);
  auto ok = granted("tok", 10s);
  REQUIRE(k.take("", s->serial, ok, t0, held));
  s = k.begin("", t0 + 9s);
  REQUIRE(k.take("", s->serial, down, t0 + 9s, held));
  CHECK(k.own().usable(t0 + 9s)); // still serves
  CHECK(k.own().renew_at == t0 + 9s + 500ms); // half of what is left

  // A caller's exchange refused with a 4xx is the caller's doing; a 429 or
  // 5xx is not.
  for (auto [status, theirs] :
       {std::pair{400, true}, std::pair{403, true}, std::pair{429, false}, std::pair{502, false}}) {
    auto who = "caller-" + std::to_string(status);
    auto c = k.begin(who, t0);
    auto no = failed(status, "refused");
    REQUIRE(k.take(who, c->serial, no, t0, held));
    CHECK(k.at(who, t0).caller_refused == theirs);
  }
}

TEST_CASE("token keeper: a refused token is dropped unless a newer one came since the request left", "[token]") {
  token_keeper k(exchange_auth(), "http://svc/mcp");
  auto t0 = clock_type::now();
  std::deque<held_exchange> held;
  auto s = k.begin("", t0);
  auto g = granted("tok", 60s);
  REQUIRE(k.take("", s->serial, g, t0, held));
  k.refused("", t0 - 1s); // sent with an older token
  CHECK(k.own().token == "tok");
  k.refused("", t0 + 1s); // sent with this one
  CHECK(k.own().token.empty());
  CHECK_FALSE(k.own().usable(t0 + 2s));
}

TEST_CASE("token keeper: callers' slots are bounded; idle ones give way, expired first", "[token]") {
  token_keeper k(exchange_auth(), "http://svc/mcp");
  auto t0 = clock_type::now();
  std::deque<held_exchange> held;
  for (std::size_t i = 0; i < token_keeper::max_callers; ++i)
    k.at("c" + std::to_string(i), t0);
  CHECK(k.callers() == token_keeper::max_callers);
  // One with a live token and one waiting for its request stay.
  auto live = k.begin("c0", t0);
  auto g = granted("x", 600s);
  REQUIRE(k.take("c0", live->serial, g, t0, held));
  REQUIRE(k.begin("c1", t0));
  k.at("new", t0);
  CHECK(k.callers() == 3); // the idle ones without a token went
  CHECK(k.at("c0", t0).token == "x");
  CHECK(k.at("c1", t0).fetching);
}

TEST_CASE("token keeper: the client's secret is read when a request is made", "[token]") {
  auto a = exchange_auth();
  a.client_secret = "${env:BULWARK_UNIT_TOKEN_SECRET}";
  ::unsetenv("BULWARK_UNIT_TOKEN_SECRET");
  token_keeper k(a, "http://svc/mcp");
  auto t0 = clock_type::now();
  auto s = k.begin("", t0);
  REQUIRE(s);
  CHECK_FALSE(s->request);
  CHECK(s->refused.error == "its client credentials cannot be read");
  CHECK(s->refused.detail.find("BULWARK_UNIT_TOKEN_SECRET") != std::string::npos);
}
