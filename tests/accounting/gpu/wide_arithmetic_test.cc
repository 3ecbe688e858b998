#include "accounting/gpu/wide_arithmetic.h"

#include <cstdint>
#include <random>

#include "gtest/gtest.h"

namespace tollgate {
namespace {

constexpr uint128 Pow2(int n) { return uint128{1} << n; }

TEST(MulDivFloor, MatchesPlainArithmeticWhenTheProductFits) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10'000; ++i) {
    const uint128 a = rng(), b = rng(), c = rng() | 1;
    EXPECT_EQ(MulDivFloor(a, b, c), a * b / c);
    EXPECT_EQ(MulDivRoundHalfUp(a, b, c), (a * b + c / 2) / c);
  }
}

TEST(MulDivFloor, IsExactWhenTheProductNeeds256Bits) {
  EXPECT_EQ(MulDivFloor(Pow2(100), Pow2(100), Pow2(73)), Pow2(127));
  EXPECT_EQ(MulDivFloor(Pow2(127), 6, 4), 3 * Pow2(126));
  EXPECT_EQ(MulDivFloor(kUint128Max, kUint128Max, kUint128Max), kUint128Max);
  const uint128 c = Pow2(100) + 7;
  EXPECT_EQ(MulDivFloor(kUint128Max - 5, c, c), kUint128Max - 5);
  // (2^128 - 1)(2^64 + 1) / 2^65 = 2^127 + 2^63 - 1/2 - 2^-65: floors to 2^127 + 2^63 - 1.
  EXPECT_EQ(MulDivFloor(kUint128Max, Pow2(64) + 1, Pow2(65)), Pow2(127) + Pow2(63) - 1);
}

TEST(MulDivRoundHalfUp, RoundsHalvesUpInThe256BitPath) {
  // (2^127 + 1) × 3 / 2 = 3 × 2^126 + 1.5
  EXPECT_EQ(MulDivFloor(Pow2(127) + 1, 3, 2), 3 * Pow2(126) + 1);
  EXPECT_EQ(MulDivRoundHalfUp(Pow2(127) + 1, 3, 2), 3 * Pow2(126) + 2);
  EXPECT_EQ(MulDivRoundHalfUp(Pow2(127), 3, 2), 3 * Pow2(126));
}

TEST(MulDivFloor, SaturatesWhenTheQuotientDoesNotFit) {
  EXPECT_EQ(MulDivFloor(Pow2(100), Pow2(100), Pow2(72)), kUint128Max);
  EXPECT_EQ(MulDivRoundHalfUp(kUint128Max, 2, 1), kUint128Max);
}

TEST(SaturateToInt64, ClampsAtInt64Max) {
  EXPECT_EQ(SaturateToInt64(42), 42);
  EXPECT_EQ(SaturateToInt64(static_cast<uint128>(INT64_MAX)), INT64_MAX);
  EXPECT_EQ(SaturateToInt64(static_cast<uint128>(INT64_MAX) + 1), INT64_MAX);
}

}  // namespace
}  // namespace tollgate
