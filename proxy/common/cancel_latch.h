// A cancellable handle that may be cancelled before it exists: a Cancel() that comes first is
// remembered and applied when the handle is set. `Handle` has a thread-safe Cancel().
//
//   CancelLatch<BackendCall> call;
//   call.Set(backend->Generate(...));   // cancels at once if Cancel() came first
//   ...
//   call.Cancel();                      // from any thread
//
// Thread-safe.
#pragma once

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tollgate {

template <typename Handle>
class CancelLatch {
 public:
  // Replaces the handle (a retry's new call); cancels it if Cancel() already happened.
  void Set(std::shared_ptr<Handle> handle) ABSL_LOCKS_EXCLUDED(mu_) {
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      handle_ = handle;
      cancelled = cancelled_;
    }
    if (cancelled) handle->Cancel();
  }

  void Cancel() ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<Handle> handle;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      handle = handle_;
    }
    if (handle != nullptr) handle->Cancel();
  }

  bool cancelled() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<Handle> handle_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tollgate
