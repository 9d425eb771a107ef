#include "messages/actors.hpp"

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

namespace bulwark {

admission_ticket::admission_ticket(admission_request req, caf::actor session, uint64_t serial)
    : request(std::move(req)), session_(std::move(session)), serial_(serial) {}

admission_ticket::~admission_ticket() {
  if (answered_.load())
    return;
  admission undecided;
  undecided.undecided = true;
  try {
    answer(undecided);
  } catch (...) {
    // A destructor must not throw; answering only sends a message.
  }
}

void admission_ticket::answer(const admission& a) {
  if (answered_.exchange(true) || !session_)
    return;
  caf::anon_send(caf::actor_cast<session_actor>(session_), atom::admit_v, serial_, a);
}

cache_lookup::cache_lookup(std::string k, bool stale, caf::actor session, uint64_t token)
    : key(std::move(k)), allow_stale(stale), session_(std::move(session)), token_(token) {}

cache_lookup::~cache_lookup() {
  if (answered_.load())
    return;
  try {
    answer(std::nullopt);
  } catch (...) {
    // A destructor must not throw; answering only sends a message.
  }
}

void cache_lookup::answer(std::optional<cache_hit> hit) {
  if (answered_.exchange(true) || !session_)
    return;
  caf::anon_send(caf::actor_cast<session_actor>(session_), atom::found_v, token_, std::move(hit));
}

void downstream_call::complete(downstream_outcome o) {
  if (completed_.exchange(true))
    return;
  if (queue && o.what != downstream_outcome::kind::refused)
    caf::anon_send(queue, atom::done_v, queue_slot);
  if (!listener)
    return;
  // A listener that is gone cannot answer the client's call: fail it here,
  // with the call's own failure, or saying whether the service was reached.
  auto self = shared_from_this();
  auto lost = make_handoff(
    [self, code = o.unanswered() ? o.code : static_cast<int>(error_code::actor_restarted),
     message = o.unanswered() ? o.message
               : o.reached    ? "the service's breaker stopped before the call's answer reached the client; "
                                "the call reached the service and may have run"
                              : "the service's breaker stopped before the call's answer reached the client; retry",
     reached = o.reached] {
      if (auto to = self->target)
        to->resume([code, message, reached](const call_ptr& c) {
          c->fail(static_cast<error_code>(code), message,
                  json::value::make_object({{"retry_after_seconds", 1}, {"reachedService", reached}}));
        });
    });
  caf::anon_send(listener, atom::done_v, std::move(self), std::move(o), std::move(lost));
}

void queued_work::refuse(error_code code, std::string message, json::value data) {
  auto c = std::exchange(call, nullptr);
  if (!c)
    return;
  auto o = downstream_outcome::without_answer(downstream_outcome::kind::refused, code, std::move(message), false);
  o.data = std::move(data);
  c->complete(std::move(o));
}

queued_work::~queued_work() {
  try {
    refuse(error_code::actor_restarted, "the request queue restarted before the call ran; retry",
           json::value::make_object({{"retry_after_seconds", 1}}));
  } catch (...) {
    // A destructor must not throw; completing the call only sends messages.
  }
}

} // namespace bulwark
