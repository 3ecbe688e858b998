// GPU and model presets for the simulator's roofline latency model and for KV-cache sizing.
//
//   absl::StatusOr<GpuSpec> gpu = FindGpu("h100-80gb");
//   ModelShape shape = ShapeForModel("llama-3-8b-instruct");
//
// Figures are vendor data-sheet values (dense bf16 tensor throughput, HBM/GDDR bandwidth) and
// published model architectures. Immutable constants; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tollgate::sim {

struct GpuSpec {
  std::string name;
  double memory_bytes = 0;
  double peak_bf16_flops = 0;  // dense, per second
  double memory_bytes_per_s = 0;
};

// Case-insensitive: "a10g", "a100-80gb", "h100-80gb". NOT_FOUND lists the known names.
absl::StatusOr<GpuSpec> FindGpu(absl::string_view name);
std::vector<std::string> GpuNames();

struct ModelShape {
  uint64_t parameters = 0;
  uint32_t layers = 0;
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t bytes_per_element = 2;

  double WeightBytes() const { return static_cast<double>(parameters) * bytes_per_element; }
  // 2 (K and V) × layers × kv_heads × head_dim × bytes per element.
  uint64_t KvBytesPerToken() const {
    return 2ull * layers * kv_heads * head_dim * bytes_per_element;
  }
};

// The preset whose name is the longest case-insensitive prefix of `model` ("llama-3-8b",
// "llama-3-70b", "llama-2-7b", "mistral-7b", ...); a Llama-3-8B shape when none matches.
ModelShape ShapeForModel(absl::string_view model);

}  // namespace tollgate::sim
