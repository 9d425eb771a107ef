#include "actors/gateway.hpp"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/connector.hpp"
#include "actors/runtime.hpp"
#include "config/log.hpp"
#include "transport/io_scheduler.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

std::string exposed_tool_name(const std::string& service, const std::string& tool, prefix_mode mode,
                              const std::string& separator, bool clashes) {
  switch (mode) {
    case prefix_mode::always: return service + separator + tool;
    case prefix_mode::never: return tool;
    case prefix_mode::conditional: return clashes ? service + separator + tool : tool;
  }
  return tool;
}

struct gateway::impl : std::enable_shared_from_this<gateway::impl> {
  runtime& rt;
  gateway_config cfg;
  gateway_hooks_ptr hooks = std::make_shared<gateway_hooks>();

  // HTTP connectors' I/O when the actor system does not run the fused scheduler.
  std::unique_ptr<boost::asio::io_context> own_io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> io_guard;
  std::thread io_thread;

  std::mutex mtx;
  std::condition_variable cv;
  std::map<std::string, value> tools; ///< service -> its tool list
  std::vector<std::string> clash_errors;

  impl(runtime& r, gateway_config c) : rt(r), cfg(std::move(c)) {}

  const service_config* service(const std::string& name) const {
    for (auto& s : cfg.services)
      if (s.name == name)
        return &s;
    return nullptr;
  }

  /// Rebuilds the exposed tools from every service's list.
  void republish() {
    std::vector<tool_spec> specs;
    std::vector<std::string> errors;
    {
      std::lock_guard<std::mutex> guard(mtx);
      // Which services offer each downstream name.
      std::map<std::string, std::vector<std::string>> offered;
      for (auto& s : cfg.services)
        if (auto t = tools.find(s.name); t != tools.end())
          for (auto& tool : t->second.as_array())
            if (tool["name"].is_string())
              offered[tool["name"].as_string()].push_back(s.name);
      std::map<std::string, std::string> taken; // exposed name -> service
      for (auto& s : cfg.services) {
        auto t = tools.find(s.name);
        if (t == tools.end())
          continue;
        auto mode = s.settings.prefix.value_or(cfg.prefix);
        auto sep = s.settings.separator.value_or(cfg.separator);
        for (auto& tool : t->second.as_array()) {
          if (!tool["name"].is_string())
            continue;
          const auto& name = tool["name"].as_string();
          auto exposed = exposed_tool_name(s.name, name, mode, sep, offered[name].size() > 1);
          if (auto prev = taken.find(exposed); prev != taken.end()) {
            errors.push_back("tool '" + exposed + "' is offered by both " + prev->second + " and " + s.name
                             + " (prefix mode never); the one of " + prev->second + " is kept");
            continue;
          }
          taken.emplace(exposed, s.name);
          specs.push_back(make_spec(s, tool, exposed));
        }
      }
      clash_errors = errors;
    }
    for (auto& e : errors)
      log::error("tool name clash", value::make_object({{"error", e}}));
    rt.set_tool_group("gateway", std::move(specs));
    cv.notify_all();
  }

  tool_spec make_spec(const service_config& s, const value& tool, const std::string& exposed) {
    tool_spec spec;
    spec.name = exposed;
    if (tool["title"].is_string())
      spec.title = tool["title"].as_string();
    if (tool["description"].is_string())
      spec.description = tool["description"].as_string();
    spec.input_schema = tool["inputSchema"].is_object() ? tool["inputSchema"]
                                                        : value::make_object({{"type", "object"}});
    if (tool["outputSchema"].is_object())
      spec.output_schema = tool["outputSchema"];
    if (tool["annotations"].is_object())
      spec.annotations = tool["annotations"];
    const auto& name = tool["name"].as_string();
    bool idempotent = tool["annotations"]["idempotentHint"].is_bool() && tool["annotations"]["idempotentHint"].as_bool();
    idempotent = idempotent
                 || std::find(s.settings.idempotent_tools.begin(), s.settings.idempotent_tools.end(), name)
                      != s.settings.idempotent_tools.end();
    auto service = s.name;
    auto timeout = s.settings.timeout;
    auto* rtp = &rt;
    spec.handler = [rtp, service, name, idempotent, timeout](const call_ptr& c) {
      auto breaker = rtp->find(breaker_name(service));
      if (!breaker)
        return c->fail(error_code::service_unavailable, "service " + service + " is restarting",
                       value::make_object({{"service", service}, {"retry_after", 1}}));
      auto dc = std::make_shared<downstream_call>();
      dc->service = service;
      dc->method = "tools/call";
      dc->params = value::make_object({{"name", name}, {"arguments", c->arguments()}});
      dc->idempotent = idempotent;
      // Retries share the service timeout's budget several times over.
      dc->deadline = steady_clock::now() + timeout * 3;
      dc->on_notification = [c](const std::string& method, const value& params) {
        c->resume([method, params](const call_ptr& c) {
          if (method == "notifications/progress") {
            std::optional<double> total;
            if (params["total"].is_number())
              total = params["total"].as_double();
            c->progress(params["progress"].as_double(), total,
                        params["message"].is_string() ? params["message"].as_string() : std::string());
          } else if (method == "notifications/message") {
            auto lvl = params["level"].is_string() ? parse_log_level(params["level"].as_string()) : std::nullopt;
            c->log(lvl.value_or(log_level::info), params["data"],
                   params["logger"].is_string() ? params["logger"].as_string() : std::string());
          }
        });
      };
      dc->on_done = [c](downstream_outcome o) {
        c->resume([o = std::move(o)](const call_ptr& c) mutable {
          switch (o.what) {
            case downstream_outcome::kind::result:
              return c->finish(std::move(o.result));
            case downstream_outcome::kind::error:
              return c->fail(static_cast<error_code>(o.code), o.message, o.data);
            default: {
              auto data = o.data.is_object() ? o.data : value(json::object{});
              if (o.retry_after.count() > 0)
                data.set("retry_after", static_cast<double>(o.retry_after.count()) / 1000.0);
              return c->fail(static_cast<error_code>(o.code ? o.code : static_cast<int>(error_code::service_unavailable)),
                             o.message, std::move(data));
            }
          }
        });
      };
      auto handle = caf::actor_cast<breaker_actor>(breaker);
      c->on_cancel([dc, handle] { caf::anon_send(handle, atom::cancel_v, dc); });
      caf::anon_send(handle, atom::call_v, dc);
    };
    return spec;
  }
};

