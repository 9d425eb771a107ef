// bulwark-console's terminal: signals, Ctrl-C as an interruption of whatever
// the console waits for, raw key input for live views, and the prompt's line
// editor (libedit).
//
// What the console changed about the terminal lives where signal handlers
// can see it, so that every way out of the process puts the terminal back.
#pragma once

#include <sys/ioctl.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bulwark::console {

// -- signals and interruption -------------------------------------------------

/// Remembers the terminal's settings when standard input is one; false when
/// it is not (or they cannot be read).
bool save_terminal();

/// Puts the terminal back on exit and on fatal signals, routes Ctrl-C to the
/// interrupt pipe, and makes Ctrl-Z leave the terminal as it was found.
/// `terminal`: standard input and output are a terminal the console drives.
void install_signal_handlers(bool terminal);

/// Whether Ctrl-C came since the last `clear_interrupt`.
bool interrupted();

/// Forgets a Ctrl-C that has been dealt with.
void clear_interrupt();

/// A descriptor that becomes readable on Ctrl-C (SIGINT), or -1 when Ctrl-C
/// keeps its default meaning (not a terminal).
int interrupt_fd();

/// Sleeps up to `d`; false when Ctrl-C cut the sleep short.
bool pause_for(std::chrono::steady_clock::duration d);

// -- raw input for live views ---------------------------------------------------

/// Raw input while alive: bytes as typed, no echo, Ctrl-C and Ctrl-Z as
/// keys. Output processing stays on, so "\n" still returns the carriage.
class raw_mode {
public:
  raw_mode();
  ~raw_mode();
  raw_mode(const raw_mode&) = delete;
  raw_mode& operator=(const raw_mode&) = delete;
};

/// The alternate screen, cursor hidden, while alive; given back on every way
/// out of the process too.
class alternate_screen {
public:
  alternate_screen();
  ~alternate_screen();
  alternate_screen(const alternate_screen&) = delete;
  alternate_screen& operator=(const alternate_screen&) = delete;
};

/// Writes all of `s` to standard output, unbuffered.
void emit(const std::string& s);

/// The terminal's size; zeros when it does not say.
winsize terminal_size();

enum class input { byte, timeout, end, interrupt };

/// Waits up to `timeout_ms` (-1: forever) for one byte of standard input or
/// for Ctrl-C.
input read_byte(int timeout_ms, unsigned char& c);

// -- the prompt ----------------------------------------------------------------

/// Reads lines at a prompt through libedit: emacs keys, history, completion.
/// The history is a plain file of lines, one per command, appended as
/// commands are entered.
class line_editor {
public:
  /// Words that may follow `before` (the line up to the cursor); sets
  /// `word_start` to where the word being completed starts.
  using completer = std::function<std::vector<std::string>(const std::string& before, std::size_t& word_start)>;

  /// `history_file` empty: the history lasts for the session only.
  line_editor(std::string history_file, completer complete);
  ~line_editor();
  line_editor(const line_editor&) = delete;
  line_editor& operator=(const line_editor&) = delete;

  /// One line, without its newline; nullopt at the end of input (Ctrl-D on
  /// an empty line). Ctrl-C abandons the line being typed and prompts again.
  std::optional<std::string> read(const std::string& prompt);

  /// Adds an entered line to the history (and to the history file).
  void remember(const std::string& line);

  struct state;

private:
  state* state_;
};

} // namespace bulwark::console
