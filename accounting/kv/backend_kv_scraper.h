// The backend's own view of its KV cache: vLLM's usage ratio, read from its Prometheus /metrics.
//
//   absl::StatusOr<double> usage = ParseBackendKvUsage(metrics_text);  // 0..1
//
//   BackendKvPoller poller(fetch_metrics_text, {.backend = "gpu-a", .metrics = &kv_metrics});
//   poller.Start();  // every `interval`: fetch, parse, set the gauge
//
// ParseBackendKvUsage reads the text exposition format (version 0.0.4; OpenMetrics text too) and
// takes `vllm:kv_cache_usage_perc`, or, when no sample of it is usable, the older
// `vllm:gpu_cache_usage_perc` (both 0..1 despite the name). vLLM exports one series per
// model_name (and engine, when it runs several); the result is their maximum: the question asked
// of it is whether any engine is about to run out of blocks, which an average hides and a sum of
// ratios does not answer. Samples: values above 1 count as 1; NaN, ±Inf and negative values,
// and lines that do not parse (bad labels, a missing or trailing-garbage value, truncation) are
// skipped. Lines of other metrics are not examined past their name.
//   OK                a usable sample was found;
//   INVALID_ARGUMENT  samples of the metric were present but none was usable (the first problem
//                     is named);
//   NOT_FOUND         neither metric has a sample.
//
// BackendKvPoller: while the fetch or the parse fails, the series
// tollgate_backend_kv_cache_usage_ratio{backend} is removed rather than set to NaN, so that
// aggregations over backends and alert rules see "unknown" rather than a poisoned value, and the
// series goes stale in Prometheus; it comes back with the first good poll. last_status() says why.
//
// Thread safety: ParseBackendKvUsage is pure. BackendKvPoller's PollOnce, usage and last_status
// may be called from any thread; Start, Stop and the destructor by its owner. `fetch` runs on the
// poller's thread (or PollOnce's caller) one call at a time and must return within about `interval`
// (give the HTTP request a deadline): Stop waits for it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accounting/kv/kv_metrics.h"

namespace tollgate {

// The backend's KV-cache usage, 0..1, from the text of its /metrics (see above).
absl::StatusOr<double> ParseBackendKvUsage(absl::string_view exposition);

struct BackendKvPollerOptions {
  std::string backend;                         // the series' label
  absl::Duration interval = absl::Seconds(5);  // between the end of one poll and the next
  KvMetrics* metrics = nullptr;                // null: no series
};

class BackendKvPoller {
 public:
  // The body of the backend's /metrics, or why it could not be had.
  using Fetch = std::function<absl::StatusOr<std::string>()>;

  BackendKvPoller(Fetch fetch, BackendKvPollerOptions options);
  // Stops, and removes the series.
  ~BackendKvPoller();
  BackendKvPoller(const BackendKvPoller&) = delete;
  BackendKvPoller& operator=(const BackendKvPoller&) = delete;

  // Starts the thread: a poll at once, then one every interval. REQUIRES: called at most once.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the thread after its poll in progress, if any. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // One poll, on the caller's thread: fetches, parses and sets or removes the series. Returns
  // the outcome, prefixed with the backend's name when it is an error.
  absl::Status PollOnce() ABSL_LOCKS_EXCLUDED(mu_, poll_mu_);

  // The last poll's figure (nullopt before the first and after a failed one) and outcome.
  std::optional<double> usage() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status last_status() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  const Fetch fetch_;
  const BackendKvPollerOptions options_;

  absl::Mutex poll_mu_;  // one poll at a time, so results land in the order fetched
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(poll_mu_);
  prometheus::Gauge* series_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::optional<double> usage_ ABSL_GUARDED_BY(mu_);
  absl::Status last_status_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("backend /metrics not polled yet");
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tollgate
