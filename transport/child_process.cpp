#include "transport/child_process.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <linux/close_range.h>
#include <mutex>
#include <stdexcept>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace bulwark {

namespace {

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

/// Reads `fd` to EOF, calling `line` for each '\n'-terminated line.
void read_lines(int fd, std::size_t max_line, const std::function<void(std::string)>& line,
                const std::function<void(std::string)>& garbage) {
  std::string pending;
  bool skipping = false; // inside an over-long line
  char buf[64 * 1024];
  for (;;) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    std::size_t start = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      if (buf[i] != '\n')
        continue;
      if (!skipping) {
        pending.append(buf + start, i - start);
        if (!pending.empty() && pending.back() == '\r')
          pending.pop_back();
        if (line)
          line(std::move(pending));
      }
      pending.clear();
      skipping = false;
      start = i + 1;
    }
    if (!skipping) {
      pending.append(buf + start, static_cast<std::size_t>(n) - start);
      if (pending.size() > max_line) {
        if (garbage)
          garbage("a line longer than " + std::to_string(max_line) + " bytes was dropped");
        pending.clear();
        skipping = true;
      }
    }
  }
  if (!skipping && !pending.empty() && line)
    line(std::move(pending));
}

} // namespace

std::vector<std::string> child_environment(const child_spec_options& opts, char** ours) {
  std::vector<std::string> out;
  auto wanted = [&](std::string_view name) {
    if (opts.env.count(std::string(name)))
      return false; // the service's own value replaces ours
    for (const char* d : default_child_environment)
      if (name == d)
        return true;
    return std::find(opts.inherit.begin(), opts.inherit.end(), name) != opts.inherit.end();
  };
  for (char** e = ours; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && wanted(kv.substr(0, eq)))
      out.emplace_back(kv);
  }
  for (auto& [k, v] : opts.env)
    out.push_back(k + "=" + v);
  return out;
}

struct child_process::impl {
  child_callbacks cb;
  pid_t pid = -1;
  int in_fd = -1; // our end of the child's stdin
  int out_fd = -1; // child's stdout
  int err_fd = -1; // child's stderr
  std::thread reader, err_reader, writer;
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::string> queue;
  bool closing = false;
  std::atomic<bool> exited{false};
};

child_process::child_process(const child_spec_options& opts, child_callbacks cb) : impl_(std::make_unique<impl>()) {
  auto& d = *impl_;
  d.cb = std::move(cb);
  int in[2], out[2], err[2], status_pipe[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0
      || ::pipe2(status_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("cannot create pipes: ") + std::strerror(errno));

  // Everything the child needs is prepared before fork (no allocation after).
  std::vector<std::string> argv_store{opts.command};
  argv_store.insert(argv_store.end(), opts.args.begin(), opts.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_store)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  auto env_store = child_environment(opts, environ);
  std::vector<char*> envp;
  for (auto& e : env_store)
    envp.push_back(e.data());
  envp.push_back(nullptr);

  // The highest descriptor to mark close-on-exec where close_range cannot.
  struct rlimit files {};
  int max_fd = ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY
                 ? static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20))
                 : 1 << 16;
  pid_t pid = ::fork();
  if (pid < 0)
    throw std::runtime_error(std::string("cannot fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Child: own process group, default signals, pipes on 0/1/2.
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::signal(SIGPIPE, SIG_DFL);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    // Only the three pipes reach the program: not our listening sockets,
    // clients' connections, the Redis connection or other services' pipes
    // (Asio and hiredis open sockets without O_CLOEXEC).
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
      for (int fd = 3; fd < max_fd; ++fd)
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) {
      int e = errno;
      (void)!::write(status_pipe[1], &e, sizeof e);
      ::_exit(127);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    int e = errno;
    (void)!::write(status_pipe[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::close(status_pipe[1]);
  // An exec failure arrives as an errno on the status pipe; success closes it.
  int child_errno = 0;
  ssize_t got;
  do {
    got = ::read(status_pipe[0], &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  ::close(status_pipe[0]);
  if (got == sizeof child_errno) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    throw std::runtime_error("cannot start '" + opts.command + "'" + (opts.cwd.empty() ? "" : " in '" + opts.cwd + "'")
                             + ": " + std::strerror(child_errno));
  }
  d.pid = pid;
  d.in_fd = in[1];
  d.out_fd = out[0];
  d.err_fd = err[0];

  auto max_line = opts.max_line;
  d.reader = std::thread([&d, max_line] {
    read_lines(d.out_fd, max_line, d.cb.on_line, d.cb.on_garbage);
    int status = 0;
    while (::waitpid(d.pid, &status, 0) < 0 && errno == EINTR) {
    }
    d.exited = true;
    {
      std::lock_guard<std::mutex> guard(d.mtx);
      d.closing = true;
    }
    d.cv.notify_all();
    if (d.cb.on_exit)
      d.cb.on_exit(status);
  });
  d.err_reader = std::thread([&d] { read_lines(d.err_fd, 64 * 1024, d.cb.on_stderr, {}); });
  d.writer = std::thread([&d] {
    for (;;) {
      std::string next;
      {
        std::unique_lock<std::mutex> guard(d.mtx);
        d.cv.wait(guard, [&] { return d.closing || !d.queue.empty(); });
        if (d.queue.empty())
          break;
        next = std::move(d.queue.front());
        d.queue.pop_front();
      }
      std::size_t off = 0;
      while (off < next.size()) {
        auto n = ::write(d.in_fd, next.data() + off, next.size() - off);
        if (n < 0 && errno == EINTR)
          continue;
        if (n <= 0) {
          std::lock_guard<std::mutex> guard(d.mtx);
          d.closing = true;
          d.queue.clear();
          break;
        }
        off += static_cast<std::size_t>(n);
      }
    }
    close_fd(d.in_fd);
  });
}

bool child_process::write_line(std::string line) {
  auto& d = *impl_;
  line.push_back('\n');
  {
    std::lock_guard<std::mutex> guard(d.mtx);
    if (d.closing)
      return false;
    d.queue.push_back(std::move(line));
  }
  d.cv.notify_all();
  return true;
}

void child_process::terminate(int grace_ms) {
  auto& d = *impl_;
  if (d.pid <= 0 || d.exited)
    return;
  ::kill(-d.pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (!d.exited && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (!d.exited)
    ::kill(-d.pid, SIGKILL);
}

int child_process::pid() const noexcept {
  return impl_->pid;
}

child_process::~child_process() {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> guard(d.mtx);
    d.closing = true;
  }
  d.cv.notify_all();
  if (d.writer.joinable())
    d.writer.join(); // closes the child's stdin: a well-behaved server exits
  if (!d.exited) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (!d.exited && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  terminate(1500);
  if (d.reader.joinable())
    d.reader.join();
  // A grandchild may still hold stderr open; the group was signalled above.
  if (d.err_reader.joinable())
    d.err_reader.join();
  close_fd(d.out_fd);
  close_fd(d.err_fd);
}

} // namespace bulwark
