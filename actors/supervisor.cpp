#include "actors/supervisor.hpp"

#include <algorithm>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/session.hpp"
#include "config/log.hpp"
#include "messages/crypto.hpp"
#include "messages/mcp.hpp"

namespace bulwark {

using json::value;

bool restart_intensity::allow(std::chrono::steady_clock::time_point now) {
  while (!stamps_.empty() && now - stamps_.front() > window_)
    stamps_.pop_front();
  stamps_.push_back(now);
  return stamps_.size() <= max_;
}

std::chrono::milliseconds supervision_policy::backoff(std::size_t recent) const {
  if (recent == 0 || backoff_initial.count() <= 0)
    return std::chrono::milliseconds(0);
  auto shift = std::min<std::size_t>(recent - 1, 20);
  return std::min(backoff_max, std::chrono::milliseconds(backoff_initial.count() << shift));
}

// -- supervisors over a fixed set of children ---------------------------------------

namespace {

struct supervisor_state {
  static inline const char* name = "supervisor";

  struct child {
    child_spec spec;
    caf::actor handle;
  };

  env_ptr env;
  std::string name_in_tree;
  std::string parent; ///< Empty for the root.
  supervision_policy policy;
  restart_intensity intensity{0, std::chrono::seconds(0)};
  std::vector<child> children;
  bool stopping = false;
  bool restart_pending = false;
};

using supervisor_pointer = supervisor_actor::stateful_pointer<supervisor_state>;

/// `breaker/web` -> breaker, `queue` -> queue.
std::string kind_of(const child_spec& spec) {
  return spec.kind.empty() ? spec.name.substr(0, spec.name.find('/')) : spec.kind;
}

void publish(supervisor_pointer self) {
  auto& st = self->state;
  supervisor_info info;
  info.parent = st.parent;
  info.strategy = st.policy.strategy;
  info.max_restarts = st.policy.max_restarts;
  info.window = st.policy.window;
  info.backoff_initial = st.policy.backoff_initial;
  info.backoff_max = st.policy.backoff_max;
  for (auto& c : st.children)
    info.children.push_back(c.spec.name);
  st.env->supervisor_update(st.name_in_tree, std::move(info));
}

void start_child(supervisor_pointer self, supervisor_state::child& c) {
  auto& st = self->state;
  c.handle = c.spec.spawn(self->system());
  self->monitor(c.handle);
  st.env->names.put(c.spec.name, c.handle);
  st.env->actor_started(c.spec.name, kind_of(c.spec), st.name_in_tree);
}

/// Starts every child that is down, in order.
void start_missing(supervisor_pointer self) {
  auto& st = self->state;
  st.restart_pending = false;
  for (auto& c : st.children)
    if (!c.handle)
      start_child(self, c);
  st.env->note_mailbox(st.name_in_tree, self->mailbox().size());
}

/// Stops a child on purpose (rest-for-one, escalation, shutdown): its down
/// message no longer matches a child and is ignored.
void stop_child(supervisor_pointer self, supervisor_state::child& c, const std::string& why, const caf::error& reason) {
  if (!c.handle)
    return;
  auto& st = self->state;
  // A child a reload removed has left the registry and the tree already
  // (and its name may belong to its successor by now).
  if (st.env->names.erase(c.spec.name, c.handle.address()))
    st.env->actor_stopped(c.spec.name, why, false);
  self->send_exit(c.handle, reason);
  c.handle = caf::actor{};
}

/// Removes a child for good. A nested supervisor's children are stopped
/// here too and leave the registry at once, so that a successor of the
/// same name (a replaced service) never takes them over.
void drop_child(supervisor_pointer self, const std::string& name) {
  auto& st = self->state;
  auto i = std::find_if(st.children.begin(), st.children.end(), [&](auto& c) { return c.spec.name == name; });
  if (i == st.children.end())
    return;
  // The nested supervisor first: it stops watching its children (which it
  // would otherwise restart) before they go.
  stop_child(self, *i, "removed by a reload", caf::exit_reason::user_shutdown);
  auto supervisors = st.env->supervisors();
  if (auto nested = supervisors.find(name); nested != supervisors.end())
    for (auto& child : nested->second.children)
      if (auto handle = st.env->names.get(child)) {
        st.env->names.erase(child, handle.address());
        self->send_exit(handle, caf::exit_reason::user_shutdown);
      }
  st.env->supervisor_removed(name);
  st.env->actor_stopped(name, "removed by a reload", true);
  st.children.erase(i);
}

void stop_all(supervisor_pointer self, const std::string& why, const caf::error& reason) {
  auto& st = self->state;
  st.stopping = true;
  for (auto& c : st.children)
    stop_child(self, c, why, reason);
}

void on_child_down(supervisor_pointer self, caf::down_msg& dm) {
  auto& st = self->state;
  if (st.stopping)
    return;
  std::size_t i = 0;
  while (i < st.children.size() && st.children[i].handle.address() != dm.source)
    ++i;
  if (i == st.children.size())
    return; // A child stopped on purpose, or a predecessor's.
  auto& failed = st.children[i];
  auto reason = caf::to_string(dm.reason);
  st.env->names.erase(failed.spec.name, dm.source);
  st.env->actor_stopped(failed.spec.name, reason, false);
  failed.handle = caf::actor{};
  st.env->restarts++;
  // rest-for-one: the children started after it depend on it.
  if (st.policy.strategy == restart_strategy::rest_for_one)
    for (auto j = i + 1; j < st.children.size(); ++j)
      stop_child(self, st.children[j], "restarted with " + failed.spec.name + " (rest-for-one)",
                 caf::exit_reason::user_shutdown);
  if (!st.intensity.allow(self->clock().now())) {
    auto what = failed.spec.name + " stopped (" + reason + ") after " + std::to_string(st.policy.max_restarts)
                + " restarts within " + std::to_string(st.policy.window.count()) + " s";
    st.env->supervisor_escalated(st.name_in_tree, true);
    if (!st.parent.empty()) {
      // Report up: stop every child and exit; the parent decides.
      st.env->escalate({st.name_in_tree, failed.spec.name, st.name_in_tree + " exceeded its restart intensity: " + what,
                        std::chrono::steady_clock::now()});
      log::error(
        "restart intensity exceeded; escalating",
        value::make_object(
          {{"supervisor", st.name_in_tree}, {"actor", failed.spec.name}, {"parent", st.parent}, {"reason", reason}}));
      stop_all(self, "stopped: " + st.name_in_tree + " escalated", caf::exit_reason::user_shutdown);
      self->quit(caf::make_error(caf::sec::runtime_error, "restart intensity exceeded: " + what));
      return;
    }
    // The top of the tree has no one to report to: it backs off one window.
    st.env->escalate({st.name_in_tree, failed.spec.name,
                      st.name_in_tree + " exceeded its restart intensity: " + what + "; retrying in "
                        + std::to_string(st.policy.window.count()) + " s",
                      std::chrono::steady_clock::now()});
    log::error("restart intensity exceeded; backing off",
               value::make_object({{"supervisor", st.name_in_tree},
                                   {"actor", failed.spec.name},
                                   {"max_restarts", static_cast<long long>(st.policy.max_restarts)},
                                   {"window_s", static_cast<long long>(st.policy.window.count())}}));
    st.restart_pending = true;
    self->delayed_send(caf::actor_cast<supervisor_actor>(self), st.policy.window, atom::open_v,
                       std::string("escalation back-off"));
    return;
  }
  log::warn("actor restarted",
            value::make_object({{"actor", failed.spec.name}, {"supervisor", st.name_in_tree}, {"reason", reason}}));
  if (st.restart_pending)
    return; // A restart is already scheduled; it starts this child too.
  auto delay = st.policy.backoff(st.intensity.recent() - 1);
  if (delay.count() == 0) {
    start_missing(self);
    return;
  }
  st.restart_pending = true;
  self->delayed_send(caf::actor_cast<supervisor_actor>(self), delay, atom::open_v, std::string("back-off"));
}

supervisor_actor::behavior_type supervisor_behavior(supervisor_pointer self, env_ptr env, supervisor_spec spec,
                                                    std::string parent) {
  auto& st = self->state;
  st.env = std::move(env);
  st.name_in_tree = spec.name;
  st.parent = std::move(parent);
  st.policy = spec.policy;
  st.intensity = restart_intensity(spec.policy.max_restarts, spec.policy.window);
  for (auto& c : spec.children) {
    // Take over the children a killed predecessor left. One that stopped
    // while no supervisor watched it (its down message went to the dead
    // predecessor) is still registered: monitoring it delivers its down
    // message at once, so it is restarted, counted and logged as if it had
    // stopped under this supervisor.
    auto existing = st.env->names.get(c.name);
    if (existing)
      self->monitor(existing);
    st.children.push_back(supervisor_state::child{std::move(c), existing});
  }
  publish(self);
  start_missing(self);
  st.env->supervisor_escalated(st.name_in_tree, false);
  self->set_down_handler([self](caf::down_msg& dm) {
    on_child_down(self, dm);
    self->state.env->note_mailbox(self->state.name_in_tree, self->mailbox().size());
  });
  // A nested supervisor stopped by its parent stops its children first.
  self->set_exit_handler([self](caf::exit_msg& em) {
    stop_all(self, "stopped with " + self->state.name_in_tree, em.reason);
    self->quit(em.reason);
  });
  return {
    [self](atom::end) {
      stop_all(self, "shutdown", caf::exit_reason::user_shutdown);
      self->quit();
    },
    [self](atom::open, const std::string&) {
      auto& st = self->state;
      if (st.stopping)
        return;
      st.env->supervisor_escalated(st.name_in_tree, false);
      start_missing(self);
    },
    [self](atom::add, child_spec& spec) {
      auto& st = self->state;
      if (st.stopping)
        return;
      drop_child(self, spec.name);
      st.children.push_back(supervisor_state::child{std::move(spec), caf::actor{}});
      start_child(self, st.children.back());
      publish(self);
    },
    [self](atom::drop, const std::string& name) {
      drop_child(self, name);
      publish(self);
    },
  };
}

// -- session supervisor ----------------------------------------------------------------------

struct sessions_state {
  static inline const char* name = "session-supervisor";

