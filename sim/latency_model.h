// Roofline latency model of one model server: prefill is compute-bound, decode is memory-bound.
//
//   LatencyModel model(*FindGpu("a100-80gb"), /*gpu_count=*/1, /*mfu=*/0.5);
//   double ttft_s = model.PrefillSeconds(shape, 1000) + model.DecodeStepSeconds(shape, 1000);
//
// Immutable after construction; safe to share between threads.
#pragma once

#include <cstdint>

#include "sim/presets.h"

namespace tollgate::sim {

class LatencyModel {
 public:
  // REQUIRES: gpu_count >= 1, 0 < mfu <= 1, gpu figures positive.
  LatencyModel(GpuSpec gpu, uint32_t gpu_count, double mfu);

  // prompt_tokens × 2 × parameters ÷ (peak bf16 FLOP/s × gpu_count × mfu).
  double PrefillSeconds(const ModelShape& shape, uint64_t prompt_tokens) const;

  // One decode step, shared by every request running in it (continuous batching):
  // (weight bytes + kv_tokens_read × KV bytes per token) ÷ (HBM bytes/s × gpu_count), where
  // kv_tokens_read sums (prompt + generated so far) over the running requests.
  double DecodeStepSeconds(const ModelShape& shape, uint64_t kv_tokens_read) const;

  // Time to stream `bytes` from the memory of all GPUs once; DecodeStepSeconds in bytes.
  double ReadSeconds(double bytes) const;

  const GpuSpec& gpu() const { return gpu_; }

 private:
  GpuSpec gpu_;
  double flops_per_s_;
  double bytes_per_s_;
};

}  // namespace tollgate::sim
