// The fused scheduler: CAF worker threads that also run the HTTP transport's
// Asio I/O.
//
// With CAF's own schedulers, a request crosses two threads: the Asio thread
// hands it to a session actor on a CAF worker, and the reply is posted back.
// Each crossing wakes a sleeping thread (a futex or an eventfd), which on a
// small machine costs more than the request itself. The fused scheduler gives
// each CAF worker an `io_context` and lets the worker run I/O handlers while
// its job queue is empty, so a request, its actor hops and its reply run on
// one thread without any wake-up. Actors and messages are unchanged: the
// session actor still receives a typed message in its mailbox; only the thread
// that runs it differs.
//
// Jobs enqueued from other threads (timers, the stdio reader, a host's own
// threads) wake the worker by posting to its `io_context`. A handler that
// blocks stalls the I/O of that worker as well as its actors, as any blocking
// handler stalls a CAF worker.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace caf {
class actor_system;
class actor_system_config;
} // namespace caf

namespace bulwark {

/// Makes an actor system built from `cfg` run on the fused scheduler, with
/// `scheduler.max-threads` workers. An idle worker keeps polling for `spin`
/// before it sleeps (0: it sleeps at once).
void use_fused_scheduler(caf::actor_system_config& cfg, std::chrono::microseconds spin = {});

/// The worker `io_context`s of `sys` when it runs the fused scheduler (one per
/// worker, in worker order); empty for any other scheduler.
std::vector<boost::asio::io_context*> fused_io_contexts(caf::actor_system& sys);

/// The `io_context` of the fused worker that is running an actor's turn on
/// this thread right now; null outside an actor's turn or off the fused
/// workers. That context's handlers run on this thread only, so none of them
/// is running: code in the actor may start operations on its I/O objects
/// directly instead of posting (which costs a handler and a reactor poll).
boost::asio::io_context* actor_turn_io() noexcept;

} // namespace bulwark
