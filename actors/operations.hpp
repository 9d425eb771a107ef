// The operational actors: the rate limiter, the priority queue worker and
// the alert manager (the health supervisor is in health.hpp), one file pair
// each. Their pure logic lives in limiter.hpp, queue.hpp and alerts.hpp;
// the actors drive it with the actor clock, so tests can run them on CAF's
// test coordinator with simulated time.
#pragma once

#include "actors/alert_actor.hpp"
#include "actors/limiter_actor.hpp"
#include "actors/queue_actor.hpp"
