#include "cache/redis_metrics.h"

#include "prometheus/family.h"

namespace tollgate {
namespace {

constexpr std::array<const char*, 6> kOpNames = {"connect",     "disconnect", "timeout",
                                                 "unavailable", "reply",      "decode"};

}  // namespace

RedisMetrics::RedisMetrics(prometheus::Registry& registry, const std::string& client)
    : up_(prometheus::BuildGauge()
              .Name("tollgate_redis_up")
              .Help("1 while the connection to Redis is up (connected and authenticated), else 0.")
              .Register(registry)
              .Add({{"client", client}})) {
  static_assert(kOpNames.size() == kOps);
  auto& errors = prometheus::BuildCounter()
                     .Name("tollgate_redis_errors_total")
                     .Help(
                         "Redis failures by operation: connect, disconnect, timeout, "
                         "unavailable (refused while down or queue full), reply (error reply), "
                         "decode (stored value unreadable).")
                     .Register(registry);
  for (size_t i = 0; i < kOps; ++i)
    errors_[i] = &errors.Add({{"client", client}, {"op", kOpNames[i]}});
}

}  // namespace tollgate
