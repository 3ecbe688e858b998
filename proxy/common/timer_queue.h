// Runs callbacks after a delay, on one thread of its own, so that code which must not block (a
// gRPC reaction, a backend callback) can wait, e.g. for a retry's backoff.
//
//   TimerQueue::Default().RunAfter(absl::Milliseconds(100), [run] { run->Retry(); });
//
// Thread-safe. Callbacks run one at a time on the queue's thread and must not block for long.
// Destroying the queue drops callbacks that have not run yet.
#pragma once

#include <functional>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tollgate {

class TimerQueue {
 public:
  TimerQueue();
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  void RunAfter(absl::Duration delay, std::function<void()> callback) ABSL_LOCKS_EXCLUDED(mu_);

  // The process-wide queue (never destroyed).
  static TimerQueue& Default();

 private:
  void Loop();

  absl::Mutex mu_;
  std::multimap<absl::Time, std::function<void()>> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tollgate
