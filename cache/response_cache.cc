#include "cache/response_cache.h"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <list>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace tollgate {

uint64_t ChunkHeapBytes(const std::string& chunk) {
  // libstdc++ keeps up to 15 characters inside the string object itself.
  constexpr size_t kInlineChars = 15;
  if (chunk.size() <= kInlineChars) return 0;
  return (chunk.size() + 1 + 15) / 16 * 16 + 16;
}

uint64_t EntryChargeBytes(std::string_view key, const CachedResponse& response) {
  uint64_t bytes =
      key.size() + kEntryOverheadBytes + response.chunks.capacity() * sizeof(std::string);
  for (const std::string& chunk : response.chunks) bytes += ChunkHeapBytes(chunk);
  return bytes;
}

namespace {

absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

struct EvictionCounters {
  std::atomic<uint64_t> size{0};
  std::atomic<uint64_t> ttl{0};
};

// One LRU list and its index under one mutex.
class Shard {
 public:
  Shard(uint64_t capacity_bytes, EvictionCounters* evictions)
      : capacity_bytes_(capacity_bytes), evictions_(evictions) {}

  std::shared_ptr<const CachedResponse> Lookup(std::string_view key, absl::Time now) {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(ToAbsl(key));
    if (it == index_.end()) return nullptr;
    Node node = it->second;
    if (now >= node->expires) {
      Remove(node, Removal::kTtl);
      return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, node);  // iterators stay valid across splice
    return node->response;
  }

  void Insert(std::string key, std::shared_ptr<const CachedResponse> response,
              uint64_t charge_bytes, absl::Time now, absl::Time expires) {
    absl::MutexLock lock(&mu_);
    if (auto it = index_.find(ToAbsl(key)); it != index_.end()) {
      Remove(it->second, Removal::kReplaced);
    }
    lru_.push_front(Entry{std::move(key), std::move(response), charge_bytes, expires});
    // List nodes never move, so the index may view the key the node owns.
    index_.emplace(absl::string_view(lru_.front().key), lru_.begin());
    usage_bytes_ += charge_bytes;
    // The new entry fits a shard on its own (checked by the caller): evict from the cold end.
    while (usage_bytes_ > capacity_bytes_) {
      Node victim = std::prev(lru_.end());
      Remove(victim, now >= victim->expires ? Removal::kTtl : Removal::kSize);
    }
  }

  void Erase(std::string_view key) {
    absl::MutexLock lock(&mu_);
    if (auto it = index_.find(ToAbsl(key)); it != index_.end()) {
      Remove(it->second, Removal::kReplaced);
    }
  }

  void AddTo(ResponseCacheStats& stats) const {
    absl::MutexLock lock(&mu_);
    stats.entries += lru_.size();
    stats.bytes += usage_bytes_;
  }

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const CachedResponse> response;
    uint64_t charge_bytes;
    absl::Time expires;
  };
  using Node = std::list<Entry>::iterator;
  enum class Removal { kReplaced, kSize, kTtl };

  void Remove(Node node, Removal why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (why == Removal::kSize) evictions_->size.fetch_add(1, std::memory_order_relaxed);
    if (why == Removal::kTtl) evictions_->ttl.fetch_add(1, std::memory_order_relaxed);
    usage_bytes_ -= node->charge_bytes;
    index_.erase(absl::string_view(node->key));  // before the node, whose key the index views
    lru_.erase(node);
  }

  const uint64_t capacity_bytes_;
  EvictionCounters* const evictions_;
  mutable absl::Mutex mu_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  absl::flat_hash_map<absl::string_view, Node> index_ ABSL_GUARDED_BY(mu_);
  uint64_t usage_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

class ShardedResponseCache final : public ResponseCache {
 public:
  explicit ShardedResponseCache(ResponseCacheOptions options)
      : options_(std::move(options)),
        shard_capacity_bytes_(options_.capacity_bytes /
                              static_cast<uint64_t>(std::max(options_.shards, 1))),
        max_entry_bytes_(std::min(options_.max_entry_bytes, shard_capacity_bytes_)) {
    if (!options_.clock) options_.clock = [] { return absl::Now(); };
    const int shards = std::max(options_.shards, 1);
    shards_.reserve(shards);
    for (int i = 0; i < shards; ++i) {
      shards_.push_back(std::make_unique<Shard>(shard_capacity_bytes_, &evictions_));
    }
  }

  std::shared_ptr<const CachedResponse> Lookup(std::string_view key) override {
    std::shared_ptr<const CachedResponse> hit = ShardFor(key).Lookup(key, options_.clock());
    (hit ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
    return hit;
  }

  bool Insert(std::string key, std::shared_ptr<const CachedResponse> response) override {
    if (key.empty() || response == nullptr ||
        response->finish_reason == v1::FINISH_REASON_UNSPECIFIED) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    const uint64_t charge_bytes = EntryChargeBytes(key, *response);
    if (charge_bytes > max_entry_bytes_) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    const absl::Time now = options_.clock();
    Shard& shard = ShardFor(key);
    shard.Insert(std::move(key), std::move(response), charge_bytes, now, now + options_.ttl);
    inserts_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void Erase(std::string_view key) override { ShardFor(key).Erase(key); }

  ResponseCacheStats Stats() const override {
    ResponseCacheStats stats;
    for (const auto& shard : shards_) shard->AddTo(stats);
    stats.hits = hits_.load(std::memory_order_relaxed);
    stats.misses = misses_.load(std::memory_order_relaxed);
    stats.inserts = inserts_.load(std::memory_order_relaxed);
    stats.rejected = rejected_.load(std::memory_order_relaxed);
    stats.evictions_size = evictions_.size.load(std::memory_order_relaxed);
    stats.evictions_ttl = evictions_.ttl.load(std::memory_order_relaxed);
    return stats;
  }

 private:
  Shard& ShardFor(std::string_view key) {
    // The high bits pick the shard: the shard's own table probes with the low ones.
    const uint64_t hash = absl::Hash<absl::string_view>{}(ToAbsl(key));
    return *shards_[(hash >> 32) % shards_.size()];
  }

  ResponseCacheOptions options_;
  const uint64_t shard_capacity_bytes_;
  const uint64_t max_entry_bytes_;
  std::vector<std::unique_ptr<Shard>> shards_;
  EvictionCounters evictions_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> inserts_{0};
  std::atomic<uint64_t> rejected_{0};
};

}  // namespace

std::unique_ptr<ResponseCache> NewResponseCache(ResponseCacheOptions options) {
  return std::make_unique<ShardedResponseCache>(std::move(options));
}

}  // namespace tollgate
