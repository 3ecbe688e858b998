// Request accounting for the pipeline: what a request is known to cost before the call (its
// prompt tokens and worst case), its budget reservation, its share of a self-hosted backend's GPU,
// and how it is recorded when it ends (metrics, shadow plans, the ledger). Internal to proxy/.
//
// Thread safety: the free functions are thread-safe; an Admission, a GpuSpan and a KvSpan belong to
// one request, whose events are serialised.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "accounting/budget/budget.h"
#include "accounting/budget/redis_budgets.h"
#include "accounting/gpu/gpu_meter.h"
#include "accounting/pricing.h"
#include "accounting/tokenizer/tokenizer.h"
#include "proxy/pipeline.h"
#include "proxy/router.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::pipeline_internal {

// Tokens known before the call: counted with the model's tokenizer (chat format included), or
// estimated from the bytes when the model has none.
struct PromptTokens {
  uint64_t tokens = 0;
  bool counted = false;
};

// The prompt tokens of a generation request, or of an embeddings request's inputs.
PromptTokens CountPrompt(const Tokenizer* tokenizer, const v1::GenerateRequest& request);
PromptTokens CountInputs(const Tokenizer* tokenizer, const v1::EmbedRequest& request);

// When the backend was called and answered, for the duration, overhead and TTFT histograms.
struct BackendTiming {
  absl::Time start;
  absl::Time done;
  absl::Time first_token = absl::InfiniteFuture();
};

// What admission decided about one request: the snapshot it runs on, its metrics cell, its id, and
// either its route or why it was rejected. Rejections are recorded by Admit itself.
struct Admission {
  std::shared_ptr<const Snapshot> snapshot;
  std::string request_id;
  size_t tenant_index = 0;
  size_t model_index = 0;
  absl::Time received;
  absl::Time deadline;
  absl::Status status;  // OK: `route` is set
  Route route;
  const Tokenizer* tokenizer = nullptr;  // the model's, owned by the snapshot; null: estimate
  Caller caller;                         // set once authenticated
  std::string model;                     // as the client asked
  bool cacheable = false;  // went through the response cache (tollgate_cache_requests_total)
};

// How a request ended, for the metrics and the ledger.
struct Ending {
  absl::StatusCode code = absl::StatusCode::kOk;
  const v1::Usage* usage = nullptr;  // null: none
  const v1::Cost* cost = nullptr;    // null: none
  const BackendTiming* timing = nullptr;
  absl::string_view backend;
  v1::CacheStatus cache_status = v1::CACHE_STATUS_UNSPECIFIED;
  int64_t saved_nano_usd = 0;  // a hit's or coalesced request's saving
};

// Relays generated text to a client: a unary call's text is collected for its final message; a
// stream gets each piece as a delta, the first one carrying the request id, backend and cache
// status. One thread at a time.
class TextRelay {
 public:
  TextRelay(bool stream, GenerateSink* sink) : stream_(stream), sink_(sink) {}

  void Relay(absl::string_view text, const std::string& request_id, absl::string_view backend,
             v1::CacheStatus cache_status) {
    if (!stream_) {
      text_.append(text.data(), text.size());
      return;
    }
    v1::GenerateResponse delta;
    delta.set_text(std::string(text));
    if (!sent_first_delta_) {
      sent_first_delta_ = true;
      delta.set_request_id(request_id);
      delta.set_backend(std::string(backend));
      delta.set_cache_status(cache_status);
    }
    sink_->OnDelta(std::move(delta));
  }

  // A unary call's text so far (moved out).
  std::string TakeText() { return std::move(text_); }
  const std::string& text() const { return text_; }

 private:
  const bool stream_;
  GenerateSink* const sink_;
  bool sent_first_delta_ = false;
  std::string text_;
};

// One backend call's span on a self-hosted backend's GPU meter.
class GpuSpan {
 public:
  // Starts a span when `backend` has a GPU meter.
  void Begin(const Snapshot& snapshot, const std::string& backend, uint64_t prompt_tokens) {
    auto it = snapshot.gpu_meters.find(backend);
    if (it == snapshot.gpu_meters.end()) return;
    meter_ = it->second.get();
    token_ = meter_->Begin(prompt_tokens);
  }
  void Progress(uint64_t output_tokens_so_far) {
    if (meter_ != nullptr) meter_->Progress(token_, output_tokens_so_far);
  }
  // Ends the span; its share is added to what earlier spans of the request accrued.
  void End() {
    if (meter_ == nullptr) return;
    const GpuShare share = meter_->End(token_);
    nano_usd_ += share.cost_nano_usd;
    joules_ += share.energy_joules;
    meter_ = nullptr;
  }
  // Prices the request: its GPU share, plus its token prices unless `gpu_backed` (the backend
  // that answered has a GPU cost, which then replaces them).
  void AddTo(v1::Cost& cost, bool gpu_backed) const {
    if (gpu_backed) cost = v1::Cost();
    cost.set_gpu_nano_usd(nano_usd_);
    cost.set_energy_joules(joules_);
    cost.set_total_nano_usd(cost.total_nano_usd() + nano_usd_);
  }

