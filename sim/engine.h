// SimEngine: a simulated model server with continuous batching on a roofline latency model.
//
//   SimEngine engine({.gpu = *FindGpu("a100-80gb"), .time_scale = 1.0});
//   SimEngine::RequestId id = engine.Submit(request, ShapeForModel(request.model()),
//       {.on_chunk = [](v1::GenerateResponse chunk) { ... },
//        .on_done = [](absl::Status status, v1::GenerateResponse last) { ... }});
//   engine.Cancel(id);
//
// With time_scale > 0 one engine thread runs steps. A step admits waiting requests (up to
// max_running_requests), then every running request emits one token. Its duration is the sum of
// the admitted requests' prefill times plus one decode step over all running requests, times
// time_scale; steps follow each other on absolute deadlines, so the schedule does not drift.
// Requests of different models may share a step: the step reads the largest model's weights once
// plus every request's own KV cache (one GPU serving several models as one batch).
// Embedding requests join the same queue, cost only their prefill and finish at the end of the
// step that admits them.
// With time_scale == 0 nothing waits: Submit and SubmitEmbed answer on the calling thread.
//
// Thread-safe: every public method may be called from any thread. Callbacks run on the engine
// thread (or the calling thread when answering synchronously) with no engine lock held; for one
// request they never run concurrently. They must not block and must not call Submit (Cancel is
// allowed).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sim/clock.h"
#include "sim/latency_model.h"
#include "sim/presets.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::sim {

struct EngineOptions {
  GpuSpec gpu;  // e.g. *FindGpu("a100-80gb")
  uint32_t gpu_count = 1;
  double time_scale = 1.0;  // multiplies every delay; 0 = instant
  double mfu = 0.5;
  uint32_t max_running_requests = 256;
  Clock* clock = nullptr;  // nullptr: RealClock(). Not owned; must outlive the engine.
};

class SimEngine {
 public:
  struct Callbacks {
    // One generated token as a text delta (GenerateResponse.text). The first chunk also carries
    // usage.input_tokens with usage.source = USAGE_SOURCE_REPORTED.
    std::function<void(v1::GenerateResponse chunk)> on_chunk;
    // Exactly once, last. OK: `last` has empty text, the finish_reason and the full usage (input,
    // output, source REPORTED). Errors: INVALID_ARGUMENT from ValidateRequest (called from within
    // Submit), CANCELLED after Cancel, UNAVAILABLE when the engine shuts down with the request
    // pending. On CANCELLED and UNAVAILABLE `last.usage` holds what was spent so far: the prompt
    // once the request was admitted to a step, and the tokens already emitted.
    std::function<void(absl::Status status, v1::GenerateResponse last)> on_done;
  };
  using RequestId = uint64_t;

  // REQUIRES: gpu_count >= 1, 0 < mfu <= 1, time_scale >= 0, max_running_requests >= 1.
  explicit SimEngine(EngineOptions options);
  // Fails pending requests with UNAVAILABLE and joins the engine thread.
  ~SimEngine();
  SimEngine(const SimEngine&) = delete;
  SimEngine& operator=(const SimEngine&) = delete;

  // With time_scale == 0 the whole response is delivered on the calling thread before Submit
  // returns (so Cancel cannot reach it). Otherwise callbacks may start before Submit returns.
  RequestId Submit(const v1::GenerateRequest& request, const ModelShape& shape, Callbacks cb);

  // No-op for unknown or finished ids. No on_chunk follows the CANCELLED on_done, which the engine
  // thread delivers promptly (it wakes from its step sleep).
  void Cancel(RequestId id);

  // Latency: the prefill of all inputs' tokens (time-scaled). usage.input_tokens is their sum,
  // source REPORTED. on_done exactly once (synchronously when time_scale == 0 or the request is
  // invalid); INVALID_ARGUMENT from ValidateEmbedRequest, UNAVAILABLE on shutdown.
  void SubmitEmbed(const v1::EmbedRequest& request, const ModelShape& shape,
                   std::function<void(absl::StatusOr<v1::EmbedResponse>)> on_done);

  // Snapshot for metrics and tests. prompt_tokens_total counts prefilled tokens of generate and
  // embed requests; generation_tokens_total counts emitted tokens. kv_cache_bytes is the KV cache
  // held by running requests: (prompt + emitted) tokens rounded up to whole kKvBlockTokens blocks,
  // times the model's bytes per token. requests_total counts the generate and embed requests
  // admitted.
  struct Stats {
    uint32_t running;
    uint32_t waiting;
    uint64_t prompt_tokens_total;
    uint64_t generation_tokens_total;
    uint64_t kv_cache_bytes = 0;
    uint64_t requests_total = 0;
  };
  static constexpr uint64_t kKvBlockTokens = 16;
  Stats GetStats() const;

  // True on the engine's own thread (where time-scaled callbacks run). An engine cannot be
  // destroyed there: its destructor joins that thread.
  bool IsEngineThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Request;  // one submitted generate or embed request; see engine_request.h
  struct Outbox;   // callbacks collected under the lock, delivered after it is released

  RequestId NextIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunSynchronously(std::unique_ptr<Request> request) ABSL_LOCKS_EXCLUDED(mu_);
  void Enqueue(std::unique_ptr<Request> request) ABSL_LOCKS_EXCLUDED(mu_);

  // The engine thread.
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Admits waiting requests; returns the step's duration in unscaled seconds.
  double StartStepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double DecodeSecondsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sleeps until `deadline`, delivering cancellations meanwhile; false when shutting down.
  bool SleepUntilStepEnd(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  void EndStepLocked(Outbox& outbox) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EngineOptions options_;
  const LatencyModel latency_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  RequestId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::unique_ptr<Request>> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Request>> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Request>> embedding_ ABSL_GUARDED_BY(mu_);
  // Removed by Cancel; the engine thread delivers their CANCELLED.
  std::vector<std::unique_ptr<Request>> cancelled_ ABSL_GUARDED_BY(mu_);
  uint64_t prompt_tokens_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t requests_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_tokens_total_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread thread_;  // only when time_scale > 0
};

// One submitted request's id, for a front end whose client may cancel before Submit has returned
// the id: that cancel is remembered and applied once the id is known. Thread-safe.
class EngineRequestHandle {
 public:
  explicit EngineRequestHandle(SimEngine* engine) : engine_(engine) {}
  // After Submit: records the id and applies a cancel that came first.
  void Submitted(SimEngine::RequestId id) ABSL_LOCKS_EXCLUDED(mu_);
  // Cancels the request now, or as soon as it is submitted.
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  SimEngine* const engine_;
  absl::Mutex mu_;
  std::optional<SimEngine::RequestId> id_ ABSL_GUARDED_BY(mu_);
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tollgate::sim
