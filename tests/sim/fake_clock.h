// A virtual clock for engine tests: time moves only when the test says so.
//
// Manual mode (the default): SleepUntil blocks until the test advances time to the deadline or
// someone calls Wake(). AwaitSleeper() lets the test wait until the engine thread is parked in a
// step, which makes the interleaving of Submit and steps deterministic.
// Auto mode: SleepUntil jumps time forward to its deadline and returns at once.
// Thread-safe.
#pragma once

#include <algorithm>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sim/clock.h"

namespace tollgate::sim {

class FakeClock final : public Clock {
 public:
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  void SleepUntil(absl::Time t) override {
    absl::MutexLock lock(&mu_);
    if (pending_wake_) {
      pending_wake_ = false;
      return;
    }
    if (now_ >= t) return;
    if (auto_advance_) {
      now_ = t;
      return;
    }
    sleeping_ = true;
    deadline_ = t;
    mu_.Await(absl::Condition(
        +[](bool* sleeping) { return !*sleeping; }, &sleeping_));
  }

  void Wake() override {
    absl::MutexLock lock(&mu_);
    if (sleeping_) {
      sleeping_ = false;
    } else {
      pending_wake_ = true;
    }
  }

  // Blocks until a thread is parked in SleepUntil; returns the time it waits for.
  absl::Time AwaitSleeper() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&sleeping_));
    return deadline_;
  }

  void AdvanceTo(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = std::max(now_, t);
    if (sleeping_ && now_ >= deadline_) sleeping_ = false;
  }

  // Waits for the engine to park, then lets exactly that step finish.
  void FinishOneStep() { AdvanceTo(AwaitSleeper()); }

  // From now on sleeps return at once with time moved to their deadline (a parked sleeper too).
  void SetAutoAdvance() {
    absl::MutexLock lock(&mu_);
    auto_advance_ = true;
    if (sleeping_) {
      now_ = std::max(now_, deadline_);
      sleeping_ = false;
    }
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::UnixEpoch() + absl::Hours(24);
  bool auto_advance_ ABSL_GUARDED_BY(mu_) = false;
  bool sleeping_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_wake_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tollgate::sim
