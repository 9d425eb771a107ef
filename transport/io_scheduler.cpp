#include "transport/io_scheduler.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <pthread.h>
#include <string>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/detail/double_ended_queue.hpp>
#include <caf/policy/unprofiled.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/coordinator.hpp>

namespace bulwark {

namespace {

namespace net = boost::asio;

class fused_coordinator;

/// The worker this thread runs, if it is a fused worker.
thread_local const void* current_worker = nullptr;

/// The worker's io_context while an actor's turn runs on this thread.
thread_local net::io_context* turn_io = nullptr;

/// Scheduling policy: one job queue per worker; an idle worker runs its
/// `io_context` until a handler ran, then looks at its queue again.
class fused_policy : public caf::policy::unprofiled {
public:
  struct coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator*) {}
    std::atomic<std::size_t> next_worker{0};
  };

  struct worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator*) {}
    worker_data(const worker_data&) {}

    caf::detail::double_ended_queue<caf::resumable> queue;
    /// Set while the worker may block in its io_context (see `dequeue`).
    std::atomic<bool> idle{false};
    bool named = false;
    /// The last wait was shorter than the spin: spin before the next one.
    bool spin_next = true;
  };

  template <class Coordinator>
  void central_enqueue(Coordinator* self, caf::resumable* job);

  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    auto& data = d(self);
    data.queue.append(job);
    // A job from the worker's own thread is picked up when the running
    // handler returns; another thread must wake a worker that may block.
    if (current_worker != self && data.idle.load())
      net::post(io_of(self), [] {});
  }

  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    d(self).queue.prepend(job);
  }

  template <class Worker>
  void resume_job_later(Worker* self, caf::resumable* job) {
    d(self).queue.append(job);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self);

  /// The worker's io_context (they all exist before the first worker runs).
  template <class Worker>
  static net::io_context& io_of(Worker* self);

  template <class Worker, class UnaryFunction>
  void foreach_resumable(Worker* self, UnaryFunction f) {
    while (auto job = d(self).queue.take_head())
      f(job);
  }

  template <class Coordinator, class UnaryFunction>
  void foreach_central_resumable(Coordinator*, UnaryFunction) {
    // No central queue: every job sits in a worker's queue.
  }
};

} // namespace
} // namespace bulwark

// The worker loop. CAF's own tags every job with its actor id for CAF's
// logger, at the price of a dynamic_cast per resume; Bulwark logs through its
// own logger, so its workers run the same loop without the tagging.
template <>
void caf::scheduler::worker<bulwark::fused_policy>::run() {
  for (;;) {
    auto job = policy_.dequeue(this);
    policy_.before_resume(this, job);
    bulwark::turn_io = &policy_.io_of(this);
    auto res = job->resume(this, max_throughput_);
    bulwark::turn_io = nullptr;
    policy_.after_resume(this, job);
    switch (res) {
      case resumable::resume_later:
        policy_.resume_job_later(this, job); // still referenced by the queue
        break;
      case resumable::done:
        policy_.after_completion(this, job);
        intrusive_ptr_release(job);
        break;
      case resumable::awaiting_message:
        intrusive_ptr_release(job); // enqueued again by its next message
        break;
      case resumable::shutdown_execution_unit:
        policy_.after_completion(this, job);
        policy_.before_shutdown(this);
        return;
    }
  }
}

namespace bulwark {
namespace {

class fused_coordinator final : public caf::scheduler::coordinator<fused_policy> {
public:
  using super = caf::scheduler::coordinator<fused_policy>;

  fused_coordinator(caf::actor_system& sys, std::chrono::microseconds spin) : super(sys), spin_(spin) {}

  static caf::actor_system::module* make(caf::actor_system& sys, std::chrono::microseconds spin) {
    return new fused_coordinator(sys, spin);
  }

  std::chrono::microseconds spin() const noexcept { return spin_; }

