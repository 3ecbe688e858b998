// Backend kind `sim`: the simulator engine running inside the proxy process (the default backend).
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "proxy/backends/backend.h"
#include "proxy/config/config.h"
#include "sim/presets.h"

namespace tollgate {

// `shapes` overrides the preset shape for backend model names (from the config's architectures).
absl::StatusOr<std::unique_ptr<Backend>> NewSimBackend(
    std::string name, const SimConfig& config,
    absl::flat_hash_map<std::string, sim::ModelShape> shapes);

}  // namespace tollgate
