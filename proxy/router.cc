#include "proxy/router.h"

#include "absl/strings/str_cat.h"
#include "proxy/backends/anthropic/anthropic_backend.h"
#include "proxy/backends/grpc/grpc_backend.h"
#include "proxy/backends/openai/openai_backend.h"
#include "proxy/backends/sim/sim_backend.h"
#include "proxy/common/status_macros.h"

namespace tollgate {
namespace {

// Shapes of the models a sim backend serves, from their configured architectures.
absl::flat_hash_map<std::string, sim::ModelShape> SimShapes(const Config& config,
                                                            const std::string& backend) {
  absl::flat_hash_map<std::string, sim::ModelShape> shapes;
  for (const ModelConfig& model : config.models) {
    const ArchitectureConfig& a = model.architecture;
    if (model.backend != backend || a.layers == 0) continue;
    sim::ModelShape shape = sim::ShapeForModel(model.backend_model);
    if (a.parameters > 0) shape.parameters = a.parameters;
    shape.layers = a.layers;
    shape.kv_heads = a.kv_heads;
    shape.head_dim = a.head_dim;
    shape.bytes_per_element = a.bytes_per_element;
    shapes[model.backend_model] = shape;
  }
  return shapes;
}

std::string Fingerprint(const BackendConfig& b,
                        const absl::flat_hash_map<std::string, sim::ModelShape>& shapes) {
  std::string out =
      absl::StrCat(static_cast<int>(b.kind), "|", b.address, "|", absl::FormatDuration(b.timeout),
                   "|", b.base_url.tls, "|", b.base_url.host, "|", b.base_url.port, "|",
                   b.base_url.path_prefix, "|", b.api_key, "|", b.max_connections);
  for (const auto& [name, value] : b.headers) absl::StrAppend(&out, "|", name, "=", value);
  if (b.kind == BackendKind::kSim) {
    absl::StrAppend(&out, "|", b.sim.gpu, "|", b.sim.gpu_count, "|", b.sim.time_scale, "|",
                    b.sim.mfu, "|", b.sim.max_running_requests);
    std::vector<std::string> parts;
    for (const auto& [model, s] : shapes) {
      parts.push_back(absl::StrCat(model, ":", s.parameters, ":", s.layers, ":", s.kv_heads, ":",
                                   s.head_dim, ":", s.bytes_per_element));
    }
    std::sort(parts.begin(), parts.end());
    for (const std::string& p : parts) absl::StrAppend(&out, "|", p);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Backend>> NewBackend(
    const BackendConfig& b, absl::flat_hash_map<std::string, sim::ModelShape> shapes) {
  switch (b.kind) {
    case BackendKind::kSim:
      return NewSimBackend(b.name, b.sim, std::move(shapes));
    case BackendKind::kGrpc:
      return NewGrpcBackend(b.name, b.address, b.timeout);
    case BackendKind::kOpenAi:
      return NewOpenAiBackend(b);
    case BackendKind::kAnthropic:
      return NewAnthropicBackend(b);
  }
  return absl::InternalError("unhandled backend kind");
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Router>> Router::Build(const Config& config,
                                                            const Router* previous) {
  auto router = std::shared_ptr<Router>(new Router);  // NOLINT(modernize-make-shared): private
  router->config_ = &config;
  for (const BackendConfig& b : config.backends) {
    auto shapes = SimShapes(config, b.name);
    Entry entry{Fingerprint(b, shapes), nullptr, nullptr};
    if (previous != nullptr) {
      auto it = previous->backends_.find(b.name);
      if (it != previous->backends_.end() && it->second.fingerprint == entry.fingerprint) {
        entry.backend = it->second.backend;
        entry.health = it->second.health;
      }
    }
    if (entry.health == nullptr) entry.health = std::make_shared<BackendHealth>();
    if (entry.backend == nullptr) {
      auto backend = NewBackend(b, std::move(shapes));
      if (!backend.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("backend \"", b.name, "\": ", backend.status().message()));
      }
      entry.backend = std::move(*backend);
    }
    router->backends_.emplace(b.name, std::move(entry));
  }
  return router;
}

std::shared_ptr<const Router> Router::WithBackends(
    const Config& config,
    const absl::flat_hash_map<std::string, std::shared_ptr<Backend>>& backends) {
  auto router = std::shared_ptr<Router>(new Router);  // NOLINT(modernize-make-shared): private
  router->config_ = &config;
  for (const auto& [name, backend] : backends) {
    router->backends_.emplace(name, Entry{"", backend, std::make_shared<BackendHealth>()});
  }
  return router;
}

absl::StatusOr<Target> Router::TargetFor(const std::string& backend_name) const {
  auto it = backends_.find(backend_name);
  const BackendConfig* config = config_->FindBackend(backend_name);
  if (it == backends_.end() || config == nullptr) {  // config validation makes this unreachable
    return absl::InternalError(absl::StrCat("no backend \"", backend_name, "\""));
  }
  return Target{config, it->second.backend, it->second.health};
}

absl::StatusOr<Route> Router::Resolve(absl::string_view model) const {
  const ModelConfig* m = config_->FindModel(model);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown model \"", model, "\""));
  }
  Route route{m, {}};
  route.targets.reserve(1 + m->fallback_backends.size());
  TG_ASSIGN_OR_RETURN(Target primary, TargetFor(m->backend));
  route.targets.push_back(std::move(primary));
  for (const std::string& fallback : m->fallback_backends) {
    TG_ASSIGN_OR_RETURN(Target target, TargetFor(fallback));
    route.targets.push_back(std::move(target));
  }
  return route;
}

std::shared_ptr<Backend> Router::FindBackend(absl::string_view backend_name) const {
  auto it = backends_.find(backend_name);
  return it != backends_.end() ? it->second.backend : nullptr;
}

}  // namespace tollgate
