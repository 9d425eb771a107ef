// The `bulwark` server: configuration, an actor system, the runtime with its
// tools, and the transports. Everything else lives in bulwark_core.
#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <caf/all.hpp>

#include "actors/env.hpp"
#include "config/metrics.hpp"

#include "actors/admin.hpp"
#include "actors/gateway.hpp"
#include "actors/health.hpp"
#include "actors/runtime.hpp"
#include "config/access_log.hpp"
#include "config/api_keys.hpp"
#include "config/audit.hpp"
#include "config/config.hpp"
#include "config/log.hpp"
#include "config/reload.hpp"
#include "messages/mcp.hpp"
#include "tools/builtin_tools.hpp"
#include "tools/keys_command.hpp"
#include "transport/auth.hpp"
#include "transport/http_server.hpp"
#include "transport/io_scheduler.hpp"
#include "transport/stdio.hpp"

namespace {

std::mutex stop_mtx;
std::condition_variable stop_cv;
bool stop_requested = false;

void request_stop() {
  std::lock_guard<std::mutex> guard(stop_mtx);
  stop_requested = true;
  stop_cv.notify_all();
}

/// `bulwark --check-config FILE`: validates a file as the server would read
/// it at start (with the environment and the other flags), without starting.
int check_config(int argc, char** argv) {
  using namespace bulwark;
  std::vector<char*> args{argv[0]};
  std::string file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--check-config") {
      if (i + 1 >= argc) {
        std::cerr << "config: --check-config needs a file name\n";
        return 2;
      }
      file = argv[++i];
    } else {
      args.push_back(argv[i]);
    }
  }
  std::string config_flag = "--config";
  args.push_back(config_flag.data());
  args.push_back(file.data());
  config cfg;
  try {
    apply_args(cfg, static_cast<int>(args.size()), args.data());
  } catch (const config_error& e) {
    for (auto& error : e.errors()) {
      auto entry = error_entry(error.text());
      std::cerr << file << ": " << entry["path"].as_string() << ": " << entry["message"].as_string() << "\n";
    }
    return 2;
  }
  std::cout << file << ": valid (" << cfg.gateway.services.size() << " downstream services)\n";
  return 0;
}

/// The live API keys of `cfg`'s key file (`auth.mode` "keys"), checked
/// against its tiers. Throws config_error.
std::shared_ptr<bulwark::key_store> load_keys(const bulwark::config& cfg) {
  std::set<std::string> tiers;
  for (auto& [name, windows] : cfg.runtime.ops.limits.tiers)
    tiers.insert(name);
  return std::make_shared<bulwark::key_store>(cfg.auth.key_file, std::move(tiers));
}

/// The running configuration and what reloads it: SIGHUP, the admin API
/// and the console read the file the server started with again (with the
/// same environment and flags), validate it whole and apply the difference.
class configuration {
public:
  configuration(bulwark::config current, int argc, char** argv)
      : current_(std::move(current)), argc_(argc), argv_(argv), loaded_at_(now()) {}

  /// Who checks credentials (null with `auth.mode` "none"): a reload may
  /// install a new one.
  void authenticate_with(std::shared_ptr<bulwark::switchable_authenticator> auth) { auth_ = std::move(auth); }

