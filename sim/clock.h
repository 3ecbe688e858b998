// The time source of the simulator engine, injectable so that tests run on virtual time.
//
//   Clock* clock = RealClock();
//   clock->SleepUntil(clock->Now() + absl::Milliseconds(5));  // returns early after Wake()
//
// Implementations must be thread-safe.
#pragma once

#include "absl/time/time.h"

namespace tollgate::sim {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  // Blocks until Now() >= t. May return early when Wake() is called; callers re-check their
  // state and sleep again.
  virtual void SleepUntil(absl::Time t) = 0;
  virtual void Wake() = 0;
};

// The process-wide wall clock; never deleted. Wake() makes every thread's current or next
// SleepUntil return early once (a wake is never lost, some are spurious), so one clock can be
// shared by several engines.
Clock* RealClock();

}  // namespace tollgate::sim
