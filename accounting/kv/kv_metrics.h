// The Prometheus series of KV-cache accounting, declared in one place.
//
//   KvMetrics kv_metrics(registry);                                   // once, at start-up
//   KvBackendSeries series = kv_metrics.AddBackend("gpu-pool-a");     // per configured backend
//   kv_metrics.AddModel("llama-3-8b", model.bytes_per_token());       // per configured model
//   KvTracker tracker(model.capacity_bytes(), {.series = series});
//
// Label values are configured names only (backend and model names from config), so cardinality is
// bounded by the config; a reload removes the series of what it drops.
//
//   tollgate_kv_cache_bytes{backend}                 gauge  live KV bytes of requests in flight
//   tollgate_kv_cache_capacity_bytes{backend}        gauge  KV memory the backend has
//   tollgate_kv_cache_utilization_ratio{backend}     gauge  live ÷ capacity
//   tollgate_kv_cache_bytes_per_token{model}         gauge  KV bytes one token holds
//   tollgate_request_kv_peak_bytes{backend}          histogram  each request's largest footprint,
//                                                    buckets 1 MiB × 4^k up to 64 GiB
//   tollgate_kv_admission_queue_depth{backend}       gauge  requests waiting for KV room
//   tollgate_backend_kv_cache_usage_ratio{backend}   gauge  the backend's own figure
//                                                    (vllm:kv_cache_usage_perc), 0..1; absent
//                                                    while the backend's /metrics cannot be read
//
// The peak histogram is per backend, because the tracker that observes it is; the per-model view
// is bytes_per_token{model}.
//
// Thread safety: safe from any thread. The registry must outlive it, and it must outlive the series
// it hands out.
#pragma once

#include <cstdint>
#include <string>

#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace tollgate {

// One backend's series, all set by the KV components (KvTracker, KvAdmission). All null: no
// metrics.
struct KvBackendSeries {
  prometheus::Gauge* bytes = nullptr;
  prometheus::Gauge* capacity_bytes = nullptr;
  prometheus::Gauge* utilization = nullptr;
  prometheus::Gauge* admission_queue_depth = nullptr;
  prometheus::Histogram* peak_bytes = nullptr;
};

class KvMetrics {
 public:
  explicit KvMetrics(prometheus::Registry& registry);

  // Creates (or finds, for a name it has) the series of backend `backend`.
  KvBackendSeries AddBackend(const std::string& backend);
  void RemoveBackend(const KvBackendSeries& series);

  // tollgate_kv_cache_bytes_per_token{model}, set to `bytes_per_token`.
  prometheus::Gauge& AddModel(const std::string& model, uint64_t bytes_per_token);
  void RemoveModel(prometheus::Gauge* series);

  // tollgate_backend_kv_cache_usage_ratio{backend}; BackendKvPoller adds it while the backend
  // answers and removes it while it does not.
  prometheus::Gauge& AddBackendUsage(const std::string& backend);
  void RemoveBackendUsage(prometheus::Gauge* series);

  // 1 MiB, 4 MiB, ..., 64 GiB.
  static prometheus::Histogram::BucketBoundaries PeakBytesBuckets();

 private:
  prometheus::Family<prometheus::Gauge>& bytes_;
  prometheus::Family<prometheus::Gauge>& capacity_bytes_;
  prometheus::Family<prometheus::Gauge>& utilization_;
  prometheus::Family<prometheus::Gauge>& bytes_per_token_;
  prometheus::Family<prometheus::Histogram>& peak_bytes_;
  prometheus::Family<prometheus::Gauge>& admission_queue_depth_;
  prometheus::Family<prometheus::Gauge>& backend_usage_;
};

}  // namespace tollgate
