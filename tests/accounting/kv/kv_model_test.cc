#include "accounting/kv/kv_model.h"

#include <cstdint>
#include <limits>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;

ModelShape Shape(const char* model) { return FindModelPreset(model)->shape; }

TEST(KvModel, BytesPerTokenOfEveryPreset) {
  // 2 × layers × kv_heads × head_dim × 2 bytes (bf16), worked out by hand.
  const std::map<std::string, uint64_t> expected = {
      {"Llama-2-7B", 2 * 32 * 32 * 128 * 2},  // 524,288
      {"Llama-2-13B", 819'200},               // 2 × 40 × 40 × 128 × 2
      {"Llama-2-70B", 327'680},               // 2 × 80 × 8 × 128 × 2
      {"Llama-3-8B", 131'072},                // 2 × 32 × 8 × 128 × 2
      {"Llama-3-70B", 327'680},               // 2 × 80 × 8 × 128 × 2
      {"Llama-3.1-8B", 131'072},              //
      {"Llama-3.1-70B", 327'680},             //
      {"Llama-3.1-405B", 516'096},            // 2 × 126 × 8 × 128 × 2
      {"Llama-3.3-70B", 327'680},             //
      {"Mistral-7B", 131'072},                // 2 × 32 × 8 × 128 × 2
      {"Mixtral-8x7B", 131'072},              // 2 × 32 × 8 × 128 × 2
      {"Qwen2.5-7B", 57'344},                 // 2 × 28 × 4 × 128 × 2
  };
  ASSERT_EQ(ModelPresets().size(), expected.size());
  for (const ModelPreset& preset : ModelPresets()) {
    SCOPED_TRACE(preset.name);
    ASSERT_TRUE(expected.count(preset.name));
    EXPECT_EQ(preset.shape.KvBytesPerToken(), expected.at(preset.name));
  }
}

TEST(KvModel, IssueFiguresForLlama2_13BAndLlama3_70B) {
  EXPECT_EQ(Shape("Llama-2-13B").KvBytesPerToken(), 819'200u);
  EXPECT_EQ(Shape("Llama-3-70B").KvBytesPerToken(), 327'680u);
}

TEST(KvModel, BytesPerTokenScaleWithTheElementWidth) {
  ModelShape fp8 = Shape("Llama-3-8B");
  fp8.bytes_per_element = 1;
  EXPECT_EQ(fp8.KvBytesPerToken(), 65'536u);
}

TEST(KvModel, TokensRoundUpToWholeBlocks) {
  EXPECT_EQ(RoundUpToBlock(0, 16), 0u);
  EXPECT_EQ(RoundUpToBlock(1, 16), 16u);
  EXPECT_EQ(RoundUpToBlock(15, 16), 16u);
  EXPECT_EQ(RoundUpToBlock(16, 16), 16u);
  EXPECT_EQ(RoundUpToBlock(17, 16), 32u);
  EXPECT_EQ(RoundUpToBlock(17, 1), 17u);
  EXPECT_EQ(RoundUpToBlock(33, 32), 64u);
}

TEST(KvModel, FootprintIsWholeBlocksTimesBytesPerToken) {
  EXPECT_EQ(KvFootprintBytes(0, 131'072, 16), 0u);
  EXPECT_EQ(KvFootprintBytes(1, 131'072, 16), 16u * 131'072);
  EXPECT_EQ(KvFootprintBytes(16, 131'072, 16), 16u * 131'072);
  EXPECT_EQ(KvFootprintBytes(17, 131'072, 16), 32u * 131'072);
}

TEST(KvModel, FootprintSaturatesInsteadOfWrapping) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(KvFootprintBytes(kMax, 2, 16), kMax);
  EXPECT_EQ(KvFootprintBytes(uint64_t{1} << 40, uint64_t{1} << 30, 16), kMax);
}

TEST(KvModel, CapacityOfLlama3_8BOnOneA100_80GB) {
  const KvCacheModel model(Shape("Llama-3-8B"), *FindGpu("a100-80gb"), 1, {});
  EXPECT_EQ(model.bytes_per_token(), 131'072u);
  EXPECT_EQ(model.block_tokens(), 16u);
  EXPECT_EQ(model.weight_bytes(), 16'060'000'000u);    // 8.03e9 parameters × 2 bytes
  EXPECT_EQ(model.capacity_bytes(), 55'940'000'000u);  // 80e9 × 0.9 − 16.06e9
  EXPECT_EQ(model.capacity_bytes() / model.bytes_per_token(), 426'788u);  // tokens
}

TEST(KvModel, CapacityCountsEveryGpuAndTheUtilization) {
  // Llama-3-70B on two H100-80GB at 0.95: 160e9 × 0.95 − 141.2e9.
  const KvCacheModel model(Shape("Llama-3-70B"), *FindGpu("h100-80gb"), 2,
                           {.gpu_memory_utilization = 0.95});
  EXPECT_EQ(model.capacity_bytes(), 10'800'000'000u);
}

TEST(KvModel, WeightWidthIsIndependentOfTheCacheWidth) {
  // fp8 weights: 70.6e9 bytes; 4-bit: 35.3e9.
  const GpuSpec h100 = *FindGpu("h100-80gb");
  EXPECT_EQ(KvCacheModel(Shape("Llama-3-70B"), h100, 1, {.weight_bytes_per_parameter = 1})
                .capacity_bytes(),
            1'400'000'000u);
  EXPECT_EQ(KvCacheModel(Shape("Llama-3-70B"), h100, 1, {.weight_bytes_per_parameter = 0.5})
                .capacity_bytes(),
            36'700'000'000u);
}

TEST(KvModel, CapacityIsNeverNegative) {
  // Llama-3-70B's 141.2 GB of bf16 weights on one 24 GB A10G.
  EXPECT_EQ(KvCacheModel(Shape("Llama-3-70B"), *FindGpu("a10g"), 1, {}).capacity_bytes(), 0u);
  EXPECT_EQ(KvCapacityBytes(24e9, 1, 0.9, 21'600'000'000), 0u);  // exactly all of it
}

TEST(KvModel, ProjectedBytesCoverPromptAndMaxTokens) {
  const KvCacheModel model(Shape("Llama-3-8B"), *FindGpu("a100-80gb"), 1, {.block_tokens = 32});
  EXPECT_EQ(model.ProjectedBytes(1000, 24), 1024u * 131'072);
  EXPECT_EQ(model.ProjectedBytes(1000, 25), 1056u * 131'072);
  EXPECT_EQ(model.ProjectedBytes(std::numeric_limits<uint64_t>::max(), 5),
            std::numeric_limits<uint64_t>::max());
}

TEST(KvModel, OptionsAreValidatedNamingTheField) {
  EXPECT_TRUE(ValidateKvCacheOptions({}).ok());
  EXPECT_THAT(ValidateKvCacheOptions({.block_tokens = 0}).message(),
              HasSubstr("block_tokens: must be >= 1"));
  EXPECT_THAT(ValidateKvCacheOptions({.gpu_memory_utilization = 1.5}).message(),
              HasSubstr("gpu_memory_utilization: must be in (0, 1], got 1.5"));
  EXPECT_THAT(ValidateKvCacheOptions({.gpu_memory_utilization = 0}).message(),
              HasSubstr("gpu_memory_utilization"));
  EXPECT_THAT(ValidateKvCacheOptions({.weight_bytes_per_parameter = -1}).message(),
              HasSubstr("weight_bytes_per_parameter: must be a finite number > 0"));
  EXPECT_EQ(ValidateKvCacheOptions({.weight_bytes_per_parameter = std::nan("")}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tollgate
