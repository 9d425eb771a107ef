// The connection to Redis that several Bulwark instances share their state
// through. Commands never run on the caller's thread: a dedicated I/O thread
// sends whatever has queued up as one pipeline and hands each answer to its
// callback (on that thread; callbacks post to actors and return). A second
// thread holds the pub/sub subscription.
//
// Redis sits behind a breaker: a failed connection, an I/O error or a
// command without an answer within the timeout opens it; while it is open
// every command fails at once (callers fall back to their local state), and
// a reconnection is tried every `retry_interval`; a successful one closes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "messages/json.hpp"
#include "messages/settings.hpp"

namespace bulwark {

namespace metrics {
class registry;
class histogram;
} // namespace metrics

/// One Redis answer as plain data.
struct redis_reply {
  enum class kind : uint8_t { nil, string, integer, array, status, error };
  kind type = kind::nil;
  std::string str; ///< string, status and error
  long long integer = 0;
  std::vector<redis_reply> elements;

  bool failed() const noexcept { return type == kind::error; }
  static redis_reply error(std::string message) {
    redis_reply r;
    r.type = kind::error;
    r.str = std::move(message);
    return r;
  }
};

using redis_callback = std::function<void(redis_reply)>;

/// A Lua script run with EVALSHA, falling back to EVAL when the server does
/// not know it yet (after a restart or a SCRIPT FLUSH).
struct redis_script {
  explicit redis_script(std::string source);
  std::string source;
  std::string sha1;
};

class redis_client {
public:
  /// `instance` names this process in what it publishes (so that it can
  /// ignore its own messages).
  redis_client(redis_settings settings, std::string instance);
  ~redis_client();

  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  /// Where each command's round trip is observed (from sending its
  /// pipeline to its answer): `bulwark_redis_round_trip_seconds`. Before
  /// `start`.
  void observe_round_trips(std::shared_ptr<metrics::registry> registry);

  /// Starts the I/O threads (the first connection is made there).
  void start();
  /// Stops them; pending commands fail.
  void stop();

  // -- commands ---------------------------------------------------------------------

  /// True while the breaker is closed: commands are expected to succeed.
  bool available() const noexcept;
  /// True once the first connection attempt has ended (connected or not):
  /// until then an instance cannot know what the fleet shares.
  bool settled() const noexcept;
  /// Queues a command; `done` gets its answer, or an error answer when Redis
  /// is unavailable (then at once, on the calling thread).
  void command(std::vector<std::string> args, redis_callback done);
  /// Runs a script with these keys and arguments. `script` must outlive
  /// the command (scripts are statics).
  void eval(const redis_script& script, const std::vector<std::string>& keys, const std::vector<std::string>& args,
            redis_callback done);
  /// Publishes `message` on `channel` (prefixed); fire and forget.
  void publish(const std::string& channel, const std::string& message);

  // -- pub/sub --------------------------------------------------------------------

  /// Calls `on_message` (on the subscriber thread) for each message on
  /// `channel` (prefixed). Register before `start`.
  void subscribe(const std::string& channel, std::function<void(const std::string&)> on_message);
  /// Called (on the subscriber thread) each time the subscription is made
  /// again after a loss: messages sent meanwhile were missed.
  void on_resubscribed(std::function<void()> f);
  /// Called (on the I/O thread) after each successful connection, the first
  /// included: commands may be sent from it. Register before `start`.
  void on_connected(std::function<void()> f);

  // -- inspection -------------------------------------------------------------------

  /// The prefixed name of a key.
  std::string key(const std::string& name) const { return settings_.key_prefix + name; }
  const std::string& instance() const noexcept;
  const redis_settings& settings() const noexcept { return settings_; }
  /// Why Redis is unavailable (empty while it is available).
  std::string problem() const;
  /// State, endpoint, counts, the latest error.
  json::value status() const;

  struct impl;

private:
  void enqueue(std::vector<std::string> args, redis_callback done, const redis_script* script);

  redis_settings settings_;
  std::shared_ptr<impl> impl_;
};

} // namespace bulwark
