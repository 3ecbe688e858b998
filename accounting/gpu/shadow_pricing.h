// Shadow pricing: what a request would have cost under another plan, to compare a hosted price
// list with self-hosting ("the same traffic on Llama-3-70B, 4×H100 at $2/h") or with another
// provider.
//
//   TG_RETURN_IF_ERROR(ValidateShadowPlan(plan));             // once, at config load
//   int64_t would_cost = ShadowCostNanoUsd(plan, usage);      // per request
//
// Pure functions; ShadowPlan is a value type.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "accounting/gpu/gpu_cost_spec.h"
#include "accounting/pricing.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

struct ShadowPlan {
  enum Kind { kPerToken, kGpu };

  std::string name;
  Kind kind = kPerToken;
  TokenPrices prices;  // kPerToken
  // kGpu: the deployment's GPUs (count and hourly price; power is not priced here) and how fast
  // it serves one request, in tokens per second, with all gpu.gpu_count GPUs on it. For a server
  // that batches, use the throughput one request gets (aggregate throughput / typical batch).
  GpuCostSpec gpu;
  double prefill_tokens_per_second = 0;
  double decode_tokens_per_second = 0;
};

inline constexpr double kMaxShadowTokensPerSecond = 1e9;

// INVALID_ARGUMENT naming the field: a bad gpu spec, or (kGpu) a rate that is not finite, below
// 0.001 or above kMaxShadowTokensPerSecond.
absl::Status ValidateShadowPlan(const ShadowPlan& plan);

// kPerToken: `usage` priced at plan.prices, exactly as PriceUsage prices it.
// kGpu: the GPU time the request would take,
//   seconds = input_tokens / prefill_tokens_per_second + output_tokens / decode_tokens_per_second
//   cost    = seconds × gpu_count × usd_per_gpu_hour / 3600,
// with every input token prefilled (a self-hosted prompt cache is not assumed) and reasoning
// tokens decoded like any output. The rates are taken in thousandths of a token per second and
// the price in nano-USD per GPU-hour, so the cost is one exact fraction, rounded half up to a
// nano-USD once; it saturates at INT64_MAX.
// REQUIRES: ValidateShadowPlan(plan).ok(); otherwise 0.
int64_t ShadowCostNanoUsd(const ShadowPlan& plan, const v1::Usage& usage);

}  // namespace tollgate
