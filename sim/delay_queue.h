// DelayQueue: runs callbacks after a delay on one timer thread of its own, so that code on an io
// thread can wait (e.g. tollgate-sim's first-byte-delay fault) without blocking that thread.
//
//   DelayQueue delays;
//   delays.RunAfter(absl::Milliseconds(200), [writer] { writer->StartStream(200, {}); });
//
// Thread-safe. Callbacks run one at a time on the timer thread, in deadline order, with no lock
// held; they must not block. The destructor drops callbacks that have not run yet (without running
// them) and joins the thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tollgate::sim {

class DelayQueue {
 public:
  DelayQueue();
  ~DelayQueue();
  DelayQueue(const DelayQueue&) = delete;
  DelayQueue& operator=(const DelayQueue&) = delete;

  // Runs `callback` on the timer thread once `delay` has passed (at once when it is <= 0).
  void RunAfter(absl::Duration delay, std::function<void()> callback) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  bool ShouldWakeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::multimap<absl::Time, std::function<void()>> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by every RunAfter
  uint64_t seen_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace tollgate::sim
