// Maps a requested model to its configuration and backend.
//
//   auto router = Router::Build(*config, previous.get());
//   absl::StatusOr<Route> route = router->Resolve("gpt-4o");
//
// A Router is built once per config load and is immutable afterwards, so it is safe to share
// between threads. Backends whose settings did not change are carried over from the previous
// router, so a reload keeps their connections and in-flight calls.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/backend_health.h"
#include "proxy/backends/backend.h"
#include "proxy/config/config.h"

namespace tollgate {

// One backend a request may be sent to.
struct Target {
  const BackendConfig* config = nullptr;  // points into the Config the router was built from
  std::shared_ptr<Backend> backend;
  std::shared_ptr<BackendHealth> health;
};

struct Route {
  const ModelConfig* model = nullptr;  // points into the Config the router was built from
  std::vector<Target> targets;         // the model's backend first, then its fallbacks in order
};

class Router {
 public:
  // Creates the backends of `config` (the config must outlive the router). Errors name the backend.
  static absl::StatusOr<std::shared_ptr<const Router>> Build(const Config& config,
                                                             const Router* previous);

  // A router over given backend instances (unit tests inject fakes here).
  static std::shared_ptr<const Router> WithBackends(
      const Config& config,
      const absl::flat_hash_map<std::string, std::shared_ptr<Backend>>& backends);

  // NOT_FOUND for a model the config does not list.
  absl::StatusOr<Route> Resolve(absl::string_view model) const;

  // For tests: the backend instance serving `backend_name`, or nullptr.
  std::shared_ptr<Backend> FindBackend(absl::string_view backend_name) const;

 private:
  struct Entry {
    std::string fingerprint;  // settings that require a new instance when they change
    std::shared_ptr<Backend> backend;
    std::shared_ptr<BackendHealth> health;  // carried over with the backend
  };
  absl::StatusOr<Target> TargetFor(const std::string& backend_name) const;
  const Config* config_ = nullptr;
  absl::flat_hash_map<std::string, Entry> backends_;
};

}  // namespace tollgate
