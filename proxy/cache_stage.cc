#include "proxy/cache_stage.h"

#include <utility>

namespace tollgate {

std::shared_ptr<CacheStage> CacheStage::Create(const CacheOptions& options,
                                               RedisCacheTier* shared) {
  std::shared_ptr<CacheStage> stage(new CacheStage());
  stage->options_ = options;
  stage->memory_ = NewResponseCache({.capacity_bytes = options.max_bytes,
                                     .max_entry_bytes = options.max_entry_bytes,
                                     .ttl = options.ttl});
  stage->coalescer_ = NewCoalescer();
  stage->shared_ = shared;
  return stage;
}

void CacheStage::Store(const std::string& key,
                       std::shared_ptr<const CachedResponse> response) const {
  if (shared_ != nullptr) shared_->Put(key, *response);
  memory_->Insert(key, std::move(response));
}

void CacheGauges::Set(std::shared_ptr<const CacheStage> stage) {
  absl::MutexLock lock(&mu_);
  if (stage_ == stage) return;
  if (stage_ != nullptr) {
    const ResponseCacheStats stats = stage_->memory().Stats();
    earlier_size_evictions_ += stats.evictions_size;
    earlier_ttl_evictions_ += stats.evictions_ttl;
  }
  stage_ = std::move(stage);
}

std::vector<prometheus::MetricFamily> CacheGauges::Collect() const {
  ResponseCacheStats stats;
  uint64_t size_evictions = 0, ttl_evictions = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stage_ != nullptr) stats = stage_->memory().Stats();
    size_evictions = earlier_size_evictions_ + stats.evictions_size;
    ttl_evictions = earlier_ttl_evictions_ + stats.evictions_ttl;
  }
  auto gauge = [](const char* name, const char* help, uint64_t value) {
    prometheus::MetricFamily family{name, help, prometheus::MetricType::Gauge, {}};
    family.metric.emplace_back().gauge.value = static_cast<double>(value);
    return family;
  };
  std::vector<prometheus::MetricFamily> families;
  families.push_back(gauge("tollgate_cache_bytes",
                           "Bytes the in-memory response cache holds: keys, texts and a fixed "
                           "overhead per entry.",
                           stats.bytes));
  families.push_back(
      gauge("tollgate_cache_entries", "Answers in the in-memory response cache.", stats.entries));
  prometheus::MetricFamily evictions{
      "tollgate_cache_evictions_total",
      "Answers removed from the in-memory response cache: to make room (size) or expired (ttl).",
      prometheus::MetricType::Counter,
      {}};
  for (const auto& [reason, value] : {std::pair{"size", size_evictions}, {"ttl", ttl_evictions}}) {
    prometheus::ClientMetric& metric = evictions.metric.emplace_back();
    metric.label.push_back({"reason", reason});
    metric.counter.value = static_cast<double>(value);
  }
  families.push_back(std::move(evictions));
  return families;
}

}  // namespace tollgate
