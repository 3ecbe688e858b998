// The proxy's current configuration, swapped atomically on reload.
//
//   ConfigStore store(*LoadConfigFile(path));
//   store.OnReload([&](const std::shared_ptr<const Config>& config) { metrics.Rebuild(*config); });
//   // On SIGHUP (from a thread that may block, never a signal handler or a reactor):
//   if (absl::Status s = store.ReloadFromFile(path); !s.ok()) LOG(ERROR) << s;
//   // On every request:
//   std::shared_ptr<const Config> config = store.Get();
//
// A request holds the snapshot it got for its whole life, so a reload never changes the prices,
// tenants or backends under a request in flight; the old Config is freed when its last request
// ends.
//
// Thread safety: all methods may be called concurrently from any thread. Get() takes a shared
// lock for one pointer copy. Swaps (Set, ReloadFromFile) are serialised, and reload listeners run
// on the swapping thread, after the swap, in registration order and in swap order.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "proxy/config/config.h"

namespace tollgate {

class ConfigStore {
 public:
  using ReloadListener = std::function<void(const std::shared_ptr<const Config>&)>;

  // REQUIRES: `initial` is not null.
  explicit ConfigStore(std::shared_ptr<const Config> initial);

  ConfigStore(const ConfigStore&) = delete;
  ConfigStore& operator=(const ConfigStore&) = delete;

  // The current configuration; never null.
  std::shared_ptr<const Config> Get() const ABSL_LOCKS_EXCLUDED(mu_);

  // Loads `path` and, when it is valid, swaps it in and notifies the listeners. On error the
  // current configuration stays and the error (naming the file and the field) is returned.
  // REQUIRES: not called from a reload listener.
  absl::Status ReloadFromFile(const std::string& path) ABSL_LOCKS_EXCLUDED(swap_mu_, mu_);

  // Swaps in `config` and notifies the listeners.
  // REQUIRES: `config` is not null; not called from a reload listener.
  void Set(std::shared_ptr<const Config> config) ABSL_LOCKS_EXCLUDED(swap_mu_, mu_);

  // Registers `listener` for every later successful swap. Listeners should be quick: they delay
  // the next swap, never Get().
  void OnReload(ReloadListener listener) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex swap_mu_;  // held across a swap and its notifications
  mutable absl::Mutex mu_;
  std::shared_ptr<const Config> config_ ABSL_GUARDED_BY(mu_);
  std::vector<ReloadListener> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tollgate
