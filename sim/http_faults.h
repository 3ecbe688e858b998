// Fault and usage knobs of tollgate-sim's HTTP API: defaults from flags, overridden per request by
// x-sim-* headers, so tests of clients and of Tollgate's HTTP backends can provoke each failure.
//
//   x-sim-fault: 429 | 500 | 503 | reset-after=N | malformed-chunk | no-usage | none
//                (comma-separated; when present it replaces the flag defaults for those faults)
//   x-sim-first-byte-delay-ms: N     delay the response headers by N ms
//   x-sim-cache-read: N              report N prompt tokens as prompt-cache reads
//   x-sim-reasoning: N               report N output tokens as reasoning (OpenAI endpoints)
//
// Status-code faults from flags are deterministic: with rate r, request n (counting from 1) fails
// when floor(n·r) > floor((n−1)·r), so rate 0.5 fails every 2nd request and 1 fails all.
// FaultPlanner is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/http/server/http_server.h"

namespace tollgate::sim {

struct FaultDefaults {
  double rate_429 = 0;  // each in [0, 1]
  double rate_500 = 0;
  double rate_503 = 0;
  std::optional<uint32_t> reset_after_tokens;  // abort the connection after N token chunks
  absl::Duration first_byte_delay = absl::ZeroDuration();
  bool omit_usage = false;
};

// What happens to one request.
struct RequestFaults {
  int status = 0;  // 429, 500 or 503 answered instead of the real response; 0 = none
  std::optional<uint32_t> reset_after_tokens;
  bool malformed_chunk = false;  // one chunk whose data is not JSON (streams; a cut body otherwise)
  bool omit_usage = false;
  absl::Duration first_byte_delay = absl::ZeroDuration();
  uint64_t cache_read_tokens = 0;
  uint64_t reasoning_tokens = 0;
};

// True when request `n` (from 1) is one of the `rate` share that fails.
bool RateFires(double rate, uint64_t n);

class FaultPlanner {
 public:
  explicit FaultPlanner(FaultDefaults defaults) : defaults_(defaults) {}

  // The faults for `request`; INVALID_ARGUMENT naming the header for a bad x-sim-* value.
  absl::StatusOr<RequestFaults> ForRequest(const http::Request& request);

 private:
  const FaultDefaults defaults_;
  std::atomic<uint64_t> requests_{0};  // requests whose status fault came from the flags
};

}  // namespace tollgate::sim
