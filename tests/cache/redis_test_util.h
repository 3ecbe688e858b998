// Waiting and metric reading shared by the Redis tests.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cache/redis_client.h"
#include "cache/redis_reply.h"
#include "prometheus/registry.h"

namespace tollgate {

// gtest prints replies in failure messages with this.
inline void PrintTo(const RedisReply& reply, std::ostream* out) { *out << reply.DebugString(); }

// How long a test waits for something that normally takes milliseconds, on a loaded machine.
inline constexpr absl::Duration kPatience = absl::Seconds(20);

// Client options for a test server on `port`, with timeouts a loaded machine meets.
inline RedisOptions TestRedisOptions(int port) {
  RedisOptions options;
  options.port = port;
  options.connect_timeout = absl::Seconds(2);
  options.command_timeout = absl::Seconds(5);
  options.reconnect_backoff = absl::Milliseconds(20);
  options.max_reconnect_backoff = absl::Milliseconds(200);
  return options;
}

// Polls `done` until it holds or `timeout` passes; returns whether it held.
inline bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = kPatience) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// The value of the sample of family `name` with labels client=`client` (and op=`op` if given);
// -1 when there is none.
inline double MetricValue(prometheus::Registry& registry, const std::string& name,
                          const std::string& client, const std::string& op) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      bool client_matches = false;
      bool op_matches = op.empty();
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        if (label.name == "client") client_matches = label.value == client;
        if (label.name == "op") op_matches = label.value == op;
      }
      if (client_matches && op_matches) {
        return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                              : metric.gauge.value;
      }
    }
  }
  return -1;
}

inline double CounterValue(prometheus::Registry& registry, const std::string& name,
                           const std::string& op, const std::string& client = "test") {
  return MetricValue(registry, name, client, op);
}

inline double GaugeValue(prometheus::Registry& registry, const std::string& name,
                         const std::string& client = "test") {
  return MetricValue(registry, name, client, "");
}

}  // namespace tollgate
