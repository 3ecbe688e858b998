#include "accounting/metrics.h"

#include <utility>

#include "accounting/pricing.h"

namespace tollgate {
namespace {

using prometheus::Histogram;

// OpenTelemetry GenAI semantic conventions: gen_ai.client.operation.duration.
const Histogram::BucketBoundaries& DurationBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
  return *b;
}

// OpenTelemetry GenAI semantic conventions: gen_ai.server.time_to_first_token.
const Histogram::BucketBoundaries& TtftBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0};
  return *b;
}

// Tollgate's own time is measured in microseconds.
const Histogram::BucketBoundaries& OverheadBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1};
  return *b;
}

// From a fraction of a cent-per-thousand requests to a few dollars per request.
const Histogram::BucketBoundaries& CostBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{1e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3,
                                                         1e-2, 5e-2, 0.1,  0.5,  1,    5};
  return *b;
}

constexpr std::array<absl::string_view, MetricsTable::kNumCodes> kCodeNames = {
    "ok",        "cancelled",      "unknown",           "invalid_argument",   "deadline_exceeded",
    "not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
    "aborted",   "out_of_range",   "unimplemented",     "internal",           "unavailable",
    "data_loss", "unauthenticated"};

std::vector<std::string> WithOther(const std::vector<std::string>& names) {
  std::vector<std::string> out = names;
  out.emplace_back(kOtherLabel);
  return out;
}

absl::flat_hash_map<std::string, size_t> IndexOf(const std::vector<std::string>& names) {
  absl::flat_hash_map<std::string, size_t> index;
  for (size_t i = 0; i < names.size(); ++i) index.emplace(names[i], i);
  return index;
}

size_t Lookup(const absl::flat_hash_map<std::string, size_t>& index, absl::string_view name) {
  auto it = index.find(name);
  return it != index.end() ? it->second : index.size() - 1;  // "other" is last
}

void AddIfPositive(prometheus::Counter* counter, uint64_t value) {
  if (value > 0) counter->Increment(static_cast<double>(value));
}

}  // namespace

absl::string_view StatusLabel(absl::StatusCode code) {
  const auto i = static_cast<size_t>(code);
  return i < kCodeNames.size() ? kCodeNames[i] : kCodeNames[2];  // "unknown"
}

std::string_view CacheStatusLabel(v1::CacheStatus status) {
  switch (status) {
    case v1::CACHE_STATUS_MISS:
      return "miss";
    case v1::CACHE_STATUS_HIT:
      return "hit";
    case v1::CACHE_STATUS_BYPASS:
      return "bypass";
    case v1::CACHE_STATUS_COALESCED:
      return "coalesced";
    default:
      return "";
  }
}

std::string_view UsageSourceLabel(v1::UsageSource source) {
  switch (source) {
    case v1::USAGE_SOURCE_REPORTED:
      return "reported";
    case v1::USAGE_SOURCE_COUNTED:
      return "counted";
    case v1::USAGE_SOURCE_ESTIMATED:
      return "estimated";
    default:
      return "";
  }
}

size_t MetricsTable::TenantIndex(absl::string_view tenant) const {
  return Lookup(tenant_index_, tenant);
}

size_t MetricsTable::ModelIndex(absl::string_view model) const {
  return Lookup(model_index_, model);
}

void MetricsTable::Record(size_t tenant_index, size_t model_index,
                          const RequestOutcome& outcome) const {
  const Cell& cell = cells_[tenant_index * num_models_ + model_index];
  const auto code = static_cast<size_t>(outcome.code);
  cell.requests[code < kNumCodes ? code : 2]->Increment();

  const v1::Usage& u = outcome.usage;
  const uint64_t cached = std::min(u.cached_input_tokens(), u.input_tokens());
  const uint64_t reasoning = std::min(u.reasoning_tokens(), u.output_tokens());
  AddIfPositive(cell.input_tokens, u.input_tokens() - cached);
  AddIfPositive(cell.cached_input_tokens, cached);
  const uint64_t output = u.output_tokens() - reasoning;
  AddIfPositive(cell.output_tokens, output);
  AddIfPositive(cell.reasoning_tokens, reasoning);
  if (outcome.cost_nano_usd > 0) cell.cost_usd->Increment(NanoUsdToUsd(outcome.cost_nano_usd));
  cell.request_cost_usd->Observe(NanoUsdToUsd(outcome.cost_nano_usd));

  if (outcome.saved_nano_usd > 0) {
    cell.cache_saved_usd->Increment(NanoUsdToUsd(outcome.saved_nano_usd));
  }

  const PerModel& m = per_model_[model_index];
  const int cache_result = static_cast<int>(outcome.cache_status) - 1;
  if (cache_result >= 0 && cache_result < static_cast<int>(m.cache_requests.size())) {
    m.cache_requests[cache_result]->Increment();
  }
  m.duration->Observe(absl::ToDoubleSeconds(outcome.duration));
  m.overhead->Observe(absl::ToDoubleSeconds(outcome.overhead));
  if (outcome.time_to_first_token >= absl::ZeroDuration()) {
    m.time_to_first_token->Observe(absl::ToDoubleSeconds(outcome.time_to_first_token));
  }
}

