// bulwark-console: an interactive terminal console for Bulwark's admin API.
//
//   bulwark-console [--url http://HOST:PORT] [--token T] [--no-history] [-c COMMAND]...
//
// Type `help` at the `bulwark> ` prompt for the commands: the actor tree,
// breakers, queue, cache, alerts, limits, sessions and health views; killing
// actors, forcing breakers and degraded mode, invalidating a service's cached
// results; `watch`, which redraws the actor tree and a health summary until q.
//
// On a terminal the console edits lines itself (termios raw mode, no readline):
// cursor keys, Ctrl-A/E/U/K/W, Ctrl-C clears the line, Ctrl-D leaves, up/down
// walk the history (also kept in ~/.bulwark_console_history unless
// --no-history), TAB completes commands, actor names, kinds and services. The
// terminal is put back on every way out, signals included. Anywhere else it
// reads plain lines, prints no prompt and no escape codes, and `watch` prints
// three frames one after the other, so it can be scripted.
//
// With -c it runs the given commands and exits. Exit status: 0 when every
// command succeeded (at the prompt: always), 1 when one failed, 2 on bad
// usage, 130 when interrupted. The token comes from --token or
// BULWARK_ADMIN_TOKEN.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "messages/json.hpp"
#include "messages/text.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = bulwark::json;
using tcp = net::ip::tcp;
using json::value;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// -- options -----------------------------------------------------------------

struct options {
  std::string host = "127.0.0.1";
  std::string port = "8080";
  std::string token;
  /// Commands from -c, run in order instead of reading a prompt.
  std::vector<std::string> commands;
  /// Whether the prompt's history is kept in ~/.bulwark_console_history.
  bool history = true;
};

[[noreturn]] void usage(const std::string& why, int status = 2) {
  (status == 0 ? std::cout : std::cerr)
    << "bulwark-console: " << why << "\n"
    << "usage: bulwark-console [--url http://HOST:PORT] [--token T] [--no-history] [-c COMMAND]...\n"
    << "Without -c, reads commands at a `bulwark> ` prompt; type `help` there for the list.\n"
    << "The admin token can also come from BULWARK_ADMIN_TOKEN.\n";
  std::exit(status);
}

options parse(int argc, char** argv) {
  options o;
  if (const char* t = std::getenv("BULWARK_ADMIN_TOKEN"))
    o.token = t;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--url") {
      auto url = next();
      if (url.rfind("https://", 0) == 0)
        usage("the admin API speaks plain HTTP; use http://");
      if (url.rfind("http://", 0) != 0)
        usage("--url must be http://HOST:PORT");
      auto hostport = url.substr(7, url.find('/', 7) == std::string::npos ? std::string::npos : url.find('/', 7) - 7);
      std::string host = hostport, port = "80";
      if (!hostport.empty() && hostport[0] == '[') {
        // An IPv6 literal: [::1]:8080.
        auto close = hostport.find(']');
        if (close == std::string::npos)
          usage("--url has an unclosed [");
        host = hostport.substr(1, close - 1);
        if (close + 1 < hostport.size()) {
          if (hostport[close + 1] != ':')
            usage("--url must be http://HOST:PORT");
          port = hostport.substr(close + 2);
        }
      } else if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
        host = hostport.substr(0, colon);
        port = hostport.substr(colon + 1);
      }
      char* end = nullptr;
      long p = std::strtol(port.c_str(), &end, 10);
      if (host.empty() || port.empty() || *end != '\0' || p < 1 || p > 65535)
        usage("--url must be http://HOST:PORT with a port from 1 to 65535");
      o.host = host;
      o.port = port;
    } else if (a == "--token") {
      o.token = next();
    } else if (a == "-c" || a == "--command") {
      o.commands.push_back(next());
    } else if (a == "--no-history") {
      o.history = false;
    } else if (a == "--help" || a == "-h") {
      usage("a terminal console for Bulwark's admin API", 0);
    } else {
      usage("unknown option " + a);
    }
  }
  return o;
}

// -- the terminal ------------------------------------------------------------
//
// What the console changed about the terminal lives where signal handlers can
// see it, so that every way out of the process puts the terminal back.

struct terminal_state {
  /// The settings found at startup.
  termios original{};
  /// The settings in effect while `modified`.
  termios current{};
  volatile sig_atomic_t saved = 0;
  volatile sig_atomic_t modified = 0;
  /// A live view owns the alternate screen (and has hidden the cursor).
  volatile sig_atomic_t alt_screen = 0;
};
terminal_state term;

/// SIGINT writes a byte here: requests, waits and key reads watch the read
/// end, so Ctrl-C stops whatever the console is blocked on.
int interrupt_pipe[2] = {-1, -1};
volatile sig_atomic_t interrupted = 0;

constexpr char enter_alt_screen[] = "\x1b[?1049h\x1b[?25l";
constexpr char leave_alt_screen[] = "\x1b[?25h\x1b[?1049l";

/// Async-signal-safe.
void write_all(int fd, const char* p, std::size_t n) noexcept {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void emit(const std::string& s) { write_all(STDOUT_FILENO, s.data(), s.size()); }

/// Puts the terminal back as it was found. Async-signal-safe.
void restore_terminal() noexcept {
  if (term.alt_screen)
    write_all(STDOUT_FILENO, leave_alt_screen, sizeof leave_alt_screen - 1);
  if (term.modified && term.saved)
    tcsetattr(STDIN_FILENO, TCSADRAIN, &term.original);
}

/// Back to the console's own settings after a suspension. Async-signal-safe.
void reapply_terminal() noexcept {
  if (term.modified)
    tcsetattr(STDIN_FILENO, TCSADRAIN, &term.current);
  if (term.alt_screen)
    write_all(STDOUT_FILENO, enter_alt_screen, sizeof enter_alt_screen - 1);
}

void on_fatal_signal(int sig) {
  restore_terminal();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void on_interrupt(int) {
  interrupted = 1;
  char b = 0;
  if (interrupt_pipe[1] >= 0)
    write_all(interrupt_pipe[1], &b, 1);
}

void on_suspend(int) {
  int saved_errno = errno;
  restore_terminal();
  ::signal(SIGTSTP, SIG_DFL);
  sigset_t tstp;
  sigemptyset(&tstp);
  sigaddset(&tstp, SIGTSTP);
  sigprocmask(SIG_UNBLOCK, &tstp, nullptr);
  ::raise(SIGTSTP);
  // Continued (fg).
  struct sigaction sa {};
  sa.sa_handler = on_suspend;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTSTP, &sa, nullptr);
  reapply_terminal();
  errno = saved_errno;
}

/// Continued after a stop the console did not arrange (SIGSTOP, SIGTTOU):
/// the shell may have left its own settings in place.
void on_continue(int) {
  int saved_errno = errno;
  reapply_terminal();
  errno = saved_errno;
}

void install_signal_handlers(bool terminal) {
  std::atexit([] { restore_terminal(); });
  if (!terminal)
    return; // Nothing to put back: the default dispositions are right.
  if (::pipe2(interrupt_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    interrupt_pipe[0] = interrupt_pipe[1] = -1;
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_suspend;
  sigaction(SIGTSTP, &sa, nullptr);
  sa.sa_handler = on_continue;
  sigaction(SIGCONT, &sa, nullptr);
  sa.sa_handler = on_fatal_signal;
  for (int sig : {SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL})
    sigaction(sig, &sa, nullptr);
}

/// Forgets a Ctrl-C that has been dealt with.
void clear_interrupt() {
  char buf[64];
  if (interrupt_pipe[0] >= 0)
    while (::read(interrupt_pipe[0], buf, sizeof buf) > 0) {
    }
  interrupted = 0;
}

/// Raw input for the line editor and live views: bytes as typed, no echo,
/// Ctrl-C and Ctrl-Z as keys. Output processing stays on, so "\n" still
/// returns the carriage.
class raw_mode {
public:
  raw_mode() {
    if (!term.saved)
      return;
    termios t = term.original;
    t.c_iflag &= ~static_cast<tcflag_t>(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
    t.c_cflag |= CS8;
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO | ICANON | IEXTEN | ISIG);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    term.current = t;
    term.modified = 1;
    // TCSADRAIN, not TCSAFLUSH: keys typed while a command ran are kept.
    tcsetattr(STDIN_FILENO, TCSADRAIN, &t);
  }
  ~raw_mode() {
    if (!term.modified)
      return;
    tcsetattr(STDIN_FILENO, TCSADRAIN, &term.original);
    term.modified = 0;
  }
  raw_mode(const raw_mode&) = delete;
  raw_mode& operator=(const raw_mode&) = delete;
};

std::size_t terminal_columns() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

/// The terminal's size; zeros when it does not say.
winsize terminal_size() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0)
    ws = winsize{};
  return ws;
}

enum class input { byte, timeout, end, interrupt };

/// Waits up to `timeout_ms` (-1: forever) for one byte of standard input or
/// for Ctrl-C (SIGINT).
input read_byte(int timeout_ms, unsigned char& c) {
  auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  for (;;) {
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {interrupt_pipe[0], POLLIN, 0}};
    int wait = timeout_ms;
    if (timeout_ms >= 0)
      wait = static_cast<int>(std::max<long long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count()));
    int n = ::poll(fds, interrupt_pipe[0] >= 0 ? 2 : 1, wait);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return input::end;
    }
    if (n == 0)
      return input::timeout;
    if (interrupt_pipe[0] >= 0 && (fds[1].revents & POLLIN)) {
      clear_interrupt();
      return input::interrupt;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::read(STDIN_FILENO, &c, 1);
      if (r == 1)
        return input::byte;
      if (r < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      return input::end;
    }
  }
}

