#include "proxy/common/scheduler.h"

#include <utility>

#include "absl/time/clock.h"
#include "proxy/common/timer_queue.h"

namespace tollgate {
namespace {

class TimerQueueScheduler final : public Scheduler {
 public:
  absl::Time Now() override { return absl::Now(); }
  void RunAt(absl::Time when, std::function<void()> callback) override {
    TimerQueue::Default().RunAfter(when - absl::Now(), std::move(callback));
  }
};

}  // namespace

Scheduler& RealScheduler() {
  static auto* const scheduler = new TimerQueueScheduler;
  return *scheduler;
}

}  // namespace tollgate
