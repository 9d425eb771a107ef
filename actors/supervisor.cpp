#include "actors/supervisor.hpp"

#include <unordered_map>

#include <caf/all.hpp>

#include "actors/session.hpp"
#include "config/log.hpp"
#include "messages/crypto.hpp"

namespace bulwark {

using json::value;

bool restart_intensity::allow(std::chrono::steady_clock::time_point now) {
  while (!stamps_.empty() && now - stamps_.front() > window_)
    stamps_.pop_front();
  stamps_.push_back(now);
  return stamps_.size() <= max_;
}

// -- root supervisor ------------------------------------------------------------------

namespace {

struct root_state {
  static inline const char* name = "root-supervisor";

  struct child {
    child_spec spec;
    caf::actor handle;
    restart_intensity intensity;
  };

  env_ptr env;
  std::vector<child> children;
  bool stopping = false;
};

using root_pointer = supervisor_actor::stateful_pointer<root_state>;

/// `breaker/web` -> breaker, `queue` -> queue.
std::string kind_of(const std::string& name) {
  return name.substr(0, name.find('/'));
}

void start_child(root_pointer self, root_state::child& c) {
  c.handle = c.spec.spawn(self->system());
  self->monitor(c.handle);
  self->state.env->names.put(c.spec.name, c.handle);
  self->state.env->actor_started(c.spec.name, kind_of(c.spec.name), root_state::name);
}

supervisor_actor::behavior_type root_supervisor(root_pointer self, env_ptr env,
                                                std::vector<child_spec> specs) {
  auto& st = self->state;
  st.env = env;
  for (auto& spec : specs)
    st.children.push_back(root_state::child{std::move(spec), caf::actor{},
                                            restart_intensity(env->opts.max_restarts,
                                                              env->opts.restart_window)});
  for (auto& c : st.children)
    start_child(self, c);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.stopping)
      return;
    for (auto& c : st.children) {
      if (c.handle.address() != dm.source)
        continue;
      st.env->names.erase(c.spec.name, dm.source);
      st.env->actor_stopped(c.spec.name, caf::to_string(dm.reason), false);
      st.env->restarts++;
      if (c.intensity.allow(self->clock().now())) {
        log::warn("actor restarted", value::make_object({{"actor", c.spec.name},
                                                         {"reason", caf::to_string(dm.reason)}}));
        start_child(self, c);
      } else {
        // Over its restart intensity: back off for one window before trying
        // again, and count the escalation for the health view.
        st.env->escalations++;
        log::error("restart intensity exceeded; backing off",
                   value::make_object({{"actor", c.spec.name},
                                       {"max_restarts", static_cast<long long>(st.env->opts.max_restarts)},
                                       {"window_s", static_cast<long long>(st.env->opts.restart_window.count())}}));
        c.handle = caf::actor{};
        self->delayed_send(caf::actor_cast<supervisor_actor>(self), st.env->opts.restart_window,
                           atom::open_v, c.spec.name);
      }
      return;
    }
  });
  return {
    [self](atom::end) {
      auto& st = self->state;
      st.stopping = true;
      for (auto& c : st.children)
        if (c.handle)
          self->send_exit(c.handle, caf::exit_reason::user_shutdown);
      self->quit();
    },
    [self](atom::open, const std::string& name) {
      auto& st = self->state;
      if (st.stopping)
        return;
      for (auto& c : st.children)
        if (c.spec.name == name && !c.handle)
          start_child(self, c);
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

session_actor start_session(sessions_pointer self, session_record_ptr rec,
                            const std::string& registry_name) {
  auto& st = self->state;
  auto handle = self->system().spawn(session, st.env, rec);
  self->monitor(handle);
  st.env->names.put(registry_name, caf::actor_cast<caf::actor>(handle));
  st.env->actor_started(registry_name, "session", names::session_supervisor);
  st.children.emplace(handle.address(),
                      sessions_state::child{rec, registry_name,
                                            restart_intensity(st.env->opts.max_restarts,
                                                              st.env->opts.restart_window)});
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
    st.children.emplace(existing.address(),
                        sessions_state::child{rec, name,
                                              restart_intensity(st.env->opts.max_restarts,
                                                                st.env->opts.restart_window)});
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
  adopt_sessions(self);
  self->set_exit_handler([self](caf::exit_msg& em) {
    stop_sessions(self, em.reason);
    self->quit(em.reason);
  });
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
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
        st.env->sessions--;
        log::info("session ended", value::make_object({{"session", child.rec->id}}));
      }
      return;
    }
    st.env->restarts++;
    child.rec->restarts++;
    if (!child.intensity.allow(self->clock().now()) && !child.rec->stateless) {
      st.env->actor_stopped(child.registry_name, "restarted too often", true);
      st.env->escalations++;
      st.env->erase_session(child.rec->id);
      st.env->sessions--;
      log::error("session restarted too often; ended",
                 value::make_object({{"session", child.rec->id}}));
      return;
    }
    log::warn("session actor restarted",
              value::make_object({{"session", child.rec->id},
                                  {"reason", caf::to_string(dm.reason)}}));
    auto handle = start_session(self, child.rec, child.registry_name);
    // Keep the restart history with the new incarnation.
    st.children.find(handle.address())->second.intensity = std::move(child.intensity);
  });
  return {
    [self](atom::open, inbound_ptr& in) {
      auto& st = self->state;
      if (st.stopping)
        return; // Dropping `in` answers it with an error.
      auto rec = std::make_shared<session_record>();
      rec->id = crypto::random_hex(16);
      st.env->put_session(rec);
      st.env->sessions++;
      auto handle = start_session(self, rec, names::session_prefix + rec->id);
      self->send(handle, std::move(in));
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

supervisor_actor spawn_root_supervisor(caf::actor_system& sys, env_ptr env,
                                       std::vector<child_spec> children) {
  return sys.spawn(root_supervisor, std::move(env), std::move(children));
}

session_supervisor_actor spawn_session_supervisor(caf::actor_system& sys, env_ptr env) {
  return sys.spawn(session_supervisor, std::move(env));
}

} // namespace bulwark