void MetricsTable::AddStreamedOutputTokens(size_t tenant_index, size_t model_index,
                                           uint64_t tokens) const {
  AddIfPositive(cells_[tenant_index * num_models_ + model_index].streamed_output_tokens, tokens);
}

void MetricsTable::AddShadowCost(size_t plan_index, int64_t nano_usd) const {
  if (plan_index < shadow_cost_.size() && nano_usd > 0) {
    shadow_cost_[plan_index]->Increment(NanoUsdToUsd(nano_usd));
  }
}

void MetricsTable::RecordAttempt(absl::string_view backend, AttemptResult result) const {
  auto it = backends_.find(backend);
  if (it != backends_.end()) it->second.attempts[static_cast<size_t>(result)]->Increment();
}

void MetricsTable::SetEjected(absl::string_view backend, bool ejected) const {
  auto it = backends_.find(backend);
  if (it != backends_.end()) it->second.ejected->Set(ejected ? 1 : 0);
}

ProxyMetrics::ProxyMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("tollgate_requests_total")
                    .Help("Requests handled, by model, tenant and final gRPC status.")
                    .Register(registry)),
      tokens_(prometheus::BuildCounter()
                  .Name("tollgate_tokens_total")
                  .Help("Tokens charged, by type: input (uncached), cached_input, output "
                        "(non-reasoning), reasoning. The types partition the total.")
                  .Register(registry)),
      streamed_tokens_(
          prometheus::BuildCounter()
              .Name("tollgate_streamed_output_tokens_total")
              .Help("Output tokens of streams as their chunks arrive, counted with the "
                    "model's tokenizer: moves during long streams. The charged "
                    "figure is tollgate_tokens_total, added when a request ends.")
              .Register(registry)),
      cost_(prometheus::BuildCounter()
                .Name("tollgate_cost_usd_total")
                .Help("Spend in USD, by model and tenant.")
                .Register(registry)),
      request_cost_(prometheus::BuildHistogram()
                        .Name("tollgate_request_cost_usd")
                        .Help("Cost of one request in USD.")
                        .Register(registry)),
      duration_(prometheus::BuildHistogram()
                    .Name("tollgate_request_duration_seconds")
                    .Help("Time from receiving a request to its last byte, by model.")
                    .Register(registry)),
      ttft_(prometheus::BuildHistogram()
                .Name("tollgate_time_to_first_token_seconds")
                .Help("Time from receiving a request to its first generated token, by model.")
                .Register(registry)),
      overhead_(prometheus::BuildHistogram()
                    .Name("tollgate_overhead_seconds")
                    .Help("Time spent inside Tollgate per request, backend time excluded.")
                    .Register(registry)),
      attempts_(prometheus::BuildCounter()
                    .Name("tollgate_backend_attempts_total")
                    .Help("Calls to backends, by result: ok, retried (failed, another attempt "
                          "followed), failed (failed, final).")
                    .Register(registry)),
      ejected_(prometheus::BuildGauge()
                   .Name("tollgate_backend_ejected")
                   .Help("1 while a backend is ejected by passive health checking, else 0.")
                   .Register(registry)),
      gpu_idle_cost_(prometheus::BuildCounter()
                         .Name("tollgate_gpu_idle_cost_usd_total")
                         .Help("GPU-hour cost of a self-hosted backend's time with no request in "
                               "flight, in USD.")
                         .Register(registry)),
      energy_(prometheus::BuildCounter()
                  .Name("tollgate_energy_joules_total")
                  .Help("Energy of a self-hosted backend's GPUs: ended requests' and idle time's.")
                  .Register(registry)),
      shadow_cost_(prometheus::BuildCounter()
                       .Name("tollgate_shadow_cost_usd_total")
                       .Help("What the traffic would have cost under each alternative plan, USD.")
                       .Register(registry)),
      cache_saved_(prometheus::BuildCounter()
                       .Name("tollgate_cache_saved_usd_total")
                       .Help("What the backend would have charged for the answers served from the "
                             "response cache or shared with an identical request in flight, less "
                             "what those requests were charged, in USD.")
                       .Register(registry)),
      cache_requests_(prometheus::BuildCounter()
                          .Name("tollgate_cache_requests_total")
                          .Help("Cacheable requests by result: hit (served from the cache), miss "
                                "(called the backend), bypass (the client asked to skip the "
                                "cache), coalesced (shared an identical request's backend call).")
                          .Register(registry)),
      reloads_ok_(prometheus::BuildCounter()
                      .Name("tollgate_config_reloads_total")
                      .Help("Configuration reloads, by result.")
                      .Register(registry)
                      .Add({{"result", "ok"}})),
      reloads_error_(prometheus::BuildCounter()
                         .Name("tollgate_config_reloads_total")
                         .Help("Configuration reloads, by result.")
                         .Register(registry)
                         .Add({{"result", "error"}})) {}

