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

} // namespace bulwark
