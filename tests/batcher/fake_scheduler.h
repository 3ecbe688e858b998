// A BatchScheduler on a hand-driven clock, for the batcher's tests: timers run when Advance()
// passes their time, on the test's thread. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proxy/batcher/dynamic_batcher.h"

namespace tollgate::testing {

class FakeScheduler final : public BatchScheduler {
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

  // Moves the clock forward by `d`, running each timer due on the way at its own time.
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

  // Every time a timer was armed for, in order.
  std::vector<absl::Time> armed() {
    absl::MutexLock lock(&mu_);
    return armed_;
  }
  size_t pending() {
    absl::MutexLock lock(&mu_);
    return timers_.size();
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::multimap<absl::Time, std::function<void()>> timers_;
  std::vector<absl::Time> armed_;
};

}  // namespace tollgate::testing