/// Sleeps up to `d`; false when Ctrl-C cut the sleep short.
bool pause_for(steady::duration d) {
  if (interrupt_pipe[0] < 0) {
    std::this_thread::sleep_for(d);
    return true;
  }
  auto deadline = steady::now() + d;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
    if (left <= 0)
      return true;
    pollfd fd{interrupt_pipe[0], POLLIN, 0};
    int n = ::poll(&fd, 1, static_cast<int>(left));
    if (n > 0)
      return false;
    if (n < 0 && errno != EINTR)
      return true;
  }
}

// -- the admin API -----------------------------------------------------------

/// One answer from the admin API.
struct reply {
  /// The HTTP status; 0 when no answer came.
  int status = 0;
  /// What went wrong: the transport's error, the server's error text or an
  /// answer that is not JSON. Empty on success.
  std::string problem;
  value body;
  bool ok() const { return status >= 200 && status < 300 && problem.empty(); }
};

class admin_client {
public:
  admin_client(std::string host, std::string port, std::string token)
    : host_(std::move(host)), port_(std::move(port)), token_(std::move(token)) {}

  reply get(const std::string& view, steady::duration timeout = 5s) const {
    return exchange(http::verb::get, view, "", timeout);
  }
  reply post(const std::string& action, const value& body) const {
    return exchange(http::verb::post, action, json::dump(body), 5s);
  }
  std::string url() const {
    return "http://" + (host_.find(':') == std::string::npos ? host_ : "[" + host_ + "]") + ":" + port_;
  }

private:
  reply exchange(http::verb verb, const std::string& path, const std::string& body, steady::duration timeout) const;
  reply exchange_once(http::verb verb, const std::string& path, const std::string& body,
                      steady::duration timeout) const;

  std::string host_, port_, token_;
};

/// One request on its own connection, bounded by `timeout` as a whole and
/// cut short by Ctrl-C.
reply admin_client::exchange(http::verb verb, const std::string& path, const std::string& body,
                             steady::duration timeout) const {
  try {
    return exchange_once(verb, path, body, timeout);
  } catch (const std::exception& e) {
    reply r;
    r.problem = e.what();
    return r;
  }
}

reply admin_client::exchange_once(http::verb verb, const std::string& path, const std::string& body,
                                  steady::duration timeout) const {
  net::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  net::steady_timer deadline(io);
  net::posix::stream_descriptor ctrl_c(io);
  http::request<http::string_body> req{verb, "/admin/api/" + path, 11};
  req.set(http::field::host, url().substr(7));
  req.set(http::field::user_agent, "bulwark-console");
  req.set(http::field::accept, "application/json");
  if (verb == http::verb::post)
    req.set(http::field::content_type, "application/json");
  if (!token_.empty())
    req.set(http::field::authorization, "Bearer " + token_);
  req.body() = body;
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);

  enum class stop { none, timeout, interrupt } stopped = stop::none;
  bool finished = false;
  beast::error_code failure;
  auto halt = [&](stop why) {
    if (finished || stopped != stop::none)
      return;
    stopped = why;
    resolver.cancel();
    stream.cancel();
  };
  auto done = [&](beast::error_code ec) {
    finished = true;
    failure = ec;
    deadline.cancel();
    if (ctrl_c.is_open())
      ctrl_c.cancel();
  };
  deadline.expires_after(timeout);
  deadline.async_wait([&](beast::error_code ec) {
    if (!ec)
      halt(stop::timeout);
  });
  if (interrupt_pipe[0] >= 0) {
    int fd = ::dup(interrupt_pipe[0]);
    if (fd >= 0) {
      ctrl_c.assign(fd);
      ctrl_c.async_wait(net::posix::descriptor_base::wait_read, [&](beast::error_code ec) {
        if (!ec)
          halt(stop::interrupt);
      });
    }
  }
  resolver.async_resolve(host_, port_, [&](beast::error_code ec, const tcp::resolver::results_type& results) {
    if (ec)
      return done(ec);
    stream.async_connect(results, [&](beast::error_code ec, const tcp::endpoint&) {
      if (ec)
        return done(ec);
      http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
        if (ec)
          return done(ec);
        http::async_read(stream, buffer, parser, [&](beast::error_code ec, std::size_t) { done(ec); });
      });
    });
  });
  io.run();

  reply r;
  if (stopped == stop::interrupt) {
    r.problem = "interrupted";
    return r;
  }
  if (stopped == stop::timeout) {
    r.problem =
      "no answer within " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s";
    return r;
  }
  if (failure) {
    r.problem = failure.message();
    return r;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  const auto& res = parser.get();
  r.status = static_cast<int>(res.result_int());
  json::parse_error err;
  if (!res.body().empty() && !json::parse(res.body(), r.body, err)) {
    r.body = value();
    r.problem = "the answer is not JSON: " + res.body().substr(0, 120);
  } else if (r.status >= 400) {
    r.problem = r.body["error"].is_string() ? r.body["error"].as_string() : std::string(res.reason());
    if (r.problem.empty())
      r.problem = "refused";
  } else if (r.status < 200 || r.status >= 300) {
    r.problem = "unexpected answer";
  }
  return r;
}

// -- formatting --------------------------------------------------------------

/// A server-supplied string made safe for a terminal: control characters
/// (escape codes among them) cannot reach it.
std::string clean(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c < 0x20 || c == 0x7f)
      out += '?';
    else
      out += static_cast<char>(c);
  }
  return out;
}

std::string fixed(double x, int decimals) {
  return bulwark::text::trimmed_number(x, decimals);
}

std::string number(double d) { return std::isfinite(d) ? fixed(d, 3) : "-"; }
std::string percent(double ratio) { return fixed(ratio * 100, 1) + "%"; }

std::string byte_size(double n) {
  static const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (n >= 1024 && u < 4) {
    n /= 1024;
    ++u;
  }
  return fixed(n, u == 0 ? 0 : 1) + " " + units[u];
}

