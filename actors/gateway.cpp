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

#include "actors/ask.hpp"
#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/connector.hpp"
#include "actors/operations.hpp"
#include "actors/runtime.hpp"
#include "config/audit.hpp"
#include "config/log.hpp"
#include "messages/crypto.hpp"
#include "messages/mcp.hpp"
#include "transport/io_scheduler.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

/// How long the queue_status tool waits for the queue's answer.
constexpr auto queue_status_timeout = std::chrono::seconds(5);

} // namespace

struct gateway::impl : std::enable_shared_from_this<gateway::impl> {
  runtime& rt;
  /// The current generation's services, naming and policies; a reload
  /// swaps it whole (readers keep the snapshot they took).
  std::shared_ptr<const gateway_config> cfg_;

  std::shared_ptr<const gateway_config> config() const { return std::atomic_load(&cfg_); }
  gateway_hooks_ptr hooks = std::make_shared<gateway_hooks>();

  // HTTP connectors' I/O when the actor system does not run the fused scheduler.
  std::unique_ptr<boost::asio::io_context> own_io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> io_guard;
  std::thread io_thread;

  /// Asks every connector to check which watched URIs its service owns.
  std::function<void()> poke_connectors;

  std::mutex mtx;
  std::condition_variable cv;
  /// service -> list method (tools/list, ...) -> its items
  std::map<std::string, std::map<std::string, value>> lists;
  /// Tool and prompt names offered twice (which stop start-up in prefix
  /// mode never), and URIs offered twice (logged only).
  std::vector<std::string> clash_errors;
  std::vector<std::string> logged_uri_clashes;
  /// Counts list updates, and the update the names (and `clash_errors`) were
  /// last worked out from: start-up judges clashes only once they agree.
  uint64_t lists_version = 0;
  uint64_t named_version = 0;
  /// "service\ntool" -> the tool's exposed name (for execute_tool).
  std::map<std::string, std::string> exposed_tools;
  /// What connectors last said of their services: ready, or why not.
  std::set<std::string> ready_services;
  std::map<std::string, std::string> problems;

  /// "ready", "unavailable" (its start failed: `problems` says why) or
  /// "starting" (its first start has not ended). `mtx` must be held.
  std::string status_of(const std::string& service) const {
    if (ready_services.count(service))
      return "ready";
    return problems.count(service) ? "unavailable" : "starting";
  }

  /// Answers -32005 for a service that is not ready, saying why; `mtx` must
  /// be held.
  void fail_not_ready(const call_ptr& c, const std::string& service) const {
    auto status = status_of(service);
    auto data = value::make_object({{"server", service}, {"status", status}, {"reachedService", false}});
    if (status == "unavailable") {
      const auto& why = problems.at(service);
      data.set("reason", why);
      return c->fail(error_code::service_unavailable, "service " + service + " is unavailable: " + why,
                     std::move(data));
    }
    data.set("retry_after_seconds", 1);
    c->fail(error_code::service_unavailable, "service " + service + " is starting; retry shortly", std::move(data));
  }

  impl(runtime& r, gateway_config c) : rt(r), cfg_(std::make_shared<const gateway_config>(std::move(c))) {}

  /// Which client call a downstream call currently reports to. A call that
  /// needed client input continues under the client's next call (2026-07-28)
  /// or the same call run again (2025 era), so the target changes.
  struct binding {
    std::mutex mtx;
    call_ptr current;
    void set(call_ptr c) {
      std::lock_guard<std::mutex> guard(mtx);
      current = std::move(c);
    }
    call_ptr get() {
      std::lock_guard<std::mutex> guard(mtx);
      return current;
    }
  };
  using binding_ptr = std::shared_ptr<binding>;

  /// Downstream calls waiting for the client's input, by token.
  struct parked_call {
    downstream_call_ptr call;
    binding_ptr target;
    caf::actor connector;
  };
  std::mutex parked_mtx;
  std::map<std::string, parked_call> parked;

  /// Runs `method` (tools/call, prompts/get, resources/read) on `service`
  /// for client call `c`; `params` as the service names things.
  void run_call(const call_ptr& c, const std::string& service, const std::string& method, value params, bool idempotent,
                milliseconds timeout, bool cacheable = false) {
    const auto& state = c->request_state();
    // Fresh cached results answer without the service; results of calls that
    // carry client input are never cached.
    std::string key;
    if (cacheable && state.empty() && c->input_responses().is_null()) {
      // Private results are kept per caller: one never sees another's.
      auto svc = this->service(service);
      bool shared = svc && svc->settings.cache_public;
      // A read is kept under its URI first, so that an update of that URI
      // drops its copies for every caller (see hooks->changed).
      std::string uri = method == "resources/read" && params["uri"].is_string() ? params["uri"].as_string() : "";
      if (method != "resources/read" || (!uri.empty() && uri.find('\n') == std::string::npos))
        key = service + "\n" + method + "\n" + (uri.empty() ? "" : uri + "\n")
              + (shared ? std::string("*") : c->client().identity) + "\n" + canonical_json(params);
    }
    if (!key.empty()) {
      if (auto cache = rt.find(cache_actor_name)) {
        std::weak_ptr<impl> weak = shared_from_this();
        auto on_hit = [weak, c, service, method, params, idempotent, timeout, key](std::optional<cache_hit> hit) {
          c->resume([weak, hit, service, method, params, idempotent, timeout, key](const call_ptr& c) {
            if (hit) {
              c->give_back(); // answered from memory: the service was not used
              auto self = weak.lock();
              return c->finish(with_cache_hints(c, marked(hit->result, *hit, service), hit->age,
                                                self ? self->service(service).get() : nullptr));
            }
            if (auto self = weak.lock())
              self->call_service(c, service, method, params, idempotent, timeout, key);
          });
        };
        // A lookup the cache never answers counts as a miss.
        look_up(caf::actor_cast<cache_actor>(cache), key, false, std::move(on_hit));
        return;
      }
    }
    call_service(c, service, method, std::move(params), idempotent, timeout, key);
  }

  /// The freshness hints a 2026-07-28 client gets with a service's result.
  /// A result Bulwark caches (`cached_by`, the service whose cache settings
  /// apply) is what Bulwark itself answers for the rest of its time in the
  /// cache, so the hints say so, scoped as the cache keeps it. Otherwise
  /// they are the service's own, less the result's age; a read the service
  /// gave none for is "immediately stale, for this caller only" (ttlMs 0,
  /// private): Bulwark does not know how long the service's data stays as
  /// it is, nor whether it is the same for everyone. (A 2025-era client
  /// gets no hints: the session drops them.)
  static value with_cache_hints(const call_ptr& c, value result, milliseconds age,
                                const service_config* cached_by = nullptr) {
    if (!c->client().stateless || !result.is_object())
      return result;
    const auto& ttl = result["ttlMs"];
    const auto& scope = result["cacheScope"].is_string() ? result["cacheScope"].as_string() : std::string();
    if (cached_by) {
      result.set("ttlMs", std::max<long long>(0, (cached_by->settings.cache_ttl - age).count()));
      result.set("cacheScope", cached_by->settings.cache_public ? "public" : "private");
    } else if (ttl.is_integer()) {
      result.set("ttlMs", std::max<long long>(0, ttl.as_int() - static_cast<long long>(age.count())));
      if (scope != "public" && scope != "private")
        result.set("cacheScope", "private");
    } else if (c->method() == "resources/read") {
      result.set("ttlMs", 0);
      result.set("cacheScope", "private");
    }
    return result;
  }

