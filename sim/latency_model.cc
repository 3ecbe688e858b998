#include "sim/latency_model.h"

#include <utility>

namespace tollgate::sim {

LatencyModel::LatencyModel(GpuSpec gpu, uint32_t gpu_count, double mfu)
    : gpu_(std::move(gpu)),
      flops_per_s_(gpu_.peak_bf16_flops * gpu_count * mfu),
      bytes_per_s_(gpu_.memory_bytes_per_s * gpu_count) {}

double LatencyModel::PrefillSeconds(const ModelShape& shape, uint64_t prompt_tokens) const {
  return static_cast<double>(prompt_tokens) * 2.0 * static_cast<double>(shape.parameters) /
         flops_per_s_;
}

double LatencyModel::DecodeStepSeconds(const ModelShape& shape, uint64_t kv_tokens_read) const {
  return ReadSeconds(shape.WeightBytes() +
                     static_cast<double>(kv_tokens_read * shape.KvBytesPerToken()));
}

double LatencyModel::ReadSeconds(double bytes) const { return bytes / bytes_per_s_; }

}  // namespace tollgate::sim
