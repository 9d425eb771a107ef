#include "actors/health.hpp"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include <sys/resource.h>
#include <unistd.h>

#include <caf/all.hpp>

#include "actors/alerts.hpp"
#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/gateway_router.hpp"
#include "actors/limiter_actor.hpp"
#include "actors/queue_actor.hpp"
#include "actors/runtime.hpp"
#include "actors/shared_state.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"
#include "config/traffic_history.hpp"
#include "messages/crypto.hpp"
#include "transport/auth.hpp"
#include "transport/http_server.hpp"
#include "transport/redis_client.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

const char* to_string(health_level l) noexcept {
  switch (l) {
    case health_level::healthy:
      return "healthy";
    case health_level::degraded:
      return "degraded";
    case health_level::unhealthy:
      return "unhealthy";
  }
  return "unhealthy";
}

health_verdict assess(const health_inputs& in, const health_thresholds& t) {
  health_verdict v;
  auto at_least = [&](health_level l) { v.level = std::max(v.level, l); };
  if (!in.core_up) {
    at_least(health_level::unhealthy);
    v.reasons.push_back("the session actors are not running");
  }
  for (auto& [svc, state] : in.breakers)
    if (state != "closed") {
      at_least(health_level::degraded);
      v.reasons.push_back("breaker of " + svc + " is " + state);
    }
  for (auto& [svc, phase] : in.connectors)
    if (phase != "ready") {
      at_least(health_level::degraded);
      auto problem = in.service_problems.find(svc);
      v.reasons.push_back("service " + svc + " is " + phase
                          + (problem == in.service_problems.end() ? std::string() : ": " + problem->second));
    }
  for (auto& name : in.unresponsive) {
    at_least(health_level::degraded);
    v.reasons.push_back(name + " did not answer the health check");
  }
  if (!in.shared_state_problem.empty()) {
    at_least(health_level::degraded);
    v.reasons.push_back("redis unreachable (" + in.shared_state_problem
                        + "): rate limits, cache, sessions and breakers are this instance's alone");
  }
  if (in.queue_fill > t.queue_fill) {
    at_least(health_level::degraded);
    v.reasons.push_back("queue is " + std::to_string(static_cast<int>(in.queue_fill * 100)) + "% full");
  }
  if (in.recent_escalations > 0) {
    at_least(health_level::degraded);
    if (in.escalations.empty())
      v.reasons.push_back("an actor exceeded its restart intensity");
    for (auto& e : in.escalations)
      v.reasons.push_back(e);
  } else if (t.restart_storm > 0 && in.recent_restarts >= t.restart_storm) {
    at_least(health_level::degraded);
    v.reasons.push_back("restart storm: " + std::to_string(in.recent_restarts) + " actor restarts");
  }
  return v;
}

bool degraded_switch::update(clock::time_point now, bool trouble) {
  bool before = on();
  if (trouble) {
    clean_since_.reset();
    if (++troubled_ >= enter_checks_)
      on_ = true;
  } else {
    troubled_ = 0;
    if (!clean_since_)
      clean_since_ = now;
    if (on_ && now - *clean_since_ >= exit_after_)
      on_ = false;
  }
  bool changed = before != on();
  switches_ += changed ? 1 : 0;
  return changed;
}

bool degraded_switch::force(std::optional<bool> on) {
  bool before = this->on();
  forced_ = on;
  bool changed = before != this->on();
  switches_ += changed ? 1 : 0;
  return changed;
}

namespace {

struct health_state {
  static inline const char* name = "health";

  env_ptr env;
  health_settings settings;
  std::vector<std::string> services;
  degraded_switch sw{1, milliseconds(10000)};

  uint64_t round = 0;
  std::set<std::string> asked; ///< Components asked in this round.
  std::map<std::string, value> answers; ///< Their answers in this round.
  std::set<std::string> known; ///< Components seen running at some point.
  /// Rounds in a row each component left unanswered: one slow round (a
  /// worker busy starting services, say) is not yet unresponsiveness.
  std::map<std::string, uint32_t> misses;
  std::set<std::string> reached; ///< Services whose first start ended: ready at some check, or failed.
  std::deque<std::tuple<caf::actor_clock::time_point, uint64_t, uint64_t>>
    supervision; ///< (when, restarts, escalations)
  health_level level = health_level::healthy;
  uint64_t checks = 0;
  caf::actor_clock::time_point started;

