#include "accounting/gpu/shadow_pricing.h"

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;

v1::Usage Tokens(uint64_t input, uint64_t output) {
  v1::Usage usage;
  usage.set_input_tokens(input);
  usage.set_output_tokens(output);
  return usage;
}

// Self-hosted Llama-3-70B on 4×H100 at $2/h per GPU, 5000 prompt and 50 output tokens per second.
ShadowPlan Llama70bOnFourH100() {
  ShadowPlan plan;
  plan.name = "llama-3-70b-4xh100";
  plan.kind = ShadowPlan::kGpu;
  plan.gpu.gpu_type = "h100-80gb";
  plan.gpu.gpu_count = 4;
  plan.gpu.usd_per_gpu_hour = 2.0;
  plan.prefill_tokens_per_second = 5000;
  plan.decode_tokens_per_second = 50;
  return plan;
}

TEST(ShadowCostNanoUsd, PricesPerTokenPlansLikePriceUsage) {
  ShadowPlan plan;
  plan.name = "gpt-4o";
  plan.prices.input_nano_usd_per_mtok = 2'500'000'000;         // $2.50 / Mtok
  plan.prices.cached_input_nano_usd_per_mtok = 1'250'000'000;  // $1.25
  plan.prices.output_nano_usd_per_mtok = 10'000'000'000;       // $10
  plan.prices.reasoning_nano_usd_per_mtok = 10'000'000'000;
  v1::Usage usage = Tokens(1000, 300);
  usage.set_cached_input_tokens(400);
  usage.set_reasoning_tokens(100);
  // 600 × 2500 + 400 × 1250 + 300 × 10000 nano-USD.
  EXPECT_EQ(ShadowCostNanoUsd(plan, usage), 5'000'000);
}

TEST(ShadowCostNanoUsd, PricesGpuPlansByTheGpuTimeTheRequestWouldTake) {
  // 1000 / 5000 + 200 / 50 = 4.2 s on 4 GPUs = 16.8 GPU-seconds at $2/h = $0.0093333…
  EXPECT_EQ(ShadowCostNanoUsd(Llama70bOnFourH100(), Tokens(1000, 200)), 9'333'333);
  // A long prompt and no output: 100000 / 5000 = 20 s × 4 × $2/h = $0.0444444…
  EXPECT_EQ(ShadowCostNanoUsd(Llama70bOnFourH100(), Tokens(100'000, 0)), 44'444'444);
  EXPECT_EQ(ShadowCostNanoUsd(Llama70bOnFourH100(), Tokens(0, 0)), 0);
}

TEST(ShadowCostNanoUsd, GpuPlansPrefillCachedInputAndDecodeReasoningLikeOtherTokens) {
  v1::Usage usage = Tokens(1000, 200);
  usage.set_cached_input_tokens(800);
  usage.set_reasoning_tokens(150);
  EXPECT_EQ(ShadowCostNanoUsd(Llama70bOnFourH100(), usage),
            ShadowCostNanoUsd(Llama70bOnFourH100(), Tokens(1000, 200)));
}

TEST(ShadowCostNanoUsd, RoundsTheGpuCostOnceHalfUp) {
  ShadowPlan plan;  // 1 GPU at $3.60/h = 1 nano-USD per microsecond
  plan.kind = ShadowPlan::kGpu;
  plan.gpu.gpu_count = 1;
  plan.gpu.usd_per_gpu_hour = 3.60;
  plan.prefill_tokens_per_second = 2'000'000;           // 0.5 µs a prompt token
  plan.decode_tokens_per_second = 3'000'000;            // 0.333… µs an output token
  EXPECT_EQ(ShadowCostNanoUsd(plan, Tokens(1, 0)), 1);  // 0.5 → 1
  EXPECT_EQ(ShadowCostNanoUsd(plan, Tokens(0, 1)), 0);  // 0.33 → 0
  // 0.5 + 0.333 + 0.333 = 1.1667: the parts are summed exactly before the one rounding.
  EXPECT_EQ(ShadowCostNanoUsd(plan, Tokens(1, 2)), 1);
  EXPECT_EQ(ShadowCostNanoUsd(plan, Tokens(3, 3)), 3);  // 1.5 + 1 = 2.5 → 3
}

TEST(ShadowCostNanoUsd, SaturatesInsteadOfWrapping) {
  ShadowPlan plan = Llama70bOnFourH100();
  plan.gpu.gpu_count = 65536;  // the largest valid values
  plan.gpu.usd_per_gpu_hour = 1e6;
  plan.decode_tokens_per_second = 0.001;
  EXPECT_EQ(ShadowCostNanoUsd(plan, Tokens(0, UINT64_MAX)), INT64_MAX);
}

TEST(ValidateShadowPlan, NamesTheBadField) {
  ShadowPlan plan = Llama70bOnFourH100();
  EXPECT_TRUE(ValidateShadowPlan(plan).ok());
  plan.decode_tokens_per_second = 0;
  EXPECT_THAT(ValidateShadowPlan(plan).message(), HasSubstr("decode_tokens_per_second"));
  EXPECT_EQ(ShadowCostNanoUsd(plan, Tokens(10, 10)), 0);
  plan = Llama70bOnFourH100();
  plan.gpu.gpu_count = 0;
  EXPECT_THAT(ValidateShadowPlan(plan).message(), HasSubstr("gpu.gpu_count"));
  plan = Llama70bOnFourH100();
  plan.prefill_tokens_per_second = -5;
  EXPECT_THAT(ValidateShadowPlan(plan).message(), HasSubstr("prefill_tokens_per_second"));
}

}  // namespace
}  // namespace tollgate
