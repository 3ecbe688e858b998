#include "accounting/pricing.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace tollgate {
namespace {

v1::Usage MakeUsage(uint64_t input, uint64_t cached, uint64_t output, uint64_t reasoning) {
  v1::Usage usage;
  usage.set_input_tokens(input);
  usage.set_cached_input_tokens(cached);
  usage.set_output_tokens(output);
  usage.set_reasoning_tokens(reasoning);
  return usage;
}

TokenPrices Gpt4oPrices() {  // 2.50 / 1.25 / 10.00 USD per million tokens
  TokenPrices p;
  p.input_nano_usd_per_mtok = *UsdPerMtokToNano(2.50);
  p.cached_input_nano_usd_per_mtok = *UsdPerMtokToNano(1.25);
  p.output_nano_usd_per_mtok = *UsdPerMtokToNano(10.00);
  p.reasoning_nano_usd_per_mtok = *UsdPerMtokToNano(10.00);
  return p;
}

TEST(UsdPerMtokToNano, ConvertsDecimalPricesExactly) {
  EXPECT_EQ(*UsdPerMtokToNano(0.15), 150'000'000);
  EXPECT_EQ(*UsdPerMtokToNano(0.075), 75'000'000);
  EXPECT_EQ(*UsdPerMtokToNano(2.5), 2'500'000'000);
  EXPECT_EQ(*UsdPerMtokToNano(0.0375), 37'500'000);
  EXPECT_EQ(*UsdPerMtokToNano(0.1), 100'000'000);
  EXPECT_EQ(*UsdPerMtokToNano(0), 0);
}

TEST(UsdPerMtokToNano, RejectsNegativeAndNonFinitePrices) {
  EXPECT_FALSE(UsdPerMtokToNano(-0.01).ok());
  EXPECT_FALSE(UsdPerMtokToNano(std::numeric_limits<double>::infinity()).ok());
  EXPECT_FALSE(UsdPerMtokToNano(std::numeric_limits<double>::quiet_NaN()).ok());
  EXPECT_FALSE(UsdPerMtokToNano(2e6).ok());
}

TEST(TokensCostNanoUsd, IsExactForWholeNanoPerTokenPrices) {
  // $0.15 per Mtok = 150 nano-USD per token.
  EXPECT_EQ(TokensCostNanoUsd(1, 150'000'000), 150);
  EXPECT_EQ(TokensCostNanoUsd(1'000'000, 150'000'000), 150'000'000);
  EXPECT_EQ(TokensCostNanoUsd(0, 150'000'000), 0);
}

TEST(TokensCostNanoUsd, RoundsSubNanoRemaindersHalfUp) {
  // $0.0375 per Mtok = 37.5 nano-USD per token.
  EXPECT_EQ(TokensCostNanoUsd(1, 37'500'000), 38);
  EXPECT_EQ(TokensCostNanoUsd(2, 37'500'000), 75);
  EXPECT_EQ(TokensCostNanoUsd(3, 37'500'000), 113);  // 112.5 → 113
}

TEST(TokensCostNanoUsd, DoesNotOverflowOnHugeCounts) {
  // 10^9 tokens at $1,000,000 per Mtok = 10^18 nano-USD: the product exceeds int64, the cost not.
  EXPECT_EQ(TokensCostNanoUsd(1'000'000'000ull, 1'000'000'000'000'000), 1'000'000'000'000'000'000);
}

TEST(TokensCostNanoUsd, SaturatesInsteadOfWrapping) {
  EXPECT_EQ(TokensCostNanoUsd(1'000'000'000'000ull, 1'000'000'000'000'000),
            std::numeric_limits<int64_t>::max());
}

TEST(PriceUsage, PricesEachTokenTypeAtItsOwnPrice) {
  const v1::Cost cost = PriceUsage(Gpt4oPrices(), MakeUsage(1000, 400, 300, 100));
  EXPECT_EQ(cost.input_nano_usd(), 600 * 2500);
  EXPECT_EQ(cost.cached_input_nano_usd(), 400 * 1250);
  EXPECT_EQ(cost.output_nano_usd(), 200 * 10000);
  EXPECT_EQ(cost.reasoning_nano_usd(), 100 * 10000);
  EXPECT_EQ(cost.total_nano_usd(), 600 * 2500 + 400 * 1250 + 300 * 10000);
}

TEST(PriceUsage, ClampsSubsetCountsLargerThanTheirTotals) {
  const v1::Cost cost = PriceUsage(Gpt4oPrices(), MakeUsage(10, 50, 5, 9));
  EXPECT_EQ(cost.input_nano_usd(), 0);
  EXPECT_EQ(cost.cached_input_nano_usd(), 10 * 1250);
  EXPECT_EQ(cost.output_nano_usd(), 0);
  EXPECT_EQ(cost.reasoning_nano_usd(), 5 * 10000);
}

TEST(PriceUsage, SumOverAMillionRequestsEqualsThePriceOfTheSummedTokens) {
  const TokenPrices prices = Gpt4oPrices();
  int64_t summed_cost = 0;
  uint64_t input = 0;
  uint64_t output = 0;
  for (uint64_t i = 0; i < 1'000'000; ++i) {
    const v1::Usage usage = MakeUsage(17 + i % 101, 0, 3 + i % 29, 0);
    input += usage.input_tokens();
    output += usage.output_tokens();
    summed_cost += PriceUsage(prices, usage).total_nano_usd();
  }
  EXPECT_EQ(summed_cost, PriceUsage(prices, MakeUsage(input, 0, output, 0)).total_nano_usd());
}

}  // namespace
}  // namespace tollgate
