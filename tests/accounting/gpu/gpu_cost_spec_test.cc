#include "accounting/gpu/gpu_cost_spec.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;

TEST(ToGpuRates, ConvertsDecimalConfigValuesExactly) {
  const absl::StatusOr<GpuRates> rates = ToGpuRates({.gpu_type = "h100-80gb",
                                                     .gpu_count = 8,
                                                     .usd_per_gpu_hour = 2.17,
                                                     .watts = 700.5,
                                                     .usd_per_kwh = 0.1234,
                                                     .prefill_weight = 0.1});
  ASSERT_TRUE(rates.ok()) << rates.status();
  EXPECT_EQ(rates->gpu_count, 8u);
  EXPECT_EQ(rates->nano_usd_per_gpu_hour, 2'170'000'000);
  EXPECT_EQ(rates->milliwatts_per_gpu, 700'500);
  EXPECT_EQ(rates->nano_usd_per_kwh, 123'400'000);
  EXPECT_EQ(rates->micro_weight.prefill, 100'000);
  EXPECT_EQ(rates->micro_weight.decode, 1'000'000);  // the default weight
}

TEST(ToGpuRates, RejectsOutOfRangeValuesNamingTheField) {
  GpuCostSpec spec;
  spec.gpu_count = 65537;
  EXPECT_THAT(ValidateGpuCostSpec(spec).message(), HasSubstr("gpu_count"));
  spec = GpuCostSpec{};
  spec.usd_per_gpu_hour = std::numeric_limits<double>::infinity();
  EXPECT_THAT(ValidateGpuCostSpec(spec).message(), HasSubstr("usd_per_gpu_hour"));
  spec = GpuCostSpec{};
  spec.usd_per_kwh = -0.01;
  EXPECT_THAT(ValidateGpuCostSpec(spec).message(), HasSubstr("usd_per_kwh"));
  spec = GpuCostSpec{};
  spec.prefill_weight = 2e6;
  EXPECT_THAT(ValidateGpuCostSpec(spec).message(), HasSubstr("prefill_weight"));
  EXPECT_TRUE(ValidateGpuCostSpec(GpuCostSpec{}).ok());
}

}  // namespace
}  // namespace tollgate