  /// The protected resource metadata of the generation in force.
  std::string resource_metadata() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return bulwark::resource_metadata(current_.auth.oauth);
  }

  void attach(bulwark::runtime* rt, bulwark::gateway* gw) {
    rt_ = rt;
    gw_ = gw;
    if (auto m = rt_->environment()->metrics) {
      m->describe("bulwark_config_reloads_total", "Configuration reloads, by outcome (applied, unchanged, refused).",
                  bulwark::metrics::kind::counter);
      m->describe("bulwark_config_generation", "The configuration generation in force (1 at start).",
                  bulwark::metrics::kind::gauge);
      m->gauge("bulwark_config_generation").set(1);
    }
  }

  /// The drain deadline and the readiness grace before it.
  std::pair<std::chrono::seconds, std::chrono::milliseconds> shutdown_times() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return {current_.drain, current_.ready_grace};
  }

  bulwark::json::value view() const {
    using bulwark::json::value;
    std::lock_guard<std::mutex> guard(mtx_);
    return value::make_object({{"generation", static_cast<unsigned long long>(rt_->generation())},
                               {"source", current_.source},
                               {"loadedAt", loaded_at_},
                               {"effective", bulwark::effective_settings(current_)},
                               {"config", bulwark::redacted(current_.document)},
                               {"liveKeys", live_key_list()}});
  }

  /// Reads the configuration again; (HTTP status, body). `who` and
  /// `remote` go to the audit log.
  std::pair<int, bulwark::json::value> reload(const std::string& who, const std::string& remote) {
    using namespace bulwark;
    using json::value;
    std::lock_guard<std::mutex> guard(mtx_);
    config next;
    auto refuse = [&](value errors, value restart) {
      auto body = value::make_object({{"outcome", "refused"},
                                      {"generation", static_cast<unsigned long long>(rt_->generation())},
                                      {"errors", std::move(errors)},
                                      {"restartRequired", std::move(restart)}});
      log::error("configuration reload refused; nothing changed", body);
      audit::record({"config.reload", "refused", who, remote, current_.source, {}, body});
      count("refused");
      return std::pair<int, value>{422, std::move(body)};
    };
    // One error at `path` that is not the file's (a key file, a JWK Set).
    auto refuse_at = [&](const char* path, const std::string& message) {
      return refuse(value::make_array({value::make_object({{"path", path}, {"message", message}})}),
                    value(json::array{}));
    };
    try {
      apply_args(next, argc_, argv_);
    } catch (const config_error& e) {
      value errors(json::array{});
      for (auto& error : e.errors())
        errors.push_back(error_entry(error.text()));
      return refuse(std::move(errors), value(json::array{}));
    }
    auto plan = plan_reload(current_.document, next.document);
    // A rotated sealing key is a change though its file's name is not.
    auto rotated = [&](const std::string& now, const std::string& before, const char* path) {
      if (now != before && std::find(plan.changed.begin(), plan.changed.end(), path) == plan.changed.end())
        plan.changed.push_back(path);
    };
    rotated(next.runtime.state_key, current_.runtime.state_key, "$.sessions.stateKeyFile");
    rotated(next.runtime.previous_state_key, current_.runtime.previous_state_key, "$.sessions.previousStateKeyFile");
    // (The gateway exists exactly when the server started with services.)
    if (current_.gateway.services.empty() != next.gateway.services.empty())
      plan.restart_required.push_back("$.mcpServers (Bulwark started " + std::string(gw_ ? "with" : "without")
                                      + " downstream services; adding the first or removing the last needs a restart)");
    if (!plan.restart_required.empty()) {
      value errors(json::array{}), restart(json::array{});
      for (auto& k : plan.restart_required) {
        restart.push_back(k);
        errors.push_back(
          value::make_object({{"path", k.substr(0, k.find(' '))}, {"message", "needs a restart to change"}}));
      }
      return refuse(std::move(errors), std::move(restart));
    }
    if (plan.changed.empty()) {
      // The access log is reopened all the same (log rotation).
      if (!current_.access.target.empty()) {
        try {
          access_log::open(current_.access);
        } catch (const std::exception& e) {
          log::error("access log not reopened",
                     value::make_object({{"path", current_.access.target}, {"error", e.what()}}));
        }
      }
      count("unchanged");
      auto body = value::make_object({{"outcome", "unchanged"},
                                      {"generation", static_cast<unsigned long long>(rt_->generation())},
                                      {"changed", value(json::array{})}});
      log::info("configuration reloaded; nothing changed", body);
      audit::record({"config.reload", "ok", who, remote, current_.source, {}, body});
      return {200, std::move(body)};
    }
    // What the server made of its settings at start and keeps.
    next.runtime.ops.api_keys = current_.runtime.ops.api_keys;
    // New credentials' checkers are made (and may fail) before anything
    // changes.
    auto touched = [&](const std::string& prefix) {
      return std::any_of(plan.changed.begin(), plan.changed.end(),
                         [&](const std::string& k) { return k.compare(0, prefix.size(), prefix) == 0; });
    };
    std::shared_ptr<const authenticator> next_auth;
    if (next.auth.mode == auth_mode::keys && (touched("$.auth.keyFile") || touched("$.rateLimits.tiers"))) {
      try {
        auto keys = load_keys(next);
        next.runtime.ops.api_keys = keys;
        next_auth = key_authenticator(keys);
      } catch (const std::exception& e) {
        return refuse_at("$.auth.keyFile", e.what());
      }
    } else if (next.auth.mode == auth_mode::oauth && touched("$.auth.oauth")) {
      try {
        next_auth = oauth_authenticator(next.auth.oauth);
      } catch (const std::exception& e) {
        return refuse_at("$.auth.oauth.jwksFile", e.what());
      }
    }
    try {
      log::set_redaction(next.redact_keys, next.redact_patterns);
    } catch (const std::exception& e) {
      return refuse_at("$.log.redactPatterns", e.what());
    }
    // Reopened on every reload: a file moved away by log rotation is
    // created anew.
    if (!next.access.target.empty() || !current_.access.target.empty()) {
      try {
        access_log::open(next.access);
      } catch (const std::exception& e) {
        return refuse_at("$.log.access", e.what());
      }
    }
    log::set_level(next.log);
    mcp::set_error_mode(next.error_mode);
    if (next_auth && auth_)
      auth_->set(std::move(next_auth));
    if (gw_)
      gw_->reconfigure(next.gateway, std::chrono::duration_cast<std::chrono::milliseconds>(next.drain));
    rt_->reconfigure(next.runtime);
    current_ = std::move(next);
    loaded_at_ = now();
    value changed(json::array{});
    for (auto& k : plan.changed)
      changed.push_back(k);
    auto generation = rt_->generation();
    auto body = value::make_object({{"outcome", "applied"},
                                    {"generation", static_cast<unsigned long long>(generation)},
                                    {"changed", std::move(changed)}});
    log::info("configuration reloaded", body);
    audit::record({"config.reload", "ok", who, remote, current_.source, {}, body});
    count("applied");
    if (auto m = rt_->environment()->metrics)
      m->gauge("bulwark_config_generation").set(static_cast<double>(generation));
    return {200, std::move(body)};
  }

