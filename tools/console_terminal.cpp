#include "tools/console_terminal.hpp"

#include <fcntl.h>
#include <histedit.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace bulwark::console {

namespace {

using steady = std::chrono::steady_clock;

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
volatile sig_atomic_t interrupt_flag = 0;

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

/// Puts the terminal back as it was found. Async-signal-safe. (The prompt's
/// own terminal modes are libedit's, which it undoes on signals itself.)
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
  interrupt_flag = 1;
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

std::size_t terminal_columns() {
  auto ws = terminal_size();
  return ws.ws_col > 0 ? ws.ws_col : 80;
}

} // namespace

// -- signals and interruption -------------------------------------------------

bool save_terminal() {
  if (::isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &term.original) == 0)
    term.saved = 1;
  return term.saved;
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

bool interrupted() {
  return interrupt_flag != 0;
}

void clear_interrupt() {
  char buf[64];
  if (interrupt_pipe[0] >= 0)
    while (::read(interrupt_pipe[0], buf, sizeof buf) > 0) {
    }
  interrupt_flag = 0;
}

int interrupt_fd() {
  return interrupt_pipe[0];
}

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

// -- raw input for live views ---------------------------------------------------

raw_mode::raw_mode() {
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

raw_mode::~raw_mode() {
  if (!term.modified)
    return;
  tcsetattr(STDIN_FILENO, TCSADRAIN, &term.original);
  term.modified = 0;
}

alternate_screen::alternate_screen() {
  term.alt_screen = 1;
  emit(enter_alt_screen);
}

alternate_screen::~alternate_screen() {
  emit(leave_alt_screen);
  term.alt_screen = 0;
}

void emit(const std::string& s) {
  write_all(STDOUT_FILENO, s.data(), s.size());
}

winsize terminal_size() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0)
    ws = winsize{};
  return ws;
}

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

// -- the prompt ----------------------------------------------------------------

struct line_editor::state {
  static constexpr int max_history = 1000;

  std::string history_file;
  completer complete;
  std::string prompt;
  EditLine* el = nullptr;
  History* history = nullptr;
  HistEvent event{};
  /// The history, oldest first, and the line being typed last, while a line
  /// is read: edits to recalled lines last until Enter, the history itself
  /// keeps them as typed.
  std::vector<std::string> work;
  std::size_t index = 0;
  /// Ctrl-C came while a key's handler ran (completion asks the server).
  bool cancelled = false;

  void start_line() {
    work.clear();
    HistEvent e{};
    for (int r = ::history(history, &e, H_LAST); r == 0; r = ::history(history, &e, H_PREV))
      work.emplace_back(e.str ? e.str : "");
    work.emplace_back();
    index = work.size() - 1;
  }

  std::string current() const {
    const LineInfo* li = el_line(el);
    return std::string(li->buffer, li->lastchar);
  }

  /// The file's lines into libedit's history (consecutive repeats once).
  void load_history() {
    if (history_file.empty())
      return;
    std::ifstream in(history_file);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && (lines.empty() || lines.back() != line))
        lines.push_back(line);
    // The file only grows by appending; trim it here, when it has doubled.
    if (lines.size() > 2 * static_cast<std::size_t>(max_history)) {
      lines.erase(lines.begin(), lines.end() - max_history);
      std::ofstream out(history_file, std::ios::trunc);
      for (auto& l : lines)
        out << l << "\n";
    }
    for (auto& l : lines)
      ::history(history, &event, H_ENTER, l.c_str());
  }

  /// TAB: completes the word before the cursor as far as the candidates
  /// agree; a whole word gets a space after it; several candidates with
  /// nothing more in common are listed under the line.
  unsigned char on_tab() {
    const LineInfo* li = el_line(el);
    std::string before(li->buffer, li->cursor);
    bool spaced = li->cursor < li->lastchar && *li->cursor == ' ';
    std::size_t start = 0;
    auto candidates = complete(before, start);
    if (interrupted()) {
      // libedit has already left its editing mode for the signal: end the
      // line here, and `read` drops it as for any Ctrl-C.
      cancelled = true;
      return CC_NEWLINE;
    }
    std::string word = before.substr(std::min(start, before.size()));
    std::vector<std::string> matches;
    for (auto& c : candidates)
      if (c.rfind(word, 0) == 0 && std::find(matches.begin(), matches.end(), c) == matches.end())
        matches.push_back(c);
    if (matches.empty())
      return CC_REFRESH_BEEP;
    std::string common = matches[0];
    for (auto& m : matches) {
      std::size_t i = 0;
      while (i < common.size() && i < m.size() && common[i] == m[i])
        ++i;
      common.resize(i);
    }
    if (matches.size() == 1 || common.size() > word.size()) {
      auto rest = common.substr(word.size());
      if (!rest.empty())
        el_insertstr(el, rest.c_str());
      if (matches.size() == 1) {
        if (spaced)
          el_cursor(el, 1); // step over the space that is already there
        else
          el_insertstr(el, " ");
      }
      // The whole line again, prompt included, rather than the changed
      // characters alone.
      return CC_REDISPLAY;
    }
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
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
    return CC_REDISPLAY;
  }

  /// Up and down: the previous or next line of the history in place of
  /// the line, the whole line redrawn (prompt included).
  unsigned char step(bool back) {
    if (back ? index == 0 : index + 1 >= work.size())
      return CC_REFRESH_BEEP;
    work[index] = current();
    index = back ? index - 1 : index + 1;
    const LineInfo* li = el_line(el);
    el_cursor(el, static_cast<int>(li->lastchar - li->cursor));
    el_deletestr(el, static_cast<int>(li->lastchar - li->buffer));
    el_insertstr(el, work[index].c_str());
    return CC_REDISPLAY;
  }
};

