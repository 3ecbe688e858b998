#include "accounting/gpu/shadow_pricing.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "accounting/gpu/wide_arithmetic.h"

namespace tollgate {
namespace {

constexpr double kMinTokensPerSecond = 0.001;

bool IsValidRate(double tokens_per_second) {
  return std::isfinite(tokens_per_second) && tokens_per_second >= kMinTokensPerSecond &&
         tokens_per_second <= kMaxShadowTokensPerSecond;
}

absl::Status ValidateRate(const char* field, double tokens_per_second) {
  if (!IsValidRate(tokens_per_second)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be in [", kMinTokensPerSecond,
                                                   ", ", kMaxShadowTokensPerSecond, "], got ",
                                                   tokens_per_second));
  }
  return absl::OkStatus();
}

uint128 MilliTokensPerSecond(double tokens_per_second) {
  return static_cast<uint128>(std::llround(tokens_per_second * 1000));
}

}  // namespace

absl::Status ValidateShadowPlan(const ShadowPlan& plan) {
  if (plan.kind != ShadowPlan::kGpu) return absl::OkStatus();
  absl::Status status = ValidateGpuCostSpec(plan.gpu);
  if (!status.ok()) return absl::InvalidArgumentError(absl::StrCat("gpu.", status.message()));
  status = ValidateRate("prefill_tokens_per_second", plan.prefill_tokens_per_second);
  if (!status.ok()) return status;
  return ValidateRate("decode_tokens_per_second", plan.decode_tokens_per_second);
}

int64_t ShadowCostNanoUsd(const ShadowPlan& plan, const v1::Usage& usage) {
  if (plan.kind == ShadowPlan::kPerToken) return PriceUsage(plan.prices, usage).total_nano_usd();
  const absl::StatusOr<GpuRates> rates = ToGpuRates(plan.gpu);
  if (!rates.ok() || !IsValidRate(plan.prefill_tokens_per_second) ||
      !IsValidRate(plan.decode_tokens_per_second)) {
    return 0;
  }
  // With p and d the rates in thousandths of a token per second:
  //   cost = gpu_count × nano_usd_per_gpu_hour × 1000 × (input × d + output × p) / (3600 × p × d)
  const uint128 prefill = MilliTokensPerSecond(plan.prefill_tokens_per_second);
  const uint128 decode = MilliTokensPerSecond(plan.decode_tokens_per_second);
  const uint128 token_time = static_cast<uint128>(usage.input_tokens()) * decode +
                             static_cast<uint128>(usage.output_tokens()) * prefill;
  const uint128 milli_rate =
      static_cast<uint128>(rates->gpu_count) * rates->nano_usd_per_gpu_hour * 1000;
  return SaturateToInt64(MulDivRoundHalfUp(milli_rate, token_time, 3600 * prefill * decode));
}

}  // namespace tollgate
