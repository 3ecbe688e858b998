#include "bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>

namespace tollgate::bench {
namespace {

// 2^7 linear buckets per power of two bound the bucket width to 1/128 of its lower edge.
constexpr int kSubBucketBits = 7;
constexpr int64_t kSubBucketCount = int64_t{1} << kSubBucketBits;
// Values are below 2^kValueBits (kMaxTrackableNs + 1).
constexpr int kValueBits = 37;
constexpr size_t kBucketCount = kSubBucketCount + (kValueBits - kSubBucketBits) * kSubBucketCount;

static_assert(LatencyHistogram::kMaxTrackableNs == (int64_t{1} << kValueBits) - 1);

size_t BucketIndex(int64_t value_ns) {
  const auto value = static_cast<uint64_t>(value_ns);
  if (value < static_cast<uint64_t>(kSubBucketCount)) return value;
  // value lies in [2^top_bit, 2^(top_bit + 1)); buckets there are 2^shift wide.
  const int top_bit = std::bit_width(value) - 1;
  const int shift = top_bit - kSubBucketBits;
  const uint64_t sub_bucket = (value >> shift) - kSubBucketCount;
  return kSubBucketCount + shift * kSubBucketCount + sub_bucket;
}

// The middle of bucket `index` (its only value for the exact buckets).
int64_t BucketMidpoint(size_t index) {
  if (index < static_cast<size_t>(kSubBucketCount)) return static_cast<int64_t>(index);
  const size_t above = index - kSubBucketCount;
  const int shift = static_cast<int>(above / kSubBucketCount);
  const int64_t sub_bucket = static_cast<int64_t>(above % kSubBucketCount);
  const int64_t lower = (kSubBucketCount + sub_bucket) << shift;
  return lower + ((int64_t{1} << shift) >> 1);
}

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

void LatencyHistogram::Record(int64_t value_ns) {
  if (value_ns < 0) value_ns = 0;
  if (value_ns > kMaxTrackableNs) {
    value_ns = kMaxTrackableNs;
    ++clamped_count_;
  }
  ++counts_[BucketIndex(value_ns)];
  if (count_ == 0) {
    min_ns_ = value_ns;
    max_ns_ = value_ns;
  } else {
    min_ns_ = std::min(min_ns_, value_ns);
    max_ns_ = std::max(max_ns_, value_ns);
  }
  ++count_;
  sum_ns_ += static_cast<double>(value_ns);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  if (count_ == 0) {
    min_ns_ = other.min_ns_;
    max_ns_ = other.max_ns_;
  } else {
    min_ns_ = std::min(min_ns_, other.min_ns_);
    max_ns_ = std::max(max_ns_, other.max_ns_);
  }
  count_ += other.count_;
  clamped_count_ += other.clamped_count_;
  sum_ns_ += other.sum_ns_;
}

int64_t LatencyHistogram::Percentile(double percentile) const {
  if (count_ == 0) return 0;
  if (!(percentile > 0)) return min_ns_;  // also catches NaN
  if (percentile >= 100) return max_ns_;
  // The rank-th smallest value, 1-based (nearest-rank definition). Multiplying first keeps whole
  // percentiles exact; the tiny slack stops 99.9 (not exact in binary) from rounding a rank up.
  const double position = percentile * static_cast<double>(count_) / 100.0;
  const auto rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(position - position * 1e-12)));
  int64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(BucketMidpoint(i), min_ns_, max_ns_);
  }
  return max_ns_;
}

double LatencyHistogram::Mean() const {
  return count_ == 0 ? 0.0 : sum_ns_ / static_cast<double>(count_);
}

}  // namespace tollgate::bench
