// What a self-hosted backend's GPUs cost: the declaration in config and its exact integer form.
//
//   TG_ASSIGN_OR_RETURN(GpuRates rates, ToGpuRates(spec));  // validates, once, at config load
//
// Prices are held as integer nano-USD (per GPU-hour, per kWh), power as integer milliwatts and the
// work weights as integer millionths, so that config values with up to nine (prices), three
// (watts) or six (weights) decimals are represented exactly. Pure functions; value types.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tollgate {

struct GpuCostSpec {
  std::string gpu_type;  // informational ("h100-80gb"); not used in arithmetic
  uint32_t gpu_count = 1;
  double usd_per_gpu_hour = 0;
  double watts = 0;  // per GPU, average draw; energy is charged busy or idle
  double usd_per_kwh = 0;
  // Relative cost of a prompt token (prefill) and a generated token (decode) when the backend's
  // time is split among concurrent requests (see gpu_meter.h). Only the ratio matters; the defaults
  // make every token count alike, and both 0 shares time evenly among the requests in flight.
  // Setting decode_weight above prefill_weight reflects that a decode step is memory-bound and
  // advances each request by one token, while prefill takes a whole prompt in a few steps.
  double prefill_weight = 1;
  double decode_weight = 1;
};

// INVALID_ARGUMENT naming the field for a gpu_count outside [1, 65536], or a price, power or
// weight that is negative, not finite or above 1e6.
absl::Status ValidateGpuCostSpec(const GpuCostSpec& spec);

// The integer form of a valid GpuCostSpec.
struct GpuRates {
  uint32_t gpu_count = 1;
  int64_t nano_usd_per_gpu_hour = 0;
  int64_t milliwatts_per_gpu = 0;
  int64_t nano_usd_per_kwh = 0;
  struct {  // millionths of a weighted token per token
    int64_t prefill = 1'000'000;
    int64_t decode = 1'000'000;
  } micro_weight;
};

// As ValidateGpuCostSpec, or the integer form.
absl::StatusOr<GpuRates> ToGpuRates(const GpuCostSpec& spec);

}  // namespace tollgate
