// Answers that survive a dropped message.
//
// CAF 0.17 bounces a *request* sent to an actor that is gone, but an
// asynchronous message (`send`, `anon_send`, `delayed_send`) is destroyed
// without a word: when its receiver has terminated already (a registry
// entry may still name an incarnation that died a moment ago), and when the
// receiver is killed while the message waits in its mailbox. Bulwark hands a
// client's call from actor to actor in asynchronous messages (a reply
// closure for the cache, queued work, a downstream call for the breaker and
// the connector), so every such message carries what answers the call if it
// is dropped:
//
//  - a reply closure is wrapped with `reply_once`: destroyed without having
//    been called, it runs its `lost` fallback;
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
#include <functional>
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

/// Wraps the one-shot callback `f` (taking an `Arg`) so that it runs exactly
/// once: when the wrapper is called (later calls do nothing), or, when every
/// copy of the wrapper is destroyed without that (the message carrying it was
/// dropped), as `lost(f)`.
template <class Arg, class F, class Lost>
std::function<void(Arg)> reply_once(F f, Lost lost) {
  struct state {
    F f;
    Lost lost;
    std::atomic<bool> used{false};
    state(F f_, Lost lost_) : f(std::move(f_)), lost(std::move(lost_)) {}
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() {
      if (used.exchange(true))
        return;
      try {
        lost(f);
      } catch (...) {
        // See handoff_with.
      }
    }
  };
  auto s = std::make_shared<state>(std::move(f), std::move(lost));
  return [s](Arg a) {
    if (!s->used.exchange(true))
      s->f(std::forward<Arg>(a));
  };
}

} // namespace bulwark