  std::vector<net::io_context*> io_contexts() {
    std::vector<net::io_context*> out;
    for (auto& io : ios_)
      out.push_back(io.get());
    return out;
  }

  net::io_context& io(std::size_t worker) { return *ios_[worker]; }

protected:
  void start() override {
    for (std::size_t i = 0; i < num_workers(); ++i) {
      ios_.push_back(std::make_unique<net::io_context>(1));
      guards_.emplace_back(net::make_work_guard(*ios_.back()));
    }
    super::start();
  }

  void stop() override {
    super::stop();
    guards_.clear();
    // Handlers still queued (connections of a transport that was not
    // stopped) are destroyed with their io_context, after the workers ended.
    ios_.clear();
  }

private:
  std::chrono::microseconds spin_;
  std::vector<std::unique_ptr<net::io_context>> ios_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards_;
};

template <class Coordinator>
void fused_policy::central_enqueue(Coordinator* self, caf::resumable* job) {
  // From a worker's thread (an I/O handler sending to an actor), the job
  // stays on that thread; from elsewhere, workers take turns.
  auto n = self->num_workers();
  for (std::size_t i = 0; i < n; ++i)
    if (self->worker_by_id(i) == current_worker)
      return self->worker_by_id(i)->external_enqueue(job);
  self->worker_by_id(d(self).next_worker++ % n)->external_enqueue(job);
}

template <class Worker>
net::io_context& fused_policy::io_of(Worker* self) {
  return static_cast<fused_coordinator*>(self->parent())->io(self->id());
}

template <class Worker>
caf::resumable* fused_policy::dequeue(Worker* self) {
  auto& data = d(self);
  if (!data.named) {
    data.named = true;
    current_worker = self;
    auto name = "bulwark.w" + std::to_string(self->id());
    pthread_setname_np(pthread_self(), name.c_str());
  }
  auto& io = io_of(self);
  auto spin = static_cast<fused_coordinator*>(self->parent())->spin();
  for (;;) {
    if (auto job = data.queue.take_head())
      return job;
    // Busy for a moment before sleeping: an answer that arrives meanwhile
    // (a downstream's response, the client's next request) costs no wake-up.
    // Only while events come closer together than the spin: under light
    // load the spin would find nothing and only keep the core from the
    // processes this worker waits for.
    if (spin.count() > 0 && data.spin_next) {
      auto until = std::chrono::steady_clock::now() + spin;
      bool ran = false;
      do {
        if (auto job = data.queue.take_head())
          return job;
        if (io.stopped())
          io.restart();
        ran = io.poll_one() > 0;
      } while (!ran && std::chrono::steady_clock::now() < until);
      if (ran)
        continue;
      data.spin_next = false;
    }
    // Announce the possible block before the last look at the queue, so an
    // enqueuer on another thread either sees `idle` and posts a wake-up, or
    // its job is seen here.
    data.idle.store(true);
    if (auto job = data.queue.take_head()) {
      data.idle.store(false);
      return job;
    }
    if (io.stopped())
      io.restart();
    if (spin.count() > 0) {
      auto slept_from = std::chrono::steady_clock::now();
      io.run_one();
      data.spin_next = std::chrono::steady_clock::now() - slept_from < spin;
    } else {
      io.run_one();
    }
    data.idle.store(false);
  }
}

} // namespace

void use_fused_scheduler(caf::actor_system_config& cfg, std::chrono::microseconds spin) {
  cfg.module_factories.push_back(
    [spin](caf::actor_system& sys) -> caf::actor_system::module* { return fused_coordinator::make(sys, spin); });
}

boost::asio::io_context* actor_turn_io() noexcept {
  return turn_io;
}

std::vector<boost::asio::io_context*> fused_io_contexts(caf::actor_system& sys) {
  if (auto* fused = dynamic_cast<fused_coordinator*>(&sys.scheduler()))
    return fused->io_contexts();
  return {};
}

} // namespace bulwark
