// The fused scheduler: CAF workers that run Asio I/O while idle.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <caf/all.hpp>

#include "transport/io_scheduler.hpp"

using namespace bulwark;
using namespace std::chrono_literals;

namespace {

struct fused_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  explicit fused_system(int workers) {
    cfg.set("scheduler.max-threads", workers);
    use_fused_scheduler(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

/// An actor that tells which thread it runs on.
caf::behavior where_am_i(caf::event_based_actor*) {
  return {[](std::shared_ptr<std::promise<std::thread::id>> p) { p->set_value(std::this_thread::get_id()); }};
}

} // namespace

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<std::promise<std::thread::id>>)

TEST_CASE("fused scheduler: I/O handlers and the actors they message share one thread") {
  fused_system f(1);
  auto ios = fused_io_contexts(*f.sys);
  REQUIRE(ios.size() == 1);
  auto actor = f.sys->spawn(where_am_i);

  std::promise<std::thread::id> io_thread;
  auto actor_thread = std::make_shared<std::promise<std::thread::id>>();
  auto actor_future = actor_thread->get_future();
  boost::asio::post(*ios[0], [&] {
    io_thread.set_value(std::this_thread::get_id());
    caf::anon_send(actor, actor_thread);
  });
  auto io_future = io_thread.get_future();
  REQUIRE(io_future.wait_for(2s) == std::future_status::ready);
  REQUIRE(actor_future.wait_for(2s) == std::future_status::ready);
  auto io_id = io_future.get();
  CHECK(actor_future.get() == io_id);
  CHECK(io_id != std::this_thread::get_id());
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("fused scheduler: messages from other threads wake an idle worker every time") {
  fused_system f(1);
  auto actor = f.sys->spawn(where_am_i);
  // Each message arrives while the worker may sit in its io_context; a lost
  // wake-up would leave a future unset.
  for (int i = 0; i < 2000; ++i) {
    auto p = std::make_shared<std::promise<std::thread::id>>();
    auto fut = p->get_future();
    caf::anon_send(actor, p);
    REQUIRE(fut.wait_for(2s) == std::future_status::ready);
    if (i % 200 == 0)
      std::this_thread::sleep_for(2ms); // let the worker go idle now and then
  }
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("fused scheduler: delayed messages arrive through the clock thread") {
  fused_system f(1);
  auto p = std::make_shared<std::promise<std::thread::id>>();
  auto fut = p->get_future();
  auto actor = f.sys->spawn(where_am_i);
  auto start = std::chrono::steady_clock::now();
  caf::delayed_anon_send(actor, 30ms, p);
  REQUIRE(fut.wait_for(2s) == std::future_status::ready);
  CHECK(std::chrono::steady_clock::now() - start >= 30ms);
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("fused scheduler: each worker has its own io_context") {
  fused_system f(2);
  auto ios = fused_io_contexts(*f.sys);
  REQUIRE(ios.size() == 2);
  std::promise<std::thread::id> a, b;
  boost::asio::post(*ios[0], [&] { a.set_value(std::this_thread::get_id()); });
  boost::asio::post(*ios[1], [&] { b.set_value(std::this_thread::get_id()); });
  auto fa = a.get_future(), fb = b.get_future();
  REQUIRE(fa.wait_for(2s) == std::future_status::ready);
  REQUIRE(fb.wait_for(2s) == std::future_status::ready);
  CHECK(fa.get() != fb.get());
}

TEST_CASE("other schedulers have no fused io_contexts") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 1);
  caf::actor_system sys{cfg};
  CHECK(fused_io_contexts(sys).empty());
}
