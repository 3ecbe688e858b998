#include "accounting/kv/kv_metrics.h"

namespace tollgate {

KvMetrics::KvMetrics(prometheus::Registry& registry)
    : bytes_(prometheus::BuildGauge()
                 .Name("tollgate_kv_cache_bytes")
                 .Help("KV-cache bytes held by the requests in flight on the backend (prompt + "
                       "generated tokens, rounded up to whole blocks).")
                 .Register(registry)),
      capacity_bytes_(prometheus::BuildGauge()
                          .Name("tollgate_kv_cache_capacity_bytes")
                          .Help("KV-cache memory of the backend: GPU memory x utilization - "
                                "weights.")
                          .Register(registry)),
      utilization_(prometheus::BuildGauge()
                       .Name("tollgate_kv_cache_utilization_ratio")
                       .Help("tollgate_kv_cache_bytes / tollgate_kv_cache_capacity_bytes.")
                       .Register(registry)),
      bytes_per_token_(prometheus::BuildGauge()
                           .Name("tollgate_kv_cache_bytes_per_token")
                           .Help("KV-cache bytes one token of the model holds: 2 x layers x "
                                 "kv_heads x head_dim x bytes per element.")
                           .Register(registry)),
      peak_bytes_(prometheus::BuildHistogram()
                      .Name("tollgate_request_kv_peak_bytes")
                      .Help("Largest KV-cache footprint of each request on the backend.")
                      .Register(registry)),
      admission_queue_depth_(prometheus::BuildGauge()
                                 .Name("tollgate_kv_admission_queue_depth")
                                 .Help("Requests waiting for KV-cache room on the backend.")
                                 .Register(registry)),
      backend_usage_(prometheus::BuildGauge()
                         .Name("tollgate_backend_kv_cache_usage_ratio")
                         .Help("KV-cache usage the backend reports itself "
                               "(vllm:kv_cache_usage_perc, max over its series), 0 to 1.")
                         .Register(registry)) {}

KvBackendSeries KvMetrics::AddBackend(const std::string& backend) {
  const prometheus::Labels labels = {{"backend", backend}};
  return {&bytes_.Add(labels), &capacity_bytes_.Add(labels), &utilization_.Add(labels),
          &admission_queue_depth_.Add(labels), &peak_bytes_.Add(labels, PeakBytesBuckets())};
}

void KvMetrics::RemoveBackend(const KvBackendSeries& series) {
  if (series.bytes == nullptr) return;
  bytes_.Remove(series.bytes);
  capacity_bytes_.Remove(series.capacity_bytes);
  utilization_.Remove(series.utilization);
  admission_queue_depth_.Remove(series.admission_queue_depth);
  peak_bytes_.Remove(series.peak_bytes);
}

prometheus::Gauge& KvMetrics::AddModel(const std::string& model, uint64_t bytes_per_token) {
  prometheus::Gauge& gauge = bytes_per_token_.Add({{"model", model}});
  gauge.Set(static_cast<double>(bytes_per_token));
  return gauge;
}

void KvMetrics::RemoveModel(prometheus::Gauge* series) {
  if (series != nullptr) bytes_per_token_.Remove(series);
}

prometheus::Gauge& KvMetrics::AddBackendUsage(const std::string& backend) {
  return backend_usage_.Add({{"backend", backend}});
}

void KvMetrics::RemoveBackendUsage(prometheus::Gauge* series) {
  if (series != nullptr) backend_usage_.Remove(series);
}

prometheus::Histogram::BucketBoundaries KvMetrics::PeakBytesBuckets() {
  prometheus::Histogram::BucketBoundaries buckets;
  for (double bound = 1 << 20; bound <= 64.0 * (1 << 30); bound *= 4) buckets.push_back(bound);
  return buckets;
}

}  // namespace tollgate
