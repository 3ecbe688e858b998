#include "proxy/batcher/dynamic_batcher.h"

#include <utility>

#include "absl/time/clock.h"
#include "proxy/common/timer_queue.h"

namespace tollgate {
namespace {

class RealScheduler final : public BatchScheduler {
 public:
  absl::Time Now() override { return absl::Now(); }
  void RunAt(absl::Time when, std::function<void()> callback) override {
    TimerQueue::Default().RunAfter(when - absl::Now(), std::move(callback));
  }
};

}  // namespace

BatchScheduler& RealBatchScheduler() {
  static auto* scheduler = new RealScheduler;
  return *scheduler;
}

}  // namespace tollgate
