// Names -> current actor handles, shared by the supervisors (writers) and
// the transports and runtime (readers). Supervisors update an entry when they
// restart an actor, so a restart is invisible to whoever looks up by name.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>

namespace bulwark {

class registry {
public:
  void put(const std::string& name, caf::actor handle) {
    std::lock_guard<std::mutex> guard(mtx_);
    entries_[name] = std::move(handle);
  }

  /// Removes `name` only while it still names `handle` (a newer actor under
  /// the same name stays); false when it did not.
  bool erase(const std::string& name, const caf::actor_addr& handle) {
    std::lock_guard<std::mutex> guard(mtx_);
    auto i = entries_.find(name);
    if (i == entries_.end() || i->second.address() != handle)
      return false;
    entries_.erase(i);
    return true;
  }

  void erase(const std::string& name) {
    std::lock_guard<std::mutex> guard(mtx_);
    entries_.erase(name);
  }

  /// The current handle, or an invalid one.
  caf::actor get(const std::string& name) const {
    std::lock_guard<std::mutex> guard(mtx_);
    auto i = entries_.find(name);
    return i == entries_.end() ? caf::actor{} : i->second;
  }

  bool contains(const std::string& name) const {
    std::lock_guard<std::mutex> guard(mtx_);
    return entries_.count(name) > 0;
  }

  std::vector<std::pair<std::string, caf::actor>> snapshot() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return {entries_.begin(), entries_.end()};
  }

  void clear() {
    std::lock_guard<std::mutex> guard(mtx_);
    entries_.clear();
  }

private:
  mutable std::mutex mtx_;
  std::unordered_map<std::string, caf::actor> entries_;
};

} // namespace bulwark
