// The Prometheus series of a Redis connection, declared in one place.
//
//   RedisMetrics cache_redis_metrics(registry, "cache");  // once per RedisClient, at start-up
//   auto client = NewRedisClient(options, &cache_redis_metrics);
//
//   tollgate_redis_up            gauge    1 while the connection is up (connected, AUTH and SELECT
//                                         done), else 0
//   tollgate_redis_errors_total  counter  failures by `op`:
//       connect      a connection attempt failed (refused, timed out, AUTH or SELECT refused)
//       disconnect   an established connection broke (closed, reset, protocol error, unresponsive)
//       timeout      a command got no reply within the command timeout
//       unavailable  a command was refused at once: the connection was down or the queue full
//       reply        Redis answered with an error reply (WRONGTYPE, NOSCRIPT, a script's error)
//       decode       a stored value did not decode (the cache tier's malformed entries)
//
// Both families carry a `client` label naming the connection ("cache", "budgets"); its values come
// from code, and `op` is the fixed set above, so cardinality is bounded. Several RedisMetrics may
// share a registry as long as their client names differ.
//
// Thread safety: safe from any thread. The registry must outlive it.
#pragma once

#include <array>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace tollgate {

enum class RedisErrorOp { kConnect, kDisconnect, kTimeout, kUnavailable, kReply, kDecode };

class RedisMetrics {
 public:
  RedisMetrics(prometheus::Registry& registry, const std::string& client);

  void SetUp(bool up) { up_.Set(up ? 1 : 0); }
  void CountError(RedisErrorOp op) { errors_[static_cast<size_t>(op)]->Increment(); }

 private:
  static constexpr size_t kOps = static_cast<size_t>(RedisErrorOp::kDecode) + 1;

  prometheus::Gauge& up_;
  std::array<prometheus::Counter*, kOps> errors_;
};

}  // namespace tollgate
