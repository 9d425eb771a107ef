// Test support shared by the unit tests: sinks that capture what a session
// delivers, JSON parse helpers, and the error a config text gets.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "messages/json.hpp"
#include "messages/sink.hpp"

namespace bulwark::test {

/// The whole text of the file at `path` (empty when it cannot be read).
inline std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

using namespace std::chrono_literals;

/// The config error `text` gets (empty when it is accepted).
inline std::string config_error_of(const std::string& text) {
  config cfg;
  try {
    apply_json(cfg, text, "test");
  } catch (const config_error& e) {
    return e.what();
  }
  return {};
}

/// Records what a session delivers for one request.
class capture_sink final : public reply_sink {
public:
  void deliver(outbound msg) override {
    std::lock_guard<std::mutex> guard(mtx_);
    if (final_)
      return;
    if (msg.what == outbound::kind::response) {
      mark_answered();
      final_ = true;
    }
    messages_.push_back(std::move(msg));
    cv_.notify_all();
  }

  bool open() const noexcept override { return true; }

  ~capture_sink() override = default;

  /// Waits for the final answer; fails the test after `limit`.
  outbound wait(std::chrono::milliseconds limit = 3000ms) {
    std::unique_lock<std::mutex> guard(mtx_);
    bool got = cv_.wait_for(guard, limit, [this] { return final_; });
    REQUIRE(got);
    return messages_.back();
  }

  std::vector<outbound> messages() {
    std::lock_guard<std::mutex> guard(mtx_);
    return messages_;
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool final_ = false;
  std::vector<outbound> messages_;
};

/// Sinks in these tests outlive the actors, so an abandoned request shows up
/// as "never answered"; the runtime-level kill test below uses a sink that
/// answers from its destructor, as the transports do.
class abandoning_sink final : public reply_sink {
public:
  explicit abandoning_sink(std::shared_ptr<capture_sink> out) : out_(std::move(out)) {}
  ~abandoning_sink() override {
    if (!answered()) {
      outbound msg;
      msg.body = abandoned_body();
      out_->deliver(std::move(msg));
    }
  }
  void deliver(outbound msg) override {
    if (msg.what == outbound::kind::response)
      mark_answered();
    out_->deliver(std::move(msg));
  }
  bool open() const noexcept override { return true; }

private:
  std::shared_ptr<capture_sink> out_;
};

inline json::value parse(std::string_view text) {
  json::value v;
  json::parse_error err;
  INFO(text);
  REQUIRE(json::parse(text, v, err));
  return v;
}

/// A JSON document that must parse (the configuration tests' name for it).
inline json::value doc(const std::string& text) {
  json::value v;
  json::parse_error err;
  REQUIRE(json::parse(text, v, err));
  return v;
}

} // namespace bulwark::test