  // Metric deltas: monotonic totals from actors that may restart.
  uint64_t restarts_seen = 0;
  std::map<std::string, uint64_t> cache_seen;
  /// (service, breaker count) -> the total last added to its counter.
  std::map<std::pair<std::string, std::string>, uint64_t> breaker_seen;

  // What the alert rules see.
  sliding_window window;
  uint64_t requests_seen = 0, errors_seen = 0, lookups_seen = 0, hits_seen = 0;
  std::deque<std::pair<caf::actor_clock::time_point, metrics::histogram_snapshot>> latency; ///< Over the window.

  /// The admin page's charts (owned by the runtime: it outlives this actor).
  std::shared_ptr<metrics::traffic_history> history;
};

using health_pointer = health_actor::stateful_pointer<health_state>;

std::vector<std::string> component_names(const health_state& st) {
  std::vector<std::string> out;
  for (auto& s : st.services) {
    out.push_back(breaker_name(s));
    out.push_back(connector_name(s));
  }
  for (auto* n : {"queue", "limiter", "alerts", "telemetry", "tasks"})
    out.emplace_back(n);
  out.push_back(gateway_router_name); // a gateway's: pinning's held changes
  out.push_back(cache_actor_name);
  return out;
}

/// Moves a monotonic total of an actor that may restart into a counter.
void add_delta(metrics::counter& c, uint64_t now_total, uint64_t& seen) {
  c.inc(now_total >= seen ? now_total - seen : now_total);
  seen = now_total;
}

void apply_mode(health_pointer self, bool on, const std::vector<std::string>& reasons) {
  auto& st = self->state;
  st.env->degraded = on;
  value why(json::array{});
  for (auto& r : reasons)
    why.push_back(r);
  if (on)
    log::warn("degraded mode on", value::make_object({{"reasons", why}, {"forced", st.sw.forced().has_value()}}));
  else
    log::info("degraded mode off", value::make_object({{"forced", st.sw.forced().has_value()}}));
  if (auto& m = st.env->metrics)
    m->counter("bulwark_degraded_switches_total", {{"to", on ? "on" : "off"}}).inc();
  publish_degraded(st.env, on, reasons);
  if (auto h = st.env->names.get(limiter_actor_name))
    self->send(caf::actor_cast<limiter_actor>(h), atom::degrade_v, on);
  if (auto h = st.env->names.get(queue_actor_name))
    self->send(caf::actor_cast<queue_actor>(h), atom::degrade_v, on);
  if (auto s = st.env->names.get(names::session_supervisor)) {
    auto params = value::make_object({{"level", on ? "warning" : "info"},
                                      {"logger", "bulwark"},
                                      {"data", value::make_object({{"degraded", on},
                                                                   {"reasons", why},
                                                                   {"message", on ? "Bulwark switched to degraded mode"
                                                                                  : "Bulwark left degraded mode"}})}});
    self->send(caf::actor_cast<session_supervisor_actor>(s), atom::notify_v, std::string("notifications/message"),
               std::move(params));
  }
}

/// One point of the charts: requests and failures as the alert window
/// counts them, with `latency`, the snapshot of every answer's latency this
/// round took; per service, the calls its breaker counted, those that
/// failed (refusals of the open breaker among them), and the time the
/// service took (`bulwark_upstream_duration_seconds`).
void record_history(health_state& st, caf::actor_clock::time_point now, system_clock::time_point wall,
                    const metrics::histogram_snapshot& latency, const value& breakers) {
  metrics::traffic_reading overall;
  overall.requests = st.env->requests_total.load();
  overall.errors = st.env->failures_total.load();
  overall.latency = latency;
  std::map<std::string, metrics::traffic_reading> services;
  for (auto& [svc, b] : breakers.is_object() ? breakers.as_object() : json::object{}) {
    auto& r = services[svc];
    r.requests = static_cast<uint64_t>(b["calls"].as_int());
    r.errors = static_cast<uint64_t>(b["failures"].as_int()); // the refused ones too
    if (st.env->metrics)
      r.latency = st.env->metrics->histogram("bulwark_upstream_duration_seconds", {{"service", svc}}).snapshot();
  }
  st.history->record(now, wall, overall, services);
}

/// Judges the answers of the round that just ended and publishes the result.
void evaluate(health_pointer self) {
  auto& st = self->state;
  auto now = self->clock().now();
  ++st.checks;
  health_inputs in;
  in.core_up = st.env->names.contains(names::session_supervisor) && st.env->names.contains(names::stateless_session);
  for (auto& name : st.asked) {
    if (st.answers.count(name)) {
      st.misses.erase(name);
    } else if (++st.misses[name] >= 2) {
      in.unresponsive.push_back(name);
    }
  }
  // Components that ran once and are not registered now (restarting, or
  // given up after too many restarts).
  for (auto& name : st.known)
    if (!st.asked.count(name))
      in.unresponsive.push_back(name);
  value breakers(json::object{}), connectors(json::object{});
  for (auto& s : st.services) {
    if (auto a = st.answers.find(breaker_name(s)); a != st.answers.end()) {
      in.breakers[s] = a->second["state"].as_string();
      breakers.set(s, a->second);
    }
    if (auto a = st.answers.find(connector_name(s)); a != st.answers.end()) {
      const auto& phase = a->second["phase"].as_string();
      const auto& problem = a->second["problem"];
      bool failed = problem.is_string() && !problem.as_string().empty();
      // A service's first start ends once it is ready or has failed; until
      // then it keeps /ready at 503 but does not make the server degraded.
      // One that cannot start does not keep a working gateway out of
      // rotation: it makes it degraded, with the reason.
      if (phase == "ready" || failed)
        st.reached.insert(s);
      if (phase == "ready" || st.reached.count(s))
        in.connectors[s] = phase;
      if (failed && phase != "ready")
        in.service_problems[s] = problem.as_string();
      connectors.set(s, a->second);
    }
  }
  auto answer = [&](const std::string& name) {
    auto a = st.answers.find(name);
    return a == st.answers.end() ? value() : a->second;
  };
  auto queue = answer("queue");
  auto cache = answer(cache_actor_name);
  auto limiter = answer("limiter");
  in.queue_fill = queue["fill"].as_double();
  uint64_t restarts = st.env->restarts.load(), escalations = st.env->escalations.load();
  st.supervision.emplace_back(now, restarts, escalations);
  while (st.supervision.size() > 1 && now - std::get<0>(st.supervision.front()) > st.settings.storm_window)
    st.supervision.pop_front();
  in.recent_restarts = restarts - std::get<1>(st.supervision.front());
  in.recent_escalations = escalations - std::get<2>(st.supervision.front());
  if (in.recent_escalations > 0) {
    // The latest few, with the supervisor's own words.
    auto recent = st.env->escalations_since(std::chrono::steady_clock::now() - st.settings.storm_window);
    for (auto i = recent.size() > 3 ? recent.size() - 3 : 0; i < recent.size(); ++i)
      in.escalations.push_back(recent[i].reason);
  }

  value shared_state;
  if (auto& redis = st.env->redis) {
    shared_state = redis->status();
    value peers(json::object{});
    for (auto& [instance, state] : st.env->peers_degraded())
      peers.set(instance, state["reasons"]);
    shared_state.set("degradedPeers", std::move(peers));
    if (!redis->available())
      in.shared_state_problem = redis->problem().empty() ? "not connected" : redis->problem();
  }

  auto verdict = assess(in, st.settings.thresholds);
  if (verdict.level != st.level)
    log::info("health changed", value::make_object({{"from", to_string(st.level)}, {"to", to_string(verdict.level)}}));
  st.level = verdict.level;
  if (st.sw.update(now, verdict.level != health_level::healthy))
    apply_mode(self, st.sw.on(), verdict.reasons);

  bool ready = in.core_up && verdict.level != health_level::unhealthy;
  std::vector<std::string> unreached;
  for (auto& s : st.services)
    if (!st.reached.count(s))
      unreached.push_back(s);
  ready = ready && (unreached.empty() || !st.settings.ready_waits_for_services);
  // A fleet member that has not reached Redis yet would not find the
  // sessions the fleet shares: it waits for the first connection's outcome
  // (an unreachable Redis makes it ready, degraded).
  ready = ready && (!st.env->redis || st.env->redis->settled());

  value reasons(json::array{}), waiting(json::array{});
  for (auto& r : verdict.reasons)
    reasons.push_back(r);
  for (auto& s : unreached)
    waiting.push_back(s);
  auto report = value::make_object({
    {"status", to_string(verdict.level)},
    {"degraded", st.sw.on()},
    {"degradedForced", st.sw.forced() ? value(*st.sw.forced()) : value()},
    {"degradedSwitches", static_cast<unsigned long long>(st.sw.switches())},
    {"reasons", std::move(reasons)},
    {"ready", ready},
    {"unreachedServices", std::move(waiting)},
    {"version", st.env->opts.server_version},
    {"uptimeSeconds", duration_cast<duration<double>>(now - st.started).count()},
    {"checks", static_cast<unsigned long long>(st.checks)},
    {"components",
     value::make_object({
       {"core", value::make_object({{"up", in.core_up}})},
       {"breakers", std::move(breakers)},
       {"connectors", std::move(connectors)},
       {"queue", queue},
       {"cache", cache},
       {"limiter", limiter},
       {"alerts", answer("alerts")},
       {"telemetry", answer("telemetry")},
       {"tools", answer(gateway_router_name)},
       {"tasks", answer("tasks")},
       {"redis", shared_state},
       {"supervision", value::make_object({{"restarts", static_cast<unsigned long long>(restarts)},
                                           {"escalations", static_cast<unsigned long long>(escalations)},
                                           {"recentRestarts", static_cast<unsigned long long>(in.recent_restarts)}})},
     })},
  });
  st.env->publish_health(static_cast<uint8_t>(verdict.level), ready, report);

  if (auto& m = st.env->metrics) {
    for (auto& [svc, state] : in.breakers)
      m->gauge("bulwark_breaker_state", {{"service", svc}}).set(state == "open" ? 1 : state == "half_open" ? 2 : 0);
    // Each service's calls as its breaker counts them (a restarted breaker
    // counts from zero again: add_delta keeps the counters rising).
    static const std::pair<const char*, const char*> counts[] = {
      {"calls", "bulwark_service_calls_total"},
      {"failures", "bulwark_service_failures_total"},
      {"timeouts", "bulwark_service_timeouts_total"},
      {"retries", "bulwark_service_retries_total"},
      {"fastFailures", "bulwark_service_fast_failures_total"},
      {"transitions", "bulwark_breaker_transitions_total"},
    };
    const auto& reported = std::as_const(report)["components"]["breakers"];
    for (auto& [svc, b] : reported.is_object() ? reported.as_object() : json::object{})
      for (auto& [field, family] : counts)
        if (b[field].is_integer())
          add_delta(m->counter(family, {{"service", svc}}), static_cast<uint64_t>(b[field].as_int()),
                    st.breaker_seen[{svc, field}]);
    m->gauge("bulwark_degraded_mode", {}).set(st.sw.on() ? 1 : 0);
    m->gauge("bulwark_health_status", {}).set(static_cast<double>(verdict.level));
    add_delta(m->counter("bulwark_actor_restarts_total", {}), restarts, st.restarts_seen);
    if (cache.is_object()) {
      for (auto* k : {"hits", "misses", "staleHits", "evictions"})
        add_delta(m->counter("bulwark_cache_events_total", {{"event", k}}), static_cast<uint64_t>(cache[k].as_int()),
                  st.cache_seen[k]);
      m->gauge("bulwark_cache_entries", {}).set(cache["entries"].as_double());
      m->gauge("bulwark_cache_bytes", {}).set(cache["bytes"].as_double());
    }
  }
  // The alert manager's view: windowed counts, budgets, latency, breakers, queue.
  health_sample sample;
  sample.now = now;
  sample.wall = system_clock::now();
  auto requests = st.env->requests_total.load(), errors = st.env->failures_total.load();
  st.window.add_requests(now, requests - st.requests_seen, errors - st.errors_seen);
  st.requests_seen = requests;
  st.errors_seen = errors;
  if (cache.is_object()) {
    auto hits = static_cast<uint64_t>(cache["hits"].as_int() + cache["staleHits"].as_int());
    auto lookups = hits + static_cast<uint64_t>(cache["misses"].as_int());
    // A restarted cache counts from zero again.
    if (lookups < st.lookups_seen || hits < st.hits_seen)
      st.lookups_seen = st.hits_seen = 0;
    st.window.add_lookups(now, lookups - st.lookups_seen, hits - st.hits_seen);
    st.lookups_seen = lookups;
    st.hits_seen = hits;
  }
  sample.window = st.window.sum(now);
  sample.window_span = duration_cast<milliseconds>(st.window.span());
  for (auto& [svc, usage] : limiter["usage"].as_object())
    sample.upstream_usage[svc] = usage.as_double();
  if (st.env->latency) {
    st.latency.emplace_back(now, st.env->latency->snapshot());
    while (st.latency.size() > 2 && now - st.latency.front().first > st.window.span())
      st.latency.pop_front();
    // Latency over the window: the difference of the cumulative buckets.
    auto delta = st.latency.back().second;
    const auto& old = st.latency.front().second;
    if (st.latency.size() > 1) {
      for (std::size_t i = 0; i < delta.cumulative.size() && i < old.cumulative.size(); ++i)
        delta.cumulative[i] -= old.cumulative[i];
      delta.count -= old.count;
      delta.sum -= old.sum;
    }
    sample.p95_latency_seconds = delta.count > 0 ? delta.quantile(0.95) : 0;
  }
  for (auto& [svc, state] : in.breakers)
    if (state == "open")
      sample.open_breakers.push_back(svc);
  if (st.history && st.history->due(now))
    record_history(st, now, sample.wall, st.env->latency ? st.latency.back().second : metrics::histogram_snapshot{},
                   std::as_const(report)["components"]["breakers"]);
  sample.queue_fill = in.queue_fill;
  for (auto& h : std::as_const(report)["components"]["tools"]["held"].as_array())
    sample.held_tools.push_back(h["service"].as_string() + ":" + h["tool"].as_string());
  if (auto alerts = st.env->names.get("alerts"))
    self->send(caf::actor_cast<alert_actor>(alerts), atom::sample_v, std::move(sample));
}

/// Asks every running component for its status.
void ask(health_pointer self) {
  auto& st = self->state;
  st.asked.clear();
  st.answers.clear();
  st.env->note_mailbox(health_actor_name, self->mailbox().size());
  auto this_round = ++st.round;
  auto timeout = std::max(milliseconds(10), st.settings.interval * 9 / 10);
  for (auto& name : component_names(st)) {
    auto h = st.env->names.get(name);
    if (!h)
      continue;
    st.known.insert(name);
    st.asked.insert(name);
    self->request(h, timeout, atom::get_v)
      .then(
        [self, name, this_round](value& v) {
          if (v["mailbox"].is_number())
            self->state.env->note_mailbox(name, static_cast<std::size_t>(v["mailbox"].as_int()));
          if (self->state.round == this_round)
            self->state.answers[name] = std::move(v);
        },
        [](caf::error&) { /* counted as unresponsive at the next check */ });
  }
}

} // namespace

