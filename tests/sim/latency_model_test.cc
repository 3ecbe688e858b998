#include "sim/latency_model.h"

#include "gtest/gtest.h"
#include "sim/presets.h"

namespace tollgate::sim {
namespace {

// Llama-3-8B: 8.03e9 parameters in bf16 = 16.06e9 weight bytes;
// KV per token = 2 × 32 layers × 8 kv heads × 128 × 2 bytes = 131072 bytes.
// A100-80GB: 312e12 bf16 FLOP/s, 2.039e12 bytes/s.
constexpr double kLlama8bWeightBytes = 16.06e9;
constexpr double kLlama8bKvBytesPerToken = 131072;
constexpr double kA100BytesPerS = 2.039e12;
constexpr double kA100Flops = 312e12;

LatencyModel A100(uint32_t gpu_count = 1) { return {*FindGpu("a100-80gb"), gpu_count, 0.5}; }

TEST(LatencyModel, DecodeStepWithEmptyKvCacheReadsTheWeightsOnce) {
  const double seconds = A100().DecodeStepSeconds(ShapeForModel("llama-3-8b"), 0);
  EXPECT_NEAR(seconds, kLlama8bWeightBytes / kA100BytesPerS, 1e-12);
  EXPECT_NEAR(seconds, 7.8764e-3, 1e-6);
}

TEST(LatencyModel, DecodeStepAlsoReadsEveryKvToken) {
  const double seconds = A100().DecodeStepSeconds(ShapeForModel("llama-3-8b"), 1000);
  EXPECT_NEAR(seconds, (kLlama8bWeightBytes + 1000 * kLlama8bKvBytesPerToken) / kA100BytesPerS,
              1e-12);
}

TEST(LatencyModel, PrefillIsComputeBoundAtTheGivenUtilisation) {
  // 1000 tokens × 2 × 8.03e9 FLOP / (312e12 FLOP/s × 0.5) = 0.10295 s.
  const double seconds = A100().PrefillSeconds(ShapeForModel("llama-3-8b"), 1000);
  EXPECT_NEAR(seconds, 1000 * 2 * 8.03e9 / (kA100Flops * 0.5), 1e-12);
  EXPECT_NEAR(seconds, 0.10295, 1e-5);
}

TEST(LatencyModel, MoreGpusDivideBothPhases) {
  const ModelShape shape = ShapeForModel("llama-3-70b");
  EXPECT_NEAR(A100(4).PrefillSeconds(shape, 500), A100(1).PrefillSeconds(shape, 500) / 4, 1e-12);
  EXPECT_NEAR(A100(4).DecodeStepSeconds(shape, 500), A100(1).DecodeStepSeconds(shape, 500) / 4,
              1e-12);
}

TEST(LatencyModel, ReadSecondsIsBytesOverBandwidth) {
  EXPECT_NEAR(A100().ReadSeconds(2.039e12), 1.0, 1e-12);
}

}  // namespace
}  // namespace tollgate::sim
