#include "sim/presets.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tollgate::sim {
namespace {

struct GpuRow {
  const char* name;
  double memory_gb;
  double bf16_tflops;
  double bandwidth_gb_per_s;
};

constexpr std::array<GpuRow, 3> kGpus = {{
    {"a10g", 24, 70, 600},
    {"a100-80gb", 80, 312, 2039},
    {"h100-80gb", 80, 989, 3350},
}};

struct ModelRow {
  const char* prefix;
  ModelShape shape;
};

// parameters, layers, kv_heads, head_dim, bytes per element (bf16).
const std::array<ModelRow, 8> kModels = {{
    {"llama-3-8b", {8'030'000'000, 32, 8, 128, 2}},
    {"llama-3-70b", {70'600'000'000, 80, 8, 128, 2}},
    {"llama-3.1-8b", {8'030'000'000, 32, 8, 128, 2}},
    {"llama-3.1-70b", {70'600'000'000, 80, 8, 128, 2}},
    {"llama-2-7b", {6'740'000'000, 32, 32, 128, 2}},
    {"llama-2-13b", {13'000'000'000, 40, 40, 128, 2}},
    {"mistral-7b", {7'240'000'000, 32, 8, 128, 2}},
    {"qwen2.5-7b", {7'620'000'000, 28, 4, 128, 2}},
}};

}  // namespace

absl::StatusOr<GpuSpec> FindGpu(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (const GpuRow& row : kGpus) {
    if (lower == row.name) {
      return GpuSpec{row.name, row.memory_gb * 1e9, row.bf16_tflops * 1e12,
                     row.bandwidth_gb_per_s * 1e9};
    }
  }
  return absl::NotFoundError(absl::StrCat("unknown GPU preset \"", name,
                                          "\" (known: ", absl::StrJoin(GpuNames(), ", "), ")"));
}

std::vector<std::string> GpuNames() {
  std::vector<std::string> names;
  names.reserve(kGpus.size());
  for (const GpuRow& row : kGpus) names.emplace_back(row.name);
  return names;
}

ModelShape ShapeForModel(absl::string_view model) {
  const std::string lower = absl::AsciiStrToLower(model);
  const ModelRow* best = nullptr;
  for (const ModelRow& row : kModels) {
    if (absl::StartsWith(lower, row.prefix) &&
        (best == nullptr ||
         absl::string_view(row.prefix).size() > absl::string_view(best->prefix).size())) {
      best = &row;
    }
  }
  return best != nullptr ? best->shape : kModels[0].shape;
}

}  // namespace tollgate::sim
