// The response cache's shared second tier: finished answers in Redis, seen by every replica.
//
// The in-memory ResponseCache is the first tier. On its miss, the pipeline asks this tier; on a hit
// here it replays the answer (and may insert it into the first tier). A new answer is stored in
// both. Keys are the same CacheKey() strings, stored under `key_prefix`; every entry expires `ttl`
// after it was stored (SET ... PX).
//
// Values are EncodeCachedResponse's framed binary format: the magic "TGCE", a format version byte,
// a 4-byte little-endian payload length, then a tollgate.v1.CacheEntry message. A value that does
// not decode whole — foreign bytes, a truncated value, a version this build does not know, a
// payload that does not parse or names no finish reason — is never served: Get reports a miss and
// counts it (stats.decode_errors, tollgate_redis_errors_total{op="decode"}). The bad value is left
// to expire rather than deleted, so replicas of two versions during a rollout do not erase each
// other's entries.
//
// The tier never makes a request wait for Redis longer than the client's command_timeout: a Redis
// failure, error reply or timeout is a miss (Get) or a lost store (Put), counted in stats.errors.
//
// Example:
//   auto tier = NewRedisCacheTier(redis.get(), {.ttl = absl::Hours(1)});
//   tier->Get(key, [](std::shared_ptr<const CachedResponse> hit) {
//     // on the Redis I/O thread: hand over to the request's own thread, then replay or call
//   });
//   ...
//   tier->Put(key, *response);  // fire and forget
//
// Thread safety: Get, Put and Stats may be called from any thread. Get's callback runs exactly
// once, on the Redis client's I/O thread (see RedisClient), and must not block. The client must
// outlive the tier; callbacks still in flight when the tier is destroyed run normally.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cache/redis_client.h"
#include "cache/response_cache.h"

namespace tollgate {

struct RedisCacheTierOptions {
  std::string key_prefix = "tollgate:cache:";
  absl::Duration ttl = absl::Hours(1);  // per entry, from Put; rounded down to milliseconds, >= 1
  uint64_t max_entry_bytes = 1 << 20;   // encoded size; larger answers are not stored
  RedisMetrics* metrics = nullptr;      // optional: counts op="decode"; must outlive the tier
};

struct RedisCacheTierStats {
  uint64_t hits = 0;
  uint64_t misses = 0;         // every Get that did not hit, whatever the reason
  uint64_t errors = 0;         // Redis failures, timeouts and error replies (Get and Put)
  uint64_t decode_errors = 0;  // stored values that did not decode (also misses)
  uint64_t puts = 0;           // SETs sent
  uint64_t rejected = 0;       // Puts refused: empty key, no finish reason, or too big
};

class RedisCacheTier {
 public:
  using GetCallback = std::function<void(std::shared_ptr<const CachedResponse>)>;

  virtual ~RedisCacheTier() = default;

  // Looks `key` up and calls `done` exactly once with the answer, or nullptr on a miss (absent,
  // undecodable, or Redis failing or too slow).
  virtual void Get(const std::string& key, GetCallback done) = 0;

  // Stores `response` under `key` for ttl, without waiting. Returns whether it was sent: false for
  // an empty key, an unfinished answer (no finish reason) or one whose encoding exceeds
  // max_entry_bytes.
  virtual bool Put(const std::string& key, const CachedResponse& response) = 0;

  // A snapshot; the fields are each exact but need not be from one instant.
  virtual RedisCacheTierStats Stats() const = 0;
};

// REQUIRES: client != nullptr, and it outlives the tier.
std::unique_ptr<RedisCacheTier> NewRedisCacheTier(RedisClient* client,
                                                  RedisCacheTierOptions options);

// The stored format (see above).
inline constexpr uint8_t kCacheEntryFormatVersion = 1;
std::string EncodeCachedResponse(const CachedResponse& response);

// DATA_LOSS naming the defect for anything but a whole value of this format version.
absl::StatusOr<CachedResponse> DecodeCachedResponse(std::string_view value);

}  // namespace tollgate
