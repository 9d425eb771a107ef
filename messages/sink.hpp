// Where the messages for one client request (or one long-lived stream) go.
//
// Transports implement `reply_sink`; actors hold it and never see bytes. A
// sink is thread-safe: actors call `deliver` from CAF workers and the
// transport moves the message to its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "messages/errors.hpp"
#include "messages/json.hpp"

namespace bulwark {

/// One JSON-RPC message on its way to the client.
struct outbound {
  enum class kind : uint8_t {
    notification, ///< Related to the request; more messages may follow.
    request, ///< A server-to-client request (2025 era only).
    response, ///< The final answer; ends a request stream.
  };

  std::string body; ///< The serialized JSON-RPC message.
  kind what = kind::response;
  int http_status = 200; ///< Status for a response that is the whole HTTP answer.
  /// Its `Retry-After` in seconds (0: none), with a 429 or 503 status.
  int retry_after = 0;
  /// Its `WWW-Authenticate` value (a 403 insufficient_scope); null: none.
  /// A pointer: every answer moves through several hands, and an empty
  /// string member would cost each move of every answer.
  std::shared_ptr<const std::string> challenge;
  std::string session_id; ///< Set on the answer that creates a 2025-era session.
  std::string event_id; ///< SSE event id (2025 era); empty when not resumable.
  /// Ends the exchange without a message: a cancelled request gets no
  /// response (the HTTP stream just ends).
  bool silent = false;
};

/// The channel back to the client for one request or stream.
class reply_sink {
public:
  reply_sink() noexcept : serial_(next_serial()) {}
  virtual ~reply_sink() = default;

  reply_sink(const reply_sink&) = delete;
  reply_sink& operator=(const reply_sink&) = delete;

  /// A process-wide unique number naming this sink.
  uint64_t serial() const noexcept { return serial_; }

  /// Registers what to do when the client goes away before the final
  /// response; runs at once when it already has.
  void on_close(std::function<void(uint64_t)> listener);

  /// Queues `msg` for the client. Messages after the final response are
  /// dropped, so every request is answered exactly once.
  virtual void deliver(outbound msg) = 0;

  /// False once the client has gone away (closed its connection or stream).
  virtual bool open() const noexcept = 0;

  /// True once a response has been delivered.
  bool answered() const noexcept { return answered_.load(std::memory_order_acquire); }

  /// The JSON-RPC id of the request this sink answers (null for streams that
  /// are not tied to a request).
  const json::value& request_id() const noexcept { return id_; }
  void set_request_id(json::value id) { id_ = std::move(id); }

protected:
  /// Transports call this when the client went away.
  void notify_closed();

  /// Marks the sink answered; returns false when it already was.
  bool mark_answered() noexcept { return !answered_.exchange(true, std::memory_order_acq_rel); }

  /// The answer for a request whose sink is released unanswered: the actor
  /// that held it stopped (crashed, was killed, or shut down).
  std::string abandoned_body() const;

private:
  static uint64_t next_serial() noexcept;

  uint64_t serial_;
  std::atomic<bool> answered_{false};
  json::value id_;
  std::mutex close_mtx_;
  bool close_seen_ = false;
  std::function<void(uint64_t)> close_listener_;
};

using sink_ptr = std::shared_ptr<reply_sink>;

} // namespace bulwark
