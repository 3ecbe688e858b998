#include "bench/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace tollgate::bench {
namespace {

constexpr double kMaxRelativeError = 0.01;

// The nearest-rank percentile of `sorted` (in integer arithmetic, 1 basis point = 0.01%), the
// definition LatencyHistogram approximates.
int64_t ExactPercentile(const std::vector<int64_t>& sorted, int64_t basis_points) {
  const int64_t count = static_cast<int64_t>(sorted.size());
  const int64_t rank = std::max<int64_t>(1, (basis_points * count + 9'999) / 10'000);
  return sorted[rank - 1];
}

// |reported - exact| <= 1% of exact.
void ExpectWithinError(int64_t reported, int64_t exact) {
  EXPECT_LE(std::abs(static_cast<double>(reported - exact)),
            kMaxRelativeError * static_cast<double>(exact))
      << "exact " << exact << " reported " << reported;
}

void ExpectPercentilesWithinError(const std::vector<int64_t>& values) {
  LatencyHistogram histogram;
  for (int64_t value : values) histogram.Record(value);
  std::vector<int64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t basis_points : {100, 1'000, 2'500, 5'000, 7'500, 9'000, 9'900, 9'990, 9'999}) {
    SCOPED_TRACE(basis_points);
    ExpectWithinError(histogram.Percentile(basis_points / 100.0),
                      ExactPercentile(sorted, basis_points));
  }
}

TEST(LatencyHistogram, EmptyHistogramReportsZeroEverywhere) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.Count(), 0);
  EXPECT_EQ(histogram.Percentile(50), 0);
  EXPECT_EQ(histogram.Percentile(100), 0);
  EXPECT_EQ(histogram.Min(), 0);
  EXPECT_EQ(histogram.Max(), 0);
  EXPECT_EQ(histogram.Mean(), 0);
}

TEST(LatencyHistogram, ValuesBelow128NanosecondsAreExact) {
  LatencyHistogram histogram;
  for (int64_t value = 1; value <= 100; ++value) histogram.Record(value);
  for (int p = 1; p <= 100; ++p) EXPECT_EQ(histogram.Percentile(p), p);
}

TEST(LatencyHistogram, UniformMicrosecondsToMillisecondsStayWithinOnePercent) {
  std::vector<int64_t> values;
  for (int64_t us = 1; us <= 100'000; ++us) values.push_back(us * 1000);
  ExpectPercentilesWithinError(values);
}

TEST(LatencyHistogram, LogUniformMicrosecondToHundredSecondsStaysWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exponent(3.0, 11.0);  // 1 µs .. 100 s in ns
  std::vector<int64_t> values;
  for (int i = 0; i < 200'000; ++i) {
    values.push_back(static_cast<int64_t>(std::pow(10.0, exponent(rng))));
  }
  ExpectPercentilesWithinError(values);
}

TEST(LatencyHistogram, EveryDecadeFromMicrosecondToHundredSecondsStaysWithinOnePercent) {
  // Pairs of (v, 2v): the median is the bucket of v, the maximum is exact.
  for (int64_t value = 1000; value <= 100'000'000'000; value = value * 10 + 7) {
    LatencyHistogram histogram;
    histogram.Record(value);
    histogram.Record(2 * value);
    const double reported = static_cast<double>(histogram.Percentile(50));
    EXPECT_LE(std::abs(reported - static_cast<double>(value)), kMaxRelativeError * value) << value;
  }
}

TEST(LatencyHistogram, MinMaxAndMeanAreExact) {
  LatencyHistogram histogram;
  histogram.Record(1'234'567);
  histogram.Record(1'000);
  histogram.Record(98'765'432'109);
  EXPECT_EQ(histogram.Count(), 3);
  EXPECT_EQ(histogram.Min(), 1'000);
  EXPECT_EQ(histogram.Max(), 98'765'432'109);
  EXPECT_DOUBLE_EQ(histogram.Mean(), (1'234'567.0 + 1'000.0 + 98'765'432'109.0) / 3);
  EXPECT_EQ(histogram.Percentile(0), 1'000);
  EXPECT_EQ(histogram.Percentile(100), 98'765'432'109);
}

TEST(LatencyHistogram, PercentilesOutsideZeroToHundredAreClamped) {
  LatencyHistogram histogram;
  histogram.Record(5'000);
  histogram.Record(9'000);
  EXPECT_EQ(histogram.Percentile(-3), 5'000);
  EXPECT_EQ(histogram.Percentile(250), 9'000);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingIntoOne) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> latency_ns(1'000, 5'000'000'000);
  LatencyHistogram left, right, together;
  for (int i = 0; i < 10'000; ++i) {
    const int64_t value = latency_ns(rng);
    (i % 3 == 0 ? left : right).Record(value);
    together.Record(value);
  }
  left.Merge(right);
  EXPECT_EQ(left.Count(), together.Count());
  EXPECT_EQ(left.Min(), together.Min());
  EXPECT_EQ(left.Max(), together.Max());
  EXPECT_DOUBLE_EQ(left.Mean(), together.Mean());
  for (double p : {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(left.Percentile(p), together.Percentile(p)) << "p" << p;
  }
}

TEST(LatencyHistogram, MergeIntoEmptyTakesTheOthersRange) {
  LatencyHistogram empty, full;
  full.Record(40'000);
  full.Record(70'000);
  empty.Merge(full);
  EXPECT_EQ(empty.Count(), 2);
  EXPECT_EQ(empty.Min(), 40'000);
  EXPECT_EQ(empty.Max(), 70'000);
  LatencyHistogram nothing;
  full.Merge(nothing);
  EXPECT_EQ(full.Count(), 2);
  EXPECT_EQ(full.Min(), 40'000);
}

TEST(LatencyHistogram, HugeValuesAreClampedToTheLargestTrackable) {
  LatencyHistogram histogram;
  histogram.Record(std::numeric_limits<int64_t>::max());
  histogram.Record(int64_t{500} * 1'000'000'000);  // 500 s
  histogram.Record(1'000);
  EXPECT_EQ(histogram.Count(), 3);
  EXPECT_EQ(histogram.ClampedCount(), 2);
  EXPECT_EQ(histogram.Max(), LatencyHistogram::kMaxTrackableNs);
  EXPECT_EQ(histogram.Percentile(100), LatencyHistogram::kMaxTrackableNs);
  ExpectWithinError(histogram.Percentile(99), LatencyHistogram::kMaxTrackableNs);
  EXPECT_EQ(histogram.Percentile(0), 1'000);
}

TEST(LatencyHistogram, NegativeValuesAreRecordedAsZero) {
  LatencyHistogram histogram;
  histogram.Record(-42);
  EXPECT_EQ(histogram.Count(), 1);
  EXPECT_EQ(histogram.Min(), 0);
  EXPECT_EQ(histogram.Percentile(50), 0);
}

}  // namespace
}  // namespace tollgate::bench