std::string duration(double s) {
  if (!(s >= 0) || !std::isfinite(s))
    return "-";
  char b[48];
  auto t = static_cast<long long>(s);
  if (s < 10)
    std::snprintf(b, sizeof b, "%.1fs", s);
  else if (s < 60)
    std::snprintf(b, sizeof b, "%llds", t);
  else if (s < 3600)
    std::snprintf(b, sizeof b, "%lldm%02llds", t / 60, t % 60);
  else if (s < 86400)
    std::snprintf(b, sizeof b, "%lldh%02lldm", t / 3600, t % 3600 / 60);
  else
    std::snprintf(b, sizeof b, "%lldd%02lldh", t / 86400, t % 86400 / 3600);
  return b;
}

std::string clock_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char b[16];
  std::strftime(b, sizeof b, "%H:%M:%S", &tm);
  return b;
}

/// One cell's worth of a JSON value.
std::string text(const value& v) {
  switch (v.type()) {
    case json::kind::null:
      return "-";
    case json::kind::boolean:
      return v.as_bool() ? "yes" : "no";
    case json::kind::integer:
      return std::to_string(v.as_int());
    case json::kind::number:
      return number(v.as_double());
    case json::kind::string:
      return v.as_string().empty() ? "-" : clean(v.as_string());
    case json::kind::array: {
      std::string out;
      for (auto& e : v.as_array()) {
        if (e.is_array() || e.is_object())
          return std::to_string(v.size()) + " items";
        out += (out.empty() ? "" : ", ") + text(e);
      }
      return out.empty() ? "-" : out;
    }
    case json::kind::object:
      return v.size() == 0 ? "-" : std::to_string(v.size()) + " fields";
  }
  return "-";
}

/// "fastFailures" -> "fast failures".
std::string label(const std::string& key) {
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c >= 'A' && c <= 'Z') {
      if (i > 0 && !(key[i - 1] >= 'A' && key[i - 1] <= 'Z'))
        out += ' ';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c == '_' ? ' ' : c;
    }
  }
  return clean(out);
}

std::string header(const std::string& key) {
  auto s = label(key);
  for (auto& c : s)
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  return s;
}

/// Rows in aligned columns under a header line.
class table {
public:
  explicit table(std::vector<std::string> headers) : right_(headers.size(), false) {
    rows_.push_back(std::move(headers));
  }
  void add(std::vector<std::string> row) {
    row.resize(right_.size());
    rows_.push_back(std::move(row));
  }
  void align_right(std::size_t column) { right_.at(column) = true; }
  void print(std::ostream& out, const std::string& indent = "") const {
    std::vector<std::size_t> width(right_.size(), 0);
    for (auto& r : rows_)
      for (std::size_t i = 0; i < r.size(); ++i)
        width[i] = std::max(width[i], r[i].size());
    for (auto& r : rows_) {
      std::string line = indent;
      for (std::size_t i = 0; i < r.size(); ++i) {
        std::size_t pad = width[i] - r[i].size();
        if (right_[i])
          line.append(pad, ' ').append(r[i]);
        else
          line.append(r[i]).append(pad, ' ');
        if (i + 1 < r.size())
          line += "  ";
      }
      line.erase(line.find_last_not_of(' ') + 1);
      out << line << "\n";
    }
  }

private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

using pairs = std::vector<std::pair<std::string, std::string>>;

/// `label  value` lines, values aligned; a value's further lines line up
/// under its first.
void print_pairs(std::ostream& out, const pairs& lines, const std::string& indent) {
  std::size_t width = 0;
  for (auto& [k, v] : lines)
    width = std::max(width, k.size());
  for (auto& [k, v] : lines) {
    out << indent << k << std::string(width - k.size() + 2, ' ');
    std::size_t start = 0;
    for (;;) {
      auto nl = v.find('\n', start);
      out << v.substr(start, nl - start) << "\n";
      if (nl == std::string::npos)
        break;
      out << indent << std::string(width + 2, ' ');
      start = nl + 1;
    }
  }
}

bool is_nested(const value& v) {
  if (v.is_object())
    return v.size() > 0;
  if (v.is_array())
    for (auto& e : v.as_array())
      if (e.is_object() || e.is_array())
        return true;
  return false;
}

void render(std::ostream& out, const value& v, const std::string& indent);

/// Records as a table: the `preferred` columns first (those present), then
/// every other member that fits in a cell, in the order first seen.
void render_rows(std::ostream& out, const json::array& rows, const std::vector<std::string>& preferred,
                 const std::string& indent) {
  auto fits = [](const value& v) { return !is_nested(v) || v.is_object(); };
  std::vector<std::string> keys;
  auto present = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) != keys.end(); };
  for (auto& k : preferred)
    for (auto& r : rows)
      if (r.find(k) && !present(k)) {
        keys.push_back(k);
        break;
      }
  for (auto& r : rows)
    for (auto& [k, m] : r.as_object())
      if (fits(m) && !m.is_object() && !present(k))
        keys.push_back(k);
  if (keys.empty()) {
    for (auto& r : rows)
      out << indent << text(r) << "\n";
    return;
  }
  std::vector<std::string> headers;
  for (auto& k : keys)
    headers.push_back(header(k));
  table t(headers);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    // Numbers line up on the right; a column of only nulls is not numeric.
    bool numbers = false, others = false;
    for (auto& r : rows)
      if (auto* m = r.find(keys[i]); m && !m->is_null())
        (m->is_number() ? numbers : others) = true;
    if (numbers && !others)
      t.align_right(i);
  }
  for (auto& r : rows) {
    std::vector<std::string> cells;
    for (auto& k : keys)
      cells.push_back(text(r[k]));
    t.add(std::move(cells));
  }
  t.print(out, indent);
}

/// An object: `first`, then its plain members as aligned lines, then its
/// nested members under their labels. `skip` names members shown elsewhere.
void render_object(std::ostream& out, const value& obj, const std::string& indent, pairs first = {},
                   const std::set<std::string>& skip = {}) {
  std::vector<std::pair<std::string, const value*>> later;
  for (auto& [k, m] : obj.as_object()) {
    if (skip.count(k))
      continue;
    if (is_nested(m))
      later.emplace_back(k, &m);
    else
      first.emplace_back(label(k), text(m));
  }
  print_pairs(out, first, indent);
  for (auto& [k, m] : later) {
    out << indent << label(k) << ":\n";
    render(out, *m, indent + "  ");
  }
}

void render(std::ostream& out, const value& v, const std::string& indent) {
  if (v.is_object())
    render_object(out, v, indent);
  else if (v.is_array())
    render_rows(out, v.as_array(), {}, indent);
  else
    out << indent << text(v) << "\n";
}

/// Records from an answer that is an array of objects, or an object keyed by
/// `key` (either possibly wrapped in a member named `wrapper`).
json::array records(const value& v, const std::string& wrapper, const std::string& key) {
  const value* src = &v;
  if (auto* w = v.find(wrapper); w && (w->is_array() || w->is_object()))
    src = w;
  json::array out;
  if (src->is_array()) {
    for (auto& e : src->as_array())
      if (e.is_object())
        out.push_back(e);
  } else {
    for (auto& [k, m] : src->as_object()) {
      if (!m.is_object())
        continue;
      if (m.find(key)) {
        out.push_back(m);
        continue;
      }
      value r = value::make_object({{key, k}});
      for (auto& [mk, mv] : m.as_object())
        r.set(mk, mv);
      out.push_back(std::move(r));
    }
  }
  return out;
}

// -- views -------------------------------------------------------------------

