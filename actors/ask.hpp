// A typed request from code that is not an actor: a transport thread, or a
// tool handler of the gateway. A short-lived actor sends the request with a
// timeout and hands the reply, or the error (the receiver died, the time
// ran out), to a function on its own thread, then ends. The interface in
// messages/actors.hpp says what answers; no callback travels in a message.
//
// It costs a spawn (tens of µs in CAF 0.17): for rare requests (a session
// taken over from another instance, a queue-status query), not for a call's
// path. The arguments are evaluated in no set order: a handler must not
// capture from a value that an argument moves.
#pragma once

#include <utility>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

namespace bulwark {

template <class Handle, class OnReply, class OnError, class... Ts>
void ask(caf::actor_system& sys, Handle receiver, caf::timespan timeout, OnReply on_reply, OnError on_error,
         Ts... args) {
  sys.spawn([=](caf::event_based_actor* self) mutable {
    self->request(receiver, timeout, std::move(args)...).then(std::move(on_reply), std::move(on_error));
  });
}

} // namespace bulwark
