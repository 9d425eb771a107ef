// bulwark-console: an interactive terminal console for Bulwark's admin API.
//
//   bulwark-console [--url http://HOST:PORT] [--token T] [--no-history] [-c COMMAND]...
//
// Type `help` at the `bulwark> ` prompt for the commands: the actor tree,
// breakers, queue, cache, alerts, limits, sessions and health views; killing
// actors, forcing breakers and degraded mode, invalidating a service's cached
// results; the effective configuration and reloading it; `watch`, which
// redraws the actor tree and a health summary until q.
//
// On a terminal the console reads lines through libedit (emacs keys, and
// ~/.editrc): Ctrl-A/E/U/K/W, Ctrl-C clears the line, Ctrl-D leaves, up/down
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
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "messages/json.hpp"
#include "tools/console_client.hpp"
#include "tools/console_render.hpp"
#include "tools/console_terminal.hpp"

namespace {

namespace json = bulwark::json;
using namespace bulwark::console;
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
      add({"open", "close", "half-open", "auto"});
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
      {"breaker", "breaker SERVICE open|close|half-open|auto",
       "hold a service's breaker open or closed, half-open it once, or release it", &console::breaker},
      {"queue", "queue", "the request queue: fill, depth per priority, waiting entries", &console::queue},
      {"cache", "cache | cache invalidate SERVICE", "cache statistics, or drop a service's cached results",
       &console::cache},
      {"alerts", "alerts", "alert rules and what they fired", &console::alerts},
      {"tools", "tools", "tool definition changes held by pinning, with what differs", &console::tools},
      {"approve", "approve SERVICE TOOL", "approve a held tool definition change: clients see it from then on",
       &console::approve},
      {"limits", "limits", "rate limits and usage", &console::limits},
      {"sessions", "sessions", "MCP sessions", &console::sessions},
      {"health", "health", "overall status, degraded mode and each component", &console::health},
      {"degrade", "degrade on|off|auto", "force degraded mode on or off, or leave it to the health checks",
       &console::degrade},
      {"config", "config", "the effective configuration: generation, source, load time, every setting",
       &console::config},
      {"reload", "reload", "reload the configuration; what changed, or why it was refused", &console::reload},
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
    static const std::map<std::string, std::string> states = {{"open", "open"},           {"close", "closed"},
                                                              {"closed", "closed"},       {"half-open", "half_open"},
                                                              {"half_open", "half_open"}, {"auto", "auto"}};
    if (a.size() != 2 || !states.count(a[1]))
      return wrong_usage("breaker");
    value answer;
    const auto& state = states.at(a[1]);
    if (!act("breakers", value::make_object({{"service", a[0]}, {"state", state}}), "breaker " + clean(a[0]), answer))
      return false;
    if (state == "auto")
      std::cout << "breaker " << clean(a[0]) << " released: its state follows the calls again\n";
    else if (state == "half_open")
      std::cout << "breaker " << clean(a[0]) << " half-open: the next call probes the service\n";
    else
      std::cout << "breaker " << clean(a[0]) << " held " << state << " until 'breaker " << clean(a[0]) << " auto'\n";
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

  bool tools(const args& a) {
    value v;
    if (!a.empty())
      return wrong_usage("tools");
    if (!fetch_or_component("tools", "tools", v))
      return false;
    render_held_tools(std::cout, v);
    return true;
  }

  bool approve(const args& a) {
    value answer;
    if (a.size() != 2)
      return wrong_usage("approve");
    if (!act("tools/approve", value::make_object({{"service", a[0]}, {"tool", a[1]}}),
             "approve " + clean(a[0]) + " " + clean(a[1]), answer))
      return false;
    std::cout << "approved the new definition of " << clean(a[1]) << " of " << clean(a[0])
              << "; clients see it from now on\n";
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

  bool config(const args& a) {
    value v;
    if (!a.empty())
      return wrong_usage("config");
    if (!fetch("config", v))
      return false;
    render_config(std::cout, v);
    return true;
  }

  bool reload(const args& a) {
    if (!a.empty())
      return wrong_usage("reload");
    auto r = api_.post("config/reload", value::make_object({}));
    // A refusal (422) explains itself: which settings are wrong, which would
    // need a restart.
    if (!r.ok() && !(r.status == 422 && r.body["outcome"].is_string())) {
      complain(r, "reload");
      return false;
    }
    std::cout.flush();
    return render_reload(r.ok() ? std::cout : std::cerr, r.body);
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
    alternate_screen screen_owner;
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

std::string history_path() {
  const char* home = std::getenv("HOME");
  return home && *home ? std::string(home) + "/.bulwark_console_history" : std::string();
}

} // namespace

int main(int argc, char** argv) try {
  auto o = parse(argc, argv);
  bool terminal = save_terminal() && ::isatty(STDOUT_FILENO) == 1;
  install_signal_handlers(terminal);
  console c(o, terminal);

  if (!o.commands.empty()) {
    bool ok = true;
    for (auto& cmd : o.commands) {
      clear_interrupt();
      ok = c.run(cmd) && ok;
      if (interrupted())
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