/// The actor tree, each actor under its parent; parents that are not actors
/// themselves (the root supervisor) head their subtrees.
void render_actors(std::ostream& out, const value& tree) {
  const auto& actors = tree["actors"].as_array();
  std::set<std::string> names;
  std::map<std::string, std::vector<const value*>> children;
  for (auto& a : actors) {
    names.insert(a["name"].as_string());
    children[a["parent"].as_string()].push_back(&a);
  }
  for (auto& [parent, kids] : children)
    std::sort(kids.begin(), kids.end(),
              [](const value* x, const value* y) { return (*x)["name"].as_string() < (*y)["name"].as_string(); });

  table t({"NAME", "KIND", "STATE", "MAILBOX", "RESTARTS", "UPTIME", "LAST EXIT"});
  t.align_right(3);
  t.align_right(4);
  t.align_right(5);
  std::set<std::string> shown;
  auto row = [&](const value& a, int depth) {
    const auto& mailbox = a["mailbox"];
    bool running = a["state"].as_string() == "running";
    t.add({std::string(2 * depth, ' ') + clean(a["name"].as_string()), text(a["kind"]), text(a["state"]),
           mailbox.is_number() ? text(mailbox) : "-", text(a["restarts"]),
           running && a["uptimeSeconds"].is_number() ? duration(a["uptimeSeconds"].as_double()) : "-",
           text(a["lastExit"])});
  };
  std::function<void(const std::string&, int)> under = [&](const std::string& parent, int depth) {
    auto it = children.find(parent);
    if (it == children.end())
      return;
    for (auto* a : it->second) {
      const auto& name = (*a)["name"].as_string();
      if (!shown.insert(name).second)
        continue;
      row(*a, depth);
      under(name, depth + 1);
    }
  };
  for (auto& [parent, kids] : children) {
    if (names.count(parent))
      continue;
    if (parent.empty()) {
      under(parent, 0);
    } else {
      t.add({clean(parent), "supervisor", "-", "-", "-", "-", "-"});
      under(parent, 1);
    }
  }
  // A parent cycle would leave actors unreached; list them rather than lose them.
  for (auto& a : actors)
    if (!shown.count(a["name"].as_string())) {
      shown.insert(a["name"].as_string());
      row(a, 0);
    }
  t.print(out);
  if (const auto& sups = tree["supervisors"]; sups.size() > 0) {
    // The tree above shows who the children are; here, how many.
    json::array rows;
    for (auto& sup : sups.as_array()) {
      value r = sup;
      if (sup["children"].is_array())
        r.set("children", static_cast<unsigned long long>(sup["children"].size()));
      rows.push_back(std::move(r));
    }
    out << "supervisors:\n";
    render_rows(out, rows, {"name", "strategy", "maxRestarts", "windowSeconds", "children", "escalated"}, "  ");
  }
  if (const auto& recent = tree["recentEscalations"]; recent.size() > 0) {
    out << "recent escalations:\n";
    render_rows(out, recent.as_array(), {"supervisor", "child", "reason", "secondsAgo"}, "  ");
  }
  out << "restarts " << text(tree["restarts"]) << "   escalations " << text(tree["escalations"]) << "   degraded "
      << text(tree["degraded"]) << "\n";
}

std::string degraded_text(const value& health) {
  std::string s = health["degraded"].as_bool() ? "yes" : "no";
  if (auto* forced = health.find("degradedForced"))
    s += forced->is_bool() ? (forced->as_bool() ? " (forced on)" : " (forced off)") : " (automatic)";
  return s;
}

/// One line about a component of the health report.
std::string component_summary(const std::string& name, const value& c) {
  auto join = [](const std::vector<std::string>& parts) {
    std::string out;
    for (auto& p : parts)
      out += (out.empty() ? "" : ", ") + p;
    return out.empty() ? std::string("-") : out;
  };
  std::vector<std::string> parts;
  if (name == "breakers") {
    for (auto& b : records(c, "breakers", "service"))
      parts.push_back(text(b["service"]) + " " + text(b["state"]));
    return join(parts);
  }
  if (name == "connectors") {
    for (auto& x : records(c, "connectors", "service")) {
      std::string s = text(x["service"]) + " " + text(x["phase"]);
      if (x.find("transport"))
        s += " (" + text(x["transport"]) + (x.find("tools") ? ", " + text(x["tools"]) + " tools" : "") + ")";
      parts.push_back(s);
    }
    return join(parts);
  }
  if (name == "queue")
    return text(c["size"]) + " of " + text(c["capacity"]) + " waiting";
  if (name == "cache")
    return text(c["entries"]) + " entries, " + byte_size(c["bytes"].as_double()) + ", hit rate "
           + percent(c["hitRate"].as_double());
  if (name == "limiter") {
    long long refused = 0;
    for (auto& [k, v] : c["refusals"].as_object())
      refused += v.as_int();
    return "admitted " + text(c["admitted"]) + ", delayed " + text(c["delayed"]) + ", refused "
           + std::to_string(refused);
  }
  if (name == "alerts")
    return std::to_string(c["rules"].size()) + " rules, fired " + text(c["fired"]) + ", suppressed "
           + text(c["suppressed"]);
  if (name == "supervision")
    return "restarts " + text(c["restarts"]) + ", escalations " + text(c["escalations"]);
  if (auto* s = c.find("status"))
    return text(*s);
  if (auto* up = c.find("up"))
    return up->as_bool() ? "up" : "down";
  for (auto& [k, v] : c.as_object())
    if (!is_nested(v) && !v.is_object() && parts.size() < 4)
      parts.push_back(label(k) + " " + text(v));
  return join(parts);
}

void render_health(std::ostream& out, const value& h) {
  pairs p{{"status", text(h["status"])}, {"degraded", degraded_text(h)}};
  if (h.find("ready"))
    p.emplace_back("ready", text(h["ready"]));
  std::string reasons;
  for (auto& r : h["reasons"].as_array())
    reasons += (reasons.empty() ? "" : "\n") + text(r);
  p.emplace_back("reasons", reasons.empty() ? "-" : reasons);
  if (h.find("unreachedServices"))
    p.emplace_back("unreached", text(h["unreachedServices"]));
  if (h.find("version"))
    p.emplace_back("version", text(h["version"]));
  if (h["uptimeSeconds"].is_number())
    p.emplace_back("uptime", duration(h["uptimeSeconds"].as_double()));
  print_pairs(out, p, "");
  if (h["components"].size() == 0)
    return;
  out << "components:\n";
  pairs c;
  for (auto& [name, comp] : h["components"].as_object())
    c.emplace_back(clean(name), component_summary(name, comp));
  print_pairs(out, c, "  ");
}

/// A few lines of health for the live view.
void render_health_brief(std::ostream& out, const value& h) {
  const auto& c = h["components"];
  pairs p{{"health", text(h["status"]) + ", degraded " + degraded_text(h)}};
  std::string reasons;
  for (auto& r : h["reasons"].as_array())
    reasons += (reasons.empty() ? "" : "; ") + text(r);
  if (!reasons.empty())
    p.emplace_back("reasons", reasons);
  for (const char* name : {"breakers", "queue", "cache", "alerts", "supervision"})
    if (c[name].is_object())
      p.emplace_back(name, component_summary(name, c[name]));
  print_pairs(out, p, "");
}

void render_queue(std::ostream& out, const value& q) {
  pairs p{{"size", text(q["size"]) + " of " + text(q["capacity"])
                     + (q["fill"].is_number() ? " (" + percent(q["fill"].as_double()) + ")" : "")}};
  if (q["depth"].is_object()) {
    std::string d;
    for (auto& [k, v] : q["depth"].as_object())
      d += (d.empty() ? "" : "   ") + clean(k) + " " + text(v);
    p.emplace_back("depth", d);
  }
  if (q.find("oldestWaitMs"))
    p.emplace_back("oldest wait", text(q["oldestWaitMs"]) + " ms");
  if (q["running"].is_object()) {
    std::string r;
    for (auto& [k, v] : q["running"].as_object())
      r += (r.empty() ? "" : ", ") + clean(k) + " " + text(v);
    p.emplace_back("running", r.empty() ? "-" : r);
  }
  const auto& entries = q["entries"];
  if (entries.is_array() && entries.size() == 0)
    p.emplace_back("waiting", "none");
  render_object(out, q, "", p, {"size", "capacity", "fill", "depth", "oldestWaitMs", "running", "entries"});
  if (entries.size() > 0) {
    out << "waiting:\n";
    render_rows(out, entries.as_array(), {"id", "service", "method", "tool", "priority", "waitMs"}, "  ");
  }
}

