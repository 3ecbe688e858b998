#include "proxy/config/config_store.h"

#include <utility>

#include "proxy/common/status_macros.h"

namespace tollgate {

ConfigStore::ConfigStore(std::shared_ptr<const Config> initial) : config_(std::move(initial)) {}

std::shared_ptr<const Config> ConfigStore::Get() const {
  absl::ReaderMutexLock lock(&mu_);
  return config_;
}

absl::Status ConfigStore::ReloadFromFile(const std::string& path) {
  TG_ASSIGN_OR_RETURN(std::shared_ptr<const Config> config, LoadConfigFile(path));
  Set(std::move(config));
  return absl::OkStatus();
}

void ConfigStore::Set(std::shared_ptr<const Config> config) {
  absl::MutexLock swap_lock(&swap_mu_);
  const std::shared_ptr<const Config> current = config;
  std::vector<ReloadListener> listeners;
  {
    absl::MutexLock lock(&mu_);
    // `config` takes the old one, so that dropping its last reference happens without mu_.
    config_.swap(config);
    listeners = listeners_;
  }
  // Called without mu_, so a listener may call Get() or OnReload().
  for (const ReloadListener& listener : listeners) listener(current);
}

void ConfigStore::OnReload(ReloadListener listener) {
  absl::MutexLock lock(&mu_);
  listeners_.push_back(std::move(listener));
}

}  // namespace tollgate
