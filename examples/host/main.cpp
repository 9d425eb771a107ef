// A host program that embeds Bulwark: its own actor system (work-sharing
// scheduler, two threads) and its own inventory actor, two of whose
// operations Bulwark serves as MCP tools over Streamable HTTP.
//
//   host [--port N]     (0, the default, picks a free port)
//
// Signals: SIGUSR1 kills the inventory actor (and nothing restarts it),
// SIGUSR2 starts a new one, SIGTERM or SIGINT stops Bulwark, shows that the
// actor system and the inventory actor still run, and exits.
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <pthread.h>

#include <caf/all.hpp>

#include "actors/actor_tool.hpp"
#include "actors/health.hpp"
#include "actors/runtime.hpp"
#include "config/log.hpp"
#include "transport/http_server.hpp"

// The host's own atoms, in a type ID block after Bulwark's.
CAF_BEGIN_TYPE_ID_BLOCK(inventory_host, caf::id_block::bulwark::end)
CAF_ADD_ATOM(inventory_host, inventory_host::atom, report, "report")
CAF_END_TYPE_ID_BLOCK(inventory_host)

namespace inventory_host {

using bulwark::json::value;
namespace log = bulwark::log;

/// The inventory: answers Bulwark's tool calls (it is a `tool_actor`) and
/// the host's own questions.
using inventory_actor = bulwark::tool_actor::extend<
  // The host asks for a summary: incarnation, calls served, stock.
  caf::replies_to<atom::report>::with<value>>;

struct inventory_state {
  static inline const char* name = "inventory";
  /// Which start of the actor this is (1, 2, ...): the stock below is the
  /// actor's own and starts afresh with each incarnation.
  uint32_t incarnation = 0;
  std::map<std::string, int64_t> available{{"widget", 10}, {"gadget", 4}};
  uint64_t calls = 0;
};

value tool_error(std::string text) {
  return value::make_object(
    {{"content", value::make_array({value::make_object({{"type", "text"}, {"text", std::move(text)}})})},
     {"isError", true}});
}

/// `stock`: what is left of `item` (or of everything).
value stock(inventory_state& st, const value& args) {
  auto item = args["item"].as_string();
  if (item.empty()) {
    value items(bulwark::json::object{});
    for (auto& [name, n] : st.available)
      items.set(name, static_cast<long long>(n));
    return value::make_object({{"available", std::move(items)}, {"incarnation", st.incarnation}});
  }
  auto i = st.available.find(item);
  if (i == st.available.end())
    return tool_error("no item named " + item);
  return value::make_object(
    {{"item", item}, {"available", static_cast<long long>(i->second)}, {"incarnation", st.incarnation}});
}

/// `reserve`: takes `quantity` of `item` out of stock.
value reserve(inventory_state& st, const value& args) {
  auto item = args["item"].as_string();
  auto quantity = args["quantity"].as_int();
  auto i = st.available.find(item);
  if (i == st.available.end())
    return tool_error("no item named " + item);
  if (!args["quantity"].is_integer() || quantity < 1)
    return tool_error("quantity must be a positive integer");
  if (quantity > i->second)
    return tool_error("only " + std::to_string(i->second) + " " + item + " left");
  i->second -= quantity;
  return value::make_object({{"item", item},
                             {"reserved", static_cast<long long>(quantity)},
                             {"available", static_cast<long long>(i->second)},
                             {"incarnation", st.incarnation}});
}

inventory_actor::behavior_type inventory(inventory_actor::stateful_pointer<inventory_state> self,
                                         uint32_t incarnation) {
  self->state.incarnation = incarnation;
  log::info("inventory actor started", value::make_object({{"incarnation", incarnation}}));
  return {
    [self](bulwark::atom::call, const std::string& tool, const value& args) -> value {
      auto& st = self->state;
      ++st.calls;
      if (tool == "stock")
        return stock(st, args);
      if (tool == "reserve")
        return reserve(st, args);
      return tool_error("the inventory has no tool named " + tool);
    },
    [self](atom::report) -> value {
      auto& st = self->state;
      value items(bulwark::json::object{});
      for (auto& [name, n] : st.available)
        items.set(name, static_cast<long long>(n));
      log::info("inventory actor reporting", value::make_object({{"incarnation", st.incarnation}}));
      return value::make_object({{"incarnation", st.incarnation},
                                 {"calls", static_cast<unsigned long long>(st.calls)},
                                 {"available", std::move(items)}});
    },
  };
}

/// The host's handle on its inventory actor. Bulwark looks the actor up here
/// for every call, so a new incarnation serves the next call.
class warehouse {
public:
  explicit warehouse(caf::actor_system& sys) : sys_(sys) { respawn(); }