void render_cache(std::ostream& out, const value& c) {
  pairs p;
  std::set<std::string> shown{"bytes", "hitRate"};
  if (c["entries"].is_number()) {
    p.emplace_back("entries", text(c["entries"]));
    shown.insert("entries");
  }
  if (c["bytes"].is_number())
    p.emplace_back("size", byte_size(c["bytes"].as_double()));
  if (c["hitRate"].is_number())
    p.emplace_back("hit rate", percent(c["hitRate"].as_double()));
  render_object(out, c, "", p, shown);
}

void render_alerts(std::ostream& out, const value& a) {
  const auto& rules = a["rules"];
  if (rules.size() > 0) {
    out << "rules:\n";
    render_rows(out, rules.as_array(),
                {"name", "enabled", "severity", "threshold", "fired", "suppressed", "lastFiredAt"}, "  ");
  }
  render_object(out, a, "", {}, {"rules", "history"});
  const auto& history = a["history"].as_array();
  if (!history.empty()) {
    // The most recent ten.
    json::array recent(history.size() > 10 ? history.end() - 10 : history.begin(), history.end());
    out << "recent:\n";
    render_rows(out, recent, {"at", "time", "rule", "name", "severity"}, "  ");
  }
}

void render_breakers(std::ostream& out, const json::array& rows) {
  if (rows.empty()) {
    out << "no breakers (no services configured)\n";
    return;
  }
  render_rows(out, rows,
              {"service", "state", "calls", "failures", "fastFailures", "inFlight", "retries", "transitions"}, "");
}

// -- the console -------------------------------------------------------------

std::vector<std::string> split(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;)
    words.push_back(w);
  return words;
}

class console {
public:
  using args = std::vector<std::string>;

  /// `live` says whether standard input and output are a terminal that
  /// `watch` can redraw.
  console(const options& o, bool live) : api_(o.host, o.port, o.token), live_(live) {}

  /// Runs one command line; false when it failed.
  bool run(const std::string& line) {
    auto words = split(line);
    if (words.empty() || words[0][0] == '#')
      return true;
    for (auto& c : commands())
      if (words[0] == c.name) {
        bool ok = (this->*c.run)(args(words.begin() + 1, words.end()));
        std::cout.flush();
        return ok;
      }
    std::cout.flush();
    std::cerr << "error: unknown command '" << clean(words[0]) << "' (type 'help' for the list)\n";
    return false;
  }

  bool quitting() const { return quit_; }

  /// One line about the server, printed when the prompt opens.
  void greet() {
    auto r = api_.get("health", 3s);
    if (r.ok())
      std::cout << "Bulwark " << text(r.body["version"]) << " at " << api_.url() << ": " << text(r.body["status"])
                << ", degraded " << degraded_text(r.body) << ".\n";
    else
      complain(r, "health");
    std::cout << "Type 'help' for the commands; TAB completes, Ctrl-D or 'quit' leaves.\n" << std::flush;
  }

  /// Words that may follow `before` (the line up to the cursor); the word
  /// being completed starts at `word_start`. Names come from the API, cached
  /// for a few seconds.
  std::vector<std::string> complete(const std::string& before, std::size_t& word_start) {
    auto cut = before.find_last_of(" \t");
    word_start = cut == std::string::npos ? 0 : cut + 1;
    auto words = split(before.substr(0, word_start));
    std::vector<std::string> out;
    auto add = [&](const std::vector<std::string>& more) { out.insert(out.end(), more.begin(), more.end()); };
    if (words.empty()) {
      for (auto& c : commands())
        out.push_back(c.name);
      return out;
    }
    const auto& cmd = words[0];
    std::size_t n = words.size();
    if (cmd == "kill" && n == 1) {
      out.push_back("--kind");
      add(names().actors);
    } else if (cmd == "kill" && n == 2 && words[1] == "--kind") {
      add(names().kinds);
    } else if (cmd == "breaker" && n == 1) {
      add(names().services);
    } else if (cmd == "breaker" && n == 2) {
      add({"open", "close", "half-open"});
    } else if (cmd == "cache" && n == 1) {
      out.push_back("invalidate");
    } else if (cmd == "cache" && n == 2 && words[1] == "invalidate") {
      add(names().services);
    } else if (cmd == "degrade" && n == 1) {
      add({"on", "off", "auto"});
    } else if (cmd == "help" && n == 1) {
      for (auto& c : commands())
        out.push_back(c.name);
    } else if (cmd == "watch" && n == 1) {
      add({"1", "2", "5", "10"});
    }
    return out;
  }

private:
  struct command {
    const char* name;
    /// The whole synopsis, as usage lines print it.
    const char* synopsis;
    const char* help;
    bool (console::*run)(const args&);
  };

  static const std::vector<command>& commands() {
    static const std::vector<command> list = {
      {"actors", "actors", "the actor tree: kind, state, mailbox, restarts, uptime, last exit", &console::actors},
      {"kill", "kill NAME | kill --kind KIND", "kill an actor, or every actor of a kind; supervisors restart them",
       &console::kill},
      {"breakers", "breakers", "each service's circuit breaker", &console::breakers},
      {"breaker", "breaker SERVICE open|close|half-open", "force a service's breaker into a state", &console::breaker},
      {"queue", "queue", "the request queue: fill, depth per priority, waiting entries", &console::queue},
      {"cache", "cache | cache invalidate SERVICE", "cache statistics, or drop a service's cached results",
       &console::cache},
      {"alerts", "alerts", "alert rules and what they fired", &console::alerts},
      {"limits", "limits", "rate limits and usage", &console::limits},
      {"sessions", "sessions", "MCP sessions", &console::sessions},
      {"health", "health", "overall status, degraded mode and each component", &console::health},
      {"degrade", "degrade on|off|auto", "force degraded mode on or off, or leave it to the health checks",
       &console::degrade},
      {"watch", "watch [SECONDS]", "redraw the actor tree and health every SECONDS (default 2) until q",
       &console::watch},
      {"help", "help [COMMAND]", "this list, or one command's usage", &console::help},
      {"quit", "quit", "leave the console (also: exit, Ctrl-D)", &console::quit},
      {"exit", "exit", "leave the console", &console::quit},
    };
    return list;
  }

  bool wrong_usage(const std::string& name) {
    for (auto& c : commands())
      if (name == c.name) {
        std::cout.flush();
        std::cerr << "usage: " << c.synopsis << "\n";
      }
    return false;
  }

  /// Why `r` failed, in one line.
  std::string describe(const reply& r) const {
    if (r.status == 0)
      return r.problem == "interrupted" ? r.problem
                                        : "cannot reach Bulwark at " + api_.url() + " (" + clean(r.problem) + ")";
    std::string s = clean(r.problem) + " (HTTP " + std::to_string(r.status) + ")";
    if (r.status == 401)
      s += "; give the admin token with --token or BULWARK_ADMIN_TOKEN";
    return s;
  }

  void complain(const reply& r, const std::string& doing) {
    std::cout.flush();
    std::cerr << "error: " << doing << ": " << describe(r) << "\n";
  }

