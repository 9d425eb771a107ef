// The pacing of one `bulwark-loadgen --rate` connection (an open-loop
// schedule) and what a run reports about it.
//
// Request k of a connection is due at first + k * interval, whatever became
// of request k - 1. A connection sends one request at a time, so when an
// answer comes late the requests due meanwhile go out late, back to back,
// until the connection is on schedule again; none is skipped. Their latency
// counts from when they were due: a generator that measured from the actual
// send would leave out the time they waited behind the slow answer and so
// understate the tail (coordinated omission).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace bulwark::loadgen {

using clock = std::chrono::steady_clock;

/// A paced request sent at least this long after it was due counts as
/// behind schedule. About a loopback call's p50 on the 2-core machine: a
/// send this late carries a delay the server did not cause into its latency.
inline constexpr std::chrono::microseconds behind_threshold{100};

/// One paced request's place in its connection's schedule.
struct send_slot {
  clock::time_point due; ///< When the schedule wanted it sent.
  clock::time_point sent; ///< When it went out (never before `due`).

  /// How late it went out.
  clock::duration lag() const { return sent - due; }
  /// Whether it went out behind schedule (see `behind_threshold`).
  bool behind() const { return lag() >= behind_threshold; }
};

/// The latency of a paced request answered at `answered`: from when it was
/// due, so that a wait behind an earlier slow answer counts.
inline clock::duration paced_latency(const send_slot& slot, clock::time_point answered) {
  return answered - slot.due;
}

/// The due times of one connection's requests.
class send_schedule {
public:
  send_schedule() = default;
  send_schedule(clock::time_point first, clock::duration interval) : next_(first), interval_(interval) {}

  /// Whether there is a schedule (`--rate`) at all.
  bool paced() const { return interval_.count() > 0; }

  /// When the next request is due.
  clock::time_point next_due() const { return next_; }

  /// Takes the next slot for a request sent at `now` (the caller waits
  /// until `next_due()` first). Every slot is taken in turn: however far
  /// behind the connection is, the next request is the next one due.
  send_slot take(clock::time_point now) {
    send_slot s{next_, std::max(now, next_)};
    next_ += interval_;
    return s;
  }

  /// How many slots due in [from, to) have not been taken: requests the run
  /// ended before it could send.
  uint64_t untaken(clock::time_point from, clock::time_point to) const {
    auto start = std::max(from, next_);
    if (!paced() || start >= to)
      return 0;
    // Slots at next_ + k * interval for k >= 0, counted from the first one
    // at or after `start`.
    auto skip = (start - next_ + interval_ - clock::duration(1)) / interval_;
    auto first = next_ + skip * interval_;
    if (first >= to)
      return 0;
    return static_cast<uint64_t>((to - first - clock::duration(1)) / interval_) + 1;
  }

private:
  clock::time_point next_{};
  clock::duration interval_{0};
};

/// How well a paced run held its schedule, over the requests due in the
/// measured window.
struct schedule_tally {
  uint64_t due = 0; ///< Requests due in the window: sent + unsent.
  uint64_t behind = 0; ///< Sent, but behind schedule.
  uint64_t unsent = 0; ///< Due, but the run ended before they could go out.
  clock::duration max_lag{0};

  void sent(const send_slot& s) {
    due++;
    if (s.behind())
      behind++;
    max_lag = std::max(max_lag, s.lag());
  }
  void not_sent(uint64_t n) {
    due += n;
    unsent += n;
  }
  void merge(const schedule_tally& o) {
    due += o.due;
    behind += o.behind;
    unsent += o.unsent;
    max_lag = std::max(max_lag, o.max_lag);
  }
  /// The share (0..1) of due requests not sent on time: sent behind
  /// schedule, or not sent at all.
  double behind_share() const {
    return due == 0 ? 0.0 : static_cast<double>(behind + unsent) / static_cast<double>(due);
  }
};

} // namespace bulwark::loadgen
