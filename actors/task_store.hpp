// The task store: the records of the tasks extension's tasks
// (`io.modelcontextprotocol/tasks`, 2026-07-28), by task id. A task runs as
// a call of the session actor that created it; that actor reports each
// change of the task here. The store answers tasks/get, passes tasks/update
// and tasks/cancel on to the runner, keeps a task for its time to live, bounds
// the tasks of each identity, and fails the tasks of a runner that stops.
// Its interface is task_store_actor in messages/actors.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "messages/actors.hpp"

namespace bulwark {

/// The store's name in the actor tree.
inline const std::string task_store_name = "tasks";

/// The records, without the actor: what tasks/get shows of each task, who
/// may see it, and the bounds.
class task_book {
public:
  using clock = std::chrono::system_clock;

  struct task {
    std::string id;
    std::string identity;
    caf::actor_addr runner;
    uint64_t serial = 0;
    std::string status = "working";
    std::string status_message;
    json::value input_requests; ///< input_required: key -> request
    json::value result; ///< completed
    json::value error; ///< failed
    clock::time_point created, updated;
    int64_t ttl_ms = 0;
    int64_t poll_ms = 0;

    bool terminal() const noexcept { return status == "completed" || status == "failed" || status == "cancelled"; }
  };

  /// Adds a task for `identity` and returns it, or null when the identity
  /// holds `max_per_identity` tasks none of which has ended (the oldest
  /// ended ones are dropped to make room).
  task* open(const std::string& identity, caf::actor_addr runner, uint64_t serial, int64_t ttl_ms, int64_t poll_ms,
             std::size_t max_per_identity, clock::time_point now);
  /// The identity's task `id`, or null (another identity's task is no task).
  task* find(const std::string& id, const std::string& identity);
  task* find(const std::string& id);
  /// A runner's report: `state` is {status, statusMessage?, inputRequests?,
  /// result?, error?}. A task that ended stays as it ended.
  void update(const std::string& id, const json::value& state, clock::time_point now);
  /// The runner stopped: its tasks that have not ended fail with `error`.
  /// Returns how many.
  std::size_t runner_down(const caf::actor_addr& runner, const json::value& error, clock::time_point now);
  /// Drops the tasks whose time to live is over; returns those that had
  /// not ended (their runners are to stop them).
  std::vector<task> expire(clock::time_point now);

  /// The task as tasks/get shows it (a DetailedTask, without resultType).
  static json::value view(const task& t);
  /// The runners of the tasks that have not ended.
  std::vector<caf::actor_addr> runners() const;
  /// Counts by status, and the `latest` tasks kept (newest first: id,
  /// status, identity, times).
  json::value status(std::size_t latest = 100) const;
  /// The tasks kept in `status` ("working", "completed", ...).
  std::size_t count(const std::string& status) const;
  std::size_t size() const noexcept { return tasks_.size(); }

private:
  void drop(const std::string& id);
  void set_status(task& t, const std::string& status);

  std::unordered_map<std::string, task> tasks_;
  /// identity -> its task ids, oldest first
  std::unordered_map<std::string, std::deque<std::string>> by_identity_;
  /// status -> how many tasks are in it
  std::map<std::string, std::size_t> counts_;
};

using task_book_ptr = std::shared_ptr<task_book>;

/// Spawns the store over `book`, which outlives it: a restarted store
/// finds the tasks as they were and watches their runners again.
task_store_actor spawn_task_store(caf::actor_system& sys, env_ptr env, task_book_ptr book);

} // namespace bulwark
