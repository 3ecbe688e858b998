#include "proxy/config/build_kv_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "accounting/kv/kv_model.h"
#include "accounting/kv/presets.h"
#include "proxy/common/status_macros.h"

namespace tollgate::config_internal {
namespace {

absl::Status FieldError(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

std::string Quote(absl::string_view text) { return absl::StrCat("\"", absl::CEscape(text), "\""); }

absl::StatusOr<KvAdmissionConfig> BuildKvAdmission(const v1::KvAdmission& source,
                                                   const std::string& path) {
  KvAdmissionConfig admission;
  admission.enabled = source.enabled();
  if (source.admit_ratio() != 0) admission.admit_ratio = source.admit_ratio();
  if (!(std::isfinite(admission.admit_ratio) && admission.admit_ratio > 0)) {
    return FieldError(path + ".admit_ratio",
                      absl::StrCat("must be a finite number > 0, got ", admission.admit_ratio));
  }
  if (source.max_queue() != 0) admission.max_queue = source.max_queue();
  if (source.max_queue_wait_ms() != 0) {
    admission.max_queue_wait = absl::Milliseconds(source.max_queue_wait_ms());
  }
  return admission;
}

// The model's own architecture when it gives a KV shape, else its backend model's preset.
std::optional<ModelShape> ShapeOf(const ModelConfig& model) {
  const ArchitectureConfig& given = model.architecture;
  if (given.layers != 0) {  // BuildArchitecture: then kv_heads and head_dim are set too
    return ModelShape{.parameters = given.parameters,
                      .layers = given.layers,
                      .kv_heads = given.kv_heads,
                      .head_dim = given.head_dim,
                      .bytes_per_element = given.bytes_per_element};
  }
  std::optional<ModelPreset> preset = FindModelPreset(model.backend_model);
  if (!preset) return std::nullopt;
  return preset->shape;
}

}  // namespace

absl::StatusOr<std::optional<KvConfig>> BuildKv(const v1::Backend& source,
                                                const std::string& path) {
  if (!source.has_kv()) return std::nullopt;
  const v1::KvCache& kv_source = source.kv();
  KvConfig kv;
  if (kv_source.gpu().empty()) return FieldError(path + ".gpu", "required");
  absl::StatusOr<GpuSpec> gpu = FindGpu(kv_source.gpu());
  if (!gpu.ok()) return FieldError(path + ".gpu", gpu.status().message());
  kv.gpu = gpu->name;
  if (kv_source.gpu_count() != 0) kv.gpu_count = kv_source.gpu_count();
  if (kv_source.gpu_memory_utilization() != 0) {
    kv.gpu_memory_utilization = kv_source.gpu_memory_utilization();
  }
  if (kv_source.block_tokens() != 0) kv.block_tokens = kv_source.block_tokens();
  kv.capacity_bytes = kv_source.capacity_bytes();
  const KvCacheOptions options{.block_tokens = kv.block_tokens,
                               .gpu_memory_utilization = kv.gpu_memory_utilization};
  if (absl::Status valid = ValidateKvCacheOptions(options); !valid.ok()) {
    // The message starts with the field's name, which is the config's too.
    return absl::InvalidArgumentError(absl::StrCat(path, ".", valid.message()));
  }
  TG_ASSIGN_OR_RETURN(kv.admission, BuildKvAdmission(kv_source.admission(), path + ".admission"));
  if (!kv_source.metrics_url().empty()) {
    kv.metrics_url = kv_source.metrics_url();
    TG_ASSIGN_OR_RETURN(kv.metrics_endpoint,
                        ParseBaseUrl(path + ".metrics_url", kv_source.metrics_url()));
    if (kv.metrics_endpoint.tls) {
      return FieldError(path + ".metrics_url", "https is not supported; use http://");
    }
    if (kv.metrics_endpoint.path_prefix.empty()) kv.metrics_endpoint.path_prefix = "/metrics";
  } else if (kv_source.poll_interval_ms() != 0) {
    return FieldError(path + ".poll_interval_ms", "only valid with metrics_url");
  }
  if (kv_source.poll_interval_ms() != 0) {
    kv.poll_interval = absl::Milliseconds(kv_source.poll_interval_ms());
  }
  return kv;
}

absl::Status ResolveKvShapes(Config& config) {
  for (size_t i = 0; i < config.models.size(); ++i) {
    ModelConfig& model = config.models[i];
    std::string tracked_on;  // the first of the model's backends that has `kv`
    std::vector<std::string> candidates = {model.backend};
    candidates.insert(candidates.end(), model.fallback_backends.begin(),
                      model.fallback_backends.end());
    for (const std::string& name : candidates) {
      const BackendConfig* backend = config.FindBackend(name);
      if (backend != nullptr && backend->kv && tracked_on.empty()) tracked_on = name;
    }
    if (tracked_on.empty()) continue;
    const std::string path = absl::StrCat("models[", i, "]");
    model.kv_shape = ShapeOf(model);
    if (!model.kv_shape) {
      return FieldError(
          path + ".architecture",
          absl::StrCat("model ", Quote(model.name), " runs on backend ", Quote(tracked_on),
                       ", which tracks the KV cache (kv), but has no architecture and no preset "
                       "matches backend_model ",
                       Quote(model.backend_model),
                       "; give layers, kv_heads, head_dim and "
                       "parameters"));
    }
    if (model.kv_shape->parameters == 0) {
      return FieldError(path + ".architecture.parameters",
                        absl::StrCat("required: backend ", Quote(tracked_on),
                                     " sizes its KV cache from the weights"));
    }
  }
  // Each backend's KV room, for its largest model: a backend that cannot hold any is misconfigured.
  for (size_t b = 0; b < config.backends.size(); ++b) {
    const BackendConfig& backend = config.backends[b];
    if (!backend.kv) continue;
    uint64_t largest_weights = 0;
    std::string largest;
    for (const ModelConfig& model : config.models) {
      const bool on_it = model.backend == backend.name ||
                         std::find(model.fallback_backends.begin(), model.fallback_backends.end(),
                                   backend.name) != model.fallback_backends.end();
      if (!on_it || !model.kv_shape) continue;
      const uint64_t weights = WeightBytes(model.kv_shape->parameters, 2);
      if (weights >= largest_weights) {
        largest_weights = weights;
        largest = model.name;
      }
    }
    const GpuSpec gpu = *FindGpu(backend.kv->gpu);
    if (!largest.empty() && backend.kv->capacity_bytes == 0 &&
        KvCapacityBytes(gpu.memory_bytes, backend.kv->gpu_count, backend.kv->gpu_memory_utilization,
                        largest_weights) == 0) {
      return FieldError(absl::StrCat("backends[", b, "].kv.gpu_count"),
                        absl::StrCat("the weights of model ", Quote(largest), " (", largest_weights,
                                     " bytes) leave no KV-cache room on ", backend.kv->gpu_count,
                                     " x ", backend.kv->gpu));
    }
  }
  return absl::OkStatus();
}

}  // namespace tollgate::config_internal
