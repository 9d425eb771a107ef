// A child process spoken to over pipes: newline-delimited JSON-RPC on its
// stdin/stdout (the MCP stdio transport), its stderr captured line by line.
//
// Reading and writing happen on threads of the child's own; callbacks run on
// those threads and must only hand the data on (to an actor, by message).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bulwark {

struct child_spec_options {
  std::string command;
  std::vector<std::string> args;
  /// The child's environment is `default_child_environment` and the
  /// variables named in `inherit`, taken from ours where we have them, then
  /// `env` (which wins). Nothing else of ours reaches it: our own secrets
  /// (the admin token, Redis credentials, another service's keys) stay ours.
  std::map<std::string, std::string> env;
  std::vector<std::string> inherit;
  std::string cwd;
  std::size_t max_line = 16 << 20; ///< Longer stdout lines are dropped and reported.
};

/// The variables of ours every child gets: what a program needs to find its
/// tools, its home, its locale, its terminal and its time zone, and the
/// sanitizer runtimes' options (a child built with a sanitizer reports where
/// Bulwark's own reports go).
inline constexpr const char* default_child_environment[] = {
  "PATH",     "HOME", "USER", "LOGNAME", "SHELL",        "LANG",         "LANGUAGE",      "LC_ALL",
  "LC_CTYPE", "TERM", "TZ",   "TMPDIR",  "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"};

/// The environment a child started with `opts` gets, as NAME=VALUE strings;
/// `ours` is ours (`environ`).
std::vector<std::string> child_environment(const child_spec_options& opts, char** ours);

struct child_callbacks {
  std::function<void(std::string line)> on_line; ///< One stdout line, without '\n'.
  std::function<void(std::string line)> on_stderr; ///< One stderr line.
  std::function<void(std::string what)> on_garbage; ///< A line over the limit (dropped).
  std::function<void(int status)> on_exit; ///< Once, after stdout closed; waitpid status.
};

class child_process {
public:
  /// Starts the child in a process group of its own. Throws std::runtime_error
  /// when it cannot be started (with the reason, e.g. "no such file").
  child_process(const child_spec_options& opts, child_callbacks cb);
  /// Stops the child (SIGTERM to its group, SIGKILL after a grace period) and
  /// joins the threads.
  ~child_process();

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Queues one line (a '\n' is appended). Thread-safe; false once the child
  /// is gone or its stdin closed.
  bool write_line(std::string line);

  /// Signals the child's process group (SIGTERM, then SIGKILL after `grace_ms`).
  void terminate(int grace_ms = 2000);

  int pid() const noexcept;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace bulwark
