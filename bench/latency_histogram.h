// LatencyHistogram: a log-linear (HDR-style) histogram of latencies in nanoseconds.
//
//   LatencyHistogram histogram;
//   histogram.Record(1'250'000);  // 1.25 ms
//   int64_t p99_ns = histogram.Percentile(99);
//
// Values below 128 ns get one bucket each and are exact. Above that every power-of-two range
// [2^k, 2^(k+1)) is split into 128 equal buckets, and a bucket reports its midpoint, so a reported
// value is within 1/256 (0.4%) of the recorded one: under the 1% promised from 1 µs to 100 s.
// Values above kMaxTrackableNs (about 137 s) are clamped to it and counted by ClampedCount();
// negative values are recorded as 0. Fixed memory (about 31 KiB), no allocation on Record.
//
// Thread safety: none of its own (thread-compatible). Concurrent const calls are safe; Record and
// Merge must be serialized with every other access by the caller.
#pragma once

#include <cstdint>
#include <vector>

namespace tollgate::bench {

class LatencyHistogram {
 public:
  // The largest value kept as is: 2^37 - 1 ns, about 137 s.
  static constexpr int64_t kMaxTrackableNs = (int64_t{1} << 37) - 1;

  LatencyHistogram();

  void Record(int64_t value_ns);
  // Adds every value recorded in `other`, as if each had been recorded here.
  void Merge(const LatencyHistogram& other);

  int64_t Count() const { return count_; }
  // Values that were above kMaxTrackableNs and were recorded as kMaxTrackableNs.
  int64_t ClampedCount() const { return clamped_count_; }

  // The value at or below which `percentile` percent of the recorded values lie, p in [0, 100]
  // (clamped into it): Percentile(0) is Min(), Percentile(100) is Max(). 0 when empty.
  int64_t Percentile(double percentile) const;
  // Exact, after clamping. 0 when empty.
  int64_t Min() const { return count_ == 0 ? 0 : min_ns_; }
  int64_t Max() const { return count_ == 0 ? 0 : max_ns_; }
  double Mean() const;

 private:
  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  int64_t clamped_count_ = 0;
  int64_t min_ns_ = 0;
  int64_t max_ns_ = 0;
  // A double cannot overflow where an int64 sum of 137 s values would after ~6.7e7 of them.
  double sum_ns_ = 0;
};

}  // namespace tollgate::bench
