#include "config/audit.hpp"

#include <cerrno>
#include <mutex>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/log.hpp"

namespace bulwark::audit {

namespace {

using json::value;

/// The process's audit file. The mutex orders this process's writers; the
/// flock orders processes.
struct audit_file {
  std::mutex mtx;
  settings cfg;
  int fd = -1;
  bool open = false;
};

audit_file& state() {
  static audit_file f;
  return f;
}

int open_path(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

/// Locks the file under our fd, first making sure the fd is still the file
/// at the path (another process may have rotated it away). Returns false
/// when the file cannot be opened.
bool lock_current(audit_file& f) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (f.fd < 0 && (f.fd = open_path(f.cfg.file)) < 0)
      return false;
    if (::flock(f.fd, LOCK_EX) != 0)
      return false;
    struct stat at_path {
    }, ours{};
    if (::stat(f.cfg.file.c_str(), &at_path) == 0 && ::fstat(f.fd, &ours) == 0 && at_path.st_ino == ours.st_ino
        && at_path.st_dev == ours.st_dev)
      return true;
    ::flock(f.fd, LOCK_UN);
    ::close(f.fd);
    f.fd = -1;
  }
  return false;
}

/// file.N-1 -> file.N, ..., file -> file.1; called holding the lock of the
/// current file, which is then replaced by a fresh one (locked).
bool rotate(audit_file& f) {
  const auto& path = f.cfg.file;
  for (int i = f.cfg.max_files - 1; i >= 1; --i)
    ::rename((path + "." + std::to_string(i)).c_str(), (path + "." + std::to_string(i + 1)).c_str());
  if (::rename(path.c_str(), (path + ".1").c_str()) != 0)
    return false;
  ::flock(f.fd, LOCK_UN);
  ::close(f.fd);
  f.fd = -1;
  return lock_current(f);
}

bool write_all(int fd, const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    auto n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

} // namespace

void open(const settings& s) {
  auto& f = state();
  std::lock_guard<std::mutex> guard(f.mtx);
  if (f.fd >= 0)
    ::close(f.fd);
  f.cfg = s;
  f.fd = open_path(s.file);
  if (f.fd < 0)
    throw std::system_error(errno, std::generic_category(), "cannot open the audit log " + s.file);
  f.open = true;
}

bool enabled() noexcept {
  auto& f = state();
  std::lock_guard<std::mutex> guard(f.mtx);
  return f.open;
}

std::string_view short_identity(std::string_view identity) {
  auto colon = identity.find(':');
  if (colon == std::string_view::npos || identity.size() - colon - 1 != 64)
    return identity;
  return identity.substr(0, colon + 1 + 12);
}

void record(const entry& e) {
  auto& f = state();
  if (!enabled())
    return;
  value who = value::make_object(
    {{"identity", std::string(short_identity(e.identity.empty() ? std::string_view("unknown") : e.identity))}});
  if (!e.remote.empty())
    who.set("remote", e.remote);
  auto rec = value::make_object({{"ts", log::utc(std::chrono::system_clock::now(), log::time_digits::millis)},
                                 {"event", e.event},
                                 {"outcome", e.outcome},
                                 {"who", std::move(who)}});
  if (!e.target.empty())
    rec.set("target", e.target);
  if (!e.trace_id.empty())
    rec.set("traceId", e.trace_id);
  if (e.detail.is_object() && e.detail.size() > 0)
    rec.set("detail", e.detail);
  auto line = json::dump(log::redact(rec));
  line.push_back('\n');

  bool ok = false;
  {
    std::lock_guard<std::mutex> guard(f.mtx);
    if (lock_current(f)) {
      struct stat st {};
      bool full = ::fstat(f.fd, &st) == 0 && st.st_size > 0
                  && static_cast<std::uint64_t>(st.st_size) + line.size() > f.cfg.max_bytes;
      if (!full || rotate(f))
        ok = write_all(f.fd, line);
      if (f.fd >= 0)
        ::flock(f.fd, LOCK_UN);
    }
  }
  if (!ok)
    log::error(
      "audit log not written",
      value::make_object({{"path", f.cfg.file}, {"event", e.event}, {"error", std::system_category().message(errno)}}));
}

} // namespace bulwark::audit
