#include "accounting/gpu/wide_arithmetic.h"

#include <limits>

namespace tollgate {
namespace {

struct Uint256 {
  uint128 hi = 0;
  uint128 lo = 0;
};

Uint256 Multiply(uint128 a, uint128 b) {
  const uint128 a0 = static_cast<uint64_t>(a), a1 = a >> 64;
  const uint128 b0 = static_cast<uint64_t>(b), b1 = b >> 64;
  const uint128 p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  // Three 64-bit halves sum to less than 2^66: no overflow.
  const uint128 middle = (p00 >> 64) + static_cast<uint64_t>(p01) + static_cast<uint64_t>(p10);
  return {p11 + (p01 >> 64) + (p10 >> 64) + (middle >> 64),
          (middle << 64) | static_cast<uint64_t>(p00)};
}

Uint256 Add(Uint256 x, uint128 y) {
  const uint128 lo = x.lo + y;
  return {x.hi + (lo < x.lo ? 1 : 0), lo};
}

uint128 Divide(Uint256 n, uint128 c) {
  if (n.hi == 0) return n.lo / c;
  if (n.hi >= c) return kUint128Max;  // the quotient needs more than 128 bits
  // Schoolbook binary division; the remainder starts as n.hi < c, so the quotient fits.
  uint128 remainder = n.hi;
  uint128 quotient = 0;
  for (int bit = 127; bit >= 0; --bit) {
    const bool carry = (remainder >> 127) != 0;
    remainder = (remainder << 1) | ((n.lo >> bit) & 1);
    quotient <<= 1;
    if (carry || remainder >= c) {
      remainder -= c;  // modulo 2^128, which is exact when `carry` held the 129th bit
      quotient |= 1;
    }
  }
  return quotient;
}

}  // namespace

uint128 MulDivFloor(uint128 a, uint128 b, uint128 c) {
  uint128 product;
  if (!__builtin_mul_overflow(a, b, &product)) return product / c;
  return Divide(Multiply(a, b), c);
}

uint128 MulDivRoundHalfUp(uint128 a, uint128 b, uint128 c) {
  uint128 product;
  uint128 rounded;
  if (!__builtin_mul_overflow(a, b, &product) &&
      !__builtin_add_overflow(product, c / 2, &rounded)) {
    return rounded / c;
  }
  return Divide(Add(Multiply(a, b), c / 2), c);
}

int64_t SaturateToInt64(uint128 value) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  return value > static_cast<uint128>(kMax) ? kMax : static_cast<int64_t>(value);
}

}  // namespace tollgate
