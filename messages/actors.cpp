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

} // namespace bulwark
