#include "accounting/gpu/gpu_cost_spec.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace tollgate {
namespace {

constexpr uint32_t kMaxGpuCount = 65536;
constexpr double kMaxValue = 1e6;  // USD per GPU-hour, watts per GPU, USD per kWh, weights

// `value` × `scale` rounded, after checking that `value` is finite and in [0, kMaxValue].
absl::StatusOr<int64_t> ScaledNonNegative(const char* field, double value, double scale) {
  if (!std::isfinite(value) || value < 0 || value > kMaxValue) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be a finite number in [0, ", kMaxValue, "], got ", value));
  }
  return std::llround(value * scale);
}

}  // namespace

absl::StatusOr<GpuRates> ToGpuRates(const GpuCostSpec& spec) {
  if (spec.gpu_count < 1 || spec.gpu_count > kMaxGpuCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpu_count must be in [1, ", kMaxGpuCount, "], got ", spec.gpu_count));
  }
  GpuRates rates;
  rates.gpu_count = spec.gpu_count;
  struct Field {
    const char* name;
    double value;
    double scale;  // to the integer unit
    int64_t* out;
  };
  const Field fields[] = {
      {"usd_per_gpu_hour", spec.usd_per_gpu_hour, 1e9, &rates.nano_usd_per_gpu_hour},
      {"watts", spec.watts, 1e3, &rates.milliwatts_per_gpu},
      {"usd_per_kwh", spec.usd_per_kwh, 1e9, &rates.nano_usd_per_kwh},
      {"prefill_weight", spec.prefill_weight, 1e6, &rates.micro_weight.prefill},
      {"decode_weight", spec.decode_weight, 1e6, &rates.micro_weight.decode},
  };
  for (const Field& field : fields) {
    absl::StatusOr<int64_t> scaled = ScaledNonNegative(field.name, field.value, field.scale);
    if (!scaled.ok()) return scaled.status();
    *field.out = *scaled;
  }
  return rates;
}

absl::Status ValidateGpuCostSpec(const GpuCostSpec& spec) { return ToGpuRates(spec).status(); }

}  // namespace tollgate
