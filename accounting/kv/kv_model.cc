#include "accounting/kv/kv_model.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace tollgate {
namespace {

constexpr uint64_t kMaxBytes = std::numeric_limits<uint64_t>::max();

uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > kMaxBytes - b ? kMaxBytes : a + b; }

uint64_t SaturatingMul(uint64_t a, uint64_t b) {
  uint64_t product;
  return __builtin_mul_overflow(a, b, &product) ? kMaxBytes : product;
}

// `value` rounded to the nearest whole number, clamped to [0, UINT64_MAX].
uint64_t ToBytes(double value) {
  if (!(value > 0)) return 0;
  if (value >= 0x1p64) return kMaxBytes;
  return static_cast<uint64_t>(std::llround(value));
}

}  // namespace

absl::Status ValidateKvCacheOptions(const KvCacheOptions& options) {
  if (options.block_tokens < 1) {
    return absl::InvalidArgumentError("block_tokens: must be >= 1, got 0");
  }
  if (!(options.gpu_memory_utilization > 0 && options.gpu_memory_utilization <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gpu_memory_utilization: must be in (0, 1], got ", options.gpu_memory_utilization));
  }
  if (!(options.weight_bytes_per_parameter > 0 &&
        std::isfinite(options.weight_bytes_per_parameter))) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight_bytes_per_parameter: must be a finite number > 0, got ",
                     options.weight_bytes_per_parameter));
  }
  return absl::OkStatus();
}

uint64_t RoundUpToBlock(uint64_t tokens, uint32_t block_tokens) {
  const uint64_t blocks = tokens / block_tokens + (tokens % block_tokens != 0 ? 1 : 0);
  return SaturatingMul(blocks, block_tokens);
}

uint64_t KvFootprintBytes(uint64_t tokens, uint64_t bytes_per_token, uint32_t block_tokens) {
  return SaturatingMul(RoundUpToBlock(tokens, block_tokens), bytes_per_token);
}

uint64_t WeightBytes(uint64_t parameters, double weight_bytes_per_parameter) {
  return ToBytes(static_cast<double>(parameters) * weight_bytes_per_parameter);
}

uint64_t KvCapacityBytes(double gpu_memory_bytes, uint32_t gpu_count, double gpu_memory_utilization,
                         uint64_t weight_bytes) {
  const uint64_t usable = ToBytes(gpu_memory_bytes * gpu_count * gpu_memory_utilization);
  return usable > weight_bytes ? usable - weight_bytes : 0;
}

KvCacheModel::KvCacheModel(const ModelShape& shape, const GpuSpec& gpu, uint32_t gpu_count,
                           const KvCacheOptions& options)
    : bytes_per_token_(shape.KvBytesPerToken()),
      block_tokens_(options.block_tokens),
      weight_bytes_(WeightBytes(shape.parameters, options.weight_bytes_per_parameter)),
      capacity_bytes_(KvCapacityBytes(gpu.memory_bytes, gpu_count, options.gpu_memory_utilization,
                                      weight_bytes_)) {}

uint64_t KvCacheModel::FootprintBytes(uint64_t tokens) const {
  return KvFootprintBytes(tokens, bytes_per_token_, block_tokens_);
}

uint64_t KvCacheModel::ProjectedBytes(uint64_t prompt_tokens, uint64_t max_tokens) const {
  return FootprintBytes(SaturatingAdd(prompt_tokens, max_tokens));
}

}  // namespace tollgate
