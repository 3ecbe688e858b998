#include "sim/delay_queue.h"

#include <utility>

#include "absl/time/clock.h"

namespace tollgate::sim {

DelayQueue::DelayQueue() : thread_([this] { Run(); }) {}

DelayQueue::~DelayQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void DelayQueue::RunAfter(absl::Duration delay, std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  pending_.emplace(absl::Now() + delay, std::move(callback));
  ++generation_;
}

bool DelayQueue::ShouldWakeLocked() const { return stopping_ || generation_ != seen_generation_; }

void DelayQueue::Run() {
  while (true) {
    std::function<void()> due;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_) {
        if (!pending_.empty() && absl::Now() >= pending_.begin()->first) {
          due = std::move(pending_.begin()->second);
          pending_.erase(pending_.begin());
          break;
        }
        // Sleeps until the earliest deadline, or until a new callback (maybe due earlier) or a
        // stop arrives.
        seen_generation_ = generation_;
        const absl::Condition wake(this, &DelayQueue::ShouldWakeLocked);
        if (pending_.empty()) {
          mu_.Await(wake);
        } else {
          mu_.AwaitWithDeadline(wake, pending_.begin()->first);
        }
      }
      if (due == nullptr) return;
    }
    due();
  }
}

}  // namespace tollgate::sim
