#include "accounting/kv/kv_tracker.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "accounting/kv/kv_metrics.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace tollgate {
namespace {

constexpr uint64_t kBytesPerToken = 1000;  // round figures; a block of 16 tokens is 16,000 bytes

TEST(KvTracker, BeginHoldsThePromptRoundedUpToWholeBlocks) {
  KvTracker tracker(1'000'000);
  KvRequest request = tracker.Begin(17, kBytesPerToken);
  EXPECT_TRUE(request.active());
  EXPECT_EQ(request.footprint_bytes(), 32'000u);
  EXPECT_EQ(tracker.live_bytes(), 32'000u);
  EXPECT_EQ(tracker.held_bytes(), 32'000u);
}

TEST(KvTracker, UpdateGrowsTheFootprintBlockByBlock) {
  KvTracker tracker(1'000'000);
  KvRequest request = tracker.Begin(10, kBytesPerToken);
  EXPECT_EQ(tracker.live_bytes(), 16'000u);
  tracker.Update(request, 6);  // 16 tokens: still one block
  EXPECT_EQ(tracker.live_bytes(), 16'000u);
  tracker.Update(request, 7);  // 17
  EXPECT_EQ(tracker.live_bytes(), 32'000u);
  tracker.Update(request, 40);  // 50 → 4 blocks
  EXPECT_EQ(tracker.live_bytes(), 64'000u);
  EXPECT_EQ(request.footprint_bytes(), 64'000u);
}

TEST(KvTracker, AFootprintNeverShrinksBeforeEnd) {
  KvTracker tracker(1'000'000);
  KvRequest request = tracker.Begin(10, kBytesPerToken);
  tracker.Update(request, 30);
  tracker.Update(request, 3);
  EXPECT_EQ(tracker.live_bytes(), 48'000u);
}

TEST(KvTracker, EndReturnsThePeakAndFreesTheBytes) {
  KvTracker tracker(1'000'000);
  KvRequest a = tracker.Begin(100, kBytesPerToken);
  KvRequest b = tracker.Begin(1, kBytesPerToken);
  tracker.Update(a, 20);
  EXPECT_EQ(tracker.live_bytes(), 128'000u + 16'000u);
  EXPECT_EQ(tracker.End(a), 128'000u);
  EXPECT_FALSE(a.active());
  EXPECT_EQ(tracker.live_bytes(), 16'000u);
  EXPECT_EQ(tracker.End(a), 128'000u);  // a second End changes nothing
  tracker.Update(a, 500);
  EXPECT_EQ(tracker.live_bytes(), 16'000u);
  tracker.End(b);
  EXPECT_EQ(tracker.live_bytes(), 0u);
  EXPECT_EQ(tracker.held_bytes(), 0u);
}

TEST(KvTracker, ARequestDroppedWithoutEndEndsItself) {
  KvTracker tracker(1'000'000);
  {
    KvRequest request = tracker.Begin(16, kBytesPerToken);
    KvRequest moved = std::move(request);
    EXPECT_FALSE(request.active());  // NOLINT(bugprone-use-after-move): checks the moved-from state
    EXPECT_EQ(tracker.live_bytes(), 16'000u);
  }
  EXPECT_EQ(tracker.live_bytes(), 0u);

  KvRequest first = tracker.Begin(16, kBytesPerToken);
  first = tracker.Begin(32, kBytesPerToken);  // the replaced request ends
  EXPECT_EQ(tracker.live_bytes(), 32'000u);
}

TEST(KvTracker, UtilizationIsLiveOverCapacity) {
  KvTracker tracker(64'000);
  EXPECT_EQ(tracker.utilization(), 0);
  KvRequest request = tracker.Begin(16, kBytesPerToken);
  EXPECT_DOUBLE_EQ(tracker.utilization(), 0.25);
  tracker.SetCapacity(32'000);
  EXPECT_DOUBLE_EQ(tracker.utilization(), 0.5);
  tracker.SetCapacity(0);
  EXPECT_EQ(tracker.utilization(), std::numeric_limits<double>::infinity());
  tracker.End(request);
  EXPECT_EQ(tracker.utilization(), 0);
}

TEST(KvTracker, ExportsLiveBytesCapacityUtilizationAndPeaks) {
  prometheus::Registry registry;
  KvMetrics metrics(registry);
  const KvBackendSeries series = metrics.AddBackend("gpu-a");
  KvTracker tracker(1 << 30, {.series = series});
  EXPECT_EQ(series.capacity_bytes->Value(), 1 << 30);
  EXPECT_EQ(series.bytes->Value(), 0);

  KvRequest request = tracker.Begin(100, 1 << 20);  // 112 tokens of 1 MiB
  EXPECT_EQ(series.bytes->Value(), 112.0 * (1 << 20));
  EXPECT_DOUBLE_EQ(series.utilization->Value(), 112.0 / 1024);
  tracker.Update(request, 13);  // 113 → 128 tokens
  EXPECT_EQ(series.bytes->Value(), 128.0 * (1 << 20));
  tracker.End(request);
  EXPECT_EQ(series.bytes->Value(), 0);
  EXPECT_EQ(series.utilization->Value(), 0);

  const prometheus::ClientMetric peaks = series.peak_bytes->Collect();
  EXPECT_EQ(peaks.histogram.sample_count, 1u);
  EXPECT_EQ(peaks.histogram.sample_sum, 128.0 * (1 << 20));
  // 128 MiB: above the 64 MiB bound, within 256 MiB.
  EXPECT_EQ(peaks.histogram.bucket[2].cumulative_count, 0u);
  EXPECT_EQ(peaks.histogram.bucket[3].upper_bound, 64.0 * (1 << 20));
  EXPECT_EQ(peaks.histogram.bucket[3].cumulative_count, 0u);
  EXPECT_EQ(peaks.histogram.bucket[4].upper_bound, 256.0 * (1 << 20));
  EXPECT_EQ(peaks.histogram.bucket[4].cumulative_count, 1u);

  tracker.SetCapacity(1 << 29);
  EXPECT_EQ(series.capacity_bytes->Value(), 1 << 29);
}

TEST(KvMetrics, PeakBucketsArePowersOfFourFrom1MiBTo64GiB) {
  const prometheus::Histogram::BucketBoundaries buckets = KvMetrics::PeakBytesBuckets();
  ASSERT_EQ(buckets.size(), 9u);
  EXPECT_EQ(buckets.front(), 1 << 20);
  EXPECT_EQ(buckets.back(), 64.0 * (1 << 30));
  for (size_t i = 1; i < buckets.size(); ++i) EXPECT_EQ(buckets[i], 4 * buckets[i - 1]);
}

TEST(KvMetrics, ExportsBytesPerTokenPerModelAndRemovesSeries) {
  prometheus::Registry registry;
  KvMetrics metrics(registry);
  prometheus::Gauge& llama = metrics.AddModel("llama-3-8b", 131'072);
  EXPECT_EQ(llama.Value(), 131'072);
  const KvBackendSeries series = metrics.AddBackend("gpu-a");
  metrics.RemoveModel(&llama);
  metrics.RemoveBackend(series);
  metrics.RemoveBackend({});  // no series: nothing to do
  size_t series_left = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    series_left += family.metric.size();
  }
  EXPECT_EQ(series_left, 0u);
}

TEST(KvTracker, ConcurrentRequestsAddUpExactly) {
  prometheus::Registry registry;
  KvMetrics metrics(registry);
  const KvBackendSeries series = metrics.AddBackend("gpu-a");
  KvTracker tracker(1ull << 40, {.series = series});
  constexpr int kThreads = 4;
  constexpr int kRequestsPerThread = 500;
  std::vector<std::thread> threads;
  std::vector<KvRequest> kept(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&tracker, &kept, t] {
      for (int i = 0; i < kRequestsPerThread; ++i) {
        KvRequest request = tracker.Begin(1 + i % 50, kBytesPerToken, /*admitted_bytes=*/0);
        for (uint64_t generated = 1; generated <= 40; ++generated) {
          tracker.Update(request, generated);
        }
        if (i == kRequestsPerThread - 1) {
          kept[t] = std::move(request);  // the last one stays in flight
        } else {
          tracker.End(request);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  // Each kept request: prompt 50 + 40 generated = 90 tokens → 96.
  EXPECT_EQ(tracker.live_bytes(), kThreads * 96'000u);
  EXPECT_EQ(tracker.held_bytes(), kThreads * 96'000u);
  EXPECT_EQ(series.bytes->Value(), kThreads * 96'000.0);
  kept.clear();
  EXPECT_EQ(tracker.live_bytes(), 0u);
  EXPECT_EQ(series.bytes->Value(), 0);
  EXPECT_EQ(series.utilization->Value(), 0);
  EXPECT_EQ(series.peak_bytes->Collect().histogram.sample_count,
            static_cast<uint64_t>(kThreads * kRequestsPerThread));
}

}  // namespace
}  // namespace tollgate
