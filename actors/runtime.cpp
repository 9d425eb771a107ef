#include "actors/runtime.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <utility>

#include <caf/all.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "actors/ask.hpp"
#include "actors/cache.hpp"
#include "actors/env.hpp"
#include "actors/health.hpp"
#include "actors/operations.hpp"
#include "actors/session.hpp"
#include "actors/shared_state.hpp"
#include "actors/supervisor.hpp"
#include "actors/task_store.hpp"
#include "actors/telemetry.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "config/traffic_history.hpp"
#include "messages/crypto.hpp"
#include "messages/schema.hpp"
#include "transport/io_scheduler.hpp"
#include "transport/redis_client.hpp"

namespace bulwark {

struct runtime::impl {
  caf::actor_system& sys;
  env_ptr env;
  supervisor_actor root;
  struct extra {
    child_spec child;
    std::string supervisor;
  };
  std::vector<extra> extra_children;
  std::vector<std::pair<std::string, restart_strategy>> extra_supervisors;
  /// The admin page's charts, fed by the health supervisor (kept here so
  /// that they survive its restarts).
  std::shared_ptr<metrics::traffic_history> history = std::make_shared<metrics::traffic_history>();
  mutable std::mutex mtx; ///< Guards catalog edits and start/stop.
  // Operational actors' HTTP when the actor system does not run the fused scheduler.
  std::unique_ptr<boost::asio::io_context> own_io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> io_guard;
  std::thread io_thread;

  impl(caf::actor_system& s, runtime_options opts) : sys(s), env(std::make_shared<runtime_env>()) {
    env->opts = std::move(opts);
    env->install_settings(std::make_shared<const runtime_options>(env->opts));
    env->configure_state_keys(env->opts.state_key, env->opts.previous_state_key);
    env->metrics = std::make_shared<metrics::registry>();
    env->latency = std::make_shared<metrics::histogram>();
    env->buckets = std::make_shared<rate_buckets>(env->opts.ops.limits);
    describe_metrics(*env->metrics);
    if (!env->opts.ops.redis.url.empty()) {
      env->redis = make_shared_state(env);
      env->leases = std::make_shared<lease_book>();
      env->unknown_sessions = std::make_shared<recent_misses>(unknown_session_capacity, unknown_session_memory);
    }
  }

  ~impl() {
    if (env->redis)
      env->redis->stop();
    if (own_io) {
      io_guard.reset();
      own_io->stop();
      if (io_thread.joinable())
        io_thread.join();
    }
  }

