// A Scheduler whose time moves only when the test says so: callbacks due by then run in time
// order on the advancing thread, outside the scheduler's lock. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accounting/kv/scheduler.h"

namespace tollgate {

class FakeScheduler final : public Scheduler {
 public:
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  void RunAt(absl::Time when, std::function<void()> callback) override {
    absl::MutexLock lock(&mu_);
    pending_.emplace(when, std::move(callback));
  }

  void Advance(absl::Duration by) {
    absl::Time until;
    {
      absl::MutexLock lock(&mu_);
      until = now_ + by;
    }
    for (;;) {
      std::function<void()> callback;
      {
        absl::MutexLock lock(&mu_);
        if (pending_.empty() || pending_.begin()->first > until) {
          now_ = until;
          return;
        }
        now_ = std::max(now_, pending_.begin()->first);
        callback = std::move(pending_.begin()->second);
        pending_.erase(pending_.begin());
      }
      callback();
    }
  }

  size_t pending() {
    absl::MutexLock lock(&mu_);
    return pending_.size();
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1'750'000'000);
  std::multimap<absl::Time, std::function<void()>> pending_;
};

}  // namespace tollgate