health_actor spawn_health(caf::actor_system& sys, env_ptr env, health_settings settings,
                          std::vector<std::string> services, std::shared_ptr<metrics::traffic_history> history) {
  return sys.spawn([env, settings, services, history](health_pointer self) -> health_actor::behavior_type {
    auto& st = self->state;
    st.env = env;
    st.settings = settings;
    st.history = history;
    if (history)
      history->set_step(settings.history_step);
    st.services = services;
    st.sw = degraded_switch(settings.enter_checks, settings.exit_after);
    st.started = self->clock().now();
    // The latency window's first edge: a request served before the first
    // check counts in every window that spans it, not in the first alone.
    if (env->latency)
      st.latency.emplace_back(st.started, env->latency->snapshot());
    // A restarted health supervisor keeps the mode the server is in.
    if (env->degraded.load())
      for (uint32_t i = 0; i < std::max<uint32_t>(1, settings.enter_checks); ++i)
        st.sw.update(st.started, true);
    ask(self);
    self->delayed_send(self, settings.interval, atom::timer_v);
    return {
      [self](atom::timer) {
        evaluate(self);
        ask(self);
        self->delayed_send(self, self->state.settings.interval, atom::timer_v);
      },
      // Operators: 1 forces degraded mode on, 0 off, -1 returns to automatic.
      [self](atom::degrade, int32_t mode) {
        auto& st = self->state;
        std::optional<bool> force;
        if (mode >= 0)
          force = mode > 0;
        if (st.sw.force(force))
          apply_mode(self, st.sw.on(), {mode > 0 ? "forced by an operator" : "automatic"});
        log::info("degraded mode override", value::make_object({{"mode", mode < 0   ? "automatic"
                                                                         : mode > 0 ? "on"
                                                                                    : "off"}}));
      },
      [self](atom::get) { return self->state.env->health_report(); },
      // A new configuration generation: its thresholds and services. The
      // mode stays; components of services that went away drop out.
      [self](atom::reload) {
        auto& st = self->state;
        st.settings = st.env->settings()->ops.health;
        st.services = st.env->service_names();
        if (st.history)
          st.history->set_step(st.settings.history_step);
        st.sw.retune(st.settings.enter_checks, st.settings.exit_after);
      },
    };
  });
}

