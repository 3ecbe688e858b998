// The in-memory response cache: answers of deterministic requests, keyed by CacheKey().
//
// A sharded LRU charged in bytes: each entry costs its key, its chunks (texts and their string
// and heap overhead) and a fixed overhead (EntryChargeBytes). The byte budget is split evenly
// across the shards; inserting past a shard's budget evicts that shard's least recently used
// entries. Every entry lives at most `ttl`; an expired entry is a miss and is removed when met.
// Entries larger than `max_entry_bytes` (or than a shard's budget) are not stored, nor are answers
// without a finish reason (errors, cut streams).
//
// Values are immutable and shared: a hit hands out the stored std::shared_ptr and copies no text,
// and an entry evicted while a reader holds it stays alive until the reader lets go.
//
// Example:
//   auto cache = NewResponseCache({.capacity_bytes = 256 << 20});
//   if (auto hit = cache->Lookup(key)) { ...replay *hit... }
//   else { ...call the backend...; cache->Insert(key, std::move(response)); }
//
// Thread-safe: has internal synchronization (one absl::Mutex per shard) and may be used from any
// number of threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

// A finished answer as the backend gave it.
struct CachedResponse {
  // The streamed deltas in order, with their original boundaries; a unary answer is one chunk.
  std::vector<std::string> chunks;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  v1::Usage usage;
  v1::Cost cost;  // what the backend charged: a hit saves this much
  absl::Time stored;
};

struct ResponseCacheOptions {
  uint64_t capacity_bytes = 64 << 20;   // split evenly across the shards
  uint64_t max_entry_bytes = 1 << 20;   // larger entries are not stored
  absl::Duration ttl = absl::Hours(1);  // from Insert
  int shards = 16;                      // at least 1
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

struct ResponseCacheStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;  // charged bytes, as EntryChargeBytes
  uint64_t hits = 0;
  uint64_t misses = 0;  // includes lookups that met an expired entry
  uint64_t inserts = 0;
  uint64_t rejected = 0;        // Insert refused: too big, unfinished or empty key
  uint64_t evictions_size = 0;  // removed to make room
  uint64_t evictions_ttl = 0;   // removed because expired
};

// The fixed cost charged per entry on top of its key and chunks: the LRU node, the index slot,
// the CachedResponse and its shared_ptr control block, roughly.
inline constexpr uint64_t kEntryOverheadBytes = 256;

// What one chunk costs on top of its slot in the chunk vector (sizeof(std::string), charged per
// slot of the vector's capacity): nothing for a text short enough to live inside the string, else
// its heap block (the text and its terminator rounded up to 16 bytes, plus 16 of allocator
// header). Measured by bench/cache/cache_memory_bench.cc: an answer streamed in many small chunks
// costs several times its text, and max_bytes must bound what the cache really holds.
uint64_t ChunkHeapBytes(const std::string& chunk);

// What an entry is charged: key + kEntryOverheadBytes + sizeof(std::string) per chunk slot +
// each chunk's heap block. Within a few percent of the heap it really takes (the benchmark).
uint64_t EntryChargeBytes(std::string_view key, const CachedResponse& response);

class ResponseCache {
 public:
  virtual ~ResponseCache() = default;

  // The stored answer, or nullptr on a miss. An expired entry is a miss and is removed. A hit
  // makes the entry the most recently used of its shard.
  virtual std::shared_ptr<const CachedResponse> Lookup(std::string_view key) = 0;

  // Stores `response` under `key`, replacing any entry there, and evicts least recently used
  // entries of the shard to fit. Returns whether it was stored: false if the key is empty, the
  // response is null or has no finish reason, or its charge exceeds max_entry_bytes or a shard's
  // budget (an entry already under `key` is then left as it was).
  virtual bool Insert(std::string key, std::shared_ptr<const CachedResponse> response) = 0;

  virtual void Erase(std::string_view key) = 0;

  // A snapshot; under concurrent use the fields are each exact but need not be from one instant.
  virtual ResponseCacheStats Stats() const = 0;
};

std::unique_ptr<ResponseCache> NewResponseCache(ResponseCacheOptions options);

}  // namespace tollgate
