#include "actors/gateway_router.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <caf/all.hpp>

#include "actors/breaker.hpp"
#include "actors/cache.hpp"
#include "actors/connector.hpp"
#include "actors/gateway_calls.hpp"
#include "actors/gateway_tools.hpp"
#include "actors/operations.hpp"
#include "actors/runtime.hpp"
#include "actors/shared_state.hpp"
#include "actors/tool_pins.hpp"
#include "actors/tool_view.hpp"
#include "config/audit.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

/// How long a restarted router waits for the connectors' reports before it
/// publishes the catalog with what it has.
constexpr milliseconds recovery_wait{1000};
/// How often a removed service's drain is checked.
constexpr milliseconds drain_check{100};

struct router_state {
  static inline const char* name = "gateway-router";

  runtime* rt = nullptr;
  gateway_seed_ptr seed;
  gateway_config_ptr cfg;

  /// service -> list method (tools/list, ...) -> its items
  std::map<std::string, std::map<std::string, value>> lists;
  /// What connectors last said of their services: ready, or why not.
  std::set<std::string> ready_services;
  std::map<std::string, std::string> problems;
  /// Tool and prompt names offered twice (which stop start-up in prefix mode
  /// never), and URIs offered twice (logged only), as last logged.
  std::vector<std::string> clash_errors;
  std::vector<std::string> logged_uri_clashes;
  /// service -> its tools as clients see them (services.<name>.tools
  /// applied), and each shown name's tool name at the service.
  std::map<std::string, value> shown;
  std::map<std::string, std::map<std::string, std::string>> own_names;
  /// service -> a tool's shown name -> the exposed name.
  std::map<std::string, std::map<std::string, std::string>> exposed;
  /// Tool-definition pinning (gateway.pinning): approved definitions and
  /// held changes, kept in the pinning file and, with Redis, in the
  /// fleet's book (`fleet_pins`). Until the fleet's pins are read
  /// (`pins_read`), a pinned service's tools are withheld: a tool first
  /// seen here may be one the fleet holds back.
  pin_book pins;
  bool fleet_pins = false;
  bool pins_read = true;

  /// Services being removed: a removal's number (a drain that ends after the
  /// service came back leaves the new one alone) and when it ends at last.
  struct removal {
    uint64_t number = 0;
    steady_clock::time_point deadline;
  };
  std::map<std::string, removal> removing;
  uint64_t removals = 0;

  /// Start-up's readiness questions, with when their time is up.
  std::vector<std::pair<caf::typed_response_promise<gateway_readiness>, steady_clock::time_point>> waiting;

  /// A restarted router: the catalog is published once every connector
  /// asked (`awaiting`) reported, or when `recover_until` passes.
  bool recovering = false;
  std::set<std::string> awaiting;
  steady_clock::time_point recover_until{};

  /// Whether the generation in force has this service (one a reload
  /// removed may still be draining, and reporting).
  bool has_service(const std::string& service) const {
    return std::any_of(cfg->services.begin(), cfg->services.end(), [&](auto& s) { return s.name == service; });
  }

  std::string status_of(const std::string& service) const {
    if (ready_services.count(service))
      return "ready";
    return problems.count(service) ? "unavailable" : "starting";
  }

  const value& list_of(const std::string& service, const std::string& method) const {
    static const value empty(json::array{});
    auto s = lists.find(service);
    if (s == lists.end())
      return empty;
    auto m = s->second.find(method);
    return m == s->second.end() || !m->second.is_array() ? empty : m->second;
  }

  bool listed(const std::string& service) const {
    auto s = lists.find(service);
    return s != lists.end() && s->second.count("tools/list");
  }

