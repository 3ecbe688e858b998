#include "proxy/common/work_queue.h"

#include <algorithm>
#include <utility>

namespace tollgate {

WorkQueue::WorkQueue(int threads) {
  for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Loop(); });
}

WorkQueue::~WorkQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

WorkQueue& WorkQueue::Default() {
  static auto* queue =
      new WorkQueue(std::max(2, static_cast<int>(std::thread::hardware_concurrency())));
  return *queue;
}

void WorkQueue::Post(std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  pending_.push_back(std::move(callback));
}

void WorkQueue::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.Await(absl::Condition(
        +[](WorkQueue* q)
             ABSL_NO_THREAD_SAFETY_ANALYSIS { return q->stopping_ || !q->pending_.empty(); },
        this));
    if (pending_.empty()) return;  // stopping, and everything posted has run
    std::function<void()> callback = std::move(pending_.front());
    pending_.pop_front();
    mu_.Unlock();
    callback();
    mu_.Lock();
  }
}

}  // namespace tollgate