gateway::gateway(runtime& rt, gateway_config cfg) : impl_(std::make_shared<impl>(rt, std::move(cfg))) {
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
  d.hooks->child_max_restarts = d.cfg.child_max_restarts;
  d.hooks->child_restart_window = d.cfg.child_restart_window;
  std::weak_ptr<impl> weak = impl_;
  d.hooks->publish_tools = [weak](const std::string& service, value tools) {
    auto self = weak.lock();
    if (!self)
      return;
    {
      std::lock_guard<std::mutex> guard(self->mtx);
      self->tools[service] = std::move(tools);
    }
    log::info("service tools listed",
              value::make_object({{"service", service},
                                  {"tools", static_cast<unsigned long long>(self->tools[service].as_array().size())}}));
    self->republish();
  };
  for (auto& s : d.cfg.services) {
    auto env_hooks = d.hooks;
    auto svc = s;
    rt.add_supervised(connector_name(s.name), [svc, env_hooks, &rt](caf::actor_system& sys) {
      return caf::actor_cast<caf::actor>(spawn_connector(sys, rt.environment(), svc, env_hooks));
    });
    auto spawned = std::make_shared<int>(0);
    rt.add_supervised(breaker_name(s.name), [svc, spawned, &rt](caf::actor_system& sys) {
      return caf::actor_cast<caf::actor>(spawn_breaker(sys, rt.environment(), svc, (*spawned)++ > 0));
    });
  }
}

gateway::~gateway() {
  auto& d = *impl_;
  d.hooks->publish_tools = nullptr;
  if (d.own_io) {
    d.io_guard.reset();
    d.own_io->stop();
    if (d.io_thread.joinable())
      d.io_thread.join();
  }
}

std::vector<std::string> gateway::wait_ready(milliseconds limit) {
  auto& d = *impl_;
  std::unique_lock<std::mutex> guard(d.mtx);
  d.cv.wait_for(guard, limit, [&] { return d.tools.size() == d.cfg.services.size(); });
  bool never = d.cfg.prefix == prefix_mode::never;
  for (auto& s : d.cfg.services)
    never = never || s.settings.prefix == prefix_mode::never;
  if (never && !d.clash_errors.empty())
    throw gateway_error(d.clash_errors.front());
  std::vector<std::string> missing;
  for (auto& s : d.cfg.services)
    if (!d.tools.count(s.name))
      missing.push_back(s.name);
  return missing;
}

value gateway::status() {
  auto& d = *impl_;
  value out(json::array{});
  caf::scoped_actor self{d.rt.system()};
  for (auto& s : d.cfg.services) {
    auto entry = value::make_object({{"service", s.name}});
    if (auto b = d.rt.find(breaker_name(s.name)))
      self->request(caf::actor_cast<breaker_actor>(b), seconds(2), atom::get_v)
        .receive([&](value& v) { entry.set("breaker", std::move(v)); }, [](caf::error&) {});
    if (auto c = d.rt.find(connector_name(s.name)))
      self->request(caf::actor_cast<connector_actor>(c), seconds(2), atom::get_v)
        .receive([&](value& v) { entry.set("connector", std::move(v)); }, [](caf::error&) {});
    out.push_back(std::move(entry));
  }
  return out;
}

} // namespace bulwark
