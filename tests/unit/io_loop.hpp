// An io_context run on its own thread for the length of a test.
#pragma once

#include <chrono>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace bulwark::test {

struct io_loop {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};

  /// Lets pending work finish (bounded), then stops the loop.
  ~io_loop() {
    guard.reset();
    for (int i = 0; i < 300 && !io.stopped(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    io.stop();
    thread.join();
  }
};

} // namespace bulwark::test
