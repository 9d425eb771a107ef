#include "actors/gateway.hpp"

#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/connector.hpp"
#include "actors/gateway_router.hpp"
#include "actors/operations.hpp"
#include "actors/runtime.hpp"
#include "config/log.hpp"
#include "transport/io_scheduler.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

/// How long a reload waits for the router to apply a generation.
constexpr auto reload_timeout = seconds(10);

} // namespace

struct gateway::impl {
  runtime& rt;
  gateway_seed_ptr seed = std::make_shared<gateway_seed>();
  gateway_hooks_ptr hooks = std::make_shared<gateway_hooks>();

  // HTTP connectors' I/O when the actor system does not run the fused scheduler.
  std::unique_ptr<boost::asio::io_context> own_io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> io_guard;
  std::thread io_thread;

  explicit impl(runtime& r) : rt(r) {}

  gateway_router_actor router() const { return hooks->router(); }
};

namespace {

/// A service's connector and breaker, in start order. A restarted one
/// takes the service's settings of the generation current then (its
/// transport is the one it was started with: a new transport is a new
/// subtree).
std::vector<std::pair<std::string, gateway_seed::spawn_fn>>
service_children(runtime& rt, gateway_seed_ptr seed, gateway_hooks_ptr hooks, const service_config& s) {
  std::weak_ptr<gateway_seed> weak = seed;
  auto current = [weak, first = std::make_shared<const service_config>(s)] {
    auto seed = weak.lock();
    auto cfg = seed ? seed->current() : nullptr;
    if (cfg)
      for (auto& now : cfg->services)
        if (now.name == first->name)
          return transport_changed(*first, now) ? *first : now;
    return *first;
  };
  auto env = rt.environment();
  std::vector<std::pair<std::string, gateway_seed::spawn_fn>> out;
  out.emplace_back(connector_name(s.name), [current, hooks, env](caf::actor_system& sys) {
    return caf::actor_cast<caf::actor>(spawn_connector(sys, env, current(), hooks));
  });
  auto spawned = std::make_shared<int>(0);
  out.emplace_back(breaker_name(s.name), [current, spawned, env](caf::actor_system& sys) {
    return caf::actor_cast<caf::actor>(spawn_breaker(sys, env, current(), (*spawned)++ > 0));
  });
  return out;
}

} // namespace

gateway::gateway(runtime& rt, gateway_config cfg) : impl_(std::make_shared<impl>(rt)) {
  auto& d = *impl_;
  auto ios = fused_io_contexts(rt.system());
  if (!ios.empty()) {
    d.hooks->io = ios.front();
  } else {
    d.own_io = std::make_unique<boost::asio::io_context>(1);
    d.io_guard.emplace(boost::asio::make_work_guard(*d.own_io));
    d.io_thread = std::thread([io = d.own_io.get()] { io->run(); });
    d.hooks->io = d.own_io.get();
  }
  d.hooks->child_max_restarts = cfg.child_max_restarts;
  d.hooks->child_restart_window = cfg.child_restart_window;
  d.seed->set(std::make_shared<const gateway_config>(std::move(cfg)));
  d.seed->children = [&rt, weak = std::weak_ptr<gateway_seed>(d.seed), hooks = d.hooks](const service_config& s) {
    auto seed = weak.lock();
    return seed ? service_children(rt, seed, hooks, s) : std::vector<std::pair<std::string, gateway_seed::spawn_fn>>{};
  };
  // Watched resources changed: the router tells each connector which of
  // them its service owns.
  rt.environment()->watches->on_change([hooks = d.hooks] {
    if (auto router = hooks->router())
      caf::anon_send(router, atom::watch_v);
  });
  auto current = d.seed->current();
  std::vector<std::string> service_names;
  for (auto& s : current->services)
    service_names.push_back(s.name);
  rt.environment()->set_service_names(std::move(service_names));
  // Results of cacheable calls, and stale copies for degraded answers.
  rt.add_supervised(
    cache_actor_name,
    [&rt](caf::actor_system& sys) {
      // A restarted cache takes the bounds of the generation in force.
      auto ops = rt.settings()->ops;
      return caf::actor_cast<caf::actor>(spawn_cache(sys, ops.cache_entries, ops.cache_bytes, rt.environment()->redis));
    },
    names::operations_supervisor);
  // Connectors see the router as soon as it exists; then it asks them for
  // what they reported before (to nobody, or to its predecessor).
  auto started = std::make_shared<int>(0);
  rt.add_supervised(
    gateway_router_name,
    [&rt, seed = d.seed, hooks = d.hooks, started](caf::actor_system& sys) {
      auto router = spawn_gateway_router(sys, rt, seed, (*started)++ > 0);
      hooks->set_router(router);
      caf::anon_send(router, atom::publish_v);
      return caf::actor_cast<caf::actor>(router);
    },
    names::operations_supervisor);
  // Per service, rest-for-one: the breaker's calls in flight went to the
  // connector, so a connector that dies takes its breaker along (which
  // answers those calls at once and comes back half-open).
  for (auto& s : current->services) {
    auto group = service_supervisor_name(s.name);
    rt.add_supervisor(group, restart_strategy::rest_for_one);
    for (auto& [name, spawn] : service_children(rt, d.seed, d.hooks, s))
      rt.add_supervised(name, std::move(spawn), group);
  }
}

void gateway::reconfigure(gateway_config next, milliseconds drain) {
  auto router = impl_->router();
  if (!router) {
    // No router running (it is restarting): the next one starts from this
    // generation.
    log::warn("gateway router not running; the new generation applies when it starts");
    impl_->seed->set(std::make_shared<const gateway_config>(std::move(next)));
    return;
  }
  // The reload's answer says the generation is in force, so it waits until
  // the router applied it (the catalog shows it).
  caf::scoped_actor self{impl_->rt.system()};
  self
    ->request(router, reload_timeout, atom::reload_v,
              gateway_config_ptr(std::make_shared<const gateway_config>(std::move(next))),
              static_cast<int64_t>(drain.count()))
    .receive([](bool) {},
             [](caf::error& err) {
               log::error("gateway router did not confirm the new generation",
                          value::make_object({{"error", caf::to_string(err)}}));
             });
}

gateway::~gateway() {
  auto& d = *impl_;
  d.rt.environment()->watches->on_change(nullptr);
  if (d.own_io) {
    d.io_guard.reset();
    d.own_io->stop();
    if (d.io_thread.joinable())
      d.io_thread.join();
  }
}

std::vector<std::string> gateway::wait_ready(milliseconds limit) {
  // The router starts with the tree, shortly after `rt.start()` returns.
  auto until = steady_clock::now() + limit;
  auto router = impl_->router();
  while (!router && steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(1));
    router = impl_->router();
  }
  if (!router)
    throw gateway_error("the gateway's router did not start");
  gateway_readiness r;
  bool answered = false;
  caf::scoped_actor self{impl_->rt.system()};
  self->request(router, limit + seconds(5), atom::ready_v, static_cast<int64_t>(limit.count()))
    .receive(
      [&](gateway_readiness& got) {
        r = std::move(got);
        answered = true;
      },
      [](caf::error&) {});
  if (!answered) {
    std::vector<std::string> all;
    for (auto& s : impl_->seed->current()->services)
      all.push_back(s.name);
    return all;
  }
  if (!r.refusal.empty())
    throw gateway_error(r.refusal);
  return r.not_ready;
}

} // namespace bulwark
