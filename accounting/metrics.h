// Tollgate's Prometheus series, declared in one place.
//
//   ProxyMetrics metrics(registry);
//   std::shared_ptr<const MetricsTable> table = metrics.BuildTable(tenants, models);
//   table->Record(table->TenantIndex("acme"), table->ModelIndex("gpt-4o"), outcome);
//
// Every series is created when a table is built (at start-up and on each config load), never on the
// request path. Label values come only from the configured tenants and models plus "other", and
// from the fixed set of gRPC status names, so cardinality is bounded by the config.
//
// Thread safety: ProxyMetrics::BuildTable may be called from any thread (serialised internally); a
// MetricsTable is immutable and Record() is safe from any thread. The registry must outlive both.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

// Label value for a tenant or model outside the configured sets.
inline constexpr absl::string_view kOtherLabel = "other";

// Lower-case gRPC code name, the `status` label value ("ok", "resource_exhausted", ...).
absl::string_view StatusLabel(absl::StatusCode code);

// "miss", "hit", "bypass", "coalesced"; "" for unspecified (a request that never reached a
// backend).
std::string_view CacheStatusLabel(v1::CacheStatus status);

// "reported", "counted", "estimated"; "" for unspecified.
std::string_view UsageSourceLabel(v1::UsageSource source);

// What one finished request contributes to the metrics.
struct RequestOutcome {
  absl::StatusCode code = absl::StatusCode::kOk;
  v1::Usage usage;
  int64_t cost_nano_usd = 0;
  absl::Duration duration;
  absl::Duration overhead;             // time inside Tollgate, backend time excluded
  absl::Duration time_to_first_token;  // negative: no token was produced
  // Requests the response cache saw: counted on tollgate_cache_requests_total{result}.
  v1::CacheStatus cache_status = v1::CACHE_STATUS_UNSPECIFIED;
  // A hit's or a coalesced request's saving: what the backend charged for the answer, less what
  // this request was charged (tollgate_cache_saved_usd_total).
  int64_t saved_nano_usd = 0;
};

// The outcome of one call to a backend (a request makes several when it is retried).
enum class AttemptResult { kOk, kRetried, kFailed };

class MetricsTable {
 public:
  static constexpr size_t kNumCodes = 17;

  size_t TenantIndex(absl::string_view tenant) const;  // unknown → the "other" row
  size_t ModelIndex(absl::string_view model) const;    // unknown → the "other" column
  void Record(size_t tenant_index, size_t model_index, const RequestOutcome& outcome) const;
  // A request's cost under shadow plan `plan_index` (config order).
  void AddShadowCost(size_t plan_index, int64_t nano_usd) const;

  // Output tokens of a stream still in progress, counted with the model's tokenizer as chunks
  // arrive, on tollgate_streamed_output_tokens_total (tollgate_tokens_total gets the charged
  // figure when the request ends, so that its types always partition what was charged).
  void AddStreamedOutputTokens(size_t tenant_index, size_t model_index, uint64_t tokens) const;

  // Backends are named by config; an unknown name is ignored.
  void RecordAttempt(absl::string_view backend, AttemptResult result) const;
  void SetEjected(absl::string_view backend, bool ejected) const;

 private:
  friend class ProxyMetrics;
  struct Cell {  // one (tenant, model) pair
    std::array<prometheus::Counter*, kNumCodes> requests{};
    prometheus::Counter* input_tokens = nullptr;
    prometheus::Counter* cached_input_tokens = nullptr;
    prometheus::Counter* output_tokens = nullptr;
    prometheus::Counter* reasoning_tokens = nullptr;
    prometheus::Counter* streamed_output_tokens = nullptr;
    prometheus::Counter* cost_usd = nullptr;
    prometheus::Histogram* request_cost_usd = nullptr;
    prometheus::Counter* cache_saved_usd = nullptr;
  };
  struct PerModel {
    prometheus::Histogram* duration = nullptr;
    prometheus::Histogram* time_to_first_token = nullptr;
    prometheus::Histogram* overhead = nullptr;
    std::array<prometheus::Counter*, 4> cache_requests{};  // by CacheStatus - 1
  };
  struct PerBackend {
    std::array<prometheus::Counter*, 3> attempts{};  // by AttemptResult
    prometheus::Gauge* ejected = nullptr;
  };
  absl::flat_hash_map<std::string, PerBackend> backends_;
  absl::flat_hash_map<std::string, size_t> tenant_index_;
  absl::flat_hash_map<std::string, size_t> model_index_;
  size_t num_models_ = 0;
  std::vector<Cell> cells_;  // tenant-major
  std::vector<PerModel> per_model_;
  std::vector<prometheus::Counter*> shadow_cost_;  // by plan, config order
};

class ProxyMetrics {
 public:
  explicit ProxyMetrics(prometheus::Registry& registry);

  // Creates (or finds) every series for these tenants and models plus "other". Names are assumed
  // to be valid label values (config validation ensures it).
  std::shared_ptr<const MetricsTable> BuildTable(const std::vector<std::string>& tenants,
                                                 const std::vector<std::string>& models,
                                                 const std::vector<std::string>& backends = {},
                                                 const std::vector<std::string>& plans = {});

  // The idle-cost and energy series of a backend with a GPU cost, for its GpuMeter.
  struct GpuSeries {
    prometheus::Counter* idle_cost_usd;
    prometheus::Counter* energy_joules;
  };
  GpuSeries GpuCounters(const std::string& backend);

  // Config reloads by result ("ok" or "error").
  void RecordConfigReload(bool ok);

 private:
  absl::Mutex mu_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& tokens_;
  prometheus::Family<prometheus::Counter>& streamed_tokens_;
  prometheus::Family<prometheus::Counter>& cost_;
  prometheus::Family<prometheus::Histogram>& request_cost_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Histogram>& ttft_;
  prometheus::Family<prometheus::Histogram>& overhead_;
  prometheus::Family<prometheus::Counter>& attempts_;
  prometheus::Family<prometheus::Gauge>& ejected_;
  prometheus::Family<prometheus::Counter>& gpu_idle_cost_;
  prometheus::Family<prometheus::Counter>& energy_;
  prometheus::Family<prometheus::Counter>& shadow_cost_;
  prometheus::Family<prometheus::Counter>& cache_saved_;
  prometheus::Family<prometheus::Counter>& cache_requests_;
  prometheus::Counter& reloads_ok_;
  prometheus::Counter& reloads_error_;
};

}  // namespace tollgate
