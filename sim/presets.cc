#include "sim/presets.h"

namespace tollgate::sim {

ModelShape ShapeForModel(absl::string_view model) {
  if (std::optional<ModelPreset> preset = FindModelPreset(model)) return preset->shape;
  return FindModelPreset("llama-3-8b")->shape;
}

}  // namespace tollgate::sim
