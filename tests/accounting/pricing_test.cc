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

// Hand-computed invoices. OpenAI-shaped: gpt-4o at $2.50 input, $1.25 cached input, $10.00 output
// (reasoning at the output price): 1,234,567 prompt tokens of which 1,000,000 cached, 345,678
// completion tokens of which 45,678 reasoning.
//   uncached 234,567 × $2.50/M   = $0.5864175
//   cached 1,000,000 × $1.25/M   = $1.25
//   output 300,000 × $10/M       = $3.00
//   reasoning 45,678 × $10/M     = $0.45678
//   total                        = $5.2931975
TEST(PriceUsage, MatchesAHandComputedOpenAiInvoice) {
  const v1::Cost cost = PriceUsage(Gpt4oPrices(), MakeUsage(1'234'567, 1'000'000, 345'678, 45'678));
  EXPECT_EQ(cost.input_nano_usd(), 586'417'500);
  EXPECT_EQ(cost.cached_input_nano_usd(), 1'250'000'000);
  EXPECT_EQ(cost.output_nano_usd(), 3'000'000'000);
  EXPECT_EQ(cost.reasoning_nano_usd(), 456'780'000);
  EXPECT_EQ(cost.cache_write_nano_usd(), 0);
  EXPECT_EQ(cost.total_nano_usd(), 5'293'197'500);
}

// Anthropic-shaped: Claude Sonnet at $3 input, $0.30 cache read, $3.75 cache write (5-minute),
// $15 output. The API reports input_tokens 2,000, cache_read_input_tokens 50,000 and
// cache_creation_input_tokens 10,000 (all outside input_tokens); Tollgate's input is their sum,
// 62,000, with 50,000 cached and 10,000 written; output 1,500.
//   input 2,000 × $3/M         = $0.006
//   cache read 50,000 × $0.30/M = $0.015
//   cache write 10,000 × $3.75/M = $0.0375
//   output 1,500 × $15/M        = $0.0225
//   total                       = $0.0810
TEST(PriceUsage, MatchesAHandComputedAnthropicInvoice) {
  TokenPrices sonnet;
  sonnet.input_nano_usd_per_mtok = *UsdPerMtokToNano(3);
  sonnet.cached_input_nano_usd_per_mtok = *UsdPerMtokToNano(0.30);
  sonnet.cache_write_nano_usd_per_mtok = *UsdPerMtokToNano(3.75);
  sonnet.output_nano_usd_per_mtok = *UsdPerMtokToNano(15);
  sonnet.reasoning_nano_usd_per_mtok = sonnet.output_nano_usd_per_mtok;
  v1::Usage usage = MakeUsage(62'000, 50'000, 1'500, 0);
  usage.set_cache_write_input_tokens(10'000);
  const v1::Cost cost = PriceUsage(sonnet, usage);
  EXPECT_EQ(cost.input_nano_usd(), 6'000'000);
  EXPECT_EQ(cost.cached_input_nano_usd(), 15'000'000);
  EXPECT_EQ(cost.cache_write_nano_usd(), 37'500'000);
  EXPECT_EQ(cost.output_nano_usd(), 22'500'000);
  EXPECT_EQ(cost.total_nano_usd(), 81'000'000);
}

TEST(PriceUsage, PricesARequestAboveTheLongContextThresholdEntirelyAtTheTier) {
  TokenPrices prices = Gpt4oPrices();
  TokenPrices tier;
  tier.input_nano_usd_per_mtok = *UsdPerMtokToNano(6);
  tier.cached_input_nano_usd_per_mtok = *UsdPerMtokToNano(0.60);
  tier.output_nano_usd_per_mtok = *UsdPerMtokToNano(22.50);
  tier.reasoning_nano_usd_per_mtok = tier.output_nano_usd_per_mtok;
  prices.long_context_above_input_tokens = 200'000;
  prices.long_context = std::make_shared<const TokenPrices>(tier);
  // At the threshold: the base prices. 200,000 × $2.50/M + 1,000 × $10/M = $0.51.
  EXPECT_EQ(PriceUsage(prices, MakeUsage(200'000, 0, 1'000, 0)).total_nano_usd(), 510'000'000);
  // One token above: everything at the tier. 200,001 × $6/M + 1,000 × $22.50/M = $1.222506.
  EXPECT_EQ(PriceUsage(prices, MakeUsage(200'001, 0, 1'000, 0)).total_nano_usd(), 1'222'506'000);
}

TEST(PriceUsage, TakesTheBatchDiscountOffEveryPriceOnlyForBatchRequests) {
  TokenPrices prices = Gpt4oPrices();
  prices.batch_discount_ppm = 500'000;
  const v1::Usage usage = MakeUsage(1'000'000, 200'000, 100'000, 0);
  // 800,000 × $2.50/M + 200,000 × $1.25/M + 100,000 × $10/M = $3.25; half in a batch.
  EXPECT_EQ(PriceUsage(prices, usage).total_nano_usd(), 3'250'000'000);
  EXPECT_EQ(PriceUsage(prices, usage, /*batch=*/true).total_nano_usd(), 1'625'000'000);
  // gpt-4o-mini's $0.075 cached price halves to $0.0375 exactly.
  prices.cached_input_nano_usd_per_mtok = *UsdPerMtokToNano(0.075);
  EXPECT_EQ(PriceUsage(prices, MakeUsage(1'000'000, 1'000'000, 0, 0), true).total_nano_usd(),
            37'500'000);
}

TEST(FormatNanoUsd, WritesExactDollarsWithNineDecimals) {
  EXPECT_EQ(FormatNanoUsd(0), "0.000000000");
  EXPECT_EQ(FormatNanoUsd(1'234'567), "0.001234567");
  EXPECT_EQ(FormatNanoUsd(9'980'000'000), "9.980000000");
  EXPECT_EQ(FormatNanoUsd(-5), "-0.000000005");
  EXPECT_EQ(FormatNanoUsd(std::numeric_limits<int64_t>::min()), "-9223372036.854775808");
}

}  // namespace
}  // namespace tollgate
