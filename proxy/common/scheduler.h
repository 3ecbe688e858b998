// A clock and one-shot timers, behind an interface so that code which waits (the dynamic batcher's
// queue delay, KV admission's queue wait) runs on a hand-driven clock in tests
// (tests/common/fake_scheduler.h) and on the process's timer thread in production.
//
//   Scheduler& scheduler = RealScheduler();
//   scheduler.RunAt(scheduler.Now() + absl::Milliseconds(2), [weak] {
//     if (auto self = weak.lock()) self->OnTimer();
//   });
//
// Thread safety: implementations may be called from any thread.
#pragma once

#include <functional>

#include "absl/time/time.h"

namespace tollgate {

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  virtual absl::Time Now() = 0;

  // Runs `callback` once, at or after `when`, on a thread of the scheduler's: never on the
  // caller's stack inside RunAt. There is no cancelling: a callback that finds its work gone does
  // nothing. Callbacks must not block, since they share the scheduler's thread.
  virtual void RunAt(absl::Time when, std::function<void()> callback) = 0;
};

// absl::Now() and TimerQueue::Default() (proxy/common/timer_queue.h). Never destroyed, so that
// timers armed by objects torn down at exit still find it.
Scheduler& RealScheduler();

}  // namespace tollgate