  /// A view; false (and said why) when it could not be had.
  bool fetch(const std::string& view, value& out) {
    auto r = api_.get(view);
    if (!r.ok()) {
      complain(r, view);
      return false;
    }
    out = std::move(r.body);
    return true;
  }

  /// The view `name`, or, from a server without it, the health report's
  /// component of that name.
  bool fetch_or_component(const std::string& name, const std::string& component, value& out) {
    auto r = api_.get(name);
    if (r.ok()) {
      out = std::move(r.body);
      return true;
    }
    if (r.status != 404) {
      complain(r, name);
      return false;
    }
    auto h = api_.get("health");
    if (!h.ok()) {
      complain(h, name);
      return false;
    }
    if (!h.body["components"][component].is_object()) {
      std::cout.flush();
      std::cerr << name << ": not available on this server\n";
      return false;
    }
    out = h.body["components"][component];
    return true;
  }

  /// An action; the answer in `out`, false (and said why) on a refusal.
  bool act(const std::string& action, const value& body, const std::string& doing, value& out) {
    auto r = api_.post(action, body);
    if (!r.ok()) {
      complain(r, doing);
      return false;
    }
    out = std::move(r.body);
    return true;
  }

  // -- commands --------------------------------------------------------------

  bool actors(const args& a) {
    value tree;
    if (!a.empty())
      return wrong_usage("actors");
    if (!fetch("actors", tree))
      return false;
    render_actors(std::cout, tree);
    return true;
  }

  bool kill(const args& a) {
    value body, answer;
    if (a.size() == 1 && a[0] != "--kind")
      body = value::make_object({{"name", a[0]}});
    else if (a.size() == 2 && a[0] == "--kind")
      body = value::make_object({{"kind", a[1]}});
    else
      return wrong_usage("kill");
    bool ok = act("actors/kill", body, "kill " + clean(a.back()), answer);
    names_.reset();
    if (!ok)
      return false;
    // The answer names what was killed: one name, or a list of them.
    const auto& killed = answer["killed"];
    bool by_kind = a.size() == 2;
    if (killed.is_array() && killed.size() == 0)
      std::cout << "no actor of kind " << clean(a.back()) << " to kill\n";
    else if (by_kind)
      std::cout << "killed " << killed.size() << (killed.size() == 1 ? " actor" : " actors") << " of kind "
                << clean(a.back()) << ": " << text(killed) << "\n";
    else
      std::cout << "killed " << (killed.is_string() || killed.is_array() ? text(killed) : clean(a.back())) << "\n";
    return true;
  }

  bool breakers(const args& a) {
    value v;
    if (!a.empty())
      return wrong_usage("breakers");
    if (!fetch_or_component("breakers", "breakers", v))
      return false;
    render_breakers(std::cout, records(v, "breakers", "service"));
    return true;
  }

  bool breaker(const args& a) {
    static const std::map<std::string, std::string> states = {{"open", "open"},
                                                              {"close", "closed"},
                                                              {"closed", "closed"},
                                                              {"half-open", "half_open"},
                                                              {"half_open", "half_open"}};
    if (a.size() != 2 || !states.count(a[1]))
      return wrong_usage("breaker");
    value answer;
    const auto& state = states.at(a[1]);
    if (!act("breakers", value::make_object({{"service", a[0]}, {"state", state}}), "breaker " + clean(a[0]), answer))
      return false;
    std::cout << "breaker " << clean(a[0]) << " forced " << (state == "half_open" ? "half-open" : state) << "\n";
    return true;
  }

  bool queue(const args& a) {
    value v;
    if (!a.empty())
      return wrong_usage("queue");
    if (!fetch_or_component("queue", "queue", v))
      return false;
    render_queue(std::cout, v);
    return true;
  }

  bool cache(const args& a) {
    value v;
    if (a.empty()) {
      if (!fetch_or_component("cache", "cache", v))
        return false;
      render_cache(std::cout, v);
      return true;
    }
    if (a.size() != 2 || a[0] != "invalidate")
      return wrong_usage("cache");
    if (!act("cache/invalidate", value::make_object({{"service", a[1]}}), "cache invalidate " + clean(a[1]), v))
      return false;
    std::cout << "dropped the cached results of " << clean(a[1]) << "\n";
    return true;
  }

  bool alerts(const args& a) {
    value v;
    if (!a.empty())
      return wrong_usage("alerts");
    if (!fetch_or_component("alerts", "alerts", v))
      return false;
    render_alerts(std::cout, v);
    return true;
  }

  bool limits(const args& a) {
    value v;
    if (!a.empty())
      return wrong_usage("limits");
    if (!fetch_or_component("limits", "limiter", v))
      return false;
    render(std::cout, v, "");
    return true;
  }

  bool sessions(const args& a) {
    value v;
    if (!a.empty())
      return wrong_usage("sessions");
    if (!fetch_or_component("sessions", "sessions", v))
      return false;
    const auto& list = v.find("sessions") ? v["sessions"] : v;
    if (list.is_array() && list.size() == 0)
      std::cout << "no sessions (stateless requests need none)\n";
    else if (list.is_array())
      render_rows(std::cout, list.as_array(),
                  {"id", "identity", "client", "protocolVersion", "initialized", "restarts", "idleSeconds"}, "");
    else
      render(std::cout, v, "");
    return true;
  }

  bool health(const args& a) {
    value v;
    if (!a.empty())
      return wrong_usage("health");
    if (!fetch("health", v))
      return false;
    render_health(std::cout, v);
    return true;
  }

  bool degrade(const args& a) {
    if (a.size() != 1 || (a[0] != "on" && a[0] != "off" && a[0] != "auto"))
      return wrong_usage("degrade");
    value answer;
    if (!act("degraded", value::make_object({{"mode", a[0]}}), "degrade " + a[0], answer))
      return false;
    std::cout << (a[0] == "auto" ? "degraded mode: automatic (the health checks decide)\n"
                                 : "degraded mode: forced " + a[0] + "\n");
    return true;
  }

