// KV-cache arithmetic of one model on one backend: bytes per token, block-rounded footprints and
// the backend's KV capacity.
//
//   const ModelShape shape = FindModelPreset("llama-3-8b")->shape;
//   KvCacheModel model(shape, *FindGpu("a100-80gb"), /*gpu_count=*/1, {});
//   model.bytes_per_token();                    // 2 × 32 × 8 × 128 × 2 = 131072
//   model.FootprintBytes(/*tokens=*/17);        // 2 blocks of 16 tokens = 4194304
//   model.capacity_bytes();                     // 80e9 × 0.9 − 8.03e9 × 2 = 55940000000
//
// A paged-attention server (vLLM) allocates KV memory in blocks of `block_tokens` tokens, so a
// request holding n tokens holds ceil(n / block_tokens) blocks. The memory left for the cache is
// the GPUs' memory × gpu_memory_utilization (vLLM's flag of that name, 0.9 by default) less the
// weights; activations and CUDA graphs are not modelled, so this is an upper bound. Arithmetic
// saturates at UINT64_MAX instead of wrapping.
//
// Pure functions and an immutable value type; safe from any thread.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "accounting/kv/presets.h"

namespace tollgate {

struct KvCacheOptions {
  uint32_t block_tokens = 16;           // tokens per KV block; >= 1
  double gpu_memory_utilization = 0.9;  // share of GPU memory the server may use; (0, 1]
  // Weights' width, independent of the KV cache's (bf16 weights with an fp8 cache are common):
  // 2 for bf16/fp16, 1 for fp8/int8, 0.5 for 4-bit quantisation; > 0.
  double weight_bytes_per_parameter = 2;
};

// INVALID_ARGUMENT naming the field ("block_tokens", "gpu_memory_utilization",
// "weight_bytes_per_parameter") when a value is out of its range above.
absl::Status ValidateKvCacheOptions(const KvCacheOptions& options);

// `tokens` rounded up to whole blocks: 0 → 0, 1 → 16, 16 → 16, 17 → 32 (block_tokens 16).
// REQUIRES: block_tokens >= 1.
uint64_t RoundUpToBlock(uint64_t tokens, uint32_t block_tokens);

// What `tokens` tokens hold: RoundUpToBlock(tokens) × bytes_per_token, saturating.
uint64_t KvFootprintBytes(uint64_t tokens, uint64_t bytes_per_token, uint32_t block_tokens);

// parameters × weight_bytes_per_parameter, rounded to the nearest byte.
uint64_t WeightBytes(uint64_t parameters, double weight_bytes_per_parameter);

// round(gpu_memory_bytes × gpu_count × gpu_memory_utilization) − weight_bytes, or 0 when the
// weights take it all.
uint64_t KvCapacityBytes(double gpu_memory_bytes, uint32_t gpu_count, double gpu_memory_utilization,
                         uint64_t weight_bytes);

// The figures above for one model on one backend, computed once.
class KvCacheModel {
 public:
  // REQUIRES: ValidateKvCacheOptions(options).ok(), gpu_count >= 1.
  KvCacheModel(const ModelShape& shape, const GpuSpec& gpu, uint32_t gpu_count,
               const KvCacheOptions& options);

  uint64_t bytes_per_token() const { return bytes_per_token_; }
  uint32_t block_tokens() const { return block_tokens_; }
  uint64_t weight_bytes() const { return weight_bytes_; }
  uint64_t capacity_bytes() const { return capacity_bytes_; }

  // KvFootprintBytes(tokens, bytes_per_token(), block_tokens()).
  uint64_t FootprintBytes(uint64_t tokens) const;
  // The most a request can come to hold: FootprintBytes(prompt_tokens + max_tokens). What
  // KvAdmission is asked to admit.
  uint64_t ProjectedBytes(uint64_t prompt_tokens, uint64_t max_tokens) const;

 private:
  uint64_t bytes_per_token_;
  uint32_t block_tokens_;
  uint64_t weight_bytes_;
  uint64_t capacity_bytes_;
};

}  // namespace tollgate