namespace {

line_editor::state* state_of(EditLine* el) {
  void* data = nullptr;
  el_get(el, EL_CLIENTDATA, &data);
  return static_cast<line_editor::state*>(data);
}

char* prompt_of(EditLine* el) {
  return state_of(el)->prompt.data();
}

unsigned char tab_key(EditLine* el, int) {
  return state_of(el)->on_tab();
}
unsigned char up_key(EditLine* el, int) {
  return state_of(el)->step(true);
}
unsigned char down_key(EditLine* el, int) {
  return state_of(el)->step(false);
}

} // namespace

line_editor::line_editor(std::string history_file, completer complete) : state_(new state) {
  state_->history_file = std::move(history_file);
  state_->complete = std::move(complete);
  state_->history = history_init();
  ::history(state_->history, &state_->event, H_SETSIZE, state::max_history);
  ::history(state_->history, &state_->event, H_SETUNIQUE, 1);
  state_->load_history();

  auto* el = el_init("bulwark-console", stdin, stdout, stderr);
  state_->el = el;
  el_set(el, EL_CLIENTDATA, state_);
  el_set(el, EL_EDITOR, "emacs");
  // libedit takes the terminal out of its editing mode on signals (Ctrl-C,
  // Ctrl-Z, fatal ones) and passes them on to the console's handlers.
  el_set(el, EL_SIGNAL, 1);
  el_set(el, EL_PROMPT, prompt_of);
  el_set(el, EL_HIST, history, state_->history);
  // Wide names: libedit keeps these pointers as they are (the narrow
  // el_set copies them and never frees the copies).
  el_wset(el, EL_ADDFN, L"bulwark-complete", L"complete a command, actor name, kind or service", tab_key);
  el_wset(el, EL_ADDFN, L"bulwark-history-back", L"the previous line of the history", up_key);
  el_wset(el, EL_ADDFN, L"bulwark-history-forward", L"the next line of the history", down_key);
  el_set(el, EL_BIND, "^I", "bulwark-complete", nullptr);
  for (const char* up : {"\\e[A", "\\eOA", "^P"})
    el_set(el, EL_BIND, up, "bulwark-history-back", nullptr);
  for (const char* down : {"\\e[B", "\\eOB", "^N"})
    el_set(el, EL_BIND, down, "bulwark-history-forward", nullptr);
  // The keys the help text promises, as shells have them.
  el_set(el, EL_BIND, "^U", "vi-kill-line-prev", nullptr);
  el_set(el, EL_BIND, "^W", "ed-delete-prev-word", nullptr);
  for (const char* home : {"\\e[H", "\\eOH", "\\e[1~", "\\e[7~"})
    el_set(el, EL_BIND, home, "ed-move-to-beg", nullptr);
  for (const char* end : {"\\e[F", "\\eOF", "\\e[4~", "\\e[8~"})
    el_set(el, EL_BIND, end, "ed-move-to-end", nullptr);
  el_set(el, EL_BIND, "\\e[3~", "ed-delete-next-char", nullptr);
  for (const char* left : {"\\e[1;5D", "\\e[1;3D"})
    el_set(el, EL_BIND, left, "ed-prev-word", nullptr);
  for (const char* right : {"\\e[1;5C", "\\e[1;3C"})
    el_set(el, EL_BIND, right, "em-next-word", nullptr);
  // The user's ~/.editrc last, so that it can change any of the above.
  el_source(el, nullptr);
}

line_editor::~line_editor() {
  el_end(state_->el);
  history_end(state_->history);
  delete state_;
}

std::optional<std::string> line_editor::read(const std::string& prompt) {
  state_->prompt = prompt;
  for (;;) {
    state_->start_line();
    int count = 0;
    const char* line = el_gets(state_->el, &count);
    if (state_->cancelled || (count < 0 && interrupted())) {
      // Ctrl-C: the line is dropped, a fresh prompt follows.
      state_->cancelled = false;
      clear_interrupt();
      emit("^C\n");
      continue;
    }
    if (line && count > 0) {
      std::string s(line, static_cast<std::size_t>(count));
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
        s.pop_back();
      return s;
    }
    emit("\n");
    return std::nullopt;
  }
}

void line_editor::remember(const std::string& line) {
  if (line.find_first_not_of(" \t") == std::string::npos)
    return;
  HistEvent last{};
  bool repeat = ::history(state_->history, &last, H_FIRST) == 0 && last.str && line == last.str;
  if (repeat)
    return;
  ::history(state_->history, &state_->event, H_ENTER, line.c_str());
  if (state_->history_file.empty())
    return;
  int fd = ::open(state_->history_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  std::string entry = line + "\n";
  write_all(fd, entry.data(), entry.size());
  ::close(fd);
}

} // namespace bulwark::console
