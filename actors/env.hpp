// What every Bulwark actor shares: options, the current catalog, the
// registry and the supervision counters. Owned by the runtime; actors hold a
// shared_ptr so it outlives them.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "actors/registry.hpp"
#include "actors/runtime.hpp"
#include "messages/actors.hpp"
#include "messages/catalog.hpp"

namespace bulwark {

struct runtime_env {
  runtime_options opts;
  registry names;
  /// Key that signs `requestState` (HMAC-SHA256).
  std::string state_key;

  std::atomic<uint64_t> restarts{0};
  std::atomic<uint64_t> escalations{0};
  std::atomic<uint64_t> sessions{0};

  catalog_ptr current() const {
    std::lock_guard<std::mutex> guard(catalog_mtx_);
    return catalog_;
  }

  void replace(catalog_ptr c) {
    std::lock_guard<std::mutex> guard(catalog_mtx_);
    catalog_ = std::move(c);
  }

  // -- session records (outlive session actors and their supervisor) ---------

  void put_session(session_record_ptr rec) {
    std::lock_guard<std::mutex> guard(sessions_mtx_);
    sessions_[rec->id] = std::move(rec);
  }

  void erase_session(const std::string& id) {
    std::lock_guard<std::mutex> guard(sessions_mtx_);
    sessions_.erase(id);
  }

  std::vector<session_record_ptr> session_records() const {
    std::lock_guard<std::mutex> guard(sessions_mtx_);
    std::vector<session_record_ptr> out;
    out.reserve(sessions_.size());
    for (auto& [id, rec] : sessions_)
      out.push_back(rec);
    return out;
  }

private:
  mutable std::mutex sessions_mtx_;
  std::unordered_map<std::string, session_record_ptr> sessions_;
  mutable std::mutex catalog_mtx_;
  catalog_ptr catalog_ = std::make_shared<const catalog>();
};

using env_ptr = std::shared_ptr<runtime_env>;

/// Registry names of the long-lived actors.
namespace names {
inline const std::string session_supervisor = "session-supervisor";
inline const std::string stateless_session = "stateless-session";
inline const std::string session_prefix = "session/";
} // namespace names

} // namespace bulwark
