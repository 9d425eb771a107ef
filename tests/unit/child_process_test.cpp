// Stdio children: the environment a child gets, and the descriptors it
// inherits.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "transport/child_process.hpp"

using namespace bulwark;
using namespace std::chrono_literals;

TEST_CASE("a stdio child gets the default variables, the ones named, and its own env; nothing else",
          "[child_process]") {
  std::string vars[] = {"PATH=/usr/bin",
                        "HOME=/home/b",
                        "LANG=C.UTF-8",
                        "BULWARK_ADMIN_TOKEN=t0ken",
                        "BULWARK_REDIS=redis://:pw@h",
                        "NODE_OPTIONS=--x",
                        "AWS_SECRET_ACCESS_KEY=k",
                        "TZ=UTC",
                        "A=ours",
                        "UBSAN_OPTIONS=log_path=/r/ubsan"};
  std::vector<char*> ours;
  for (auto& v : vars)
    ours.push_back(v.data());
  ours.push_back(nullptr);
  child_spec_options o;
  o.env = {{"A", "theirs"}, {"MEMORY_FILE_PATH", "/m"}};
  o.inherit = {"NODE_OPTIONS", "NOT_SET_HERE"};
  auto env = child_environment(o, ours.data());
  std::sort(env.begin(), env.end());
  CHECK(env
        == std::vector<std::string>{"A=theirs", "HOME=/home/b", "LANG=C.UTF-8", "MEMORY_FILE_PATH=/m",
                                    "NODE_OPTIONS=--x", "PATH=/usr/bin", "TZ=UTC", "UBSAN_OPTIONS=log_path=/r/ubsan"});
  o.inherit.clear();
  env = child_environment(o, ours.data());
  CHECK(std::find(env.begin(), env.end(), "NODE_OPTIONS=--x") == env.end());
}

TEST_CASE("a stdio child inherits no descriptor of ours but its three pipes", "[child_process]") {
  // A descriptor without O_CLOEXEC, as Asio's sockets are.
  // (Above the lowest free one, which the child's `ls` takes for itself.)
  int null_fd = ::open("/dev/null", O_RDONLY);
  int leaky = ::fcntl(null_fd, F_DUPFD, 100);
  ::close(null_fd);
  REQUIRE(leaky >= 100);
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::string> lines;
  bool exited = false;
  child_callbacks cb;
  cb.on_line = [&](std::string line) {
    std::lock_guard<std::mutex> guard(mtx);
    lines.push_back(std::move(line));
  };
  cb.on_exit = [&](int) {
    std::lock_guard<std::mutex> guard(mtx);
    exited = true;
    cv.notify_all();
  };
  child_spec_options o;
  o.command = "/bin/sh";
  o.args = {"-c", "ls /proc/self/fd"}; // ls's own listing handle is its only extra one
  {
    child_process child(o, cb);
    std::unique_lock<std::mutex> guard(mtx);
    REQUIRE(cv.wait_for(guard, std::chrono::seconds(10), [&] { return exited; }));
  }
  ::close(leaky);
  std::sort(lines.begin(), lines.end());
  CHECK(lines.size() == 4);
  CHECK(std::find(lines.begin(), lines.end(), std::to_string(leaky)) == lines.end());
}
