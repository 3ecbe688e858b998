// GPU and model presets: the public figures that KV-cache sizing (kv_model.h) and the simulator's
// roofline latency model (sim/latency_model.h) start from. The one table of these facts.
//
//   absl::StatusOr<GpuSpec> gpu = FindGpu("a100-80gb");
//   std::optional<ModelPreset> preset = FindModelPreset("meta-llama/Meta-Llama-3-8B-Instruct");
//   if (preset) bytes_per_token = preset->shape.KvBytesPerToken();  // 131072 (bf16)
//
// GPU figures are vendor data-sheet values: memory in decimal GB as sold (80 GB = 80e9 bytes),
// dense bf16 tensor throughput and HBM/GDDR bandwidth. Model figures are the published
// architectures (config.json: num_hidden_layers, num_key_value_heads, hidden_size ÷
// num_attention_heads) and parameter counts to three or four significant digits.
//
// Model lookup rule (FindModelPreset): the name is lower-cased; everything up to its last '/' (the
// organisation: "meta-llama/", "mistralai/") is dropped, then a leading "meta-"
// ("Meta-Llama-3-8B");
// '_', ':' and ' ' read as '-' and "llama" directly followed by a digit gets a '-' ("llama3:8b" →
// "llama-3-8b"). The preset whose key is the longest prefix of the result, and which ends there
// or before a character that is not a letter or digit, wins: "llama-3-70b-instruct" is
// Llama-3-70B, "llama-3.1-8b" is Llama-3.1-8B (not Llama-3-8B), "llama-3-8bx" is nothing. No
// match is std::nullopt: there is no silent default here.
//
// Pure functions over constant tables; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tollgate {

struct GpuSpec {
  std::string name;               // lower-case preset name, "a100-80gb"
  double memory_bytes = 0;        // per GPU; whole bytes
  double peak_bf16_flops = 0;     // dense, per second
  double memory_bytes_per_s = 0;  // memory bandwidth
};

// Case-insensitive: "a10g", "l4", "a100-40gb", "a100-80gb", "l40s", "h100-80gb", "h200-141gb".
// NOT_FOUND lists the known names.
absl::StatusOr<GpuSpec> FindGpu(absl::string_view name);
std::vector<std::string> GpuNames();

// A transformer's shape as far as memory goes.
struct ModelShape {
  uint64_t parameters = 0;
  uint32_t layers = 0;
  uint32_t kv_heads = 0;  // key/value heads (grouped-query attention shares them)
  uint32_t head_dim = 0;
  uint32_t bytes_per_element = 2;  // of the KV cache (and, in the simulator, of the weights)

  // Weights at bytes_per_element: the simulator's roofline reads weights and KV at one width.
  // KV-cache capacity counts weights with its own width (KvCacheOptions).
  double WeightBytes() const { return static_cast<double>(parameters) * bytes_per_element; }
  // 2 (K and V) × layers × kv_heads × head_dim × bytes per element.
  uint64_t KvBytesPerToken() const {
    return 2ull * layers * kv_heads * head_dim * bytes_per_element;
  }
};

struct ModelPreset {
  const char* name;  // as published: "Llama-3-8B"
  ModelShape shape;  // bf16
};

// Every model preset, in a fixed order.
absl::Span<const ModelPreset> ModelPresets();

// The preset `model` names by the lookup rule above, or nullopt.
std::optional<ModelPreset> FindModelPreset(absl::string_view model);

}  // namespace tollgate
