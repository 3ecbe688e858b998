#include "sim/clock.h"

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tollgate::sim {
namespace {

class WallClock final : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }

  void SleepUntil(absl::Time t) override {
    // The last wake epoch this thread has seen: a Wake() that lands between the caller's state
    // check and this call still cuts the sleep short.
    thread_local uint64_t seen_epoch = 0;
    absl::MutexLock lock(&mu_);
    const uint64_t seen = seen_epoch;
    auto woken = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return epoch_ != seen; };
    mu_.AwaitWithDeadline(absl::Condition(&woken), t);
    seen_epoch = epoch_;
  }

  void Wake() override {
    absl::MutexLock lock(&mu_);
    ++epoch_;
  }

 private:
  absl::Mutex mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

Clock* RealClock() {
  static auto* const clock = new WallClock();
  return clock;
}

}  // namespace tollgate::sim