ProxyMetrics::GpuSeries ProxyMetrics::GpuCounters(const std::string& backend) {
  absl::MutexLock lock(&mu_);
  return {&gpu_idle_cost_.Add({{"backend", backend}}), &energy_.Add({{"backend", backend}})};
}

std::shared_ptr<const MetricsTable> ProxyMetrics::BuildTable(
    const std::vector<std::string>& tenant_names, const std::vector<std::string>& model_names,
    const std::vector<std::string>& backend_names, const std::vector<std::string>& plan_names) {
  const std::vector<std::string> tenants = WithOther(tenant_names);
  const std::vector<std::string> models = WithOther(model_names);
  auto table = std::make_shared<MetricsTable>();
  table->tenant_index_ = IndexOf(tenants);
  table->model_index_ = IndexOf(models);
  table->num_models_ = models.size();

  absl::MutexLock lock(&mu_);
  table->cells_.reserve(tenants.size() * models.size());
  for (const std::string& tenant : tenants) {
    for (const std::string& model : models) {
      MetricsTable::Cell cell;
      for (size_t c = 0; c < MetricsTable::kNumCodes; ++c) {
        cell.requests[c] = &requests_.Add(
            {{"model", model}, {"tenant", tenant}, {"status", std::string(kCodeNames[c])}});
      }
      auto tokens = [&](const char* type) {
        return &tokens_.Add({{"model", model}, {"tenant", tenant}, {"type", type}});
      };
      cell.input_tokens = tokens("input");
      cell.cached_input_tokens = tokens("cached_input");
      cell.output_tokens = tokens("output");
      cell.reasoning_tokens = tokens("reasoning");
      cell.streamed_output_tokens = &streamed_tokens_.Add({{"model", model}, {"tenant", tenant}});
      cell.cost_usd = &cost_.Add({{"model", model}, {"tenant", tenant}});
      cell.request_cost_usd =
          &request_cost_.Add({{"model", model}, {"tenant", tenant}}, CostBuckets());
      cell.cache_saved_usd = &cache_saved_.Add({{"model", model}, {"tenant", tenant}});
      table->cells_.push_back(cell);
    }
  }
  for (const std::string& backend : backend_names) {
    MetricsTable::PerBackend& series = table->backends_[backend];
    constexpr std::array<const char*, 3> kResults = {"ok", "retried", "failed"};
    for (size_t r = 0; r < kResults.size(); ++r) {
      series.attempts[r] = &attempts_.Add({{"backend", backend}, {"result", kResults[r]}});
    }
    series.ejected = &ejected_.Add({{"backend", backend}});
  }
  for (const std::string& plan : plan_names) {
    table->shadow_cost_.push_back(&shadow_cost_.Add({{"plan", plan}}));
  }
  for (const std::string& model : models) {
    MetricsTable::PerModel per_model{&duration_.Add({{"model", model}}, DurationBuckets()),
                                     &ttft_.Add({{"model", model}}, TtftBuckets()),
                                     &overhead_.Add({{"model", model}}, OverheadBuckets())};
    // In CacheStatus order, from MISS.
    constexpr std::array<const char*, 4> kCacheResults = {"miss", "hit", "bypass", "coalesced"};
    for (size_t r = 0; r < kCacheResults.size(); ++r) {
      per_model.cache_requests[r] =
          &cache_requests_.Add({{"model", model}, {"result", kCacheResults[r]}});
    }
    table->per_model_.push_back(per_model);
  }
  return table;
}

void ProxyMetrics::RecordConfigReload(bool ok) { (ok ? reloads_ok_ : reloads_error_).Increment(); }

}  // namespace tollgate
