// Internal to BuildConfig (build_config.cc): the KV-cache parts of the configuration,
// backends[].kv and the model shapes KV accounting needs. Pure functions; safe from any thread.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/config/config.h"
#include "tollgate/v1/config.pb.h"

namespace tollgate::config_internal {

// "http[s]://host[:port][/path]"; errors name `path`. Defined in build_config.cc.
absl::StatusOr<BaseUrl> ParseBaseUrl(absl::string_view path, absl::string_view url);

// backends[i].kv with its defaults applied, or nullopt when the backend has none. Errors are
// INVALID_ARGUMENT starting with the field path ("backends[0].kv.gpu: ...").
absl::StatusOr<std::optional<KvConfig>> BuildKv(const v1::Backend& source, const std::string& path);

// Sets kv_shape on every model whose backend or a fallback of it has `kv`: its architecture when
// that gives a shape, else FindModelPreset(backend_model). A model with neither is an error naming
// it; so is a backend whose GPUs its largest model's weights leave no KV-cache room on.
// REQUIRES: config.models and config.backends built, in config order.
absl::Status ResolveKvShapes(Config& config);

}  // namespace tollgate::config_internal