  static void describe_metrics(metrics::registry& m) {
    using metrics::kind;
    m.describe("process_cpu_seconds_total", "User and system CPU time of the process, in seconds.", kind::counter);
    m.describe("process_resident_memory_bytes", "Resident memory of the process.", kind::gauge);
    m.describe("process_virtual_memory_bytes", "Virtual memory of the process.", kind::gauge);
    m.describe("process_open_fds", "Open file descriptors of the process.", kind::gauge);
    m.describe("process_max_fds", "The process's limit of open file descriptors.", kind::gauge);
    m.describe("process_start_time_seconds", "When the process started, in seconds since the Unix epoch.", kind::gauge);
    m.describe("bulwark_requests_total", "Answered requests by method, tool and outcome (ok, tool_error, error).",
               kind::counter);
    m.describe("bulwark_errors_total",
               "Error answers by JSON-RPC error code and class: caller (the caller's doing: a malformed request, bad "
               "arguments, its quota or policy) or server (a failure of Bulwark or a service).",
               kind::counter);
    m.describe("bulwark_request_duration_seconds", "Time from a request's arrival to its answer, by method.",
               kind::histogram);
    // Proxied calls: the downstream's share and Bulwark's own, in finer
    // buckets (Bulwark's own share is tens of microseconds).
    std::vector<double> fine{0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                             0.01,     0.025,   0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10};
    m.describe(
      "bulwark_upstream_duration_seconds",
      "Time a proxied call waited on its downstream service (each attempt from sending to its outcome), by service.",
      kind::histogram, fine);
    m.describe("bulwark_service_calls_total", "Calls to a downstream service, by service (as its breaker counts them).",
               kind::counter);
    m.describe("bulwark_service_failures_total",
               "Calls a downstream service did not answer (failure or timeout, after retries), by service.",
               kind::counter);
    m.describe("bulwark_service_timeouts_total", "Calls that ended in a timeout, by service.", kind::counter);
    m.describe("bulwark_service_retries_total", "Attempts sent again, by service.", kind::counter);
    m.describe("bulwark_service_fast_failures_total", "Calls the open breaker refused without the service, by service.",
               kind::counter);
    m.describe("bulwark_breaker_transitions_total", "Breaker state changes, by service.", kind::counter);
    m.describe("bulwark_tool_changes_held_total",
               "Tool definition changes a service made that pinning holds until an operator approves them, by service.",
               kind::counter);
    m.describe("bulwark_service_token_requests_total",
               "Token requests for a service with auth.type clientCredentials or tokenExchange, by service, grant "
               "(client_credentials, token_exchange) and outcome (granted, failed).",
               kind::counter);
    m.describe("bulwark_fallbacks_total",
               "Answers for a service that could not answer, by service and source: a fresh or stale cached copy, or "
               "the static message.",
               kind::counter);
    m.describe("bulwark_redis_round_trip_seconds",
               "Time from sending a command to Redis (in its pipeline) to its answer (with redis.url).",
               kind::histogram, fine);
    m.describe(
      "bulwark_gateway_overhead_seconds",
      "Time a proxied call spent in Bulwark itself: its request duration minus its upstream duration, by service.",
      kind::histogram, fine);
    m.describe("bulwark_rate_limit_refusals_total",
               "Calls refused by a rate limit, by level (user_quota, service, global).", kind::counter);
    m.describe("bulwark_queue_depth", "Calls waiting in the priority queue, by priority.", kind::gauge);
    m.describe("bulwark_queue_capacity", "Calls the priority queue holds at most (queue.capacity).", kind::gauge);
    m.describe("bulwark_queue_refusals_total", "Calls the full (or shedding) queue refused, by priority.",
               kind::counter);
    m.describe("bulwark_breaker_state", "Circuit breaker per service: 0 closed, 1 open, 2 half-open.", kind::gauge);
    m.describe("bulwark_cache_events_total", "Cache lookups by result (hits, misses, staleHits) and evictions.",
               kind::counter);
    m.describe("bulwark_cache_entries", "Entries in the result cache.", kind::gauge);
    m.describe("bulwark_cache_bytes", "Approximate bytes held by the result cache.", kind::gauge);
    m.describe("bulwark_sessions", "Live 2025-era sessions.", kind::gauge);
    m.describe("bulwark_actor_restarts_total", "Restarts of supervised actors.", kind::counter);
    m.describe("bulwark_degraded_mode", "1 while degraded mode is on.", kind::gauge);
    m.describe("bulwark_degraded_switches_total", "Switches of degraded mode, by direction.", kind::counter);
    m.describe("bulwark_health_status", "0 healthy, 1 degraded, 2 unhealthy.", kind::gauge);
    m.describe("bulwark_alerts_total", "Alerts fired, by rule.", kind::counter);
    m.describe("bulwark_trace_spans_exported_total", "Spans the OTLP collector accepted.", kind::counter);
    m.describe("bulwark_trace_spans_dropped_total",
               "Spans not exported, by reason: queue_full (the collector is slow or down), export_failed, disabled.",
               kind::counter);
    m.describe("bulwark_trace_queue_spans", "Spans waiting for export.", kind::gauge);
    m.describe("bulwark_tool_duration_seconds", "Time to answer a tools/call, by tool (tools the catalog has).",
               kind::histogram);
    m.describe("bulwark_service_cache_hits_total",
               "Cache lookups of a service's calls that found a copy (fresh, or stale for a fallback).", kind::counter);
    m.describe("bulwark_service_cache_misses_total", "Cache lookups of a service's calls that found none.",
               kind::counter);
    m.describe("bulwark_uptime_seconds", "Seconds since the runtime was created.", kind::gauge);
    m.describe("bulwark_redis_up", "1 while Redis (redis.url) answers; 0 while this instance uses its local state.",
               kind::gauge);
    m.describe("bulwark_redis_subscribed", "1 while this instance receives the fleet's messages through Redis.",
               kind::gauge);
    m.describe("bulwark_redis_commands_total", "Redis commands sent (round trips are pipelined).", kind::counter);
    m.describe("bulwark_redis_command_failures_total",
               "Redis commands that failed or were dropped while Redis was unreachable.", kind::counter);
    m.describe("bulwark_redis_outages_total", "Times Redis became unreachable.", kind::counter);
    m.describe("bulwark_redis_messages_total", "Messages to and from the other instances, by direction.",
               kind::counter);
    m.describe("bulwark_http_slow_readers_total",
               "HTTP connections ended because their client did not read its answers, by reason "
               "(write_timeout, queue_limit).",
               kind::counter);
    m.describe("bulwark_http_connection_refusals_total",
               "HTTP connections refused (503, -32004) by a connection limit, by limit (connections, "
               "connectionsPerAddress, connectionsPerIdentity).",
               kind::counter);
  }