  inventory_actor current() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return actor_;
  }

  /// Kills the actor as a crash would, and waits until it is gone; nothing
  /// restarts it.
  void kill() {
    auto victim = current();
    caf::scoped_actor self{sys_};
    self->monitor(victim);
    self->send_exit(victim, caf::exit_reason::kill);
    bool gone = false;
    self->receive([&](caf::down_msg&) { gone = true; }, caf::after(std::chrono::seconds(5)) >> [] {});
    log::info("inventory actor killed", value::make_object({{"gone", gone}}));
  }

  void respawn() {
    std::lock_guard<std::mutex> guard(mtx_);
    actor_ = sys_.spawn(inventory, ++incarnation_);
  }

private:
  caf::actor_system& sys_;
  mutable std::mutex mtx_;
  inventory_actor actor_;
  uint32_t incarnation_ = 0;
};

} // namespace inventory_host

int main(int argc, char** argv) {
  using namespace inventory_host;
  using namespace std::chrono_literals;
  uint16_t port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      port = static_cast<uint16_t>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      std::cerr << "usage: host [--port N]\n";
      return 2;
    }
  }

  // One thread takes the signals; every thread started from here blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2})
    sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  // The host's actor system, configured by the host.
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  warehouse inventory_actors{sys};

  bulwark::runtime_options ro;
  ro.server_name = "inventory-host";
  bulwark::runtime rt(sys, ro);

  // Two tools answered by the inventory actor. Each has its own breaker:
  // 3 failures in a row open it for 2 s.
  bulwark::actor_tool_options opts;
  opts.timeout = 2s;
  opts.breaker.consecutive_failures = 3;
  opts.breaker.open_duration = 2s;
  auto find = [&inventory_actors]() -> bulwark::tool_actor { return inventory_actors.current(); };
  auto string = value::make_object({{"type", "string"}});
  auto stock_tool = bulwark::actor_tool(
    rt, "stock", "Items in stock: of `item`, or of every item.",
    value::make_object({{"type", "object"}, {"properties", value::make_object({{"item", string}})}}), find, opts);
  stock_tool.annotations = value::make_object({{"readOnlyHint", true}});
  rt.add_tool(std::move(stock_tool));
  rt.add_tool(bulwark::actor_tool(
    rt, "reserve", "Takes `quantity` of `item` out of stock.",
    value::make_object(
      {{"type", "object"},
       {"properties", value::make_object(
                        {{"item", string}, {"quantity", value::make_object({{"type", "integer"}, {"minimum", 1}})}})},
       {"required", value::make_array({"item", "quantity"})}}),
    find, opts));
  rt.start();

  bulwark::http_options http_opts;
  http_opts.port = port;
  bulwark::http_server http(&rt, http_opts);
  bulwark::add_operator_routes(http, rt); // /health, /ready, /metrics
  try {
    port = http.start();
  } catch (const std::exception& e) {
    log::error("cannot serve HTTP", value::make_object({{"error", e.what()}}));
    return 1;
  }
  log::info("listening", value::make_object({{"port", static_cast<int>(port)}, {"path", http_opts.path}}));

  // Serve until SIGTERM or SIGINT; SIGUSR1 and SIGUSR2 kill and restart
  // the inventory actor meanwhile.
  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGUSR1) {
      inventory_actors.kill();
    } else if (sig == SIGUSR2) {
      inventory_actors.respawn();
    } else {
      log::info("signal received; stopping bulwark", value::make_object({{"signal", sig}}));
      break;
    }
  }

  auto health = rt.health();
  auto metrics = rt.metrics_json();
  log::info("bulwark health at stop",
            value::make_object({{"status", health.is_null() ? value("starting") : health["status"]},
                                {"breakers", metrics["bulwark_actor_tool_breaker_state"]["series"]}}));
  http.drain();
  rt.stop();
  http.stop();
  log::info("bulwark stopped", value::make_object({{"running", rt.running()}}));

  // Bulwark is gone; the host's actor system and its actor are not.
  int code = 0;
  caf::scoped_actor self{sys};
  self->request(inventory_actors.current(), 2s, atom::report_v)
    .receive(
      [&](value& report) {
        log::info("inventory actor still running after bulwark stopped",
                  value::make_object({{"report", std::move(report)},
                                      {"actors_running", static_cast<unsigned long long>(sys.registry().running())}}));
      },
      [&](caf::error& err) {
        log::error("inventory actor did not answer after bulwark stopped",
                   value::make_object({{"error", sys.render(err)}}));
        code = 1;
      });
  self->send_exit(inventory_actors.current(), caf::exit_reason::user_shutdown);
  return code;
}
