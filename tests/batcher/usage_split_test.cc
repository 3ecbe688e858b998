#include "proxy/batcher/usage_split.h"

#include <cmath>
#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

using ::testing::ElementsAre;

uint64_t Sum(const std::vector<uint64_t>& v) { return std::accumulate(v.begin(), v.end(), 0ull); }

TEST(SplitProportionally, GivesExactSharesWhenTheyAreWhole) {
  EXPECT_THAT(SplitProportionally(100, {1, 3}), ElementsAre(25, 75));
}

TEST(SplitProportionally, GivesTheLeftoverToTheLargestRemainders) {
  // Exact shares 3.33, 3.33, 3.33: one token left, to the first of the ties.
  EXPECT_THAT(SplitProportionally(10, {1, 1, 1}), ElementsAre(4, 3, 3));
  // Exact shares 1.43, 2.86, 5.71: floors 1, 2, 5; the two left go to .86 and .71.
  EXPECT_THAT(SplitProportionally(10, {1, 2, 4}), ElementsAre(1, 3, 6));
}

TEST(SplitProportionally, SumsExactlyForAwkwardRatios) {
  const std::vector<std::vector<uint64_t>> weights = {
      {7, 11, 13}, {1, 1000000}, {3, 3, 3, 3, 3, 3, 3}, {999999937, 2, 17, 1}};
  for (const auto& w : weights) {
    for (uint64_t total : {0ull, 1ull, 2ull, 97ull, 1000003ull, 18446744073709551ull}) {
      const std::vector<uint64_t> parts = SplitProportionally(total, w);
      ASSERT_EQ(parts.size(), w.size());
      EXPECT_EQ(Sum(parts), total) << "total " << total;
      const uint64_t weight_sum = std::accumulate(w.begin(), w.end(), 0ull);
      for (size_t i = 0; i < w.size(); ++i) {  // within one token of the exact share
        const long double exact = static_cast<long double>(total) * w[i] / weight_sum;
        EXPECT_LT(std::abs(static_cast<long double>(parts[i]) - exact), 1.0L);
      }
    }
  }
}

TEST(SplitProportionally, AZeroWeightGetsNothingAndAllZeroWeightsSplitEvenly) {
  EXPECT_THAT(SplitProportionally(9, {0, 3, 0}), ElementsAre(0, 9, 0));
  EXPECT_THAT(SplitProportionally(7, {0, 0, 0}), ElementsAre(3, 2, 2));
}

TEST(SplitProportionally, OneItemTakesEverythingAndNoItemsTakeNothing) {
  EXPECT_THAT(SplitProportionally(42, {5}), ElementsAre(42));
  EXPECT_THAT(SplitProportionally(42, {0}), ElementsAre(42));
  EXPECT_TRUE(SplitProportionally(42, {}).empty());
}

TEST(SplitProportionally, DoesNotOverflowWithHugeTotalsAndWeights) {
  const uint64_t big = ~uint64_t{0};
  EXPECT_THAT(SplitProportionally(big, {big, big}), ElementsAre(big / 2 + 1, big / 2));
}

v1::Usage CallUsage(uint64_t input, uint64_t cached, uint64_t output, uint64_t reasoning,
                    uint64_t cache_write = 0) {
  v1::Usage u;
  u.set_input_tokens(input);
  u.set_cached_input_tokens(cached);
  u.set_output_tokens(output);
  u.set_reasoning_tokens(reasoning);
  u.set_cache_write_input_tokens(cache_write);
  u.set_source(v1::USAGE_SOURCE_REPORTED);
  return u;
}

TEST(SplitUsage, SplitsInputByPromptsAndOutputByOutputsWithExactSums) {
  const v1::Usage call = CallUsage(/*input=*/101, /*cached=*/37, /*output=*/53, /*reasoning=*/11,
                                   /*cache_write=*/20);
  const std::vector<v1::Usage> parts = SplitUsage(
      call, {{.input = 10, .output = 5}, {.input = 7, .output = 0}, {.input = 3, .output = 9}});
  ASSERT_EQ(parts.size(), 3u);
  uint64_t input = 0, cached = 0, output = 0, reasoning = 0, cache_write = 0;
  for (const v1::Usage& p : parts) {
    input += p.input_tokens();
    cached += p.cached_input_tokens();
    output += p.output_tokens();
    reasoning += p.reasoning_tokens();
    cache_write += p.cache_write_input_tokens();
    EXPECT_LE(p.cached_input_tokens() + p.cache_write_input_tokens(), p.input_tokens());
    EXPECT_LE(p.reasoning_tokens(), p.output_tokens());
    EXPECT_EQ(p.source(), v1::USAGE_SOURCE_REPORTED);
  }
  EXPECT_EQ(input, 101u);
  EXPECT_EQ(cached, 37u);
  EXPECT_EQ(output, 53u);
  EXPECT_EQ(reasoning, 11u);
  EXPECT_EQ(cache_write, 20u);
  EXPECT_EQ(parts[0].input_tokens(), 51u);  // 50.5, 35.35, 15.15: the .5 takes the leftover
  EXPECT_EQ(parts[1].output_tokens(), 0u) << "nothing generated, no output charged";
}

TEST(SplitUsage, SubsetsStayWithinTheirHoldersItemByItem) {
  // Awkward numbers where splitting the subsets by the prompts alone could give an item more
  // cached tokens than input tokens.
  for (uint64_t input = 0; input < 40; ++input) {
    for (uint64_t cached = 0; cached <= input; ++cached) {
      const std::vector<v1::Usage> parts =
          SplitUsage(CallUsage(input, cached, input, cached),
                     {{.input = 1, .output = 3}, {.input = 1, .output = 1}, {.input = 5}});
      uint64_t cached_sum = 0, reasoning_sum = 0;
      for (const v1::Usage& p : parts) {
        ASSERT_LE(p.cached_input_tokens(), p.input_tokens());
        ASSERT_LE(p.reasoning_tokens(), p.output_tokens());
        cached_sum += p.cached_input_tokens();
        reasoning_sum += p.reasoning_tokens();
      }
      ASSERT_EQ(cached_sum, cached);
      ASSERT_EQ(reasoning_sum, cached);
    }
  }
}

TEST(SplitUsage, ClampsASubsetReportedLargerThanItsHolder) {
  const std::vector<v1::Usage> parts =
      SplitUsage(CallUsage(4, 9, 2, 5), {{.input = 1, .output = 1}, {.input = 1, .output = 1}});
  EXPECT_EQ(parts[0].cached_input_tokens() + parts[1].cached_input_tokens(), 4u);
  EXPECT_EQ(parts[0].reasoning_tokens() + parts[1].reasoning_tokens(), 2u);
}

TEST(SplitUsage, OneItemGetsTheWholeCall) {
  const v1::Usage call = CallUsage(12, 4, 30, 2, 1);
  const std::vector<v1::Usage> parts = SplitUsage(call, {{.input = 0, .output = 0}});
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].SerializeAsString(), call.SerializeAsString());
}

}  // namespace
}  // namespace tollgate