  /// A cached result, marked with its age (and whether it is stale).
  static value marked(value result, const cache_hit& hit, const std::string& service) {
    auto meta = result["_meta"].is_object() ? result["_meta"] : value(json::object{});
    meta.set("io.bulwark/cache",
             value::make_object(
               {{"stale", hit.stale}, {"ageMs", static_cast<long long>(hit.age.count())}, {"service", service}}));
    result.set("_meta", std::move(meta));
    return result;
  }

  void call_service(const call_ptr& c, const std::string& service, const std::string& method, value params,
                    bool idempotent, milliseconds timeout, const std::string& cache_key) {
    const auto& state = c->request_state();
    if (state.rfind("ds\n", 0) == 0) {
      // The client answers what a stateless service asked: send the answers
      // and the service's own request state with the call again.
      auto downstream_state = state.substr(3);
      params.set("inputResponses", c->input_responses());
      if (!downstream_state.empty())
        params.set("requestState", downstream_state);
    } else if (!state.empty()) {
      return resume_with_input(c);
    }
    auto breaker = rt.find(breaker_name(service));
    if (!breaker)
      return c->fail(error_code::service_unavailable, "service " + service + " is restarting",
                     value::make_object({{"service", service}, {"retry_after_seconds", 1}, {"reachedService", false}}));
    auto dc = std::make_shared<downstream_call>();
    dc->service = service;
    dc->method = method;
    dc->params = std::move(params);
    dc->idempotent = idempotent;
    dc->client_capabilities = c->client().capabilities;
    // Retries share the service timeout's budget several times over.
    dc->deadline = steady_clock::now() + timeout * 3;
    auto target = std::make_shared<binding>();
    target->set(c);
    std::weak_ptr<impl> weak = shared_from_this();
    dc->on_notification = [target](const std::string& method, const value& params) {
      auto call = target->get();
      if (!call)
        return;
      call->resume([method, params](const call_ptr& c) {
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
    dc->on_input_request = [weak, target, dc_weak = std::weak_ptr<downstream_call>(dc),
                            service](const std::string& method, const value& params, const value& request_id) {
      auto self = weak.lock();
      auto call = target->get();
      auto dc = dc_weak.lock();
      if (!self || !call || !dc)
        return;
      // Park the downstream call; the client's answer finds it by token.
      auto token = crypto::random_hex(16);
      auto connector = self->rt.find(connector_name(service));
      {
        std::lock_guard<std::mutex> guard(self->parked_mtx);
        self->parked[token] = parked_call{dc, target, connector};
      }
      auto state = token + "\n" + json::dump(request_id);
      call->resume([method, params, state, request_id, connector](const call_ptr& c) {
        if (auto missing = missing_capability(c, method)) {
          // Refuse like a direct server would, and tell the service.
          if (connector)
            caf::anon_send(caf::actor_cast<connector_actor>(connector), atom::answer_v,
                           mcp::error_body(request_id, error_code::missing_client_capability,
                                           "the client has no " + *missing + " capability"));
          return fail_missing(c, method, *missing);
        }
        c->require_input(
          value::make_object({{"request", value::make_object({{"method", method}, {"params", params}})}}), state);
      });
    };
    dc->on_done = [weak, target, service, cache_key](downstream_outcome o) {
      if (auto self = weak.lock()) {
        std::lock_guard<std::mutex> guard(self->parked_mtx);
        for (auto i = self->parked.begin(); i != self->parked.end();)
          i = i->second.target == target ? self->parked.erase(i) : std::next(i);
      }
      // The downstream call is over: let go of the client's call (the call's
      // cancel hook holds this downstream call, so keeping it would be a cycle).
      auto call = target->get();
      target->set(nullptr);
      if (!call)
        return;
      call->resume([weak, o = std::move(o), service, cache_key](const call_ptr& c) mutable {
        if (o.waited.count() > 0) {
          c->upstream = service;
          c->upstream_wait += o.waited;
        }
        // Answered for the service without asking it (a completion it has
        // no capability for): its budget is given back, as for a cache hit.
        if (o.what == downstream_outcome::kind::result && !o.reached)
          c->give_back();
        if (o.what == downstream_outcome::kind::result && o.result["resultType"].as_string() == "input_required") {
          // A stateless service needs client input: ask our client, keeping
          // the service's state inside ours.
          const auto& requests = o.result["inputRequests"];
          for (auto& [key, req] : requests.as_object())
            if (auto missing = missing_capability(c, req["method"].as_string()))
              return fail_missing(c, req["method"].as_string(), *missing);
          return c->require_input(requests, "ds\n" + o.result["requestState"].as_string());
        }
        if (auto self = weak.lock())
          return self->conclude(c, std::move(o), service, cache_key);
        answer(c, std::move(o));
      });
    };
    auto handle = caf::actor_cast<breaker_actor>(breaker);
    auto queue = rt.find(queue_actor_name);
    if (!queue) {
      c->on_cancel([dc, handle] { caf::anon_send(handle, atom::cancel_v, dc); });
      send_call(handle, dc);
      return;
    }
    // Wait for a turn in the priority queue; the queue frees the service's
    // slot when the call's outcome arrives.
    auto work = std::make_shared<queued_work>();
    work->prio = priority_of(c, service);
    work->lane = service;
    work->owner = c->client().identity;
    work->request_id = c->request_id;
    work->label = c->method() == "tools/call" ? tool_of(*c) : method;
    work->not_before = c->not_before;
    work->deadline = dc->deadline;
    auto slot = std::make_shared<std::function<void()>>();
    auto on_done = std::move(dc->on_done);
    dc->on_done = [slot, on_done](downstream_outcome o) {
      if (*slot)
        (*slot)();
      on_done(std::move(o));
    };
    // The breaker of the moment the call's turn comes: one that restarted
    // while the call waited took no calls of its predecessor's.
    work->start = [weak, dc, slot, service](std::function<void()> finished) {
      *slot = std::move(finished);
      auto self = weak.lock();
      auto breaker = self ? self->rt.find(breaker_name(service)) : caf::actor();
      send_call(caf::actor_cast<breaker_actor>(breaker), dc);
    };
    work->reject = [c, refund = c->refund](error_code code, std::string message, value data) {
      if (refund)
        refund();
      if (!data.is_object())
        data = value(json::object{});
      data.set("reachedService", false); // refused while it waited for its turn
      c->resume([code, message, data](const call_ptr& c) { c->fail(code, message, data); });
    };
    auto qh = caf::actor_cast<queue_actor>(queue);
    c->on_cancel([dc, weak, service, qh, id = work->id] {
      caf::anon_send(qh, atom::cancel_v, id);
      if (auto self = weak.lock())
        if (auto breaker = self->rt.find(breaker_name(service)))
          caf::anon_send(caf::actor_cast<breaker_actor>(breaker), atom::cancel_v, dc);
    });
    // A queue that is gone, or killed before it takes the work, refuses it
    // as the work is destroyed (see queued_work).
    caf::anon_send(qh, atom::enqueue_v, std::move(work));
  }

  /// The exposed name of the tool a tools/call runs.
  static std::string tool_of(const call_context& c) {
    if (!c.tool.empty())
      return c.tool;
    return c.params()["name"].is_string() ? c.params()["name"].as_string() : std::string();
  }

  /// A call's priority: the tool's configured one, else its caller's key's,
  /// else its service's; a client may lower (never raise) it through
  /// `_meta["io.bulwark/priority"]`.
  priority priority_of(const call_ptr& c, const std::string& service) const {
    auto settings = rt.settings();
    const auto& ops = settings->ops;
    std::optional<priority> p;
    if (c->method() == "tools/call")
      if (auto i = ops.tool_priorities.find(tool_of(*c)); i != ops.tool_priorities.end())
        p = i->second;
    if (!p)
      p = resolve_key(ops, c->client().identity).prio;
    if (!p)
      if (auto svc = this->service(service))
        p = parse_priority(svc->settings.priority);
    auto base = p.value_or(priority::normal);
    const auto& asked = c->params()["_meta"]["io.bulwark/priority"];
    if (asked.is_string())
      if (auto lower = parse_priority(asked.as_string()); lower && *lower > base)
        return *lower;
    return base;
  }

  /// The client answered a service's request: pass the answer down and let
  /// the downstream call report to this call from now on.
  void resume_with_input(const call_ptr& c) {
    const auto& state = c->request_state();
    auto nl = state.find('\n');
    auto token = state.substr(0, nl);
    parked_call p;
    {
      std::lock_guard<std::mutex> guard(parked_mtx);
      auto i = parked.find(token);
      if (i == parked.end())
        return c->fail(error_code::invalid_params,
                       "the service call this input belongs to has ended; call the tool again");
      p = i->second;
      parked.erase(i);
    }
    value request_id;
    json::parse_error err;
    if (nl == std::string::npos || !json::parse(state.substr(nl + 1), request_id, err))
      return c->fail(error_code::invalid_params, "requestState is not one of ours");
    const auto* response = c->input_response("request");
    std::string body = response && response->is_object()
                         ? mcp::result_body(request_id, *response)
                         : mcp::error_body(request_id, error_code::invalid_request, "the client gave no answer");
    p.target->set(c);
    c->on_cancel([dc = p.call, breaker = rt.find(breaker_name(p.call->service))] {
      if (breaker)
        caf::anon_send(caf::actor_cast<breaker_actor>(breaker), atom::cancel_v, dc);
    });
    if (p.connector)
      caf::anon_send(caf::actor_cast<connector_actor>(p.connector), atom::answer_v, std::move(body));
  }

  /// The capability the client lacks for a service's request, if any.
  static std::optional<std::string> missing_capability(const call_ptr& c, const std::string& method) {
    std::string need = method == "sampling/createMessage" ? "sampling"
                       : method == "elicitation/create"   ? "elicitation"
                       : method == "roots/list"           ? "roots"
                                                          : "";
    if (need.empty() || c->client().has_capability(need))
      return std::nullopt;
    return need;
  }

  /// Answers -32021 for a service's request the client cannot take.
  static void fail_missing(const call_ptr& c, const std::string& method, const std::string& missing) {
    c->fail(error_code::missing_client_capability,
            "the service asked for " + method + ", but the client did not declare the " + missing + " capability",
            value::make_object({{"requiredCapabilities", value::make_array({missing})}}));
  }

  /// Answers a call from the service's outcome: caches a good result; when
  /// the service could not answer, falls back to a stale copy, then to the
  /// static message, then to the typed error.
  void conclude(const call_ptr& c, downstream_outcome o, const std::string& service, const std::string& key) {
    auto svc = this->service(service);
    if (!svc)
      return answer(c, std::move(o));
    auto cache = key.empty() ? caf::actor() : rt.find(cache_actor_name);
    if (!o.unanswered()) {
      if (cache && o.what == downstream_outcome::kind::result
          && !(o.result["isError"].is_bool() && o.result["isError"].as_bool())) {
        caf::anon_send(caf::actor_cast<cache_actor>(cache), atom::put_v, key, o.result,
                       static_cast<int64_t>(svc->settings.cache_ttl.count()),
                       static_cast<int64_t>(svc->settings.max_stale.count()));
        o.result = with_cache_hints(c, std::move(o.result), milliseconds(0), svc.get());
      } else if (o.what == downstream_outcome::kind::result) {
        o.result = with_cache_hints(c, std::move(o.result), milliseconds(0));
      }
      return answer(c, std::move(o));
    }
    auto static_or_error = [message = svc->settings.fallback_message, service](const call_ptr& c,
                                                                               downstream_outcome o) {
      // The message answers as a tool result: a prompt, a read or a
      // completion has no such shape, and gets the typed error.
      if (message.empty() || c->method() != "tools/call")
        return answer(c, std::move(o));
      auto result = mcp::text_result(message, true);
      result.set("_meta", value::make_object({{"io.bulwark/fallback",
                                               value::make_object({{"reason", o.message}, {"service", service}})}}));
      c->finish(std::move(result));
    };
    if (cache && svc->settings.fallback == fallback_mode::stale) {
      auto on_hit = [c, o, static_or_error, service](std::optional<cache_hit> hit) {
        c->resume([hit, o, static_or_error, service](const call_ptr& c) {
          if (hit)
            return c->finish(with_cache_hints(c, marked(hit->result, *hit, service), hit->age));
          static_or_error(c, o);
        });
      };
      // No answer from the cache is no stale copy.
      look_up(caf::actor_cast<cache_actor>(cache), key, true, std::move(on_hit));
      return;
    }
    if (svc->settings.fallback == fallback_mode::none)
      return answer(c, std::move(o));
    static_or_error(c, std::move(o));
  }

  /// A service's own JSON-RPC error, passed on. Its code stays; in
  /// production mode its message is redacted as log lines are (an agent
  /// corrects its call from it) and its `data` keeps only the members MCP
  /// defines, while the whole of it goes to the log line with the trace id
  /// (as `detail`). Development mode passes everything on.
  static void pass_on_error(const call_ptr& c, downstream_outcome o) {
    auto code = static_cast<error_code>(o.code);
    if (mcp::current_error_mode() == mcp::error_mode::development)
      return c->fail(code, o.message, o.data);
    value data(json::object{});
    if (o.data.is_object())
      for (auto* member : {"requiredCapabilities", "supported", "traceId", "reachedService"})
        if (const auto* v = o.data.find(member))
          data.set(member, log::redact(*v));
    auto whole = value::make_object({{"message", o.message}, {"data", o.data}});
    data.set("detail", "the service's error: " + json::dump(log::redact(whole)));
    c->fail(code, log::redact_text(o.message), std::move(data));
  }

  static void answer(const call_ptr& c, downstream_outcome o) {
    switch (o.what) {
      case downstream_outcome::kind::result:
        return c->finish(std::move(o.result));
      case downstream_outcome::kind::error:
        return pass_on_error(c, std::move(o));
      default: {
        auto data = o.data.is_object() ? o.data : value(json::object{});
        // Whether the call may have run: a client must not blindly retry a
        // call that reached the service.
        data.set("reachedService", o.reached);
        if (o.retry_after.count() > 0)
          data.set("retry_after_seconds", static_cast<double>(o.retry_after.count()) / 1000.0);
        return c->fail(static_cast<error_code>(o.code ? o.code : static_cast<int>(error_code::service_unavailable)),
                       o.message, std::move(data));
      }
    }
  }

  /// A service of the current generation (null when it has none of that
  /// name); the pointer keeps its generation alive.
  std::shared_ptr<const service_config> service(const std::string& name) const {
    auto cfg = config();
    for (auto& s : cfg->services)
      if (s.name == name)
        return std::shared_ptr<const service_config>(cfg, &s);
    return nullptr;
  }

  const value& list_of(const std::string& service, const std::string& method) {
    static const value empty(json::array{});
    auto s = lists.find(service);
    if (s == lists.end())
      return empty;
    auto m = s->second.find(method);
    return m == s->second.end() || !m->second.is_array() ? empty : m->second;
  }

  /// Exposed names for one kind of named item (tools or prompts): calls
  /// `add(service, item, exposed)` for each item that gets a name. `own`
  /// holds the names Bulwark itself lists (built-in, host and fixture
  /// items, and the gateway's own tools): a source of their own, which
  /// keeps its names; a service's item of the same name is prefixed in
  /// conditional mode and refused in never mode.
  template <class Add>
  void name_items(const std::string& method, const char* kind, const std::set<std::string>& own,
                  std::vector<std::string>& errors, Add add) {
    auto cfg = config();
    std::map<std::string, std::vector<std::string>> offered; // downstream name -> services
    for (auto& s : cfg->services)
      for (auto& item : list_of(s.name, method).as_array())
        if (item["name"].is_string())
          offered[item["name"].as_string()].push_back(s.name);
    std::map<std::string, std::string> taken; // exposed name -> who offers it
    for (auto& name : own)
      taken.emplace(name, "Bulwark's own " + std::string(kind) + "s");
    for (auto& s : cfg->services) {
      auto mode = s.settings.prefix.value_or(cfg->prefix);
      auto sep = s.settings.separator.value_or(cfg->separator);
      for (auto& item : list_of(s.name, method).as_array()) {
        if (!item["name"].is_string())
          continue;
        const auto& name = item["name"].as_string();
        bool clashes = offered[name].size() + own.count(name) > 1;
        auto exposed = exposed_tool_name(s.name, name, mode, sep, clashes);
        if (auto prev = taken.find(exposed); prev != taken.end()) {
          errors.push_back(std::string(kind) + " '" + exposed + "' is offered by both " + prev->second + " and "
                           + "service " + s.name + "; the one of " + prev->second + " is kept");
          continue;
        }
        taken.emplace(exposed, "service " + s.name);
        add(s, item, exposed);
      }
    }
  }

  /// The service a resource URI's reads go to (the catalog's order): the
  /// first that lists it, else the first with a template matching it.
  /// Empty when none offers it. `mtx` must be held.
  std::string owner_of(const std::string& uri) {
    auto cfg = config();
    for (auto& s : cfg->services)
      for (auto& r : list_of(s.name, "resources/list").as_array())
        if (r["uri"].is_string() && r["uri"].as_string() == uri)
          return s.name;
    value vars;
    for (auto& s : cfg->services)
      for (auto& t : list_of(s.name, "resources/templates/list").as_array())
        if (t["uriTemplate"].is_string() && match_uri_template(t["uriTemplate"].as_string(), uri, vars))
          return s.name;
    return {};
  }

  /// The URIs clients watch that `service` owns.
  std::vector<std::string> owned_watches(const std::string& service) {
    auto watched = rt.environment()->watches->watched();
    std::vector<std::string> out;
    std::lock_guard<std::mutex> guard(mtx);
    for (auto& uri : watched)
      if (owner_of(uri) == service)
        out.push_back(uri);
    return out;
  }

  /// Rebuilds what the services offer, under exposed names, in the catalog.
  void republish() {
    auto cfg = config();
    std::vector<tool_spec> tools;
    std::vector<prompt_spec> prompts;
    std::vector<resource_spec> resources;
    std::vector<resource_template_spec> templates;
    std::vector<std::string> errors;
    // What Bulwark lists of its own keeps its names; so do the gateway's
    // own tools.
    std::vector<tool_spec> own_tools;
    if (cfg->gateway_tools)
      own_tools = gateway_tools();
    own_tools.push_back(queue_status_tool());
    std::set<std::string> own_tool_names, own_prompt_names, own_uris;
    {
      auto cat = rt.current_catalog();
      for (auto& t : cat->tools)
        if (t.group != "gateway")
          own_tool_names.insert(t.name);
      for (auto& p : cat->prompts)
        if (p.group != "gateway")
          own_prompt_names.insert(p.name);
      for (auto& r : cat->resources)
        if (r.group != "gateway")
          own_uris.insert(r.uri);
      for (auto& t : cat->templates)
        if (t.group != "gateway")
          own_uris.insert(t.uri_template);
    }
    // A host that registered a tool of the same name keeps it.
    own_tools.erase(
      std::remove_if(own_tools.begin(), own_tools.end(), [&](auto& t) { return own_tool_names.count(t.name) > 0; }),
      own_tools.end());
    for (auto& t : own_tools)
      own_tool_names.insert(t.name);
    {
      std::lock_guard<std::mutex> guard(mtx);
      exposed_tools.clear();
      name_items("tools/list", "tool", own_tool_names, errors, [&](auto& s, auto& item, auto& exposed) {
        tools.push_back(make_tool(s, item, exposed));
        exposed_tools[s.name + "\n" + item["name"].as_string()] = exposed;
      });
      name_items("prompts/list", "prompt", own_prompt_names, errors,
                 [&](auto& s, auto& item, auto& exposed) { prompts.push_back(make_prompt(s, item, exposed)); });
      // URIs are the services' own and are never renamed: the first that
      // offers one keeps it (Bulwark's own resources before any service's).
      std::map<std::string, std::string> uris;
      for (auto& uri : own_uris)
        uris.emplace(uri, "Bulwark's own resources");
      // (A URI offered twice is no name clash: prefix modes rename tools and
      // prompts, never URIs, so it is logged and does not stop start-up.)
      std::vector<std::string> uri_clashes;
      auto claim = [&](const char* kind, const std::string& uri, const std::string& service) {
        auto [at, fresh] = uris.emplace(uri, "service " + service);
        if (!fresh)
          uri_clashes.push_back(std::string(kind) + " '" + uri + "' is offered by both " + at->second + " and service "
                                + service + "; the one of " + at->second + " is kept");
        return fresh;
      };
      for (auto& s : cfg->services) {
        for (auto& r : list_of(s.name, "resources/list").as_array())
          if (r["uri"].is_string() && claim("resource", r["uri"].as_string(), s.name))
            resources.push_back(make_resource(s, r));
        for (auto& t : list_of(s.name, "resources/templates/list").as_array())
          if (t["uriTemplate"].is_string() && claim("resource template", t["uriTemplate"].as_string(), s.name))
            templates.push_back(make_template(s, t));
      }
      bool changed = errors != clash_errors || uri_clashes != logged_uri_clashes;
      clash_errors = errors;
      logged_uri_clashes = uri_clashes;
      named_version = lists_version;
      errors.insert(errors.end(), uri_clashes.begin(), uri_clashes.end());
      if (!changed)
        errors.clear(); // said once, when they arose
    }
    for (auto& e : errors)
      log::error("name clash", value::make_object({{"error", e}}));
    for (auto& t : own_tools)
      tools.push_back(std::move(t));
    rt.set_group("gateway", std::move(tools), std::move(resources), std::move(templates), std::move(prompts));
    cv.notify_all();
  }

  using spawn_fn = std::function<caf::actor(caf::actor_system&)>;

  /// A service's connector and breaker, in start order. A restarted one
  /// takes the service's settings of the generation current then (its
  /// transport is the one it was started with: a new transport is a new
  /// subtree).
  std::vector<std::pair<std::string, spawn_fn>> service_children(const service_config& s) {
    std::weak_ptr<impl> weak = shared_from_this();
    auto current = [weak, first = std::make_shared<const service_config>(s)] {
      auto self = weak.lock();
      auto now = self ? self->service(first->name) : nullptr;
      return !now || transport_changed(*first, *now) ? *first : *now;
    };
    auto env_hooks = hooks;
    auto env = rt.environment();
    std::vector<std::pair<std::string, spawn_fn>> out;
    out.emplace_back(connector_name(s.name), [current, env_hooks, env](caf::actor_system& sys) {
      return caf::actor_cast<caf::actor>(spawn_connector(sys, env, current(), env_hooks));
    });
    auto spawned = std::make_shared<int>(0);
    out.emplace_back(breaker_name(s.name), [current, spawned, env](caf::actor_system& sys) {
      return caf::actor_cast<caf::actor>(spawn_breaker(sys, env, current(), (*spawned)++ > 0));
    });
    return out;
  }

  /// True when a change of `a` into `b` needs a new connector.
  static bool transport_changed(const service_config& a, const service_config& b) {
    return a.command != b.command || a.args != b.args || a.env != b.env || a.inherit_env != b.inherit_env
           || a.cwd != b.cwd || a.url != b.url || a.headers != b.headers || a.settings.protocol != b.settings.protocol
           || a.settings.tls.ca_file != b.settings.tls.ca_file || a.settings.tls.cert_file != b.settings.tls.cert_file
           || a.settings.tls.key_file != b.settings.tls.key_file;
  }

  /// Services being removed: a removal's number, so that a drain that ends
  /// after the service came back leaves the new one alone.
  std::map<std::string, uint64_t> removing;
  uint64_t removals = 0;
  milliseconds drain_time{10000};

  /// A new generation: services added, removed or changed, and the naming
  /// and policies, applied as changes of the actor tree.
  void reconfigure(gateway_config next, milliseconds drain) {
    drain_time = drain;
    auto before = config();
    auto after = std::make_shared<const gateway_config>(std::move(next));
    std::map<std::string, const service_config*> old_services, new_services;
    for (auto& s : before->services)
      old_services[s.name] = &s;
    for (auto& s : after->services)
      new_services[s.name] = &s;
    std::vector<std::string> names, removed;
    std::set<std::string> fresh; // added, or with a new transport: a new subtree
    for (auto& s : after->services)
      names.push_back(s.name);
    for (auto& [name, svc] : new_services) {
      auto old = old_services.find(name);
      if (old == old_services.end() || transport_changed(*old->second, *svc))
        fresh.insert(name);
    }
    for (auto& [name, svc] : old_services)
      if (!new_services.count(name))
        removed.push_back(name);
    {
      std::lock_guard<std::mutex> guard(mtx);
      std::atomic_store(&cfg_, after);
      // What the previous subtree said of its service no longer holds.
      auto forget = [&](const std::string& name) {
        lists.erase(name);
        ready_services.erase(name);
        problems.erase(name);
      };
      for (auto& name : removed)
        forget(name);
      for (auto& name : fresh) {
        removing.erase(name);
        forget(name);
      }
      ++lists_version;
    }
    rt.environment()->set_service_names(std::move(names));
    // The catalog first: a removed service's tools are gone before its
    // subtree stops, and handlers carry the new settings.
    republish();
    for (auto& [name, svc] : new_services) {
      if (fresh.count(name)) {
        log::info(old_services.count(name) ? "service transport changed; its connector starts anew" : "service added",
                  value::make_object({{"service", name}}));
        rt.start_group(service_supervisor_name(name), restart_strategy::rest_for_one, service_children(*svc));
        continue;
      }
      auto snapshot = std::shared_ptr<const service_config>(after, svc);
      if (auto b = rt.find(breaker_name(name)))
        caf::anon_send(caf::actor_cast<breaker_actor>(b), atom::reload_v, snapshot);
      if (auto c = rt.find(connector_name(name)))
        caf::anon_send(caf::actor_cast<connector_actor>(c), atom::reload_v, snapshot);
    }
    for (auto& name : removed)
      drain_and_stop(name);
    poke_connectors();
  }

  /// A removed service: its calls in flight may finish within the drain
  /// time (`shutdown.drainSeconds`); then its subtree stops, and what is
  /// still in flight is answered with an error.
  void drain_and_stop(const std::string& name) {
    uint64_t number;
    {
      std::lock_guard<std::mutex> guard(mtx);
      number = ++removals;
      removing[name] = number;
    }
    log::info("service removed; its calls in flight may finish", value::make_object({{"service", name}}));
    auto deadline = steady_clock::now() + drain_time;
    std::weak_ptr<impl> weak = shared_from_this();
    auto stop = [weak, name, number] {
      auto self = weak.lock();
      if (!self)
        return;
      {
        std::lock_guard<std::mutex> guard(self->mtx);
        auto i = self->removing.find(name);
        if (i == self->removing.end() || i->second != number)
          return; // it came back meanwhile
        self->removing.erase(i);
      }
      self->rt.stop_group(service_supervisor_name(name));
      log::info("service stopped", value::make_object({{"service", name}}));
    };
    auto breaker = rt.find(breaker_name(name));
    if (!breaker)
      return stop();
    // Asks the breaker every 100 ms how many calls it holds.
    rt.system().spawn([breaker = caf::actor_cast<breaker_actor>(breaker), deadline,
                       stop](caf::event_based_actor* self) -> caf::behavior {
      self->send(self, atom::timer_v);
      return {[=](atom::timer) {
        if (steady_clock::now() >= deadline) {
          stop();
          return self->quit();
        }
        self->request(breaker, seconds(1), atom::get_v)
          .then(
            [=](const value& status) {
              if (status["inFlight"].is_integer() && status["inFlight"].as_int() == 0) {
                stop();
                return self->quit();
              }
              self->delayed_send(self, milliseconds(100), atom::timer_v);
            },
            [=](caf::error&) {
              stop();
              self->quit();
            });
      }};
    });
  }

  bool has_policy() const {
    // With a key file, any reload may bring a key with its own policy.
    auto cfg = config();
    return !cfg->policy.allow.empty() || !cfg->policy.deny.empty() || !cfg->agents.empty() || rt.options().ops.api_keys;
  }

  /// The policy of the agent behind a call: its own, else the default (the
  /// pointer keeps its generation alive).
  std::shared_ptr<const access_policy> policy_for(const client_view& client) const {
    auto cfg = config();
    if (client.info["name"].is_string())
      if (auto a = cfg->agents.find(client.info["name"].as_string()); a != cfg->agents.end())
        return std::shared_ptr<const access_policy>(cfg, &a->second);
    return std::shared_ptr<const access_policy>(cfg, &cfg->policy);
  }

  /// Whether the caller may use `service:tool`. The policy of the caller's
  /// API key comes first: it is bound to who holds the key, while
  /// `clientInfo.name` is whatever the client says it is.
  policy_decision decide(const client_view& client, const std::string& service, const std::string& tool) const {
    if (auto own = resolve_key(rt.settings()->ops, client.identity).policy)
      return check_policy(*own, service, tool);
    return check_policy(*policy_for(client), service, tool);
  }

  /// Answers a denied call and returns true; false when the policy allows it.
  bool denied(const call_ptr& c, const std::string& service, const std::string& tool) const {
    auto d = decide(c->client(), service, tool);
    if (d.allowed)
      return false;
    c->give_back(); // the service was not used: its budget (and the caller's) is given back
    auto trace = mcp::new_trace_id();
    audit::record({"policy.denied",
                   "denied",
                   c->client().identity,
                   {},
                   service + ":" + tool,
                   trace,
                   value::make_object({{"rule", d.rule}})});
    c->fail(error_code::denied_by_policy,
            "DENIED_BY_POLICY: " + service + ":" + tool + " is denied by the gateway policy (" + d.rule + ")",
            value::make_object({{"rule", d.rule}, {"server", service}, {"tool", tool}, {"traceId", trace}}));
    return true;
  }

  static std::string str(const value& v, std::string_view key) {
    const auto& x = v[key];
    return x.is_string() ? x.as_string() : std::string();
  }

  call_handler route(const service_config& s, std::string method, std::function<value(const call_ptr&)> params,
                     bool idempotent, bool cacheable = false) {
    return [self = shared_from_this(), service = s.name, method = std::move(method), params = std::move(params),
            idempotent, timeout = s.settings.timeout, cacheable](const call_ptr& c) {
      self->run_call(c, service, method, params(c), idempotent, timeout, cacheable);
    };
  }

  tool_spec make_tool(const service_config& s, const value& tool, const std::string& exposed) {
    tool_spec spec;
    spec.name = exposed;
    spec.service = s.name;
    spec.title = str(tool, "title");
    spec.description = str(tool, "description");
    spec.input_schema =
      tool["inputSchema"].is_object() ? tool["inputSchema"] : value::make_object({{"type", "object"}});
    if (tool["outputSchema"].is_object())
      spec.output_schema = tool["outputSchema"];
    if (tool["annotations"].is_object())
      spec.annotations = tool["annotations"];
    auto name = tool["name"].as_string();
    bool idempotent =
      tool["annotations"]["idempotentHint"].is_bool() && tool["annotations"]["idempotentHint"].as_bool();
    idempotent = idempotent
                 || std::find(s.settings.idempotent_tools.begin(), s.settings.idempotent_tools.end(), name)
                      != s.settings.idempotent_tools.end();
    bool read_only = tool["annotations"]["readOnlyHint"].is_bool() && tool["annotations"]["readOnlyHint"].as_bool();
    bool cacheable = s.settings.cache_ttl.count() > 0
                     && (read_only
                         || std::find(s.settings.cacheable_tools.begin(), s.settings.cacheable_tools.end(), name)
                              != s.settings.cacheable_tools.end());
    auto forward = route(
      s, "tools/call",
      [name](const call_ptr& c) {
        return value::make_object({{"name", name}, {"arguments", c->arguments()}});
      },
      idempotent, cacheable);
    if (has_policy()) {
      std::weak_ptr<impl> weak = shared_from_this();
      auto service = s.name;
      spec.visible = [weak, service, name](const client_view& client) {
        auto self = weak.lock();
        return self && self->decide(client, service, name).allowed;
      };
      spec.handler = [weak, service, name, forward](const call_ptr& c) {
        auto self = weak.lock();
        if (self && !self->denied(c, service, name))
          forward(c);
      };
    } else {
      spec.handler = std::move(forward);
    }
    return spec;
  }

  /// A handler that runs `fn` while the gateway exists.
  static call_handler guarded(std::weak_ptr<impl> weak, std::function<void(impl&, const call_ptr&)> fn) {
    return [weak, fn = std::move(fn)](const call_ptr& c) {
      auto self = weak.lock();
      if (!self)
        return c->fail(error_code::shutting_down, "the gateway is stopping");
      fn(*self, c);
    };
  }

  /// The service named by the call's `server` argument; answers the call
  /// with -32602 and returns null when there is none.
  std::shared_ptr<const service_config> named_server(const call_ptr& c) const {
    const auto& server = c->arguments()["server"].as_string();
    auto svc = service(server);
    if (!svc)
      c->fail(error_code::invalid_params, "no server named '" + server + "'", value::make_object({{"server", server}}));
    return svc;
  }

  /// Where the caller's calls stand in the priority queue.
  tool_spec queue_status_tool() {
    tool_spec t;
    t.name = "queue_status";
    t.title = "Queue status";
    t.description = "Shows your calls that wait in Bulwark's priority queue for a downstream service: "
                    "position, priority and estimated wait, and how deep the queue is per priority.";
    t.input_schema = value::make_object(
      {{"type", "object"},
       {"properties",
        value::make_object(
          {{"requestId",
            value::make_object(
              {{"type", value::make_array({"string", "integer"})},
               {"description", "JSON-RPC id of one of your pending calls (all of them when left out)"}})}})}});
    t.annotations = value::make_object({{"readOnlyHint", true}, {"idempotentHint", true}});
    t.handler = guarded(shared_from_this(), [](impl& self, const call_ptr& c) {
      auto queue = self.rt.find(queue_actor_name);
      if (!queue)
        return c->fail(error_code::actor_restarted, "the request queue is restarting; retry",
                       value::make_object({{"retry_after_seconds", 1}}));
      ask(
        self.rt.system(), caf::actor_cast<queue_actor>(queue), queue_status_timeout,
        [c](value status) {
          c->resume([status = std::move(status)](const call_ptr& c) {
            auto r = mcp::text_result(json::dump(status));
            r.set("structuredContent", status);
            c->finish(std::move(r));
          });
        },
        // The queue was gone, killed before it answered, or too slow.
        [c](const caf::error&) {
          c->resume([](const call_ptr& c) {
            c->fail(error_code::actor_restarted, "the request queue did not answer (restarted or busy); retry",
                    value::make_object({{"retry_after_seconds", 1}}));
          });
        },
        atom::position_v, c->client().identity, c->arguments()["requestId"]);
    });
    return t;
  }

  /// list_servers, get_server_tools and execute_tool, for agents that
  /// discover tools lazily instead of reading one long tools/list.
  std::vector<tool_spec> gateway_tools() {
    std::vector<tool_spec> out;
    std::weak_ptr<impl> weak = shared_from_this();
    auto string_prop = [](const char* what) { return value::make_object({{"type", "string"}, {"description", what}}); };

    tool_spec list;
    list.name = "list_servers";
    list.title = "List servers";
    list.description = "Lists the MCP servers behind this gateway and how many tools each offers you.";
    list.input_schema = value::make_object({{"type", "object"}});
    list.annotations = value::make_object({{"readOnlyHint", true}, {"idempotentHint", true}});
    list.handler = guarded(weak, [](impl& self, const call_ptr& c) {
      value servers(json::array{});
      auto cfg = self.config();
      std::lock_guard<std::mutex> guard(self.mtx);
      for (auto& s : cfg->services) {
        long long visible = 0;
        for (auto& t : self.list_of(s.name, "tools/list").as_array())
          if (self.decide(c->client(), s.name, t["name"].as_string()).allowed)
            ++visible;
        auto entry = value::make_object({{"name", s.name},
                                         {"transport", s.is_stdio() ? "stdio" : "http"},
                                         {"status", self.status_of(s.name)},
                                         {"listed", self.lists.count(s.name) > 0},
                                         {"tools", visible}});
        if (auto p = self.problems.find(s.name); p != self.problems.end() && !self.ready_services.count(s.name))
          entry.set("reason", p->second);
        servers.push_back(std::move(entry));
      }
      auto r = mcp::text_result(json::dump(servers));
      r.set("structuredContent", value::make_object({{"servers", std::move(servers)}}));
      c->finish(std::move(r));
    });
    out.push_back(std::move(list));

    tool_spec get;
    get.name = "get_server_tools";
    get.title = "Get a server's tools";
    get.description = "Lists the tools of one server behind this gateway, with their input schemas.";
    get.input_schema = value::make_object({{"type", "object"},
                                           {"properties", value::make_object({{"server", string_prop("Server name")}})},
                                           {"required", value::make_array({"server"})}});
    get.annotations = value::make_object({{"readOnlyHint", true}, {"idempotentHint", true}});
    get.handler = guarded(weak, [](impl& self, const call_ptr& c) {
      if (!self.named_server(c))
        return;
      const auto& server = c->arguments()["server"].as_string();
      value tools(json::array{});
      std::lock_guard<std::mutex> guard(self.mtx);
      // A service that never listed its tools has none to show: say why.
      auto listed = self.lists.find(server);
      if ((listed == self.lists.end() || !listed->second.count("tools/list")) && !self.ready_services.count(server))
        return self.fail_not_ready(c, server);
      for (auto& t : self.list_of(server, "tools/list").as_array())
        if (self.decide(c->client(), server, t["name"].as_string()).allowed)
          tools.push_back(t);
      auto r = mcp::text_result(json::dump(tools));
      r.set("structuredContent", value::make_object({{"server", server}, {"tools", std::move(tools)}}));
      c->finish(std::move(r));
    });
    out.push_back(std::move(get));

    tool_spec exec;
    exec.name = "execute_tool";
    exec.title = "Execute a server's tool";
    exec.description = "Calls one tool of one server behind this gateway with the given arguments.";
    exec.input_schema = value::make_object(
      {{"type", "object"},
       {"properties", value::make_object({{"server", string_prop("Server name")},
                                          {"tool", string_prop("Tool name, as get_server_tools lists it")},
                                          {"arguments", value::make_object({{"type", "object"}})}})},
       {"required", value::make_array({"server", "tool"})}});
    // The named service's rate budget applies, as to its own tools.
    exec.service_of = [](const value& arguments) { return str(arguments, "server"); };
    // The call runs as if the tool had been called by its exposed name: its
    // input schema, the policy, its priority, idempotence and cache apply.
    exec.handler = guarded(weak, [](impl& self, const call_ptr& c) {
      if (!c->tool.empty() && !c->request_state().empty()) {
        // A 2025-era call runs again once its client answered what the
        // service asked: it goes on as the tool it was resolved to (its
        // arguments are that tool's now), as a call by name would.
        auto cat = self.rt.current_catalog();
        if (const auto* spec = cat->find_tool(c->tool))
          return spec->handler(c);
        return c->fail(error_code::service_unavailable, "the tool '" + c->tool + "' is no longer offered",
                       value::make_object({{"tool", c->tool}, {"reachedService", true}}));
      }
      auto svc = self.named_server(c);
      if (!svc)
        return;
      const auto& server = svc->name;
      const auto& tool = c->arguments()["tool"].as_string();
      // A denied tool is refused before anything else is said of it.
      if (self.denied(c, server, tool))
        return;
      std::string exposed;
      {
        std::lock_guard<std::mutex> guard(self.mtx);
        if (auto i = self.exposed_tools.find(server + "\n" + tool); i != self.exposed_tools.end())
          exposed = i->second;
        else if (!self.ready_services.count(server))
          return self.fail_not_ready(c, server);
      }
      auto cat = self.rt.current_catalog();
      const auto* spec = exposed.empty() ? nullptr : cat->find_tool(exposed);
      if (!spec || spec->service != server)
        return c->fail(error_code::invalid_params, "server '" + server + "' has no tool named '" + tool + "'",
                       value::make_object({{"server", server}, {"tool", tool}}));
      auto args = c->arguments()["arguments"].is_object() ? c->arguments()["arguments"] : value(json::object{});
      if (self.rt.options().validate_arguments)
        if (auto invalid = check_arguments(*spec, args))
          return c->fail(error_code::invalid_params, std::move(invalid->message), std::move(invalid->data));
      c->tool = exposed;
      c->set_arguments(std::move(args));
      spec->handler(c);
    });
    out.push_back(std::move(exec));
    return out;
  }

  prompt_spec make_prompt(const service_config& s, const value& prompt, const std::string& exposed) {
    prompt_spec spec;
    spec.name = exposed;
    spec.service = s.name;
    spec.title = str(prompt, "title");
    spec.description = str(prompt, "description");
    for (auto& a : prompt["arguments"].as_array())
      spec.arguments.push_back(
        prompt_argument{str(a, "name"), str(a, "description"), a["required"].is_bool() && a["required"].as_bool()});
    auto name = prompt["name"].as_string();
    // Reading a prompt changes nothing: it may be sent again.
    spec.handler = route(
      s, "prompts/get",
      [name](const call_ptr& c) {
        return value::make_object({{"name", name}, {"arguments", c->arguments()}});
      },
      true);
    spec.complete = completion(s, value::make_object({{"type", "ref/prompt"}, {"name", name}}));
    return spec;
  }

  /// Completion of a prompt's or template's arguments goes to the service,
  /// which knows their values, with `ref` as the service names it. It
  /// changes nothing, so it may be sent again.
  call_handler completion(const service_config& s, value ref) {
    return route(
      s, "completion/complete",
      [ref = std::move(ref)](const call_ptr& c) {
        auto params = value::make_object({{"ref", ref}, {"argument", c->params()["argument"]}});
        if (c->params()["context"].is_object())
          params.set("context", c->params()["context"]);
        return params;
      },
      true);
  }

  /// Fills what resources and templates share; reads go to the service by URI.
  template <class Spec>
  Spec make_readable(const service_config& s, const value& r) {
    Spec spec;
    spec.service = s.name;
    spec.name = str(r, "name");
    spec.title = str(r, "title");
    spec.description = str(r, "description");
    spec.mime_type = str(r, "mimeType");
    // Reading changes nothing, so a read is cacheable whenever the service
    // caches at all (unless `cache.resources` is false).
    bool cacheable = s.settings.cache_ttl.count() > 0 && s.settings.cache_resources;
    spec.handler = route(
      s, "resources/read",
      [](const call_ptr& c) {
        return value::make_object({{"uri", c->arguments()["uri"]}});
      },
      true, cacheable);
    return spec;
  }

  resource_spec make_resource(const service_config& s, const value& r) {
    auto spec = make_readable<resource_spec>(s, r);
    spec.uri = r["uri"].as_string();
    return spec;
  }

  resource_template_spec make_template(const service_config& s, const value& t) {
    auto spec = make_readable<resource_template_spec>(s, t);
    spec.uri_template = t["uriTemplate"].as_string();
    spec.complete = completion(s, value::make_object({{"type", "ref/resource"}, {"uri", spec.uri_template}}));
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
  d.hooks->child_max_restarts = d.config()->child_max_restarts;
  d.hooks->child_restart_window = d.config()->child_restart_window;
  std::weak_ptr<impl> weak = impl_;
  d.hooks->publish = [weak](const std::string& service, const std::string& method, value items) {
    auto self = weak.lock();
    if (!self)
      return;
    if (!self->service(service))
      return; // removed by a reload, and draining
    auto count = static_cast<unsigned long long>(items.as_array().size());
    {
      std::lock_guard<std::mutex> guard(self->mtx);
      self->lists[service][method] = std::move(items);
      ++self->lists_version;
    }
    log::info("service listed", value::make_object({{"service", service}, {"method", method}, {"items", count}}));
    self->republish();
    // A URI may have changed hands: each service checks what it watches.
    if (method == "resources/list" || method == "resources/templates/list")
      self->poke_connectors();
  };
  d.hooks->resource_updated = [&rt](const std::string& uri) { rt.notify_resource_updated(uri); };
  d.hooks->status = [weak](const std::string& service, bool ready, const std::string& problem) {
    auto self = weak.lock();
    if (!self || !self->service(service))
      return;
    std::lock_guard<std::mutex> guard(self->mtx);
    if (ready) {
      self->ready_services.insert(service);
      self->problems.erase(service);
    } else {
      self->ready_services.erase(service);
      self->problems[service] = problem;
    }
    self->cv.notify_all();
  };
  d.poke_connectors = [weak] {
    auto self = weak.lock();
    if (!self)
      return;
    auto cfg = self->config();
    for (auto& s : cfg->services)
      if (auto c = self->rt.find(connector_name(s.name)))
        caf::anon_send(caf::actor_cast<connector_actor>(c), atom::watch_v);
  };
  rt.environment()->watches->on_change(d.poke_connectors);
  d.hooks->watched = [weak](const std::string& service) {
    auto self = weak.lock();
    return self ? self->owned_watches(service) : std::vector<std::string>{};
  };
  d.hooks->changed = [&rt](const std::string& service, const std::string& method, const std::string& uri) {
    // What the service changed can no longer be answered from memory: a
    // changed list drops every result of its kind, an updated resource the
    // reads of its URI (for every caller).
    std::string what = method == "notifications/tools/list_changed"     ? "tools/call"
                       : method == "notifications/prompts/list_changed" ? "prompts/get"
                                                                        : "resources/read";
    std::string prefix = service + "\n" + what + "\n";
    if (method == "notifications/resources/updated") {
      if (uri.empty() || uri.find('\n') != std::string::npos)
        return; // no read of it was kept
      prefix += uri + "\n";
    }
    if (auto cache = rt.find(cache_actor_name))
      caf::anon_send(caf::actor_cast<cache_actor>(cache), atom::drop_v, prefix);
  };
  // Results of cacheable tools, and stale copies for degraded answers.
  auto current = d.config();
  std::vector<std::string> service_names;
  for (auto& s : current->services)
    service_names.push_back(s.name);
  rt.environment()->set_service_names(std::move(service_names));
  rt.add_supervised(
    cache_actor_name,
    [&rt](caf::actor_system& sys) {
      // A restarted cache takes the bounds of the generation in force.
      auto ops = rt.settings()->ops;
      return caf::actor_cast<caf::actor>(spawn_cache(sys, ops.cache_entries, ops.cache_bytes, rt.environment()->redis));
    },
    names::operations_supervisor);
  // Per service, rest-for-one: the breaker's calls in flight went to the
  // connector, so a connector that dies takes its breaker along (which
  // answers those calls at once and comes back half-open).
  for (auto& s : current->services) {
    auto group = service_supervisor_name(s.name);
    rt.add_supervisor(group, restart_strategy::rest_for_one);
    for (auto& [name, spawn] : d.service_children(s))
      rt.add_supervised(name, std::move(spawn), group);
  }
}

void gateway::reconfigure(gateway_config next, milliseconds drain) {
  impl_->reconfigure(std::move(next), drain);
}

gateway::~gateway() {
  auto& d = *impl_;
  d.hooks->publish = nullptr;
  d.hooks->status = nullptr;
  d.hooks->resource_updated = nullptr;
  d.hooks->changed = nullptr;
  d.hooks->watched = nullptr;
  d.rt.environment()->watches->on_change(nullptr);
  if (d.own_io) {
    d.io_guard.reset();
    d.own_io->stop();
    if (d.io_thread.joinable())
      d.io_thread.join();
  }
}

std::vector<std::string> gateway::wait_ready(milliseconds limit) {
  auto& d = *impl_;
  auto cfg = d.config();
  std::unique_lock<std::mutex> guard(d.mtx);
  auto listed = [&](const std::string& name) {
    auto s = d.lists.find(name);
    return s != d.lists.end() && s->second.count("tools/list");
  };
  // A service whose start failed is not waited for: it is reported (health,
  // the gateway tools) and its tools appear once it starts.
  auto failed = [&](const std::string& name) { return d.problems.count(name) && !d.ready_services.count(name); };
  d.cv.wait_for(guard, limit, [&] {
    return d.named_version == d.lists_version && std::all_of(cfg->services.begin(), cfg->services.end(), [&](auto& s) {
             return listed(s.name) || failed(s.name);
           });
  });
  bool never = cfg->prefix == prefix_mode::never;
  for (auto& s : cfg->services)
    never = never || s.settings.prefix == prefix_mode::never;
  if (never && !d.clash_errors.empty()) {
    std::string why;
    for (auto& e : d.clash_errors)
      why += (why.empty() ? "" : "; ") + e.substr(0, e.find("; the one of"));
    throw gateway_error("name clash (prefix mode never): " + why);
  }
  std::vector<std::string> missing;
  for (auto& s : cfg->services)
    if (!listed(s.name))
      missing.push_back(s.name);
  return missing;
}

} // namespace bulwark