private:
  static std::string now() {
    return bulwark::log::utc(std::chrono::system_clock::now(), bulwark::log::time_digits::millis);
  }

  static bulwark::json::value live_key_list() {
    bulwark::json::value out(bulwark::json::array{});
    for (auto& k : bulwark::live_keys())
      out.push_back(k);
    return out;
  }

  void count(const char* outcome) {
    if (auto m = rt_->environment()->metrics)
      m->counter("bulwark_config_reloads_total", {{"outcome", outcome}}).inc();
  }

  mutable std::mutex mtx_;
  bulwark::config current_;
  int argc_;
  char** argv_;
  std::string loaded_at_;
  bulwark::runtime* rt_ = nullptr;
  bulwark::gateway* gw_ = nullptr;
  std::shared_ptr<bulwark::switchable_authenticator> auth_;
};

} // namespace

int main(int argc, char** argv) {
  using namespace bulwark;
  if (argc > 1 && std::string(argv[1]) == "keys")
    return run_keys_command(argc - 1, argv + 1);
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--check-config")
      return check_config(argc, argv);
  config cfg;
  // Who checks credentials (a reload may install another one).
  std::shared_ptr<switchable_authenticator> auth;
  try {
    if (!apply_args(cfg, argc, argv))
      return 0;
    if (cfg.auth.mode == auth_mode::keys) {
      auto keys = load_keys(cfg);
      cfg.runtime.ops.api_keys = keys;
      auth = std::make_shared<switchable_authenticator>(key_authenticator(keys));
      cfg.http.auth = auth;
    }
  } catch (const config_error& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  log::init(cfg.log);
  log::set_redaction(cfg.redact_keys, cfg.redact_patterns);
  try {
    access_log::open(cfg.access);
  } catch (const std::exception& e) {
    std::cerr << "config: $.log.access: " << e.what() << "\n";
    return 2;
  }
  if (!cfg.audit.file.empty()) {
    try {
      audit::open(cfg.audit);
    } catch (const std::exception& e) {
      std::cerr << "config: $.audit.file: " << e.what() << "\n";
      return 2;
    }
  }
  if (cfg.auth.mode == auth_mode::oauth) {
    try {
      auth = std::make_shared<switchable_authenticator>(oauth_authenticator(cfg.auth.oauth));
      cfg.http.auth = auth;
    } catch (const std::exception& e) {
      std::cerr << "config: $.auth.oauth.jwksFile: " << e.what() << "\n";
      return 2;
    }
  }
  // Every error answered carries a trace id; its log line carries the same.
  // Admission refusals come in floods under overload: they log at debug.
  mcp::set_error_mode(cfg.error_mode);
  mcp::set_error_observer(
    [](std::string_view trace, error_code code, std::string_view message, std::string_view detail) {
      auto level =
        code == error_code::overloaded || code == error_code::rate_limited ? log_level::debug : log_level::info;
      auto fields = json::value::make_object(
        {{"traceId", std::string(trace)}, {"code", static_cast<long long>(code)}, {"message", std::string(message)}});
      if (!detail.empty())
        fields.set("detail", std::string(detail));
      // What the session knows of the request, when a session answers it.
      if (const auto* ctx = mcp::current_error_context()) {
        auto add = [&fields](const char* key, std::string_view v) {
          if (!v.empty())
            fields.set(key, std::string(v));
        };
        add("method", ctx->method);
        add("tool", ctx->name);
        add("service", ctx->service);
        add("session", ctx->session);
        add("identity", ctx->identity);
        add("remote", ctx->remote);
        if (ctx->received != std::chrono::steady_clock::time_point{})
          fields.set("durationUs", static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                            std::chrono::steady_clock::now() - ctx->received)
                                                            .count()));
      }
      log::write(level, "error answered", fields);
    });
  if (cfg.auth.mode == auth_mode::keys)
    log::info(
      "authentication: API keys",
      json::value::make_object({{"keyFile", cfg.auth.key_file},
                                {"liveKeys", static_cast<unsigned long long>(cfg.runtime.ops.api_keys->size())}}));
  else if (cfg.http_enabled && !loopback_address(cfg.http.address))
    log::warn("serving a non-loopback address without authentication (auth.allowUnauthenticated)",
              json::value::make_object({{"address", cfg.http.address}}));

  // Signals are taken by one thread; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  caf::actor_system_config sys_cfg;
  sys_cfg.set("scheduler.max-threads", cfg.workers);
  sys_cfg.set("work-stealing.aggressive-poll-attempts", cfg.aggressive_poll_attempts);
  sys_cfg.set("work-stealing.moderate-poll-attempts", cfg.moderate_poll_attempts);
  if (cfg.scheduler == "fused")
    use_fused_scheduler(sys_cfg, std::chrono::microseconds(cfg.spin_micros));
  caf::actor_system sys{sys_cfg};

  int exit_code = 0;
  configuration live(cfg, argc, argv);
  live.authenticate_with(auth);
  {
    runtime rt(sys, cfg.runtime);
    if (cfg.fixtures)
      register_conformance_fixtures(rt);
    if (cfg.fault_tools)
      register_fault_tools(rt);
    if (cfg.builtin_tools)
      register_builtin_tools(rt);
    std::unique_ptr<gateway> gw;
    if (!cfg.gateway.services.empty())
      gw = std::make_unique<gateway>(rt, cfg.gateway);
    rt.start();
    if (!cfg.runtime.ops.redis.url.empty() && cfg.runtime.state_key.empty()) {
      // States sealed before the fleet's key arrives open on this instance
      // only: wait for it as long as Redis is given to answer.
      auto env = rt.environment();
      auto until = std::chrono::steady_clock::now() + cfg.runtime.ops.redis.connect_timeout
                   + 2 * cfg.runtime.ops.redis.command_timeout;
      while (env->fleet_key().empty() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (env->fleet_key().empty())
        log::warn("Redis has not given the fleet's requestState key yet: until it does, rounds begun here continue "
                  "only here");
    }

    live.attach(&rt, gw.get());
    config_control control;
    control.view = [&live] { return live.view(); };
    control.reload = [&live](const std::string& remote) { return live.reload("admin", remote); };
    std::unique_ptr<http_server> http, admin;
    if (cfg.admin_port >= 0) {
      // The admin API on its own listener, with health and metrics beside it.
      auto opts = cfg.http;
      opts.address = cfg.admin_address;
      opts.port = static_cast<uint16_t>(cfg.admin_port);
      opts.path.clear();
      admin = std::make_unique<http_server>(&rt, opts);
      add_operator_routes(*admin, rt, true);
      add_admin_routes(*admin, rt, control);
      try {
        auto port = admin->start();
        log::info("admin listening",
                  json::value::make_object({{"address", opts.address}, {"port", static_cast<int>(port)}}));
      } catch (const std::exception& e) {
        log::error(
          "cannot serve the admin API",
          json::value::make_object({{"address", opts.address}, {"port", cfg.admin_port}, {"error", e.what()}}));
        rt.stop();
        return 1;
      }
    }
    if (cfg.http_enabled) {
      http = std::make_unique<http_server>(&rt, cfg.http);
      add_operator_routes(*http, rt);
      if (cfg.auth.mode == auth_mode::oauth) {
        // RFC 9728 protected resource metadata, open to everyone: clients
        // read it to find the authorization server.
        auto metadata = [&live] { return http_reply{200, "application/json", live.resource_metadata(), {}}; };
        auto path = resource_metadata_path(cfg.auth.oauth);
        http->add_route(path, metadata);
        if (path != "/.well-known/oauth-protected-resource")
          http->add_route("/.well-known/oauth-protected-resource", metadata);
      }
      if (!admin)
        add_admin_routes(*http, rt, control);
      try {
        auto port = http->start();
        log::info("listening",
                  json::value::make_object(
                    {{"address", cfg.http.address}, {"port", static_cast<int>(port)}, {"path", cfg.http.path}}));
      } catch (const std::exception& e) {
        log::error("cannot serve HTTP",
                   json::value::make_object(
                     {{"address", cfg.http.address}, {"port", static_cast<int>(cfg.http.port)}, {"error", e.what()}}));
        rt.stop();
        return 1;
      }
    }
    if (gw) {
      // HTTP serves already (/ready tells a balancer whether the services
      // are up); a stdio client and the start-up log wait, at most 15 s, for
      // every service to list its tools or fail.
      try {
        auto missing = gw->wait_ready(std::chrono::seconds(15));
        for (auto& name : missing)
          log::warn("service not ready at start-up; its tools appear once it is",
                    json::value::make_object({{"service", name}}));
      } catch (const gateway_error& e) {
        // The services' tools cannot be named apart: exit at once. The stdio
        // services see their input close and end themselves.
        log::error("gateway refused to start", json::value::make_object({{"error", e.what()}}));
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
    log::info("bulwark started",
              json::value::make_object({{"version", cfg.runtime.server_version},
                                        {"config", cfg.source},
                                        {"caf_workers", static_cast<unsigned long long>(sys.scheduler().num_workers())},
                                        {"scheduler", cfg.scheduler},
                                        {"fixtures", cfg.fixtures},
                                        {"stdio", cfg.stdio}}));

    // SIGHUP reloads the configuration. The first SIGINT/SIGTERM drains and
    // stops; a second one exits at once.
    std::thread signal_thread([signals, &live] {
      int sig = 0;
      for (;;) {
        sigwait(&signals, &sig);
        if (sig != SIGHUP)
          break;
        log::info("SIGHUP: reloading the configuration");
        live.reload("signal:SIGHUP", {});
      }
      log::info("signal received; shutting down", json::value::make_object({{"signal", sig}}));
      request_stop();
      do
        sigwait(&signals, &sig);
      while (sig == SIGHUP);
      log::warn("second signal; exiting at once", json::value::make_object({{"signal", sig}}));
      std::fflush(stderr);
      std::_Exit(1);
    });
    signal_thread.detach();
    if (cfg.stdio) {
      std::thread([&rt] {
        serve_stdio(rt);
        request_stop();
      }).detach();
    }
    {
      std::unique_lock<std::mutex> guard(stop_mtx);
      stop_cv.wait(guard, [] { return stop_requested; });
    }
    // Graceful: /ready fails first (a balancer takes the instance out of
    // rotation during the grace), then new requests are refused unserved,
    // calls in flight finish until the drain deadline, the rest are
    // answered with shutting_down, and the process stops.
    auto [drain, grace] = live.shutdown_times();
    rt.drain(); // /ready answers 503 from now on
    if (grace.count() > 0) {
      log::info("leaving rotation: /ready answers 503",
                json::value::make_object({{"grace_ms", static_cast<long long>(grace.count())}}));
      std::this_thread::sleep_for(grace);
    }
    log::info("draining", json::value::make_object({{"deadline_s", static_cast<long long>(drain.count())}}));
    if (http)
      http->drain();
    auto drain_until = std::chrono::steady_clock::now() + drain;
    int64_t left = rt.drain();
    while (left > 0 && std::chrono::steady_clock::now() < drain_until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      left = rt.drain();
    }
    log::info("stopping", json::value::make_object({{"unfinished_calls", static_cast<long long>(left)}}));
    rt.stop();
    if (http)
      http->stop();
    if (admin)
      admin->stop();
    gw.reset();
    http.reset();
    admin.reset();
  }
  log::info("stopped");
  std::fflush(stdout);
  // A stdio reader may still sit in a blocking read; end without waiting for it.
  std::_Exit(exit_code);
}
