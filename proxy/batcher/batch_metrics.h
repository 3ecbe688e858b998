// The dynamic batcher's Prometheus series, declared in one place:
//
//   tollgate_batches_total{backend}               backend calls made for batches
//   tollgate_batch_size{backend}                  a batch's size: prompts, or embedding inputs
//   tollgate_batch_queue_delay_seconds{backend}   each batched request's wait in its queue
//
//   BatchMetrics metrics(registry);
//   BatchMetrics::Series series = metrics.ForBackend("vllm-east");  // at config load
//   series.Record(info);                                            // per batch sent
//
// Series are created by ForBackend, at start-up and config load, for the configured backends that
// batch; never on the request path. Thread-safe; the registry must outlive it, and the series
// live as long as the registry.
#pragma once

#include <string>

#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "proxy/batcher/dynamic_batcher.h"

namespace tollgate {

class BatchMetrics {
 public:
  explicit BatchMetrics(prometheus::Registry& registry);

  // One backend's series; default-constructed (all null) records nothing.
  struct Series {
    prometheus::Counter* batches = nullptr;
    prometheus::Histogram* size = nullptr;
    prometheus::Histogram* queue_delay = nullptr;
    // Counts a batch, its size, and each of its items' queue delays.
    void Record(const BatchInfo& info) const;
  };

  // Creates (or finds) the series of `backend`, a configured backend name.
  Series ForBackend(const std::string& backend) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;  // prometheus-cpp's Family::Add is thread-safe; this keeps creation in order
  prometheus::Family<prometheus::Counter>& batches_;
  prometheus::Family<prometheus::Histogram>& size_;
  prometheus::Family<prometheus::Histogram>& queue_delay_;
};

}  // namespace tollgate
