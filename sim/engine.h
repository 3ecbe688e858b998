// SimEngine: a simulated model server, batching continuously (vLLM) or per call (static), on a
// roofline latency model.
//
//   SimEngine engine({.gpu = *FindGpu("a100-80gb"), .time_scale = 1.0});
//   SimEngine::RequestId id = engine.Submit(request, ShapeForModel(request.model()),
//       {.on_chunk = [](v1::GenerateResponse chunk) { ... },
//        .on_done = [](absl::Status status, v1::GenerateResponse last) { ... }});
//   engine.Cancel(id);
//
// With time_scale > 0 one engine thread runs the schedule; with time_scale == 0 nothing waits:
// Submit, SubmitBatch and SubmitEmbed answer on the calling thread, in either mode.
//
// Continuous mode (BatchMode::kContinuous, the default). A step admits waiting requests (up to
// max_running_requests), then every running request emits one token. Its duration is the sum of
// the admitted requests' prefill times plus one decode step over all running requests, times
// time_scale; steps follow each other on absolute deadlines, so the schedule does not drift.
// Requests of different models may share a step: the step reads the largest model's weights once
// plus every request's own KV cache (one GPU serving several models as one batch).
// Embedding requests join the same queue, cost only their prefill and finish at the end of the
// step that admits them.
// KV cache (kv_capacity_bytes > 0): a generate request holds KvBytes(prompt + emitted tokens), the
// tokens rounded up to whole kKvBlockTokens blocks times the model's bytes per token. A step must
// fit every running request with the token it adds in that step. While it does not, the most
// recently admitted request is preempted as vLLM's recompute preemption does: its KV is freed, it
// goes back to the front of the waiting queue (counted in Stats::num_preemptions), and when it is
// readmitted it pays the prefill of its prompt and of the tokens it had already generated again,
// then continues with its next token (its output and usage are those of an unpreempted run). A
// waiting request is admitted only when its KV and next token fit beside the running ones; the
// queue stays FIFO. A request whose prompt and answer would not fit even alone fails
// INVALID_ARGUMENT within Submit. Embedding requests hold no KV.
//
// Static mode (BatchMode::kStatic) mirrors servers that batch per call. One call runs at a time;
// calls queue FIFO. A call is one Submit (B = 1), one SubmitBatch (B = its requests, at most
// max_static_batch) or one SubmitEmbed (B = its inputs, at most max_static_batch). It holds the
// server for
//     t(B) = t_1 × (1 + f × (B − 1)),   f = static_per_item_fraction,
// times time_scale, where t_1 is the solo time of its longest item: its prefill plus one decode
// step per output token, as it would take alone in continuous mode (an embedding input: its
// prefill). Each item streams its tokens on its own solo schedule stretched by (1 + f(B − 1)), so
// the call ends with its longest item; a cancelled item stops at once but does not shorten the
// call. The ideal throughput gain of sending B inputs as one call instead of B calls is therefore
//     gain(B) = B / (1 + f × (B − 1))          (B = 32, f = 0.02: 32 / 1.62 ≈ 19.75)
// A static call holds the KV of all its items to their end: one whose items' prompts and answers
// need more than kv_capacity_bytes (when set) fails INVALID_ARGUMENT within the submit call.
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
#include "absl/types/span.h"
#include "sim/clock.h"
#include "sim/latency_model.h"
#include "sim/presets.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::sim {

enum class BatchMode { kContinuous, kStatic };

// vLLM sizes its KV cache from this share of GPU memory by default (gpu_memory_utilization).
inline constexpr double kGpuMemoryUtilization = 0.9;

// What vLLM leaves for the KV cache: memory × gpu_count × kGpuMemoryUtilization − the served
// model's weights. Zero or negative when the weights do not fit.
double KvCapacityBytesFor(const GpuSpec& gpu, uint32_t gpu_count, const ModelShape& served);

struct EngineOptions {
  GpuSpec gpu;  // e.g. *FindGpu("a100-80gb")
  uint32_t gpu_count = 1;
  double time_scale = 1.0;  // multiplies every delay; 0 = instant
  double mfu = 0.5;
  uint32_t max_running_requests = 256;  // continuous mode
  // KV-cache bytes the running requests share (tollgate-sim: KvCapacityBytesFor the served
  // model); 0 = unbounded, nothing is preempted.
  uint64_t kv_capacity_bytes = 0;
  BatchMode batch_mode = BatchMode::kContinuous;
  uint32_t max_static_batch = 32;          // static mode: largest B
  double static_per_item_fraction = 0.02;  // static mode: f in t(B)
  Clock* clock = nullptr;  // nullptr: RealClock(). Not owned; must outlive the engine.
};

class SimEngine {
 public:
  struct Callbacks {
    // One generated token as a text delta (GenerateResponse.text). The first chunk also carries
    // usage.input_tokens with usage.source = USAGE_SOURCE_REPORTED.
    std::function<void(v1::GenerateResponse chunk)> on_chunk;
    // Exactly once, last. OK: `last` has empty text, the finish_reason and the full usage (input,
    // output, source REPORTED). Errors: INVALID_ARGUMENT from ValidateRequest or when the KV
    // cache could never hold the request (both within Submit), CANCELLED after Cancel,
    // UNAVAILABLE when the engine shuts down with the request pending. On CANCELLED and UNAVAILABLE
    // `last.usage` holds what was spent so far: the prompt once the request was admitted to a step,
    // and the tokens already emitted.
    std::function<void(absl::Status status, v1::GenerateResponse last)> on_done;
  };
  using RequestId = uint64_t;

