// The clock and timer KvAdmission waits with: an interface, so that tests drive time by hand and
// accounting does not depend on the proxy's TimerQueue.
//
// A production adapter over proxy/common/timer_queue.h (written where the proxy wires KV in):
//   class TimerQueueScheduler final : public Scheduler {
//    public:
//     absl::Time Now() override { return absl::Now(); }
//     void RunAt(absl::Time when, std::function<void()> callback) override {
//       TimerQueue::Default().RunAfter(when - absl::Now(), std::move(callback));
//     }
//   };
//
// Thread safety: implementations must be safe to call from any thread.
#pragma once

#include <functional>

#include "absl/time/time.h"

namespace tollgate {

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  virtual absl::Time Now() = 0;

  // Runs `callback` once, at or after `when`, on a thread of the scheduler's: never inside RunAt.
  // There is no cancelling: a callback that finds its work gone does nothing. Callbacks must not
  // block.
  virtual void RunAt(absl::Time when, std::function<void()> callback) = 0;
};

}  // namespace tollgate