  bool watch(const args& a) {
    double seconds = 2;
    if (a.size() > 1)
      return wrong_usage("watch");
    if (a.size() == 1) {
      char* end = nullptr;
      seconds = std::strtod(a[0].c_str(), &end);
      if (*end != '\0' || !(seconds >= 0.2 && seconds <= 3600)) {
        std::cout.flush();
        std::cerr << "usage: watch [SECONDS], SECONDS from 0.2 to 3600\n";
        return false;
      }
    }
    auto interval = std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
    if (!live_) {
      // Not a terminal: a few frames, one after the other.
      for (int i = 0; i < 3; ++i) {
        if (i > 0 && !pause_for(interval))
          return false;
        std::cout << frame(seconds, false) << std::flush;
      }
      return true;
    }
    raw_mode raw;
    term.alt_screen = 1;
    emit(enter_alt_screen);
    auto next = steady::now();
    bool stop = false;
    while (!stop) {
      // Drawn over the last frame, line by line, and cut to the screen's
      // size so that nothing wraps or scrolls.
      std::string screen = "\x1b[H";
      std::istringstream lines(frame(seconds, true));
      auto size = terminal_size();
      std::size_t drawn = 0;
      for (std::string line; std::getline(lines, line) && (size.ws_row == 0 || drawn + 1 < size.ws_row); ++drawn)
        screen += (size.ws_col > 0 ? line.substr(0, size.ws_col) : line) + "\x1b[K\n";
      screen += "\x1b[J";
      emit(screen);
      next += interval;
      if (next < steady::now())
        next = steady::now() + interval;
      while (!stop) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - steady::now()).count();
        if (left <= 0)
          break;
        unsigned char c = 0;
        auto got = read_byte(static_cast<int>(left), c);
        if (got == input::end || got == input::interrupt)
          stop = true;
        else if (got == input::byte && (c == 'q' || c == 'Q' || c == 3 || c == 4))
          stop = true;
        else if (got == input::timeout)
          break;
      }
    }
    emit(leave_alt_screen);
    term.alt_screen = 0;
    return true;
  }

  /// One frame of `watch`: a health summary and the actor tree.
  std::string frame(double seconds, bool live) {
    std::ostringstream out;
    out << "bulwark watch  " << api_.url() << "  every " << fixed(seconds, 1) << "s  " << clock_now()
        << (live ? "  (q to stop)" : "") << "\n\n";
    // Short timeouts: keys are read between frames, so a hung server must
    // not keep q waiting long. Health first: on a short screen the tree's
    // end is what gets cut.
    auto h = api_.get("health", 2s);
    if (h.ok())
      render_health_brief(out, h.body);
    else
      out << "health: " << describe(h) << "\n";
    out << "\n";
    auto tree = api_.get("actors", 2s);
    if (tree.ok())
      render_actors(out, tree.body);
    else
      out << "actors: " << describe(tree) << "\n";
    if (!live)
      out << "\n";
    return out.str();
  }

  bool help(const args& a) {
    if (a.size() > 1)
      return wrong_usage("help");
    if (a.size() == 1) {
      for (auto& c : commands())
        if (a[0] == c.name) {
          std::cout << "usage: " << c.synopsis << "\n  " << c.help << "\n";
          return true;
        }
      std::cout.flush();
      std::cerr << "error: no command '" << clean(a[0]) << "' (type 'help' for the list)\n";
      return false;
    }
    table t({"COMMAND", "WHAT IT DOES"});
    for (auto& c : commands())
      if (std::string(c.name) != "exit")
        t.add({c.synopsis, c.help});
    t.print(std::cout);
    if (live_)
      std::cout << "\nKeys: TAB completes commands, actor names, kinds and services; up/down walk the history;\n"
                   "Ctrl-A/E start/end of line; Ctrl-U/K cut before/after the cursor; Ctrl-W cuts a word;\n"
                   "Ctrl-L clears the screen; Ctrl-C clears the line; Ctrl-D on an empty line leaves.\n";
    return true;
  }

  bool quit(const args&) {
    quit_ = true;
    return true;
  }

  // -- names for completion --------------------------------------------------

  struct known_names {
    std::vector<std::string> actors, kinds, services;
  };

  const known_names& names() {
    auto now = steady::now();
    if (names_ && now - names_fetched_ < 5s)
      return *names_;
    known_names n;
    auto r = api_.get("actors", 1500ms);
    if (!r.ok()) {
      names_.reset();
      static const known_names none;
      return none;
    }
    std::set<std::string> kinds, services;
    for (auto& a : r.body["actors"].as_array()) {
      const auto& name = a["name"].as_string();
      n.actors.push_back(clean(name));
      kinds.insert(clean(a["kind"].as_string()));
      for (std::string prefix : {"breaker/", "connector/"})
        if (name.rfind(prefix, 0) == 0 && name.size() > prefix.size())
          services.insert(clean(name.substr(prefix.size())));
    }
    n.kinds.assign(kinds.begin(), kinds.end());
    n.services.assign(services.begin(), services.end());
    names_ = std::move(n);
    names_fetched_ = now;
    return *names_;
  }

  admin_client api_;
  bool live_;
  bool quit_ = false;
  std::optional<known_names> names_;
  steady::time_point names_fetched_{};
};

// -- the line editor ---------------------------------------------------------

/// Reads lines from a terminal in raw mode, with history and completion.
class line_editor {
public:
  using completer = std::function<std::vector<std::string>(const std::string& before, std::size_t& word_start)>;

  /// `history_file` empty: the history lasts for the session only.
  line_editor(std::string history_file, completer complete)
    : history_file_(std::move(history_file)), complete_(std::move(complete)) {
    load_history();
  }

  /// One line; nullopt at the end of input (Ctrl-D on an empty line).
  std::optional<std::string> read(const std::string& prompt) {
    raw_mode raw;
    prompt_ = prompt;
    buf_.clear();
    pos_ = 0;
    // Edits to recalled lines last until Enter; the history itself keeps them as typed.
    work_ = history_;
    work_.push_back("");
    index_ = work_.size() - 1;
    emit(prompt_);
    for (;;) {
      int k = read_key();
      switch (k) {
        case key_eof:
          emit("\n");
          if (buf_.empty())
            return std::nullopt;
          return buf_;
        case key_interrupt:
        case 3: // Ctrl-C
          emit("^C\n");
          buf_.clear();
          pos_ = 0;
          index_ = work_.size() - 1;
          work_.back().clear();
          emit(prompt_);
          break;
        case '\r':
        case '\n':
          emit("\n");
          return buf_;
        case 4: // Ctrl-D
          if (buf_.empty()) {
            emit("\n");
            return std::nullopt;
          }
          erase(pos_, 1);
          break;
        case key_delete:
          erase(pos_, 1);
          break;
        case 127: // Backspace
        case 8:   // Ctrl-H
          if (pos_ > 0) {
            --pos_;
            erase(pos_, 1);
          }
          break;
        case 1: // Ctrl-A
        case key_home:
          move_to(0);
          break;
        case 5: // Ctrl-E
        case key_end:
          move_to(buf_.size());
          break;
        case 2: // Ctrl-B
        case key_left:
          if (pos_ > 0)
            move_to(pos_ - 1);
          break;
        case 6: // Ctrl-F
        case key_right:
          if (pos_ < buf_.size())
            move_to(pos_ + 1);
          break;
        case key_word_left:
          move_to(word_before(pos_));
          break;
        case key_word_right: {
          std::size_t p = pos_;
          while (p < buf_.size() && buf_[p] == ' ')
            ++p;
          while (p < buf_.size() && buf_[p] != ' ')
            ++p;
          move_to(p);
          break;
        }
        case 21: // Ctrl-U: cut before the cursor
          buf_.erase(0, pos_);
          pos_ = 0;
          refresh();
          break;
        case 11: // Ctrl-K: cut after the cursor
          buf_.erase(pos_);
          refresh();
          break;
        case 23: { // Ctrl-W: cut the word before the cursor
          std::size_t from = word_before(pos_);
          buf_.erase(from, pos_ - from);
          pos_ = from;
          refresh();
          break;
        }
        case 12: // Ctrl-L
          emit("\x1b[H\x1b[2J");
          refresh();
          break;
        case 16: // Ctrl-P
        case key_up:
          recall(-1);
          break;
        case 14: // Ctrl-N
        case key_down:
          recall(+1);
          break;
        case 9: // TAB
          complete();
          break;
        case 26: // Ctrl-Z: suspend like a shell job, then pick up where we were
          emit("\n");
          ::raise(SIGTSTP);
          refresh();
          break;
        default:
          // Commands and names are ASCII; anything else would confuse the
          // cursor arithmetic, so it is refused.
          if (k >= 32 && k < 127)
            insert(static_cast<char>(k));
          else if (k >= 128 && k < 256)
            emit("\a");
          break;
      }
    }
  }

  /// Adds an entered line to the history (and to the history file).
  void remember(const std::string& line) {
    if (line.find_first_not_of(" \t") == std::string::npos)
      return;
    if (!history_.empty() && history_.back() == line)
      return;
    history_.push_back(line);
    if (history_.size() > max_history)
      history_.erase(history_.begin());
    if (history_file_.empty())
      return;
    int fd = ::open(history_file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
      return;
    std::string entry = line + "\n";
    write_all(fd, entry.data(), entry.size());
    ::close(fd);
  }

private:
  enum : int {
    key_eof = -1,
    key_interrupt = -2,
    key_none = -3,
    key_up = 256,
    key_down,
    key_left,
    key_right,
    key_home,
    key_end,
    key_delete,
    key_word_left,
    key_word_right,
  };
  static constexpr std::size_t max_history = 1000;
  static constexpr std::size_t max_line = 4096;

  void load_history() {
    if (history_file_.empty())
      return;
    std::ifstream in(history_file_);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && (history_.empty() || history_.back() != line))
        history_.push_back(line);
    if (history_.size() <= max_history)
      return;
    // The file only grows by appending; trim it here, when it has doubled.
    bool rewrite = history_.size() > 2 * max_history;
    history_.erase(history_.begin(), history_.end() - max_history);
    if (rewrite) {
      std::ofstream out(history_file_, std::ios::trunc);
      for (auto& l : history_)
        out << l << "\n";
    }
  }