  // REQUIRES: gpu_count >= 1, 0 < mfu <= 1, time_scale >= 0, max_running_requests >= 1,
  // max_static_batch >= 1, static_per_item_fraction >= 0.
  explicit SimEngine(EngineOptions options);
  // Fails pending requests with UNAVAILABLE and joins the engine thread.
  ~SimEngine();
  SimEngine(const SimEngine&) = delete;
  SimEngine& operator=(const SimEngine&) = delete;

  // With time_scale == 0 the whole response is delivered on the calling thread before Submit
  // returns (so Cancel cannot reach it). Otherwise callbacks may start before Submit returns.
  RequestId Submit(const v1::GenerateRequest& request, const ModelShape& shape, Callbacks cb);

  // Several generate requests sent as one call (OpenAI completions with a prompt array), each with
  // its own callbacks; returns their ids in order. Continuous mode runs them as independent
  // requests, as vLLM does; static mode as one call of B = requests.size() items. When a request
  // is invalid, B exceeds max_static_batch (static mode) or the KV cache cannot hold them, every
  // item fails with INVALID_ARGUMENT within the call and none is queued.
  // REQUIRES: callbacks.size() == requests.size() >= 1.
  std::vector<RequestId> SubmitBatch(absl::Span<const v1::GenerateRequest> requests,
                                     const ModelShape& shape, std::vector<Callbacks> callbacks);

  // No-op for unknown or finished ids. No on_chunk follows the CANCELLED on_done, which the engine
  // thread delivers promptly (it wakes from its step sleep).
  void Cancel(RequestId id);

  // Latency (continuous mode): the prefill of all inputs' tokens (time-scaled); static mode: a call
  // of B = inputs. usage.input_tokens is their sum, source REPORTED. on_done exactly once
  // (synchronously when time_scale == 0 or the request is invalid); INVALID_ARGUMENT from
  // ValidateEmbedRequest or for more than max_static_batch inputs in static mode, UNAVAILABLE on
  // shutdown.
  void SubmitEmbed(const v1::EmbedRequest& request, const ModelShape& shape,
                   std::function<void(absl::StatusOr<v1::EmbedResponse>)> on_done);

  // Snapshot for metrics and tests. prompt_tokens_total counts prefilled tokens of generate and
  // embed requests; generation_tokens_total counts emitted tokens. kv_cache_bytes is the KV cache
  // held by running requests: (prompt + emitted) tokens rounded up to whole kKvBlockTokens blocks,
  // times the model's bytes per token. requests_total counts the generate and embed requests
  // admitted (each item of a batch; a readmitted request once). prompt_tokens_total counts a
  // request's prompt once, not what recomputation prefills again. num_preemptions counts
  // preemptions (one request may be preempted several times). In static mode `running` is the
  // current call's unfinished items and `waiting` the items of the queued calls.
  struct Stats {
    uint32_t running;
    uint32_t waiting;
    uint64_t prompt_tokens_total;
    uint64_t generation_tokens_total;
    uint64_t kv_cache_bytes = 0;
    uint64_t requests_total = 0;
    uint64_t num_preemptions = 0;
  };
  static constexpr uint64_t kKvBlockTokens = 16;
  Stats GetStats() const;

  // EngineOptions::kv_capacity_bytes (0 = unbounded).
  uint64_t kv_capacity_bytes() const { return options_.kv_capacity_bytes; }

  // True on the engine's own thread (where time-scaled callbacks run). An engine cannot be
  // destroyed there: its destructor joins that thread.
  bool IsEngineThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Request;     // one submitted generate or embed request; see engine_request.h
  struct StaticCall;  // static mode: the items of one call
  struct Outbox;      // callbacks collected under the lock, delivered after it is released

  RequestId NextIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK, or why `requests` (one call's items) cannot be run: static batch size, KV capacity.
  absl::Status CheckFits(const std::vector<std::unique_ptr<Request>>& requests,
                         uint32_t batch_size) const;
  // Runs a validated call: synchronously, as independent requests or as one static call.
  void Dispatch(std::vector<std::unique_ptr<Request>> requests, uint32_t batch_size)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RunSynchronously(std::unique_ptr<Request> request) ABSL_LOCKS_EXCLUDED(mu_);
  // Moves the request with `id` out of the static queues; null when none is there.
  std::unique_ptr<Request> TakeStaticLocked(RequestId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishAllStaticLocked(Outbox& outbox, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddStaticStatsLocked(Stats& stats) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The engine thread.
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sleeps until `deadline`, delivering cancellations meanwhile; false when shutting down.
  bool SleepUntilStepEnd(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  // Continuous mode.
  void RunContinuous() ABSL_LOCKS_EXCLUDED(mu_);
  // Preempts and admits; returns the step's duration in unscaled seconds.
  double StartStepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Preempts the most recently admitted running requests until the others fit with their next
  // token; returns the KV bytes those need.
  uint64_t PreemptToFitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double DecodeSecondsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndStepLocked(Outbox& outbox) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Static mode (engine_static.cc).
  void RunStatic() ABSL_LOCKS_EXCLUDED(mu_);
  void StartStaticCallLocked(absl::Time start) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextStaticEventLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Delivers the current call's events due at `now`; ends the call at its end and starts the
  // next queued one there.
  void StaticEventsLocked(absl::Time now, Outbox& outbox) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

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
  // Static mode: the queued calls and the one running (null when idle).
  std::deque<std::unique_ptr<StaticCall>> static_waiting_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<StaticCall> static_running_ ABSL_GUARDED_BY(mu_);
  uint64_t prompt_tokens_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t requests_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_tokens_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t num_preemptions_ ABSL_GUARDED_BY(mu_) = 0;

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