  struct child {
    session_record_ptr rec;
    std::string registry_name;
    restart_intensity intensity;
  };

  env_ptr env;
  std::unordered_map<caf::actor_addr, child> children;
  bool stopping = false;
};

using sessions_pointer = session_supervisor_actor::stateful_pointer<sessions_state>;

session_actor start_session(sessions_pointer self, session_record_ptr rec, const std::string& registry_name) {
  auto& st = self->state;
  auto handle = self->system().spawn(session, st.env, rec);
  self->monitor(handle);
  st.env->names.put(registry_name, caf::actor_cast<caf::actor>(handle));
  st.env->actor_started(registry_name, "session", names::session_supervisor);
  st.children.emplace(handle.address(),
                      sessions_state::child{rec, registry_name,
                                            restart_intensity(st.env->opts.max_restarts, st.env->opts.restart_window)});
  return handle;
}

/// Takes over the sessions of a previous incarnation of this supervisor:
/// their actors and records outlive it.
void adopt_sessions(sessions_pointer self) {
  auto& st = self->state;
  auto adopt = [&](const session_record_ptr& rec, const std::string& name) {
    auto existing = st.env->names.get(name);
    if (!existing) {
      start_session(self, rec, name);
      return;
    }
    self->monitor(existing);
    st.children.emplace(
      existing.address(),
      sessions_state::child{rec, name, restart_intensity(st.env->opts.max_restarts, st.env->opts.restart_window)});
  };
  bool have_stateless = false;
  for (auto& rec : st.env->session_records()) {
    if (rec->stateless) {
      have_stateless = true;
      adopt(rec, names::stateless_session);
    } else {
      adopt(rec, names::session_prefix + rec->id);
    }
  }
  if (!have_stateless) {
    auto rec = std::make_shared<session_record>();
    rec->id = "stateless";
    rec->stateless = true;
    rec->initialized = true;
    st.env->put_session(rec);
    start_session(self, rec, names::stateless_session);
  }
}

/// Answers an `initialize` over the identity's session limit.
void refuse_session(const inbound& in, std::size_t max, bool total) {
  if (!in.sink)
    return;
  outbound out;
  out.body = mcp::error_body(in.message["id"], error_code::session_limit,
                             total ? "too many sessions on this server (at most " + std::to_string(max)
                                       + "); retry once one has ended"
                                   : "too many sessions for this caller (at most " + std::to_string(max)
                                       + "); end one with DELETE, or wait until an idle one expires",
                             value::make_object({{"limit", total ? "sessions" : "sessionsPerIdentity"},
                                                 {"max", static_cast<unsigned long long>(max)},
                                                 {"retry_after_seconds", 1}}));
  out.http_status = describe(error_code::session_limit).http_status;
  in.sink->deliver(std::move(out));
}

void stop_sessions(sessions_pointer self, const caf::error& reason) {
  auto& st = self->state;
  st.stopping = true;
  for (auto& [addr, c] : st.children) {
    auto handle = caf::actor_cast<caf::actor>(addr);
    if (handle)
      self->send_exit(handle, reason);
  }
}

session_supervisor_actor::behavior_type session_supervisor(sessions_pointer self, env_ptr env) {
  self->state.env = std::move(env);
  {
    // Sessions are many and independent: each has its own intensity, and a
    // session over it ends alone; session actors restart at once, since a
    // client is waiting.
    supervisor_info info;
    info.parent = names::root_supervisor;
    info.max_restarts = self->state.env->opts.max_restarts;
    info.window = self->state.env->opts.restart_window;
    self->state.env->supervisor_update(names::session_supervisor, std::move(info));
  }
  adopt_sessions(self);
  self->set_exit_handler([self](caf::exit_msg& em) {
    stop_sessions(self, em.reason);
    self->quit(em.reason);
  });
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    st.env->note_mailbox(names::session_supervisor, self->mailbox().size());
    auto i = st.children.find(dm.source);
    if (i == st.children.end())
      return;
    auto child = std::move(i->second);
    st.children.erase(i);
    st.env->names.erase(child.registry_name, dm.source);
    bool ended = dm.reason == caf::exit_reason::normal || st.stopping;
    st.env->actor_stopped(child.registry_name, caf::to_string(dm.reason), ended && !child.rec->stateless);
    if (ended) {
      if (!child.rec->stateless) {
        st.env->erase_session(child.rec->id);
        st.env->release_session_slot(child.rec->id);
        st.env->sessions--;
        log::info("session ended", value::make_object({{"session", child.rec->id}}));
      }
      return;
    }
    st.env->restarts++;
    child.rec->restarts++;
    if (!child.intensity.allow(self->clock().now()) && !child.rec->stateless) {
      st.env->actor_stopped(child.registry_name, "restarted too often", true);
      st.env->escalate({names::session_supervisor, child.registry_name,
                        "session " + child.rec->id + " crashed more than " + std::to_string(st.env->opts.max_restarts)
                          + " times within " + std::to_string(st.env->opts.restart_window.count()) + " s and was ended",
                        std::chrono::steady_clock::now()});
      st.env->erase_session(child.rec->id);
      st.env->release_session_slot(child.rec->id);
      st.env->sessions--;
      log::error("session restarted too often; ended", value::make_object({{"session", child.rec->id}}));
      return;
    }
    log::warn("session actor restarted",
              value::make_object({{"session", child.rec->id}, {"reason", caf::to_string(dm.reason)}}));
    auto handle = start_session(self, child.rec, child.registry_name);
    // Keep the restart history with the new incarnation.
    st.children.find(handle.address())->second.intensity = std::move(child.intensity);
  });
  return {
    [self](atom::open, inbound_ptr& in) {
      auto& st = self->state;
      st.env->note_mailbox(names::session_supervisor, self->mailbox().size());
      if (st.stopping)
        return; // Dropping `in` answers it with an error.
      auto rec = std::make_shared<session_record>();
      rec->id = crypto::random_hex(16);
      auto max = st.env->opts.max_sessions_per_identity;
      auto total = st.env->opts.max_sessions;
      auto refused = st.env->claim_session_slot(rec->id, in->identity, max, total);
      if (refused != runtime_env::slot_refusal::none) {
        bool all = refused == runtime_env::slot_refusal::total;
        refuse_session(*in, all ? total : max, all);
        return;
      }
      // Set before the record is shared: transports read it to bind the
      // session to its caller.
      rec->identity = in->identity;
      st.env->put_session(rec);
      st.env->sessions++;
      auto handle = start_session(self, rec, names::session_prefix + rec->id);
      self->send(handle, std::move(in));
    },
    [self](atom::open, session_record_ptr& rec) -> bool {
      auto& st = self->state;
      auto name = names::session_prefix + rec->id;
      // Two requests may have looked the session up at once: one actor.
      if (!st.stopping && !st.env->names.contains(name)) {
        st.env->put_session(rec);
        st.env->sessions++;
        start_session(self, rec, name);
        log::info("session taken over from the shared directory", value::make_object({{"session", rec->id}}));
      }
      return st.env->names.contains(name);
    },
    [self](atom::end, const std::string& id) {
      if (auto h = self->state.env->names.get(names::session_prefix + id))
        self->send(caf::actor_cast<session_actor>(h), atom::end_v);
    },
    [self](atom::notify, const std::string& method, const json::value& params) {
      for (auto& [addr, c] : self->state.children)
        if (auto h = caf::actor_cast<session_actor>(addr))
          self->send(h, atom::notify_v, method, params);
    },
    [self](atom::count) -> uint64_t { return self->state.env->sessions.load(); },
  };
}

} // namespace

supervisor_actor spawn_root_supervisor(caf::actor_system& sys, env_ptr env, supervisor_spec spec) {
  return sys.spawn(supervisor_behavior, std::move(env), std::move(spec), std::string());
}

child_spec nested_supervisor(env_ptr env, supervisor_spec spec, std::string parent) {
  auto name = spec.name;
  return child_spec{std::move(name),
                    [env, spec, parent](caf::actor_system& sys) {
                      return caf::actor_cast<caf::actor>(sys.spawn(supervisor_behavior, env, spec, parent));
                    },
                    "supervisor"};
}

session_supervisor_actor spawn_session_supervisor(caf::actor_system& sys, env_ptr env) {
  return sys.spawn(session_supervisor, std::move(env));
}

} // namespace bulwark