namespace {

/// When this process started, in seconds since the epoch: the boot time of
/// /proc/stat plus the process's start in clock ticks since boot (field 22
/// of /proc/self/stat); 0 when /proc does not say.
double process_start_time() {
  std::ifstream stat("/proc/self/stat");
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')'); // the command name may hold spaces and parentheses
  if (close == std::string::npos)
    return 0;
  std::istringstream fields(line.substr(close + 1)); // field 3 (the state) on
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(fields >> field))
      return 0;
  std::ifstream system_stat("/proc/stat");
  std::string key;
  double boot = 0;
  while (system_stat >> key)
    if (key == "btime") {
      system_stat >> boot;
      break;
    }
  auto ticks = sysconf(_SC_CLK_TCK);
  if (boot == 0 || ticks <= 0)
    return 0;
  return boot + std::stod(field) / static_cast<double>(ticks);
}

/// The standard process metrics, as Prometheus client libraries name them.
void refresh_process_metrics(metrics::registry& m) {
  static const double started = process_start_time();
  if (started > 0)
    m.gauge("process_start_time_seconds", {}).set(started);
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    auto seconds = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    m.counter_total("process_cpu_seconds_total", {}).set(seconds(ru.ru_utime) + seconds(ru.ru_stime));
  }
  std::ifstream statm("/proc/self/statm");
  double size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    auto page = static_cast<double>(sysconf(_SC_PAGESIZE));
    m.gauge("process_virtual_memory_bytes", {}).set(size_pages * page);
    m.gauge("process_resident_memory_bytes", {}).set(resident_pages * page);
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (auto i = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && i != std::filesystem::directory_iterator(); i.increment(ec))
    ++fds;
  if (!ec)
    m.gauge("process_open_fds", {}).set(static_cast<double>(fds));
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY)
    m.gauge("process_max_fds", {}).set(static_cast<double>(files.rlim_cur));
}

} // namespace