  /// The service a resource URI's reads go to (the catalog's order): the
  /// first that lists it, else the first with a template matching it.
  /// Empty when none offers it.
  std::string owner_of(const std::string& uri) const {
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

  /// Exposed names for one kind of named item (tools or prompts): calls
  /// `add(service, item, exposed)` for each item that gets a name. `own`
  /// holds the names Bulwark itself lists (built-in, host and fixture
  /// items, and the gateway's own tools): a source of their own, which
  /// keeps its names; a service's item of the same name is prefixed in
  /// conditional mode and refused in never mode.
  template <class Add>
  void name_items(const std::string& method, const char* kind, const std::set<std::string>& own,
                  std::vector<std::string>& errors, Add add) const {
    // Tools as clients see them; prompts as the services list them.
    auto items = [&](const std::string& service) -> const value& {
      if (method == "tools/list")
        if (auto i = shown.find(service); i != shown.end())
          return i->second;
      return list_of(service, method);
    };
    std::map<std::string, std::vector<std::string>> offered; // downstream name -> services
    for (auto& s : cfg->services)
      for (auto& item : items(s.name).as_array())
        if (item["name"].is_string())
          offered[item["name"].as_string()].push_back(s.name);
    std::map<std::string, std::string> taken; // exposed name -> who offers it
    for (auto& name : own)
      taken.emplace(name, "Bulwark's own " + std::string(kind) + "s");
    for (auto& s : cfg->services) {
      auto mode = s.settings.prefix.value_or(cfg->prefix);
      auto sep = s.settings.separator.value_or(cfg->separator);
      for (auto& item : items(s.name).as_array()) {
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

  /// Whether start-up may go on: every service listed its tools or failed
  /// to start (it is reported, and its tools appear once it starts).
  bool settled() const {
    if (recovering || !pins_read)
      return false;
    return std::all_of(cfg->services.begin(), cfg->services.end(), [&](auto& s) {
      return listed(s.name) || (problems.count(s.name) && !ready_services.count(s.name));
    });
  }

  gateway_readiness readiness() const {
    gateway_readiness r;
    bool never = cfg->prefix == prefix_mode::never;
    for (auto& s : cfg->services)
      never = never || s.settings.prefix == prefix_mode::never;
    if (never && !clash_errors.empty()) {
      r.refusal = "name clash (prefix mode never): ";
      bool first = true;
      for (auto& e : clash_errors) {
        r.refusal += (first ? "" : "; ") + e.substr(0, e.find("; the one of"));
        first = false;
      }
    }
    for (auto& s : cfg->services)
      if (!listed(s.name))
        r.not_ready.push_back(s.name);
    return r;
  }
};

using router_pointer = gateway_router_actor::stateful_pointer<router_state>;

/// Writes the pins to the pinning file (a failure is logged: the pins in
/// memory still hold changes back).
void save_pins(const router_state& st) {
  std::string error;
  if (!st.cfg->pinning_file.empty() && !st.pins.save(st.cfg->pinning_file, error))
    log::error("tool pins not saved", value::make_object({{"error", error}}));
}

/// Keeps the pins that changed: in the file, and in the fleet's book.
void store_pins(router_pointer self) {
  auto& st = self->state;
  auto writes = st.pins.take_writes();
  if (writes.empty())
    return;
  save_pins(st);
  if (st.fleet_pins)
    write_shared_pins(st.rt->environment(), std::move(writes), caf::actor_cast<gateway_router_actor>(self));
}

/// A service changed a tool's definition, and pinning holds the change back
/// until an operator approves it: the log, the audit log and a metric say
/// so (the tool_changed alert fires while it is held).
void tool_held(const router_state& st, const std::string& service, const std::string& tool) {
  auto how = st.cfg->pinning == "hide" ? "the tool is hidden" : "its approved definition is served";
  log::warn("tool definition changed; the change is held until an operator approves it",
            value::make_object({{"service", service}, {"tool", tool}, {"served", how}}));
  audit::record({"tool.held",
                 "held",
                 "service:" + service,
                 {},
                 service + ":" + tool,
                 {},
                 value::make_object({{"service", service}, {"tool", tool}, {"mode", st.cfg->pinning}})});
  if (auto& m = st.rt->environment()->metrics)
    m->counter("bulwark_tool_changes_held_total", {{"service", service}}).inc();
}

/// Rebuilds what the services offer, under exposed names, in the catalog's
/// "gateway" group; answers start-up once it may go on.
void republish(router_pointer self) {
  auto& st = self->state;
  auto& rt = *st.rt;
  auto ctx = std::make_shared<gateway_context>();
  ctx->rt = st.rt;
  ctx->router = caf::actor_cast<gateway_router_actor>(self);
  ctx->cfg = st.cfg;
  gateway_context_ptr shared = ctx;
  std::vector<tool_spec> tools;
  std::vector<prompt_spec> prompts;
  std::vector<resource_spec> resources;
  std::vector<resource_template_spec> templates;
  std::vector<std::string> errors;
  // What Bulwark lists of its own keeps its names; so do the gateway's
  // own tools.
  std::vector<tool_spec> own_tools;
  if (st.cfg->gateway_tools)
    own_tools = gateway_tools(shared);
  own_tools.push_back(queue_status_tool(shared));
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
  st.exposed.clear();
  st.shown.clear();
  st.own_names.clear();
  for (auto& s : st.cfg->services) {
    const value* tools_of = &st.list_of(s.name, "tools/list");
    value served(json::array{});
    if (st.cfg->pinning != "off" && st.listed(s.name)) {
      if (st.pins_read) {
        std::vector<std::string> held;
        st.pins.apply(s.name, *tools_of, st.cfg->pinning == "hide", served, held);
        for (auto& tool : held)
          tool_held(st, s.name, tool);
      }
      tools_of = &served;
    }
    st.shown[s.name] = shown_tools(*tools_of, s.settings.tools, st.own_names[s.name]);
  }
  store_pins(self);
  st.name_items("tools/list", "tool", own_tool_names, errors, [&](auto& s, auto& item, auto& exposed) {
    const auto& shown_name = item["name"].as_string();
    tools.push_back(make_tool(shared, s, item, exposed, st.own_names[s.name][shown_name]));
    st.exposed[s.name][shown_name] = exposed;
  });
  st.name_items("prompts/list", "prompt", own_prompt_names, errors,
                [&](auto& s, auto& item, auto& exposed) { prompts.push_back(make_prompt(shared, s, item, exposed)); });
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
  for (auto& s : st.cfg->services) {
    for (auto& r : st.list_of(s.name, "resources/list").as_array())
      if (r["uri"].is_string() && claim("resource", r["uri"].as_string(), s.name))
        resources.push_back(make_resource(shared, s, r));
    for (auto& t : st.list_of(s.name, "resources/templates/list").as_array())
      if (t["uriTemplate"].is_string() && claim("resource template", t["uriTemplate"].as_string(), s.name))
        templates.push_back(make_template(shared, s, t));
  }
  bool changed = errors != st.clash_errors || uri_clashes != st.logged_uri_clashes;
  st.clash_errors = errors;
  st.logged_uri_clashes = uri_clashes;
  errors.insert(errors.end(), uri_clashes.begin(), uri_clashes.end());
  if (changed) // said once, when they arose
    for (auto& e : errors)
      log::error("name clash", value::make_object({{"error", e}}));
  for (auto& t : own_tools)
    tools.push_back(std::move(t));
  rt.set_group("gateway", std::move(tools), std::move(resources), std::move(templates), std::move(prompts));
}

/// A restarted router has heard from every connector (or waited long
/// enough): the catalog is published from what they said.
void end_recovery(router_pointer self) {
  auto& st = self->state;
  value missing(json::array{});
  for (auto& name : st.awaiting)
    missing.push_back(name);
  st.awaiting.clear();
  st.recovering = false;
  republish(self);
  log::info("gateway catalog rebuilt from the connectors' reports",
            value::make_object({{"services", static_cast<unsigned long long>(st.cfg->services.size())},
                                {"unreported", std::move(missing)}}));
}

/// Answers start-up's readiness questions: all once it may go on, else
/// those whose time is up.
void answer_ready(router_pointer self) {
  auto& st = self->state;
  if (st.waiting.empty())
    return;
  bool settled = st.settled();
  auto now = steady_clock::now();
  for (auto i = st.waiting.begin(); i != st.waiting.end();) {
    if (settled || now >= i->second) {
      i->first.deliver(st.readiness());
      i = st.waiting.erase(i);
    } else {
      ++i;
    }
  }
}

/// Tells each connector (or the one of `only`) which watched resources its
/// service owns.
void push_watches(router_pointer self, const std::string& only = {}) {
  auto& st = self->state;
  auto watched = st.rt->environment()->watches->watched();
  std::map<std::string, std::vector<std::string>> owned;
  for (auto& uri : watched)
    if (auto owner = st.owner_of(uri); !owner.empty())
      owned[owner].push_back(uri);
  for (auto& s : st.cfg->services) {
    if (!only.empty() && s.name != only)
      continue;
    if (auto c = st.rt->find(connector_name(s.name)))
      self->send(caf::actor_cast<connector_actor>(c), atom::watch_v, std::move(owned[s.name]));
  }
}

} // namespace

bool transport_changed(const service_config& a, const service_config& b) {
  return a.command != b.command || a.args != b.args || a.env != b.env || a.inherit_env != b.inherit_env
         || a.cwd != b.cwd || a.url != b.url || a.headers != b.headers || a.auth != b.auth
         || a.settings.protocol != b.settings.protocol || a.settings.tls.ca_file != b.settings.tls.ca_file
         || a.settings.tls.cert_file != b.settings.tls.cert_file || a.settings.tls.key_file != b.settings.tls.key_file;
}

namespace {

/// A removed service's subtree stops (after its drain).
void stop_removed(router_pointer self, const std::string& name) {
  self->state.removing.erase(name);
  self->state.seed->draining.erase(name);
  self->state.rt->stop_group(service_supervisor_name(name));
  log::info("service stopped", value::make_object({{"service", name}}));
}

/// A new generation: services added, removed or changed, and the naming
/// and policies, applied as changes of the actor tree.
void reconfigure(router_pointer self, gateway_config_ptr after, milliseconds drain) {
  auto& st = self->state;
  auto& rt = *st.rt;
  auto before = st.cfg;
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
  st.cfg = after;
  st.seed->set(after);
  // What the previous subtree said of its service no longer holds.
  auto forget = [&](const std::string& name) {
    st.lists.erase(name);
    st.ready_services.erase(name);
    st.problems.erase(name);
  };
  for (auto& name : removed)
    forget(name);
  for (auto& name : fresh) {
    st.removing.erase(name);
    st.seed->draining.erase(name);
    forget(name);
  }
  rt.environment()->set_service_names(std::move(names));
  // The catalog first: a removed service's tools are gone before its
  // subtree stops, and entries carry the new settings.
  republish(self);
  for (auto& [name, svc] : new_services) {
    if (fresh.count(name)) {
      log::info(old_services.count(name) ? "service transport changed; its connector starts anew" : "service added",
                value::make_object({{"service", name}}));
      rt.start_group(service_supervisor_name(name), restart_strategy::rest_for_one, st.seed->children(*svc));
      continue;
    }
    auto snapshot = std::shared_ptr<const service_config>(after, svc);
    if (auto b = rt.find(breaker_name(name)))
      self->send(caf::actor_cast<breaker_actor>(b), atom::reload_v, snapshot);
    if (auto c = rt.find(connector_name(name)))
      self->send(caf::actor_cast<connector_actor>(c), atom::reload_v, snapshot);
  }
  // A removed service's calls in flight may finish within the drain time
  // (`shutdown.drainSeconds`); then its subtree stops, and what is still in
  // flight is answered with an error.
  for (auto& name : removed) {
    auto number = ++st.removals;
    st.removing[name] = router_state::removal{number, steady_clock::now() + drain};
    st.seed->draining.insert(name);
    log::info("service removed; its calls in flight may finish", value::make_object({{"service", name}}));
    self->send(self, atom::drop_v, name, number);
  }
  push_watches(self);
}

/// Asks a removed service's breaker how many calls it holds; stops the
/// subtree when none is left or the drain time is up.
void check_drain(router_pointer self, const std::string& name, uint64_t number) {
  auto& st = self->state;
  auto i = st.removing.find(name);
  if (i == st.removing.end() || i->second.number != number)
    return; // it came back meanwhile
  auto breaker = st.rt->find(breaker_name(name));
  if (!breaker || steady_clock::now() >= i->second.deadline)
    return stop_removed(self, name);
  self->request(caf::actor_cast<breaker_actor>(breaker), seconds(1), atom::get_v)
    .then(
      [self, name, number](const value& status) {
        auto i = self->state.removing.find(name);
        if (i == self->state.removing.end() || i->second.number != number)
          return;
        if (status["inFlight"].is_integer() && status["inFlight"].as_int() == 0)
          return stop_removed(self, name);
        self->delayed_send(self, drain_check, atom::drop_v, name, number);
      },
      [self, name, number](caf::error&) {
        auto i = self->state.removing.find(name);
        if (i != self->state.removing.end() && i->second.number == number)
          stop_removed(self, name);
      });
}

/// What the gateway tools show of the services (one, or all for "").
value services_view(const router_state& st, const std::string& only) {
  value out(json::array{});
  for (auto& s : st.cfg->services) {
    if (!only.empty() && s.name != only)
      continue;
    value exposed(json::object{});
    if (auto e = st.exposed.find(s.name); e != st.exposed.end())
      for (auto& [name, as] : e->second)
        exposed.set(name, as);
    auto entry = value::make_object({{"name", s.name},
                                     {"transport", s.is_stdio() ? "stdio" : "http"},
                                     {"status", st.status_of(s.name)},
                                     {"listed", st.listed(s.name)},
                                     {"tools", st.shown.count(s.name) ? st.shown.at(s.name) : value(json::array{})},
                                     {"exposed", std::move(exposed)}});
    if (auto p = st.problems.find(s.name); p != st.problems.end() && !st.ready_services.count(s.name))
      entry.set("reason", p->second);
    out.push_back(std::move(entry));
  }
  return out;
}

gateway_router_actor::behavior_type router_behavior(router_pointer self, runtime* rt, gateway_seed_ptr seed,
                                                    bool restarted) {
  auto& st = self->state;
  st.rt = rt;
  st.seed = std::move(seed);
  st.cfg = st.seed->current();
  if (st.cfg->pinning != "off") {
    st.fleet_pins = rt->environment()->redis != nullptr;
    st.pins = pin_book(st.fleet_pins);
    std::string error;
    if (!st.cfg->pinning_file.empty() && !st.pins.load(st.cfg->pinning_file, error))
      log::error("tool pins not read; every tool is pinned anew", value::make_object({{"error", error}}));
    if (st.fleet_pins) {
      st.pins_read = false;
      read_shared_pins(rt->environment(), caf::actor_cast<gateway_router_actor>(self));
    }
  }
  if (restarted) {
    // The connectors are asked what their services offer once they can see
    // this router (atom::publish from the spawn function); the catalog is
    // published once they said.
    st.recovering = true;
    // Removed services that were draining: their drain ended with the
    // router that timed it.
    for (auto name : std::set<std::string>(st.seed->draining))
      stop_removed(self, name);
    st.recover_until = steady_clock::now() + recovery_wait;
    self->delayed_send(self, recovery_wait, atom::timer_v);
    log::info("gateway router started again; asking the connectors what their services offer");
  } else {
    republish(self);
  }
  return {
    [self](atom::publish) {
      // Connectors that reported before this router existed (or to its
      // predecessor) tell it again.
      auto& st = self->state;
      for (auto& s : st.cfg->services) {
        if (auto c = st.rt->find(connector_name(s.name))) {
          if (st.recovering)
            st.awaiting.insert(s.name);
          self->send(caf::actor_cast<connector_actor>(c), atom::publish_v);
        }
      }
      if (st.recovering && st.awaiting.empty())
        end_recovery(self);
    },
    [self](atom::publish, std::string& service, std::string& method, value& items) {
      auto& st = self->state;
      if (!st.has_service(service))
        return; // removed by a reload, and draining
      auto count = static_cast<unsigned long long>(items.as_array().size());
      st.lists[service][method] = std::move(items);
      if (!st.recovering)
        republish(self);
      log::info("service listed", value::make_object({{"service", service}, {"method", method}, {"items", count}}));
      // A URI may have changed hands: each service learns what it owns.
      if (method == "resources/list" || method == "resources/templates/list")
        push_watches(self);
      answer_ready(self);
    },
    [self](atom::status, std::string& service, bool ready, std::string& problem) {
      auto& st = self->state;
      if (!st.has_service(service))
        return;
      if (ready) {
        st.ready_services.insert(service);
        st.problems.erase(service);
        push_watches(self, service);
      } else {
        st.ready_services.erase(service);
        st.problems[service] = std::move(problem);
      }
      if (st.recovering && st.awaiting.erase(service) && st.awaiting.empty())
        end_recovery(self);
      answer_ready(self);
    },
    [self](atom::notify, std::string& uri) { self->state.rt->notify_resource_updated(uri); },
    [self](atom::watch) { push_watches(self); },
    [self](atom::reload, gateway_config_ptr& next, int64_t drain_ms) {
      reconfigure(self, std::move(next), milliseconds(drain_ms));
      return true;
    },
    [self](atom::drop, std::string& name, uint64_t number) { check_drain(self, name, number); },
    [self](atom::ready, int64_t limit_ms) {
      auto& st = self->state;
      auto promise = self->make_response_promise<gateway_readiness>();
      if (st.settled()) {
        promise.deliver(st.readiness());
        return promise;
      }
      st.waiting.emplace_back(promise, steady_clock::now() + milliseconds(limit_ms));
      self->delayed_send(self, milliseconds(limit_ms), atom::timer_v);
      return promise;
    },
    [self](atom::timer) {
      auto& st = self->state;
      if (st.recovering && steady_clock::now() >= st.recover_until)
        end_recovery(self);
      answer_ready(self);
    },
    [self](atom::get, const std::string& server) { return services_view(self->state, server); },
    [self](atom::get) {
      auto& st = self->state;
      return value::make_object({{"mailbox", static_cast<unsigned long long>(self->mailbox().size())},
                                 {"pinning", st.cfg->pinning},
                                 {"held", st.pins.held()}});
    },
    [self](atom::approve, const std::string& service, const std::string& tool) {
      auto& st = self->state;
      if (!st.pins.approve(service, tool))
        return;
      store_pins(self);
      log::info("held tool definition approved", value::make_object({{"service", service}, {"tool", tool}}));
      republish(self);
    },
    [self](atom::pins) {
      auto& st = self->state;
      if (st.fleet_pins)
        read_shared_pins(st.rt->environment(), caf::actor_cast<gateway_router_actor>(self));
    },
    [self](atom::pins, value& fleet) {
      auto& st = self->state;
      if (fleet.is_null()) {
        // Redis is away: this instance goes on with its own book (its
        // file's) and gives it to the fleet once Redis is back.
        if (!st.pins_read)
          log::warn(
            "the fleet's tool pins cannot be read from Redis; this instance pins on its own until Redis is back");
      } else {
        st.pins.adopt(fleet);
        save_pins(st);
      }
      st.pins_read = true;
      if (!st.recovering)
        republish(self);
      answer_ready(self);
    },
  };
}

} // namespace

gateway_router_actor spawn_gateway_router(caf::actor_system& sys, runtime& rt, gateway_seed_ptr seed, bool restarted) {
  // On a thread of its own: a reload waits for the router's answer on the
  // thread that asked, which may be a scheduler worker (the admin API's
  // connection); a router queued on that worker would never run.
  return sys.spawn<caf::detached>(router_behavior, &rt, std::move(seed), restarted);
}

} // namespace bulwark
