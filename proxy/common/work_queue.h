// A fixed pool of threads that run posted callbacks in order of arrival, so that work handed over
// by a thread which must not block (a Redis client's I/O thread, a gRPC reaction) runs elsewhere.
//
//   WorkQueue::Default().Post([run] { run->Continue(); });
//
// Thread-safe. Callbacks may block briefly (a budget check with a timeout) but a pool of a few
// threads is easily starved, so they must not wait on anything unbounded. Destroying the queue
// runs the callbacks already posted, then joins its threads.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tollgate {

class WorkQueue {
 public:
  explicit WorkQueue(int threads);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Post(std::function<void()> callback) ABSL_LOCKS_EXCLUDED(mu_);

  // The process-wide pool (one thread per core, at least 2; never destroyed).
  static WorkQueue& Default();

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tollgate