 private:
  GpuMeter* meter_ = nullptr;  // the current span's; owned by the snapshot
  GpuMeter::RequestToken token_{};
  int64_t nano_usd_ = 0;
  double joules_ = 0;
};

// One attempt's KV-cache footprint on a backend that tracks its KV cache: begun when the call is
// sent, grown as output arrives, ended with the attempt; the tracker observes its peak
// (tollgate_request_kv_peak_bytes). Does nothing on other backends or for models without a shape
// there.
class KvSpan {
 public:
  // `admitted_bytes`: what KvAdmission admitted the attempt with (0: not admitted by KV).
  void Begin(const Snapshot& snapshot, const std::string& backend, const std::string& model,
             uint64_t prompt_tokens, uint64_t admitted_bytes = 0) {
    auto it = snapshot.kv.find(backend);
    if (it == snapshot.kv.end()) return;
    const KvCacheModel* cache_model = it->second->Model(model);
    if (cache_model == nullptr) return;
    tracker_ = it->second->tracker.get();
    request_ = tracker_->Begin(prompt_tokens, cache_model->bytes_per_token(), admitted_bytes);
  }
  void Progress(uint64_t output_tokens_so_far) {
    if (tracker_ != nullptr) tracker_->Update(request_, output_tokens_so_far);
  }
  void End() {
    if (tracker_ == nullptr) return;
    tracker_->End(request_);
    tracker_ = nullptr;
  }

 private:
  KvTracker* tracker_ = nullptr;  // the current span's; owned by the snapshot the request pins
  KvRequest request_;
};

// The status a client is told: a cancel within moments of the deadline is the deadline (a client
// whose deadline passes cancels the call itself, often just before the server's copy fires).
absl::Status ClientStatus(const absl::Status& status, absl::Time deadline);

// Records the request on the metrics and in the ledger; every request ends here exactly once.
// A hit or coalesced request's tokens go to the ledger (what the client received) but not to
// tollgate_tokens_total or the shadow plans, which count only what backends were paid for.
void RecordOutcome(const Admission& a, const Ending& e);

// The most a request can cost at its model's prices: the prompt, all at the dearest input price,
// and `max_output` tokens at the dearer of the output and reasoning prices.
int64_t WorstCaseNanoUsd(const TokenPrices& base, uint64_t prompt_tokens, uint64_t max_output);

// Output tokens a request may produce: its max_tokens, else the rest of its model's context, else
// the configured default.
uint64_t MaxOutputTokens(const Admission& a, uint32_t max_tokens, uint64_t prompt_tokens);

// A request's holds on its budgets: the local book's, and the shared one's when Redis answered.
// Move-only; an unsettled hold releases itself.
struct BudgetHold {
  Reservation local;
  SharedHold shared;
};

// Reserves the worst case against the caller's budgets: on the local book, then (when the snapshot
// has shared budgets and Redis answers in time) on the shared ones. On refusal by either, records
// the request as rejected and returns the RESOURCE_EXHAUSTED naming the budget. Redis being down
// or slow is no refusal: the local book alone decides.
absl::StatusOr<BudgetHold> ReserveBudget(Admission& a, int64_t worst_case_nano_usd);

// Settles both holds to what the request really cost.
void SettleBudget(const Admission& a, BudgetHold& hold, int64_t cost_nano_usd);

// How a request with a final message ends (before the message is delivered): its budgets settle
// to the message's cost, and it is recorded with the message's usage, cost, backend and cache
// status. `Response` is v1::GenerateResponse or v1::EmbedResponse.
template <typename Response>
void SettleAndRecord(const Admission& a, BudgetHold& hold, absl::StatusCode code,
                     const Response& final, const BackendTiming* timing,
                     int64_t saved_nano_usd = 0) {
  SettleBudget(a, hold, final.cost().total_nano_usd());
  RecordOutcome(a, {.code = code,
                    .usage = &final.usage(),
                    .cost = &final.cost(),
                    .timing = timing,
                    .backend = final.backend(),
                    .cache_status = final.cache_status(),
                    .saved_nano_usd = saved_nano_usd});
}

// Starts the backend call of an admitted generation (pipeline.cc). Its final message carries
// `cache_status`. The sink must stay valid until its OnFinish has returned.
std::shared_ptr<RequestHandle> StartGenerateRun(Admission admission, bool stream,
                                                GenerateSink* sink, PromptTokens prompt,
                                                BudgetHold reservation,
                                                const v1::GenerateRequest& request,
                                                v1::CacheStatus cache_status);

}  // namespace tollgate::pipeline_internal