void refresh_read_metrics(const runtime_env& env) {
  auto& m = *env.metrics;
  refresh_process_metrics(m);
  m.gauge("bulwark_sessions", {}).set(static_cast<double>(env.sessions.load()));
  m.gauge("bulwark_uptime_seconds", {}).set(duration_cast<duration<double>>(steady_clock::now() - env.started).count());
  if (!env.redis)
    return;
  auto r = env.redis->status();
  auto count = [&r](const char* field) { return static_cast<uint64_t>(r[field].as_int()); };
  m.gauge("bulwark_redis_up", {}).set(r["available"].as_bool() ? 1 : 0);
  m.gauge("bulwark_redis_subscribed", {}).set(r["subscribed"].as_bool() ? 1 : 0);
  m.counter("bulwark_redis_commands_total", {}).raise_to(count("sent"));
  m.counter("bulwark_redis_command_failures_total", {}).raise_to(count("failed"));
  m.counter("bulwark_redis_outages_total", {}).raise_to(count("outages"));
  m.counter("bulwark_redis_messages_total", {{"direction", "published"}}).raise_to(count("published"));
  m.counter("bulwark_redis_messages_total", {{"direction", "received"}}).raise_to(count("received"));
}

void add_operator_routes(http_server& server, runtime& rt, bool admin_listener) {
  auto env = rt.environment();
  const auto& ops = rt.options().ops;
  // Who may read the details (the reasons, the components, the thresholds):
  // an operator on the admin listener, on this machine, or with the token.
  auto details_for = [admin_listener, admin = ops.admin_token_sha256](const http_request_view& req) {
    return admin_listener || is_loopback_peer(req.remote) || bearer_matches(admin, req.authorization);
  };
  auto health = [env, details_for](bool liveness, const http_request_view& req) {
    auto [level, ready, report] = env->health();
    (void)ready;
    http_reply r;
    if (liveness) {
      // Alive while the process serves HTTP and the core actors run.
      bool up = env->names.contains(names::session_supervisor);
      r.status = up ? 200 : 503;
      r.body = json::dump(value::make_object({{"status", up ? "alive" : "down"}}));
      return r;
    }
    r.status = level == static_cast<uint8_t>(health_level::unhealthy) ? 503 : 200;
    if (report.is_null())
      r.body = json::dump(value::make_object({{"status", "starting"}}));
    else if (details_for(req))
      r.body = json::dump(report);
    else
      r.body = json::dump(value::make_object({{"status", report["status"]}}));
    return r;
  };
  auto readiness = [env, details_for](const http_request_view& req) {
    auto [level, ready, report] = env->health();
    (void)level;
    ready = ready && !env->draining.load();
    http_reply r;
    r.status = ready ? 200 : 503;
    auto body =
      value::make_object({{"ready", ready}, {"status", report.is_null() ? value("starting") : report["status"]}});
    if (details_for(req)) {
      body.set("unreachedServices", report["unreachedServices"]);
      body.set("reasons", report["reasons"]);
    }
    r.body = json::dump(body);
    return r;
  };
  server.add_route("/health", [health](const http_request_view& req) { return health(false, req); });
  server.add_route("/health/live", [health](const http_request_view& req) { return health(true, req); });
  server.add_route("/health/ready", readiness);
  server.add_route("/ready", readiness);
  if (ops.metrics_on_admin_only && !admin_listener)
    return;
  auto refresh = [env] { refresh_read_metrics(*env); };
  // With a metrics token, a scrape must carry it (Prometheus:
  // `authorization: {credentials_file: ...}`).
  auto refused = [token = ops.metrics_token_sha256](const http_request_view& req) -> std::optional<http_reply> {
    if (token.empty() || bearer_matches(token, req.authorization))
      return std::nullopt;
    http_reply r;
    r.status = 401;
    r.body = json::dump(value::make_object({{"error", "the metrics need Authorization: Bearer <metrics token>"}}));
    r.headers = "\r\nWWW-Authenticate: Bearer realm=\"bulwark-metrics\"";
    return r;
  };
  server.add_route("/metrics", [env, refresh, refused](const http_request_view& req) {
    if (auto no = refused(req))
      return *no;
    refresh();
    http_reply r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = env->metrics->prometheus();
    return r;
  });
  server.add_route("/metrics.json", [env, refresh, refused](const http_request_view& req) {
    if (auto no = refused(req))
      return *no;
    refresh();
    http_reply r;
    r.body = json::dump(env->metrics->to_json());
    return r;
  });
}

} // namespace bulwark