  /// Gauges that are read rather than kept up to date.
  void refresh_gauges() const { refresh_read_metrics(*env); }

  session_supervisor_actor sessions() const {
    return caf::actor_cast<session_supervisor_actor>(env->names.get(names::session_supervisor));
  }

  /// Applies `edit` to a copy of the catalog and publishes it.
  template <class F>
  void edit(F&& f, const char* changed) {
    std::lock_guard<std::mutex> guard(mtx);
    auto next = std::make_shared<catalog>(*env->current());
    f(*next);
    env->replace(std::move(next));
    if (root && changed)
      if (auto s = sessions())
        caf::anon_send(s, atom::notify_v, std::string(changed), json::value(json::object{}));
  }
};

runtime::runtime(caf::actor_system& sys, runtime_options opts) : impl_(std::make_unique<impl>(sys, std::move(opts))) {}

runtime::~runtime() {
  stop();
}

namespace {

/// Compiles a tool's input schema; a schema that cannot be read leaves the
/// tool's arguments unchecked (and says so once, here).
void compile_schema(tool_spec& t) {
  static const json::value any_object = json::value::make_object({{"type", "object"}});
  t.validator = std::make_shared<const schema::validator>(t.input_schema.is_null() ? any_object : t.input_schema);
  if (!t.validator->usable())
    log::warn("tool input schema not usable; arguments are not checked",
              json::value::make_object({{"tool", t.name}, {"problem", t.validator->problem()}}));
}

} // namespace

void runtime::add_tool(tool_spec t) {
  compile_schema(t);
  impl_->edit(
    [&](catalog& c) {
      for (auto& existing : c.tools)
        if (existing.name == t.name)
          throw std::invalid_argument("a tool named '" + t.name + "' is already registered");
      c.tools.push_back(std::move(t));
    },
    "notifications/tools/list_changed");
}

bool runtime::remove_tool(const std::string& name) {
  bool removed = false;
  impl_->edit(
    [&](catalog& c) {
      auto i = std::remove_if(c.tools.begin(), c.tools.end(), [&](auto& t) { return t.name == name; });
      removed = i != c.tools.end();
      c.tools.erase(i, c.tools.end());
    },
    "notifications/tools/list_changed");
  return removed;
}

void runtime::add_resource(resource_spec r) {
  impl_->edit([&](catalog& c) { c.resources.push_back(std::move(r)); }, "notifications/resources/list_changed");
}

void runtime::add_resource_template(resource_template_spec t) {
  impl_->edit([&](catalog& c) { c.templates.push_back(std::move(t)); }, "notifications/resources/list_changed");
}

void runtime::add_prompt(prompt_spec p) {
  impl_->edit(
    [&](catalog& c) {
      for (auto& existing : c.prompts)
        if (existing.name == p.name)
          throw std::invalid_argument("a prompt named '" + p.name + "' is already registered");
      c.prompts.push_back(std::move(p));
    },
    "notifications/prompts/list_changed");
}

void runtime::set_group(const std::string& group, std::vector<tool_spec> tools, std::vector<resource_spec> resources,
                        std::vector<resource_template_spec> templates, std::vector<prompt_spec> prompts) {
  // Replaces the group's items of one kind; true when what clients see of
  // them changed (so that only those lists are announced as changed).
  auto replace = [&](auto& have, auto& with) {
    json::value before(json::array{}), after(json::array{});
    for (auto& x : have)
      if (x.group == group)
        before.push_back(catalog::describe(x));
    have.erase(std::remove_if(have.begin(), have.end(), [&](auto& x) { return x.group == group; }), have.end());
    for (auto& x : with) {
      x.group = group;
      after.push_back(catalog::describe(x));
      have.push_back(std::move(x));
    }
    return before != after;
  };
  for (auto& t : tools)
    compile_schema(t);
  bool tools_changed = false, resources_changed = false, prompts_changed = false;
  impl_->edit(
    [&](catalog& c) {
      tools_changed = replace(c.tools, tools);
      resources_changed = replace(c.resources, resources);
      resources_changed = replace(c.templates, templates) || resources_changed;
      prompts_changed = replace(c.prompts, prompts);
    },
    nullptr);
  auto s = impl_->sessions();
  if (!s)
    return;
  auto announce = [&](bool changed, const char* method) {
    if (changed)
      caf::anon_send(s, atom::notify_v, std::string(method), json::value(json::object{}));
  };
  announce(tools_changed, "notifications/tools/list_changed");
  announce(resources_changed, "notifications/resources/list_changed");
  announce(prompts_changed, "notifications/prompts/list_changed");
}

void runtime::add_supervised(std::string name, std::function<caf::actor(caf::actor_system&)> spawn,
                             std::string supervisor) {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  if (impl_->root)
    throw std::logic_error("add_supervised after start");
  impl_->extra_children.push_back({child_spec{std::move(name), std::move(spawn)}, std::move(supervisor)});
}

void runtime::add_supervisor(std::string name, restart_strategy strategy) {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  if (impl_->root)
    throw std::logic_error("add_supervisor after start");
  impl_->extra_supervisors.emplace_back(std::move(name), strategy);
}

std::shared_ptr<const metrics::traffic_history> runtime::traffic_history() const {
  return impl_->history;
}

std::shared_ptr<metrics::registry> runtime::metric_registry() const {
  return impl_->env->metrics;
}

std::shared_ptr<runtime_env> runtime::environment() const {
  return impl_->env;
}

caf::actor runtime::find(const std::string& name) const {
  return impl_->env->names.get(name);
}

catalog_ptr runtime::current_catalog() const {
  return impl_->env->current();
}

void runtime::notify_resource_updated(const std::string& uri) {
  if (auto s = impl_->sessions())
    caf::anon_send(s, atom::notify_v, std::string("notifications/resources/updated"),
                   json::value::make_object({{"uri", uri}}));
  // A client may watch it through another instance.
  share_resource_update(impl_->env, uri);
}

namespace {

supervision_policy policy_of(const runtime_options& opts, restart_strategy strategy) {
  supervision_policy p;
  p.strategy = strategy;
  p.max_restarts = opts.max_restarts;
  p.window = opts.restart_window;
  p.backoff_initial = opts.restart_backoff_initial;
  p.backoff_max = opts.restart_backoff_max;
  return p;
}

} // namespace

void runtime::start_group(std::string name, restart_strategy strategy,
                          std::vector<std::pair<std::string, std::function<caf::actor(caf::actor_system&)>>> children) {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  if (!impl_->root)
    throw std::logic_error("start_group before start");
  supervisor_spec spec{name, policy_of(impl_->env->opts, strategy), {}};
  for (auto& [child, spawn] : children)
    spec.children.push_back(child_spec{std::move(child), std::move(spawn)});
  caf::anon_send(impl_->root, atom::add_v, nested_supervisor(impl_->env, std::move(spec), names::root_supervisor));
}

void runtime::stop_group(const std::string& name) {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  if (impl_->root)
    caf::anon_send(impl_->root, atom::drop_v, name);
}

void runtime::reconfigure(runtime_options opts) {
  auto& env = *impl_->env;
  env.configure_state_keys(opts.state_key, opts.previous_state_key);
  env.install_settings(std::make_shared<const runtime_options>(std::move(opts)));
  // The actors that keep settings of their own take the new generation;
  // sessions read it through their settings view.
  auto tell = [&](const std::string& name) {
    if (auto a = env.names.get(name))
      caf::anon_send(a, atom::reload_v);
  };
  tell(limiter_actor_name);
  tell(queue_actor_name);
  tell(alert_actor_name);
  tell(telemetry_actor_name);
  tell(health_actor_name);
  if (auto cache = env.names.get(cache_actor_name)) {
    auto next = env.settings();
    caf::anon_send(cache, atom::reload_v, next->ops.cache_entries, next->ops.cache_bytes);
  }
}

std::shared_ptr<const runtime_options> runtime::settings() const {
  return impl_->env->settings();
}

uint64_t runtime::generation() const noexcept {
  return impl_->env->generation.load();
}

void runtime::start() {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  if (impl_->root)
    throw std::logic_error("bulwark runtime already started");
  auto env = impl_->env;
  auto policy = [&](restart_strategy strategy) { return policy_of(env->opts, strategy); };
  // Operational actors' HTTP (alert webhooks).
  if (!env->io) {
    auto ios = fused_io_contexts(impl_->sys);
    if (!ios.empty()) {
      env->io = ios.front();
    } else {
      impl_->own_io = std::make_unique<boost::asio::io_context>(1);
      impl_->io_guard.emplace(boost::asio::make_work_guard(*impl_->own_io));
      impl_->io_thread = std::thread([io = impl_->own_io.get()] { io->run(); });
      env->io = impl_->own_io.get();
    }
  }
  // Shared state: the first connection is made on the client's own thread;
  // until it succeeds, every instance decides with its local state.
  if (env->redis) {
    if (env->metrics)
      env->redis->observe_round_trips(env->metrics);
    env->redis->start();
  }
  // The tree: root (one-for-one) over the session supervisor, the
  // operations supervisor (limiter, queue, alerts and what joins them), the
  // supervisors added by the host or the gateway, actors added to the root,
  // and last the health supervisor, which watches all of them.
  supervisor_spec root{names::root_supervisor, policy(restart_strategy::one_for_one), {}};
  root.children.push_back(child_spec{
    names::session_supervisor,
    [env](caf::actor_system& sys) { return caf::actor_cast<caf::actor>(spawn_session_supervisor(sys, env)); },
    "session-supervisor"});
  supervisor_spec ops{names::operations_supervisor, policy(restart_strategy::one_for_one), {}};
  ops.children.push_back(child_spec{limiter_actor_name, [env](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(spawn_limiter(sys, env));
                                    }});
  ops.children.push_back(child_spec{
    queue_actor_name, [env](caf::actor_system& sys) { return caf::actor_cast<caf::actor>(spawn_queue(sys, env)); }});
  ops.children.push_back(child_spec{alert_actor_name, [env](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(spawn_alert_manager(sys, env));
                                    }});
  ops.children.push_back(child_spec{telemetry_actor_name, [env](caf::actor_system& sys) {
                                      return caf::actor_cast<caf::actor>(spawn_telemetry(sys, env));
                                    }});
  ops.children.push_back(
    child_spec{task_store_name, [env, book = std::make_shared<task_book>()](caf::actor_system& sys) {
                 return caf::actor_cast<caf::actor>(spawn_task_store(sys, env, book));
               }});
  std::vector<supervisor_spec> groups;
  for (auto& [name, strategy] : impl_->extra_supervisors)
    groups.push_back(supervisor_spec{name, policy(strategy), {}});
  std::vector<child_spec> direct;
  for (auto& e : impl_->extra_children) {
    if (e.supervisor.empty()) {
      direct.push_back(e.child);
    } else if (e.supervisor == names::operations_supervisor) {
      ops.children.push_back(e.child);
    } else {
      auto g = std::find_if(groups.begin(), groups.end(), [&](auto& s) { return s.name == e.supervisor; });
      if (g == groups.end())
        throw std::invalid_argument("no supervisor named '" + e.supervisor + "' for " + e.child.name);
      g->children.push_back(e.child);
    }
  }
  root.children.push_back(nested_supervisor(env, std::move(ops), names::root_supervisor));
  for (auto& g : groups)
    root.children.push_back(nested_supervisor(env, std::move(g), names::root_supervisor));
  for (auto& c : direct)
    root.children.push_back(std::move(c));
  root.children.push_back(child_spec{health_actor_name, [env, history = impl_->history](caf::actor_system& sys) {
                                       return caf::actor_cast<caf::actor>(spawn_health(
                                         sys, env, env->settings()->ops.health, env->service_names(), history));
                                     }});
  impl_->root = spawn_root_supervisor(impl_->sys, env, std::move(root));
  // Actors initialize on the scheduler; return once the tree can take
  // requests, so that the first client message finds its actor.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(env->names.contains(names::session_supervisor) && env->names.contains(names::stateless_session))) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("bulwark runtime did not start within 10 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void runtime::stop() {
  supervisor_actor root;
  {
    std::lock_guard<std::mutex> guard(impl_->mtx);
    root = std::move(impl_->root);
    impl_->root = nullptr;
  }
  if (!root)
    return;
  caf::scoped_actor self{impl_->sys};
  self->monitor(root);
  self->send(root, atom::end_v);
  bool down = false;
  self->receive_while([&] { return !down; })([&](caf::down_msg&) { down = true; },
                                             caf::after(std::chrono::seconds(5)) >>
                                               [&] {
                                                 self->send_exit(root, caf::exit_reason::kill);
                                                 down = true;
                                               });
  // The supervisors stop their children; wait until the sessions are gone
  // so that no actor outlives the runtime's environment by much.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    bool any = false;
    for (auto& [name, handle] : impl_->env->names.snapshot()) {
      (void)name;
      if (handle && !handle->getf(caf::abstract_actor::is_terminated_flag))
        any = true;
    }
    if (!any)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->env->names.clear();
}

bool runtime::running() const noexcept {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  return static_cast<bool>(impl_->root);
}

void runtime::dispatch(inbound_ptr in) {
  auto& env = *impl_->env;
  if (in->stateless) {
    if (auto h = env.names.get(names::stateless_session))
      caf::anon_send(caf::actor_cast<session_actor>(h), std::move(in));
    return; // Unsent: dropping `in` answers it with an error.
  }
  if (in->session_id.empty()) {
    if (auto s = impl_->sessions())
      caf::anon_send(s, atom::open_v, std::move(in));
    return;
  }
  if (auto h = env.names.get(names::session_prefix + in->session_id))
    caf::anon_send(caf::actor_cast<session_actor>(h), std::move(in));
}

bool runtime::has_session(const std::string& id) const {
  return impl_->env->names.contains(names::session_prefix + id);
}

bool runtime::open_stream(const std::string& session_id, sink_ptr sink, std::string last_event_id) {
  auto h = impl_->env->names.get(names::session_prefix + session_id);
  if (!h)
    return false;
  caf::anon_send(caf::actor_cast<session_actor>(h), atom::listen_v, std::move(sink), std::move(last_event_id));
  return true;
}

bool runtime::session_elsewhere(const std::string& id) const {
  const auto& env = *impl_->env;
  // An id the directory did not have a moment ago is not asked for again
  // (a flood of made-up ids stays here).
  return env.redis && env.redis->available() && !id.empty() && !has_session(id)
         && !(env.unknown_sessions && env.unknown_sessions->contains(id, std::chrono::steady_clock::now()));
}

namespace {

/// How long a request held for a session taken over from the shared
/// directory waits for the session supervisor.
constexpr auto take_over_timeout = std::chrono::seconds(5);

} // namespace

void runtime::take_over_session(const std::string& id, std::function<void()> done) {
  // `done` runs exactly once, also when a message on the way is dropped (a
  // supervisor that stopped): the request then finds no session.
  struct once {
    std::function<void()> f;
    void operator()() {
      if (auto g = std::exchange(f, nullptr))
        g();
    }
    ~once() { (*this)(); }
  };
  auto finish = std::make_shared<once>();
  finish->f = std::move(done);
  auto env = impl_->env;
  auto* sys = &impl_->sys;
  lookup_session(env, id, [env, sys, finish](session_record_ptr rec) {
    auto sessions = env->names.get(names::session_supervisor);
    if (!rec || !sessions)
      return (*finish)();
    // Whether it started or not, the held request goes on: it finds the
    // session, or gets 404 as for any unknown one. (The id is copied before
    // the call: the record is moved into it.)
    auto session = rec->id;
    ask(
      *sys, caf::actor_cast<session_supervisor_actor>(sessions), take_over_timeout, [finish](bool) { (*finish)(); },
      [finish, session](const caf::error& e) {
        log::warn("session take-over got no answer",
                  json::value::make_object({{"session", session}, {"error", to_string(e)}}));
        (*finish)();
      },
      atom::open_v, std::move(rec));
  });
}

bool runtime::end_session(const std::string& id) {
  auto h = impl_->env->names.get(names::session_prefix + id);
  if (!h)
    return false;
  // Forget the name at once so that requests after the DELETE get 404, here
  // and on every other instance.
  impl_->env->names.erase(names::session_prefix + id, h.address());
  // The caller's slot is free for its next initialize at once.
  impl_->env->release_session_slot(id);
  if (impl_->env->unknown_sessions)
    impl_->env->unknown_sessions->forget(id);
  retract_session(impl_->env, id);
  caf::anon_send(caf::actor_cast<session_actor>(h), atom::end_v);
  return true;
}

namespace {

bool owned_by(const runtime_env& env, const std::string& id, const std::string& identity) {
  auto rec = env.find_session(id);
  return rec && !rec->stateless && crypto::constant_time_equal(rec->identity, identity);
}

} // namespace

bool runtime::has_session(const std::string& id, const std::string& identity) const {
  return has_session(id) && owned_by(*impl_->env, id, identity);
}

bool runtime::open_stream(const std::string& session_id, const std::string& identity, sink_ptr sink,
                          std::string last_event_id) {
  if (!owned_by(*impl_->env, session_id, identity))
    return false;
  return open_stream(session_id, std::move(sink), std::move(last_event_id));
}

bool runtime::end_session(const std::string& id, const std::string& identity) {
  return owned_by(*impl_->env, id, identity) && end_session(id);
}

bool runtime::stream_allowed(const std::string& id) const {
  auto rec = impl_->env->find_session(id);
  return !rec || rec->response_streams.load() + 1 <= impl_->env->opts.max_streams;
}

int64_t runtime::drain() {
  impl_->env->draining = true;
  return impl_->env->inflight.load();
}

runtime_status runtime::status() const {
  runtime_status s;
  s.sessions = impl_->env->sessions.load();
  s.restarts = impl_->env->restarts.load();
  s.escalations = impl_->env->escalations.load();
  s.running = running();
  return s;
}

json::value runtime::health() const {
  return impl_->env->health_report();
}

std::string runtime::metrics_text() const {
  impl_->refresh_gauges();
  return impl_->env->metrics->prometheus();
}

json::value runtime::metrics_json() const {
  impl_->refresh_gauges();
  return impl_->env->metrics->to_json();
}

std::vector<std::string> runtime::actor_names() const {
  std::vector<std::string> out;
  for (auto& [name, handle] : impl_->env->names.snapshot())
    if (handle)
      out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

bool runtime::kill_actor(const std::string& name) {
  auto h = impl_->env->names.get(name);
  // Not one that stopped already and waits for its supervisor to see it.
  if (!h || h->getf(caf::abstract_actor::is_terminated_flag))
    return false;
  caf::anon_send_exit(h, caf::exit_reason::kill);
  return true;
}

const runtime_options& runtime::options() const noexcept {
  return impl_->env->opts;
}

caf::actor_system& runtime::system() noexcept {
  return impl_->sys;
}

} // namespace bulwark