  /// A key: a byte, or one of the key_ codes for escape sequences.
  int read_key() {
    unsigned char c = 0;
    switch (read_byte(-1, c)) {
      case input::end:
        return key_eof;
      case input::interrupt:
        return key_interrupt;
      case input::timeout:
        return key_none;
      case input::byte:
        break;
    }
    if (c != 27)
      return c;
    // An escape sequence, or a lone ESC when nothing follows promptly.
    unsigned char c1 = 0;
    if (read_byte(100, c1) != input::byte)
      return key_none;
    if (c1 == 'b')
      return key_word_left;
    if (c1 == 'f')
      return key_word_right;
    if (c1 != '[' && c1 != 'O')
      return key_none;
    std::string params;
    unsigned char f = 0;
    for (int i = 0;; ++i) {
      if (i > 16 || read_byte(100, f) != input::byte)
        return key_none;
      if (f >= 0x40 && f <= 0x7e)
        break;
      params += static_cast<char>(f);
    }
    // Modifiers (";5" Ctrl, ";3" Alt) on arrows move by words.
    bool word = params.find(';') != std::string::npos;
    switch (f) {
      case 'A':
        return key_up;
      case 'B':
        return key_down;
      case 'C':
        return word ? key_word_right : key_right;
      case 'D':
        return word ? key_word_left : key_left;
      case 'H':
        return key_home;
      case 'F':
        return key_end;
      case '~':
        if (params == "1" || params == "7")
          return key_home;
        if (params == "4" || params == "8")
          return key_end;
        if (params == "3")
          return key_delete;
        return key_none;
      default:
        return key_none;
    }
  }

  std::size_t word_before(std::size_t p) const {
    while (p > 0 && buf_[p - 1] == ' ')
      --p;
    while (p > 0 && buf_[p - 1] != ' ')
      --p;
    return p;
  }

  void insert(char c) {
    if (buf_.size() >= max_line) {
      emit("\a");
      return;
    }
    buf_.insert(pos_, 1, c);
    ++pos_;
    if (pos_ == buf_.size() && prompt_.size() + buf_.size() < terminal_columns())
      emit(std::string(1, c)); // typing at the end: no need to redraw
    else
      refresh();
  }

  void erase(std::size_t at, std::size_t n) {
    if (at >= buf_.size())
      return;
    buf_.erase(at, n);
    refresh();
  }

  void move_to(std::size_t p) {
    pos_ = p;
    refresh();
  }

  /// Redraws the line; a line wider than the terminal scrolls sideways to
  /// keep the cursor in view.
  void refresh() {
    std::size_t cols = terminal_columns();
    std::size_t room = cols > prompt_.size() + 1 ? cols - prompt_.size() - 1 : 1;
    std::size_t start = pos_ > room ? pos_ - room : 0;
    std::string shown = buf_.substr(start, room);
    std::string out = "\r" + prompt_ + shown + "\x1b[K\r";
    std::size_t column = prompt_.size() + pos_ - start;
    if (column > 0)
      out += "\x1b[" + std::to_string(column) + "C";
    emit(out);
  }

  void recall(int step) {
    if ((step < 0 && index_ == 0) || (step > 0 && index_ + 1 >= work_.size())) {
      emit("\a");
      return;
    }
    work_[index_] = buf_;
    index_ = step < 0 ? index_ - 1 : index_ + 1;
    buf_ = work_[index_];
    pos_ = buf_.size();
    refresh();
  }

  void complete() {
    std::size_t start = 0;
    auto candidates = complete_(buf_.substr(0, pos_), start);
    std::string word = buf_.substr(start, pos_ - start);
    std::vector<std::string> matches;
    for (auto& c : candidates)
      if (c.rfind(word, 0) == 0 && std::find(matches.begin(), matches.end(), c) == matches.end())
        matches.push_back(c);
    if (matches.empty()) {
      emit("\a");
      return;
    }
    std::string common = matches[0];
    for (auto& m : matches) {
      std::size_t i = 0;
      while (i < common.size() && i < m.size() && common[i] == m[i])
        ++i;
      common.resize(i);
    }
    if (matches.size() == 1) {
      // A whole word: a space follows, unless one is already there.
      bool spaced = pos_ < buf_.size() && buf_[pos_] == ' ';
      common += spaced ? "" : " ";
    }
    if (common.size() > word.size() || matches.size() == 1) {
      buf_.replace(start, pos_ - start, common);
      pos_ = start + common.size();
      if (matches.size() == 1 && common.back() != ' ')
        ++pos_; // step over the space that was already there
      refresh();
      return;
    }
    // Nothing more in common: show the choices under the line.
    std::sort(matches.begin(), matches.end());
    std::size_t width = 0;
    for (auto& m : matches)
      width = std::max(width, m.size() + 2);
    std::size_t per_row = std::max<std::size_t>(1, terminal_columns() / width);
    std::string out = "\n";
    for (std::size_t i = 0; i < matches.size(); ++i) {
      bool last_in_row = (i + 1) % per_row == 0 || i + 1 == matches.size();
      out += matches[i] + (last_in_row ? "\n" : std::string(width - matches[i].size(), ' '));
    }
    emit(out);
    refresh();
  }

  std::string history_file_;
  completer complete_;
  std::vector<std::string> history_;
  std::vector<std::string> work_;
  std::size_t index_ = 0;
  std::string prompt_;
  std::string buf_;
  std::size_t pos_ = 0;
};

std::string history_path() {
  const char* home = std::getenv("HOME");
  return home && *home ? std::string(home) + "/.bulwark_console_history" : std::string();
}

} // namespace

int main(int argc, char** argv) try {
  auto o = parse(argc, argv);
  bool tty_in = ::isatty(STDIN_FILENO) == 1;
  bool tty_out = ::isatty(STDOUT_FILENO) == 1;
  if (tty_in && tcgetattr(STDIN_FILENO, &term.original) == 0)
    term.saved = 1;
  bool terminal = tty_in && tty_out && term.saved;
  install_signal_handlers(terminal);
  console c(o, terminal);

  if (!o.commands.empty()) {
    bool ok = true;
    for (auto& cmd : o.commands) {
      clear_interrupt();
      ok = c.run(cmd) && ok;
      if (interrupted)
        return 130;
      if (c.quitting())
        break;
    }
    return ok ? 0 : 1;
  }

  if (!terminal) {
    // Plain lines, no prompt and no escape codes: for scripts and pipes.
    bool ok = true;
    for (std::string line; !c.quitting() && std::getline(std::cin, line);) {
      clear_interrupt();
      ok = c.run(line) && ok;
    }
    return ok ? 0 : 1;
  }

  line_editor editor(o.history ? history_path() : std::string(),
                     [&c](const std::string& before, std::size_t& start) { return c.complete(before, start); });
  c.greet();
  while (!c.quitting()) {
    auto line = editor.read("bulwark> ");
    if (!line)
      break;
    editor.remember(*line);
    clear_interrupt();
    c.run(*line);
    clear_interrupt();
  }
  return 0;
} catch (const std::exception& e) {
  // Unwound: the raw-mode guards have put the terminal back already.
  std::cerr << "bulwark-console: " << e.what() << "\n";
  return 1;
}
