#include "config/access_log.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include "config/audit.hpp"
#include "config/log.hpp"
#include "messages/json.hpp"

namespace bulwark::access_log {

namespace {

/// Where lines go. A file's lines are written straight into `pending_`,
/// which goes out when it holds 64 KiB, and every second by the flusher:
/// one system call for hundreds of lines. Lines to stderr are written into
/// a buffer of the calling thread's and go out one by one, each in one
/// call, so that they do not tear against the diagnostic log's.
class target {
public:
  target(int fd, bool owned, double ratio) : sample_ratio(ratio), fd_(fd), owned_(owned) {
    if (owned_)
      flusher_ = std::thread([this] { flush_loop(); });
  }
  ~target() {
    if (owned_) {
      {
        std::lock_guard<std::mutex> guard(mtx_);
        stopping_ = true;
      }
      cv_.notify_one();
      flusher_.join();
      flush();
      ::close(fd_);
    }
  }
  target(const target&) = delete;
  target& operator=(const target&) = delete;

  /// Adds the line that `fill(at)` writes at `at`, in at most `need`
  /// bytes; `fill` returns where the line ends.
  template <class Fill>
  void add(std::size_t need, Fill&& fill) {
    if (!owned_) {
      thread_local buffer line;
      line.make_room(need);
      return write_all(line.data.get(), static_cast<std::size_t>(fill(line.data.get()) - line.data.get()));
    }
    std::lock_guard<std::mutex> guard(mtx_);
    if (pending_.capacity - pending_.size < need) {
      write_pending();
      pending_.make_room(std::max(need, flush_bytes + flush_bytes / 2));
    }
    char* at = pending_.data.get() + pending_.size;
    pending_.size += static_cast<std::size_t>(fill(at) - at);
    if (pending_.size >= flush_bytes)
      write_pending();
  }

  const double sample_ratio;

private:
  static constexpr std::size_t flush_bytes = 64 * 1024;

  /// Bytes that are written over before they are read: no zero-filling.
  struct buffer {
    std::unique_ptr<char[]> data;
    std::size_t size = 0, capacity = 0;

    /// Room for `n` bytes from the start (what is held is dropped).
    void make_room(std::size_t n) {
      if (capacity < n) {
        data.reset(new char[n]);
        capacity = n;
      }
    }
  };

  void flush() {
    std::lock_guard<std::mutex> guard(mtx_);
    write_pending();
  }

  void flush_loop() {
    std::unique_lock<std::mutex> lock(mtx_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; }))
      write_pending();
  }

  /// With `mtx_` held.
  void write_pending() {
    write_all(pending_.data.get(), pending_.size);
    pending_.size = 0;
  }

  /// Writes all of it, or drops what the file does not take (a full disk
  /// must not stop the server; the lines are lost, not the requests).
  void write_all(const char* data, std::size_t size) {
    while (size > 0) {
      auto n = ::write(fd_, data, size);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  int fd_;
  bool owned_;
  std::mutex mtx_;
  std::condition_variable cv_;
  buffer pending_;
  bool stopping_ = false;
  std::thread flusher_;
};

std::mutex open_mtx;
std::shared_ptr<target> current; // read with atomic_load
std::atomic<bool> on{false};

bool sampled(double ratio) {
  if (ratio >= 1.0)
    return true;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return static_cast<double>(rng() >> 11) * 0x1.0p-53 < ratio;
}

/// `key` (`,"name":`) and `text` as a JSON string; nothing when empty.
template <std::size_t N>
void text(json::raw_writer& w, const char (&key)[N], std::string_view v) {
  if (v.empty())
    return;
  w.lit(key);
  w.string(v);
}

/// The same for text that needs no escaping (ids, words of our own).
template <std::size_t N>
void plain(json::raw_writer& w, const char (&key)[N], std::string_view v) {
  if (v.empty())
    return;
  w.lit(key);
  w.ch('"');
  w.bytes(v);
  w.ch('"');
}

template <std::size_t N>
void number(json::raw_writer& w, const char (&key)[N], long long n) {
  w.lit(key);
  w.number(n);
}

} // namespace

void open(const settings& s) {
  std::lock_guard<std::mutex> guard(open_mtx);
  std::shared_ptr<target> next;
  if (s.target == "stderr") {
    next = std::make_shared<target>(STDERR_FILENO, false, s.sample_ratio);
  } else if (!s.target.empty()) {
    int fd = ::open(s.target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
      throw std::runtime_error("cannot open " + s.target + ": " + std::strerror(errno));
    next = std::make_shared<target>(fd, true, s.sample_ratio);
  }
  // The previous target writes what it holds as its last user lets go.
  std::atomic_store(&current, next);
  on.store(static_cast<bool>(next));
}

bool enabled() noexcept {
  return on.load(std::memory_order_relaxed);
}

void write(const entry& e) {
  auto t = std::atomic_load(&current);
  if (!t)
    return;
  bool failed = e.outcome == "error";
  if (!failed && !sampled(t->sample_ratio))
    return;
  // A method the server knows is one of its own words; what a caller sent
  // that it does not know is answered with an error. A successful call's
  // name is one of the catalog's; a resource URI is the caller's text, as
  // is anything of a refused request. The caller's text is redacted.
  std::string method_redacted, name_redacted;
  std::string_view method = e.method, name = e.name;
  if (failed && !method.empty())
    method = method_redacted = log::redact_text(method);
  if ((failed || e.method == "resources/read") && !name.empty())
    name = name_redacted = log::redact_text(name);
  auto identity = audit::short_identity(e.identity);
  using json::string_bound;
  // Keys, the time, numbers and the words of our own: under 400 bytes.
  auto need = 400 + e.trace_id.size() + e.era.size() + e.outcome.size() + e.cache.size() + string_bound(identity)
              + string_bound(e.remote) + string_bound(method) + string_bound(name) + string_bound(e.service);
  auto now = std::chrono::system_clock::now();
  t->add(need, [&](char* at) {
    json::raw_writer w(at);
    w.lit("{\"ts\":\"");
    w.take(static_cast<std::size_t>(log::write_utc(w.at(), now, log::time_digits::micros) - w.at()));
    w.ch('"');
    plain(w, ",\"traceId\":", e.trace_id);
    text(w, ",\"identity\":", identity);
    text(w, ",\"remote\":", e.remote);
    plain(w, ",\"era\":", e.era);
    text(w, ",\"method\":", method);
    text(w, ",\"name\":", name);
    text(w, ",\"service\":", e.service);
    plain(w, ",\"outcome\":", e.outcome);
    if (e.code != 0)
      number(w, ",\"code\":", e.code);
    if (e.status != 0)
      number(w, ",\"status\":", e.status);
    number(w, ",\"durationUs\":", e.duration_us);
    number(w, ",\"bytesIn\":", static_cast<long long>(e.bytes_in));
    number(w, ",\"bytesOut\":", static_cast<long long>(e.bytes_out));
    plain(w, ",\"cache\":", e.cache);
    if (!e.service.empty())
      number(w, ",\"retries\":", static_cast<long long>(e.retries));
    w.lit("}\n");
    return w.at();
  });
}

} // namespace bulwark::access_log
