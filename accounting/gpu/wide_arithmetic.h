// Exact a × b / c on unsigned 128-bit integers, for GPU-time attribution and shadow pricing.
//
// The product may need 256 bits (a request's share of backend time × a price × a power); the
// quotient is computed exactly from a 256-bit intermediate, so the only rounding is the one the
// caller asks for. Pure functions.
#pragma once

#include <cstdint>

namespace tollgate {

using uint128 = unsigned __int128;
inline constexpr uint128 kUint128Max = ~uint128{0};

// ⌊a × b / c⌋; kUint128Max when the quotient does not fit in 128 bits.
// REQUIRES: c > 0.
uint128 MulDivFloor(uint128 a, uint128 b, uint128 c);

// a × b / c rounded half up; kUint128Max when the quotient does not fit in 128 bits.
// REQUIRES: c > 0.
uint128 MulDivRoundHalfUp(uint128 a, uint128 b, uint128 c);

// `value`, or INT64_MAX when it is larger.
int64_t SaturateToInt64(uint128 value);

}  // namespace tollgate
