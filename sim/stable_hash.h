// Hashing and pseudo-random numbers that give the same values in every process and build.
//
//   StableHasher hasher;
//   hasher.AddString(model);
//   hasher.AddUint64(max_tokens);
//   SplitMix64 rng(hasher.Digest());
//   uint64_t r = rng.Next();
//
// absl::Hash and std::hash are seeded per process, so the simulator cannot use them for output
// that must repeat across runs. These are plain value types; a single instance is not
// thread-safe, separate instances are independent.
#pragma once

#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"

namespace tollgate::sim {

// FNV-1a, 64-bit. Variable-length fields are length-prefixed so that ("ab", "c") and ("a", "bc")
// hash differently.
class StableHasher {
 public:
  void AddByte(uint8_t byte) {
    state_ ^= byte;
    state_ *= kPrime;
  }
  void AddUint64(uint64_t value) {
    for (int shift = 0; shift < 64; shift += 8) AddByte(static_cast<uint8_t>(value >> shift));
  }
  void AddString(absl::string_view text) {
    AddUint64(text.size());
    for (char c : text) AddByte(static_cast<uint8_t>(c));
  }
  void AddFloat(float value) {
    uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof(bits));
    AddUint64(bits);
  }
  uint64_t Digest() const { return state_; }

 private:
  static constexpr uint64_t kOffsetBasis = 0xcbf29ce484222325ull;
  static constexpr uint64_t kPrime = 0x100000001b3ull;
  uint64_t state_ = kOffsetBasis;
};

// SplitMix64: a small, well-mixed generator; its sequence depends only on the seed.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double NextUnit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace tollgate::sim
