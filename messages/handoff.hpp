// Answers that survive a dropped message.
//
// CAF 0.17 bounces a *request* sent to an actor that is gone, but an
// asynchronous message (`send`, `anon_send`, `delayed_send`) is destroyed
// without a word: when its receiver has terminated already (a registry
// entry may still name an incarnation that died a moment ago), and when the
// receiver is killed while the message waits in its mailbox. Bulwark hands a
// client's call from actor to actor in asynchronous messages (a lookup for
// the cache, an admission ticket for the limiter, queued work, a downstream
// call for the breaker and the connector), so every such message carries
// what answers the call if it is dropped:
//
//  - a request that is answered to the asking session (`cache_lookup`,
//    `admission_ticket` in messages/actors.hpp) answers in its destructor
//    when nobody did: a miss, an undecided admission;
//  - a message that hands over an object shared with others (a downstream
//    call) carries a `handoff`: the receiver takes it as it takes the call;
//    destroyed untaken, it runs its fallback.
//
// Fallbacks run on whatever thread destroys the message (the sender's, the
// dying receiver's), so they only do what is safe anywhere: send a message,
// resume a call (`call_context::resume`). Neither adds a hop: the guard is
// one allocation that travels with the message.
#pragma once

#include <atomic>
#include <memory>
#include <utility>

namespace bulwark {

/// Carried by a message that hands a call over; see the file comment.
class handoff {
public:
  handoff() = default;
  handoff(const handoff&) = delete;
  handoff& operator=(const handoff&) = delete;
  virtual ~handoff() = default;

  /// The receiver has the call now: the fallback will not run.
  void take() noexcept { taken_.store(true, std::memory_order_relaxed); }

protected:
  bool taken() const noexcept { return taken_.load(std::memory_order_relaxed); }

private:
  std::atomic<bool> taken_{false};
};
using handoff_ptr = std::shared_ptr<handoff>;

namespace detail {

template <class Lost>
class handoff_with final : public handoff {
public:
  explicit handoff_with(Lost lost) : lost_(std::move(lost)) {}
  ~handoff_with() override {
    if (taken())
      return;
    try {
      lost_();
    } catch (...) {
      // A destructor must not throw; the fallback only sends messages.
    }
  }

private:
  Lost lost_;
};

} // namespace detail

/// A handoff whose fallback is `lost()`, run when the message carrying it is
/// destroyed before its receiver took it.
template <class Lost>
handoff_ptr make_handoff(Lost lost) {
  return std::make_shared<detail::handoff_with<Lost>>(std::move(lost));
}

} // namespace bulwark
