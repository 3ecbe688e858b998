#include "proxy/batcher/batch_metrics.h"

namespace tollgate {
namespace {

using prometheus::Histogram;

// Powers of two up to the largest batches backends take (OpenAI: 2048 embedding inputs).
const Histogram::BucketBoundaries& SizeBuckets() {
  static const auto* b =
      new Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048};
  return *b;
}

// Microseconds to 100 ms: queue delays are configured in microseconds.
const Histogram::BucketBoundaries& QueueDelayBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      1e-6, 1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1};
  return *b;
}

}  // namespace

BatchMetrics::BatchMetrics(prometheus::Registry& registry)
    : batches_(prometheus::BuildCounter()
                   .Name("tollgate_batches_total")
                   .Help("Backend calls made for dynamic batches, by backend.")
                   .Register(registry)),
      size_(prometheus::BuildHistogram()
                .Name("tollgate_batch_size")
                .Help("Size of a dynamic batch sent to a backend: prompts, or embedding inputs.")
                .Register(registry)),
      queue_delay_(prometheus::BuildHistogram()
                       .Name("tollgate_batch_queue_delay_seconds")
                       .Help("Time a batched request waited in its queue before its batch was "
                             "sent, by backend.")
                       .Register(registry)) {}

BatchMetrics::Series BatchMetrics::ForBackend(const std::string& backend) {
  absl::MutexLock lock(&mu_);
  return {&batches_.Add({{"backend", backend}}), &size_.Add({{"backend", backend}}, SizeBuckets()),
          &queue_delay_.Add({{"backend", backend}}, QueueDelayBuckets())};
}

void BatchMetrics::Series::Record(const BatchInfo& info) const {
  if (batches == nullptr) return;
  batches->Increment();
  size->Observe(static_cast<double>(info.size));
  for (absl::Duration delay : info.queue_delays) queue_delay->Observe(absl::ToDoubleSeconds(delay));
}

}  // namespace tollgate
