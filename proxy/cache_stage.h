// The response cache as the pipeline uses it: the in-memory tier, an optional shared second tier
// (Redis, cache/redis_tier.h), the coalescer of identical requests in flight, and the cache's
// gauges.
//
//   auto stage = CacheStage::Create(config.cache, redis_tier.get());
//   stage->memory().Lookup(key);  ...  stage->Store(key, std::move(answer));
//   gauges->Set(stage);  // a CacheGauges registered with the exposer once
//
// One stage serves every config generation while the cache options stay the same (the server
// builds a new, empty one when they change). Requests in flight keep the stage they started with.
//
// Thread-safe: every member may be used from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cache/coalescer.h"
#include "cache/redis_tier.h"
#include "cache/response_cache.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "proxy/config/config.h"

namespace tollgate {

class CacheStage {
 public:
  // `shared` may be null (no second tier); it must outlive the stage.
  static std::shared_ptr<CacheStage> Create(const CacheOptions& options, RedisCacheTier* shared);

  const CacheOptions& options() const { return options_; }
  ResponseCache& memory() const { return *memory_; }
  RedisCacheTier* shared() const { return shared_; }
  Coalescer& coalescer() const { return *coalescer_; }

  // Stores a finished answer in the in-memory tier and the shared one.
  void Store(const std::string& key, std::shared_ptr<const CachedResponse> response) const;

 private:
  CacheStage() = default;

  CacheOptions options_;
  std::unique_ptr<ResponseCache> memory_;
  std::unique_ptr<Coalescer> coalescer_;
  RedisCacheTier* shared_ = nullptr;
};

// tollgate_cache_bytes, tollgate_cache_entries and tollgate_cache_evictions_total{reason="size"|
// "ttl"}, read from the current stage's in-memory tier when scraped. Evictions of stages replaced
// by Set are kept, so the counter never goes down.
class CacheGauges final : public prometheus::Collectable {
 public:
  void Set(std::shared_ptr<const CacheStage> stage) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<prometheus::MetricFamily> Collect() const override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const CacheStage> stage_ ABSL_GUARDED_BY(mu_);  // null: cache disabled
  uint64_t earlier_size_evictions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t earlier_ttl_evictions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tollgate
