// Steady-clock time points for the tests that drive pure state machines (the
// rate buckets, the priority queue) by explicit times.
#pragma once

#include <chrono>

namespace bulwark::test {

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

/// Far from the clock's epoch, like a real steady clock.
inline const time_point t0 = time_point{} + std::chrono::hours(1000);
inline const time_point never = time_point::max();

} // namespace bulwark::test
