// The load generator's open-loop schedule (tools/send_schedule.hpp): a paced
// request's latency counts from when it was due, a late connection sends
// every request due meanwhile (none skipped), and what the run could not
// send is counted.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "tools/send_schedule.hpp"

using namespace bulwark::loadgen;
using namespace std::chrono_literals;

namespace {

struct paced_run {
  std::vector<clock::duration> latency; ///< In send order.
  schedule_tally tally;
};

/// One paced connection, as the load generator drives it, against a server
/// whose answer to request k takes `service(k)`: a request goes out when it
/// is due or, if the previous answer came later, as soon as that answer has
/// come. Measures the window [start, stop).
paced_run simulate(clock::duration interval, clock::duration length,
                   const std::function<clock::duration(int)>& service) {
  const auto start = clock::time_point{} + 1h;
  const auto stop = start + length;
  send_schedule schedule(start, interval);
  paced_run out;
  auto now = start;
  for (int k = 0; now < stop && schedule.next_due() < stop; ++k) {
    auto slot = schedule.take(std::max(now, schedule.next_due()));
    out.tally.sent(slot);
    auto answered = slot.sent + service(k);
    out.latency.push_back(paced_latency(slot, answered));
    now = answered;
  }
  out.tally.not_sent(schedule.untaken(start, stop));
  return out;
}

clock::duration quantile(std::vector<clock::duration> v, double q) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(q * static_cast<double>(v.size()) + 0.999999);
  return v[std::max<std::size_t>(rank, 1) - 1];
}

} // namespace

TEST_CASE("send schedule: requests queued behind a stall count their wait") {
  // 1,000 requests at 1 ms; the first answer takes 50 ms, the rest 10 us.
  auto run = simulate(1ms, 1s, [](int k) -> clock::duration { return k == 0 ? 50ms : 10us; });
  REQUIRE(run.latency.size() == 1000);
  CHECK(run.latency[0] == 50ms);
  // Due at 1 ms, sent when the stalled answer came at 50 ms.
  CHECK(run.latency[1] == 49ms + 10us);
  // Fifty requests went out behind it, the last one 490 us late.
  CHECK(run.tally.due == 1000);
  CHECK(run.tally.behind == 50);
  CHECK(run.tally.unsent == 0);
  CHECK(run.tally.max_lag == 49ms);
  // The stall shows in the tail: the tenth worst of 1,000 waited over 40 ms.
  // Measured from the send, p99 would be 10 us.
  CHECK(quantile(run.latency, 0.99) > 40ms);
  CHECK(quantile(run.latency, 0.50) == 10us);
}

TEST_CASE("send schedule: a connection far behind sends every request due, none skipped") {
  // A 2 s stall at 1 ms intervals: the 1,999 requests due meanwhile go out
  // back to back afterwards, and the run still sends all 5,000.
  auto run = simulate(1ms, 5s, [](int k) -> clock::duration { return k == 0 ? 2s : 10us; });
  CHECK(run.latency.size() == 5000);
  CHECK(run.tally.due == 5000);
  CHECK(run.tally.unsent == 0);
  CHECK(run.tally.behind >= 1999);
  CHECK(run.latency[1] == 1999ms + 10us);
}

TEST_CASE("send schedule: requests due when the run ends are counted as unsent") {
  // The first answer outlasts the run: 99 of the 100 requests due never go out.
  auto run = simulate(1ms, 100ms, [](int) -> clock::duration { return 1s; });
  CHECK(run.latency.size() == 1);
  CHECK(run.tally.due == 100);
  CHECK(run.tally.unsent == 99);
  CHECK(run.tally.behind_share() == Approx(0.99));

  // Only slots inside the window count: [10.5 ms, 20 ms) holds 11..19 ms.
  const auto t0 = clock::time_point{} + 1h;
  send_schedule s(t0, 1ms);
  CHECK(s.untaken(t0 + 10500us, t0 + 20ms) == 9);
  CHECK(s.untaken(t0, t0 + 20ms) == 20);
  CHECK(s.untaken(t0 + 20ms, t0 + 20ms) == 0);
  CHECK(send_schedule().untaken(t0, t0 + 1s) == 0);
}

TEST_CASE("send schedule: behind means sent at least 100 us after the due time") {
  const auto t0 = clock::time_point{} + 1h;
  send_schedule s(t0, 1ms);
  auto on_time = s.take(t0 + 99us);
  CHECK(on_time.due == t0);
  CHECK_FALSE(on_time.behind());
  auto late = s.take(t0 + 1ms + 100us);
  CHECK(late.due == t0 + 1ms);
  CHECK(late.behind());
  // Taken early (a timer that fired early), a request counts as sent when due.
  auto early = s.take(t0 + 1ms);
  CHECK(early.due == t0 + 2ms);
  CHECK(early.lag() == clock::duration::zero());
  CHECK(paced_latency(late, t0 + 3ms) == 2ms);

  schedule_tally a, b;
  a.sent(on_time);
  b.sent(late);
  b.not_sent(2);
  a.merge(b);
  CHECK(a.due == 4);
  CHECK(a.behind == 1);
  CHECK(a.unsent == 2);
  CHECK(a.max_lag == 100us);
  CHECK(a.behind_share() == Approx(0.75));
}
