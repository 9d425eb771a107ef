#include "actors/task_store.hpp"

#include <algorithm>
#include <set>

#include <caf/all.hpp>

#include "config/log.hpp"
#include "config/metrics.hpp"
#include "messages/crypto.hpp"
#include "messages/errors.hpp"

namespace bulwark {

using json::value;
using namespace std::chrono;

namespace {

/// How often tasks past their time to live are looked for.
constexpr milliseconds sweep_every{1000};

std::string iso(task_book::clock::time_point t) {
  return log::utc(t, log::time_digits::millis);
}

} // namespace

task_book::task* task_book::open(const std::string& identity, caf::actor_addr runner, uint64_t serial, int64_t ttl_ms,
                                 int64_t poll_ms, std::size_t max_per_identity, clock::time_point now) {
  auto& ids = by_identity_[identity];
  // The oldest tasks that ended make room; running ones never do.
  while (ids.size() >= max_per_identity) {
    auto ended = std::find_if(ids.begin(), ids.end(), [&](const std::string& id) {
      auto t = tasks_.find(id);
      return t == tasks_.end() || t->second.terminal();
    });
    if (ended == ids.end())
      return nullptr;
    auto id = *ended;
    ids.erase(ended);
    if (auto gone = tasks_.find(id); gone != tasks_.end()) {
      --counts_[gone->second.status];
      tasks_.erase(gone);
    }
  }
  task t;
  t.id = crypto::random_hex(16);
  t.identity = identity;
  t.runner = std::move(runner);
  t.serial = serial;
  t.created = t.updated = now;
  t.ttl_ms = ttl_ms;
  t.poll_ms = poll_ms;
  ids.push_back(t.id);
  auto id = t.id;
  ++counts_[t.status];
  return &(tasks_[id] = std::move(t));
}

task_book::task* task_book::find(const std::string& id) {
  auto t = tasks_.find(id);
  return t == tasks_.end() ? nullptr : &t->second;
}

task_book::task* task_book::find(const std::string& id, const std::string& identity) {
  auto* t = find(id);
  return t && t->identity == identity ? t : nullptr;
}

void task_book::update(const std::string& id, const value& state, clock::time_point now) {
  auto* t = find(id);
  if (!t || t->terminal())
    return;
  const auto& status = state["status"].as_string();
  if (status != "working" && status != "input_required" && status != "completed" && status != "failed"
      && status != "cancelled")
    return;
  set_status(*t, status);
  t->status_message = state["statusMessage"].as_string();
  t->input_requests = status == "input_required" ? state["inputRequests"] : value();
  t->result = status == "completed" ? state["result"] : value();
  t->error = status == "failed" ? state["error"] : value();
  t->updated = now;
}

std::size_t task_book::runner_down(const caf::actor_addr& runner, const value& error, clock::time_point now) {
  std::size_t n = 0;
  for (auto& [id, t] : tasks_) {
    if (t.runner != runner || t.terminal())
      continue;
    set_status(t, "failed");
    t.status_message = error["message"].as_string();
    t.input_requests = value();
    t.error = error;
    t.updated = now;
    ++n;
  }
  return n;
}

std::vector<task_book::task> task_book::expire(clock::time_point now) {
  std::vector<std::string> gone;
  std::vector<task> running;
  for (auto& [id, t] : tasks_)
    if (now >= t.created + milliseconds(t.ttl_ms)) {
      gone.push_back(id);
      if (!t.terminal())
        running.push_back(t);
    }
  for (auto& id : gone)
    drop(id);
  return running;
}

void task_book::set_status(task& t, const std::string& status) {
  --counts_[t.status];
  ++counts_[status];
  t.status = status;
}

std::size_t task_book::count(const std::string& status) const {
  auto c = counts_.find(status);
  return c == counts_.end() ? 0 : c->second;
}

void task_book::drop(const std::string& id) {
  auto t = tasks_.find(id);
  if (t == tasks_.end())
    return;
  --counts_[t->second.status];
  auto ids = by_identity_.find(t->second.identity);
  if (ids != by_identity_.end()) {
    ids->second.erase(std::remove(ids->second.begin(), ids->second.end(), id), ids->second.end());
    if (ids->second.empty())
      by_identity_.erase(ids);
  }
  tasks_.erase(t);
}

value task_book::view(const task& t) {
  auto v = value::make_object({{"taskId", t.id},
                               {"status", t.status},
                               {"createdAt", iso(t.created)},
                               {"lastUpdatedAt", iso(t.updated)},
                               {"ttlMs", static_cast<long long>(t.ttl_ms)},
                               {"pollIntervalMs", static_cast<long long>(t.poll_ms)}});
  if (!t.status_message.empty())
    v.set("statusMessage", t.status_message);
  if (t.status == "input_required")
    v.set("inputRequests", t.input_requests.is_object() ? t.input_requests : value(json::object{}));
  else if (t.status == "completed")
    v.set("result", t.result);
  else if (t.status == "failed")
    v.set("error", t.error);
  return v;
}

std::vector<caf::actor_addr> task_book::runners() const {
  std::set<caf::actor_addr> out;
  for (auto& [id, t] : tasks_)
    if (!t.terminal() && t.runner)
      out.insert(t.runner);
  return {out.begin(), out.end()};
}

value task_book::status(std::size_t latest) const {
  value by_status(json::object{});
  for (auto& [status, n] : counts_)
    if (n > 0)
      by_status.set(status, static_cast<unsigned long long>(n));
  std::vector<const task*> newest;
  newest.reserve(tasks_.size());
  for (auto& [id, t] : tasks_)
    newest.push_back(&t);
  auto shown = std::min(latest, newest.size());
  std::partial_sort(newest.begin(), newest.begin() + static_cast<std::ptrdiff_t>(shown), newest.end(),
                    [](const task* a, const task* b) { return a->created > b->created; });
  value list(json::array{});
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& t = *newest[i];
    list.push_back(value::make_object({{"taskId", t.id},
                                       {"status", t.status},
                                       {"identity", t.identity},
                                       {"createdAt", iso(t.created)},
                                       {"lastUpdatedAt", iso(t.updated)}}));
  }
  return value::make_object({{"tasks", static_cast<unsigned long long>(tasks_.size())},
                             {"identities", static_cast<unsigned long long>(by_identity_.size())},
                             {"byStatus", std::move(by_status)},
                             {"latest", std::move(list)}});
}

