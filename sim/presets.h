// The simulator's names for the GPU and model presets of accounting/kv/presets.h, which hold the
// figures; the simulator adds only a fallback shape for models no preset names.
//
//   absl::StatusOr<GpuSpec> gpu = FindGpu("h100-80gb");
//   ModelShape shape = ShapeForModel("llama-3-8b-instruct");
//
// Immutable constants; safe from any thread.
#pragma once

#include "absl/strings/string_view.h"
#include "accounting/kv/presets.h"

namespace tollgate::sim {

using ::tollgate::FindGpu;
using ::tollgate::GpuNames;
using ::tollgate::GpuSpec;
using ::tollgate::ModelShape;

// The shape of the preset `model` names (FindModelPreset's rule), else Llama-3-8B's: the simulator
// serves any model name.
ModelShape ShapeForModel(absl::string_view model);

}  // namespace tollgate::sim
