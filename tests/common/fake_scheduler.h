// A Scheduler (proxy/common/scheduler.h) whose time moves only when the test says so: Advance()
// runs the callbacks due on the way, in time order at their own times, on the advancing thread and
// outside the fake's lock (so they may arm new timers). Also remembers every time a timer was
// armed for. Thread-safe.
//
//   testing::FakeScheduler clock;
//   auto batcher = DynamicBatcher<int>::Create(options, &clock, send, reject);
//   batcher->Enqueue(1);
//   clock.Advance(absl::Milliseconds(2));  // the queue delay runs out here
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proxy/common/scheduler.h"

namespace tollgate::testing {

class FakeScheduler final : public Scheduler {
 public:
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  void RunAt(absl::Time when, std::function<void()> callback) override {
    absl::MutexLock lock(&mu_);
    armed_.push_back(when);
    timers_.emplace(when, std::move(callback));
  }

  // Moves the clock forward by `d`, running each timer due on the way at its own time; a timer a
  // callback arms within the span runs too.
  void Advance(absl::Duration d) {
    const absl::Time end = Now() + d;
    while (true) {
      std::function<void()> callback;
      {
        absl::MutexLock lock(&mu_);
        if (timers_.empty() || timers_.begin()->first > end) {
          now_ = end;
          return;
        }
        now_ = std::max(now_, timers_.begin()->first);
        callback = std::move(timers_.begin()->second);
        timers_.erase(timers_.begin());
      }
      callback();
    }
  }

  // Every time a timer was armed for, in arming order.
  std::vector<absl::Time> armed() {
    absl::MutexLock lock(&mu_);
    return armed_;
  }

  // Timers armed and not yet run.
  size_t pending() {
    absl::MutexLock lock(&mu_);
    return timers_.size();
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1'700'000'000);
  std::multimap<absl::Time, std::function<void()>> timers_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> armed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tollgate::testing
