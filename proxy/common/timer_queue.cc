#include "proxy/common/timer_queue.h"

#include <utility>

#include "absl/time/clock.h"

namespace tollgate {

TimerQueue::TimerQueue() : thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

TimerQueue& TimerQueue::Default() {
  static auto* queue = new TimerQueue;
  return *queue;
}

void TimerQueue::RunAfter(absl::Duration delay, std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  pending_.emplace(absl::Now() + delay, std::move(callback));
}

void TimerQueue::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    // Sleeps until the earliest deadline, or until stopping or an earlier deadline is queued.
    struct Wait {
      TimerQueue* queue;
      absl::Time wake;
      bool Done() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return queue->stopping_ ||
               (!queue->pending_.empty() && queue->pending_.begin()->first < wake);
      }
    } wait{this, pending_.empty() ? absl::InfiniteFuture() : pending_.begin()->first};
    mu_.AwaitWithDeadline(absl::Condition(&wait, &Wait::Done), wait.wake);
    if (stopping_) return;
    while (!pending_.empty() && pending_.begin()->first <= absl::Now()) {
      std::function<void()> callback = std::move(pending_.begin()->second);
      pending_.erase(pending_.begin());
      mu_.Unlock();
      callback();
      mu_.Lock();
    }
  }
}

}  // namespace tollgate
