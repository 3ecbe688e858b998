// Dynamic batching in the request path (issue 7): the queues of batchable backend calls, one per
// backend, backend model, operation and shared parameters (proxy/batcher/batch_key.h), each a
// DynamicBatcher, and the backend call each batch becomes, answered back to every request with its
// own part.
//
//   std::shared_ptr<BatchRouter> batches = BatchRouter::Create(*config, metrics_table,
//                                                              &batch_metrics);
//   if (batches->BatchesEmbeddings(target)) {
//     call_.Set(batches->Embed(target, std::move(call), inputs.tokens, on_sent, done));
//   }
//
// What is batched: embeddings (one EmbedCall with the requests' inputs concatenated, split back
// by each request's input count) on any backend whose batching is enabled, and unary prompt
// completions on such backends that have a batch call (Backend::SupportsCompleteBatch). The
// pipeline decides which requests (not chat, not streams, not those answered through the cache).
//
// Usage: the call's reported usage is split among the requests so that the parts sum exactly to
// it (proxy/batcher/usage_split.h): input by each request's counted prompt tokens, output by each
// choice's own reported output or else its text counted with the request's tokenizer (estimated
// without one). Parts keep the source REPORTED. A call that reports no usage gives none: each
// request is then counted on its own by the pipeline, as an unbatched one would be.
//
// Errors: a whole-call failure fails every request of the batch with that status; retries and
// fallbacks are then each request's own (its AttemptPlan; retried requests batch again). The
// backend's passive health counts the call once, here, not once per request. A whole-call
// INVALID_ARGUMENT on a batch of several may be one request's fault: every request gets it with
// the kRetryAlonePayload and is sent again alone (unbatched), so that only the guilty one fails.
// A failure the backend reports for one item (a choice missing or malformed) fails that request
// alone; it is charged its share of the input.
//
// Deadlines: a request whose deadline passes while it waits in its queue (held there behind calls
// still running, at max_in_flight_batches) leaves it with DEADLINE_EXCEEDED, charged nothing. A
// batch's call runs until the latest of its requests' deadlines; a request whose own deadline
// passes first still receives its part (and is charged it) when the call ends.
// Cancel: a request still waiting leaves its queue (CANCELLED, charged nothing); once its batch is
// sent it is part of the call and is answered and charged when the call ends.
// Time: a request's wait in its queue is on tollgate_batch_queue_delay_seconds; the request's
// tollgate_overhead_seconds counts it as backend time, like the call itself.
//
// Thread safety: BatchRouter is thread-safe; one is built per config snapshot. `on_sent` and the
// answers run on the thread that sent the batch or answered the call; for one request they run
// one after the other, on_sent first.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "accounting/metrics.h"
#include "accounting/tokenizer/tokenizer.h"
#include "proxy/backends/backend.h"
#include "proxy/batcher/batch_metrics.h"
#include "proxy/batcher/dynamic_batcher.h"
#include "proxy/config/config.h"
#include "proxy/router.h"

namespace tollgate {

// On an error a batched call gave every request: the request should be sent again, alone.
inline constexpr absl::string_view kRetryAlonePayload = "tollgate.dev/batch_retry_alone";

class BatchRouter {
 public:
  virtual ~BatchRouter() = default;

  // Queues for the backends of `config` whose batching is enabled (nullptr when none is), with
  // their series from `batch_metrics` (which must outlive the router). `metrics` receives the
  // backends' ejection gauges.
  static std::shared_ptr<BatchRouter> Create(const Config& config,
                                             std::shared_ptr<const MetricsTable> metrics,
                                             BatchMetrics* batch_metrics,
                                             Scheduler* scheduler = &RealScheduler());

  virtual bool BatchesEmbeddings(const Target& target) const = 0;
  virtual bool BatchesCompletions(const Target& target) const = 0;

  // Queues an embeddings call (model: the backend's) for `target`. `done` as Backend::Embed's,
  // with this request's vectors and usage part. REQUIRES: BatchesEmbeddings(target).
  virtual std::shared_ptr<BackendCall> Embed(const Target& target, EmbedCall call,
                                             uint64_t input_tokens, std::function<void()> on_sent,
                                             EmbedCallback done) = 0;

  // Queues a unary prompt completion for `target`. `observer` receives one message (text, finish
  // reason, usage part) and OnDone, or OnDone alone with an error. `tokenizer` (null: estimate)
  // counts the request's output for the split. REQUIRES: BatchesCompletions(target).
  virtual std::shared_ptr<BackendCall> Complete(const Target& target, GenerateCall call,
                                                uint64_t prompt_tokens, const Tokenizer* tokenizer,
                                                std::function<void()> on_sent,
                                                std::shared_ptr<GenerateObserver> observer) = 0;

  // Queues in existence (empty ones are dropped now and then), for tests.
  virtual size_t queues() const = 0;
};

}  // namespace tollgate