// -- the actor ------------------------------------------------------------------------------

namespace {

struct task_store_state {
  static inline const char* name = "tasks";
  env_ptr env;
  task_book_ptr book_ptr;
  task_book& book() { return *book_ptr; }
  /// Runners watched (each monitored once).
  std::set<caf::actor_addr> watched;
};

using store_pointer = task_store_actor::stateful_pointer<task_store_state>;

/// The tasks kept by status, for /metrics (bulwark_tasks{status}).
void publish_counts(task_store_state& st) {
  if (auto& m = st.env->metrics)
    for (const char* s : {"working", "input_required", "completed", "failed", "cancelled"})
      m->gauge("bulwark_tasks", {{"status", s}}).set(static_cast<double>(st.book().count(s)));
}

/// Tells the runner of task `t` that the client cancelled it.
void cancel_at_runner(const task_book::task& t) {
  if (auto runner = caf::actor_cast<caf::actor>(t.runner))
    caf::anon_send(caf::actor_cast<session_actor>(runner), atom::cancel_v, t.serial);
}

} // namespace

task_store_actor spawn_task_store(caf::actor_system& sys, env_ptr env, task_book_ptr book) {
  return sys.spawn([env, book](store_pointer self) -> task_store_actor::behavior_type {
    self->state.env = env;
    self->state.book_ptr = book;
    // The tasks of a runner that stops cannot end any more: they fail, and
    // tasks/get says why.
    self->set_down_handler([self](caf::down_msg& dm) {
      auto& st = self->state;
      st.watched.erase(dm.source);
      auto error = value::make_object({{"code", static_cast<int>(error_code::actor_restarted)},
                                       {"message", "the session actor that ran the task stopped before the task ended"},
                                       {"data", value::make_object({{"reason", caf::to_string(dm.reason)}})}});
      auto n = st.book().runner_down(dm.source, error, task_book::clock::now());
      publish_counts(st);
      if (n > 0)
        log::warn(
          "tasks failed: the actor that ran them stopped",
          value::make_object({{"tasks", static_cast<unsigned long long>(n)}, {"reason", caf::to_string(dm.reason)}}));
    });
    // A restarted store watches the runners of the tasks it finds (one
    // that stopped meanwhile is reported at once).
    for (auto& runner : book->runners())
      if (auto handle = caf::actor_cast<caf::actor>(runner); handle && self->state.watched.insert(runner).second)
        self->monitor(handle);
      else if (!handle)
        book->runner_down(
          runner,
          value::make_object({{"code", static_cast<int>(error_code::actor_restarted)},
                              {"message", "the session actor that ran the task stopped before the task ended"}}),
          task_book::clock::now());
    self->delayed_send(self, sweep_every, atom::sweep_v);
    return {
      [self](atom::open, const std::string& identity, const caf::actor& runner, uint64_t serial) -> value {
        auto& st = self->state;
        auto settings = st.env->settings();
        auto* t =
          st.book().open(identity, runner.address(), serial, settings->task_ttl_ms, settings->task_poll_interval_ms,
                         settings->max_tasks_per_identity, task_book::clock::now());
        if (!t) {
          auto max = static_cast<unsigned long long>(settings->max_tasks_per_identity);
          if (auto& m = st.env->metrics)
            m->counter("bulwark_tasks_total", {{"outcome", "refused"}}).inc();
          return value::make_object(
            {{"refused",
              value::make_object(
                {{"code", static_cast<int>(error_code::session_limit)},
                 {"message", "too many tasks: this caller holds " + std::to_string(max)
                               + " that have not ended (tasks.maxPerIdentity); retry when one has"},
                 {"data", value::make_object({{"limit", "tasks"}, {"max", max}, {"retry_after_seconds", 1}})}})}});
        }
        if (st.watched.insert(runner.address()).second)
          self->monitor(runner);
        if (auto& m = st.env->metrics)
          m->counter("bulwark_tasks_total", {{"outcome", "created"}}).inc();
        auto created = task_book::view(*t);
        publish_counts(st);
        return created;
      },
      [self](atom::put, const std::string& id, const value& state) {
        auto& st = self->state;
        st.book().update(id, state, task_book::clock::now());
        publish_counts(st);
        if (auto& m = st.env->metrics; m && state["status"].is_string()) {
          const auto& s = state["status"].as_string();
          if (s == "completed" || s == "failed" || s == "cancelled")
            m->counter("bulwark_tasks_ended_total", {{"status", s}}).inc();
        }
      },
      [self](atom::get, const std::string& id, const std::string& identity) -> value {
        auto* t = self->state.book().find(id, identity);
        return t ? task_book::view(*t) : value();
      },
      [self](atom::answer, const std::string& id, const std::string& identity, value& responses) {
        auto* t = self->state.book().find(id, identity);
        if (!t)
          return false;
        // Answers to a task that waits for none are not the runner's business.
        if (t->status == "input_required")
          if (auto runner = caf::actor_cast<caf::actor>(t->runner))
            caf::anon_send(caf::actor_cast<session_actor>(runner), atom::answer_v, t->serial, std::move(responses));
        return true;
      },
      [self](atom::cancel, const std::string& id, const std::string& identity) {
        auto* t = self->state.book().find(id, identity);
        if (!t)
          return false;
        if (!t->terminal())
          cancel_at_runner(*t);
        return true;
      },
      [self](atom::get) {
        auto v = self->state.book().status();
        v.set("mailbox", static_cast<unsigned long long>(self->mailbox().size()));
        return v;
      },
      [self](atom::sweep) {
        for (auto& t : self->state.book().expire(task_book::clock::now()))
          cancel_at_runner(t);
        publish_counts(self->state);
        self->delayed_send(self, sweep_every, atom::sweep_v);
      },
    };
  });
}

} // namespace bulwark
