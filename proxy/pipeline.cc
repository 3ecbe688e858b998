#include "proxy/pipeline.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <random>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "accounting/kv/kv_admission.h"
#include "accounting/pricing.h"
#include "accounting/tokenizer/stream_counter.h"
#include "proxy/cached_generate.h"
#include "proxy/common/cancel_latch.h"
#include "proxy/common/timer_queue.h"
#include "proxy/request_accounting.h"

namespace tollgate {
namespace {

using pipeline_internal::Admission;
using pipeline_internal::BackendTiming;
using pipeline_internal::BudgetHold;
using pipeline_internal::ClientStatus;
using pipeline_internal::CountInputs;
using pipeline_internal::CountPrompt;
using pipeline_internal::Ending;
using pipeline_internal::GpuSpan;
using pipeline_internal::KvSpan;
using pipeline_internal::MaxOutputTokens;
using pipeline_internal::PromptTokens;
using pipeline_internal::RecordOutcome;
using pipeline_internal::ReserveBudget;
using pipeline_internal::SettleAndRecord;
using pipeline_internal::TextRelay;
using pipeline_internal::WorstCaseNanoUsd;

constexpr size_t kMaxClientRequestIdBytes = 128;

bool IsSafeRequestId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxClientRequestIdBytes) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':') return false;
  }
  return true;
}

// A client-supplied id when it is safe to echo, else a process-unique random-prefixed counter.
std::string NewRequestId(absl::string_view client_id) {
  if (IsSafeRequestId(client_id)) return std::string(client_id);
  static const uint64_t prefix = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
  static std::atomic<uint64_t> counter{0};
  return absl::StrFormat("%016x%08x", prefix, counter.fetch_add(1, std::memory_order_relaxed));
}

class NoopHandle final : public RequestHandle {
 public:
  void Cancel() override {}
};

std::shared_ptr<RequestHandle> Noop() {
  static const auto* handle = new std::shared_ptr<RequestHandle>(std::make_shared<NoopHandle>());
  return *handle;
}

// Authenticates, applies `request_status` (the request's own validation), and routes `model`.
Admission Admit(const SnapshotHolder& snapshots, const IngressInfo& info, absl::string_view model,
                const absl::Status& request_status) {
  Admission a;
  a.snapshot = snapshots.Get();
  const MetricsTable& metrics = *a.snapshot->metrics;
  a.request_id = NewRequestId(info.request_id);
  a.received = info.received;
  a.deadline = info.deadline;
  a.model_index = metrics.ModelIndex(model);
  a.model = std::string(model);
  a.tenant_index = metrics.TenantIndex(kOtherLabel);
  absl::StatusOr<Caller> caller = AuthenticateCaller(*a.snapshot->config, info.authorization);
  if (!caller.ok()) {
    a.status = caller.status();
  } else {
    a.caller = *std::move(caller);
    a.tenant_index = metrics.TenantIndex(a.caller.tenant);
    a.status = request_status;
  }
  if (a.status.ok()) {
    absl::StatusOr<Route> route = a.snapshot->router->Resolve(model);
    if (route.ok()) {
      a.route = *std::move(route);
      auto tokenizer = a.snapshot->tokenizers.find(a.route.model->name);
      if (tokenizer != a.snapshot->tokenizers.end()) a.tokenizer = tokenizer->second.get();
    } else {
      a.status = route.status();
    }
  }
  if (!a.status.ok()) RecordOutcome(a, {.code = a.status.code()});
  return a;
}

// A failed connect, a 429, or a 503 (529 is Anthropic's "overloaded", its 503) may succeed when
// tried again: a gRPC UNAVAILABLE, or an HTTP one without a status or with one of those.
bool IsRetryable(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kResourceExhausted) return true;
  if (status.code() != absl::StatusCode::kUnavailable) return false;
  const auto http_status = status.GetPayload(kHttpStatusPayload);
  return !http_status.has_value() || *http_status == "503" || *http_status == "529";
}

// Exponential from initial_backoff, capped at max_backoff, jittered into [d/2, d].
absl::Duration Backoff(const RetryConfig& retry, uint32_t attempts_so_far) {
  absl::Duration d = retry.initial_backoff;
  for (uint32_t i = 1; i < attempts_so_far && d < retry.max_backoff; ++i) d *= 2;
  d = std::min(d, retry.max_backoff);
  thread_local std::mt19937_64 random{std::random_device{}()};
  return d / 2 + d / 2 * std::uniform_real_distribution<double>(0, 1)(random);
}

// Where a request's attempts go: the model's backend, retried after a failed connect, a 429 or a
// 503 with jittered backoff, then its fallbacks in order; ejected backends are skipped. It also
// keeps each backend's passive health and the attempt metrics. Attempts are sequential, so one
// thread at a time touches a plan.
class AttemptPlan {
 public:
  explicit AttemptPlan(const Admission* admission) : a_(admission) {}

  const Target& current() const { return a_->route.targets[target_]; }

  // The target of the next attempt, skipping ejected ones; nullptr when none is left.
  const Target* Next() {
    const absl::Time now = absl::Now();
    while (attempts_on_target_ == 0 && target_ < a_->route.targets.size() &&
           !current().health->AllowCall(now)) {
      ++target_;
    }
    if (target_ == a_->route.targets.size()) {
      target_ = a_->route.targets.size() - 1;  // report the last backend
      return nullptr;
    }
    ++attempts_on_target_;
    return &current();
  }

  // Why Next() found nothing.
  absl::Status ExhaustedStatus() const {
    if (!last_failure_.ok()) return last_failure_;
    return absl::UnavailableError(absl::StrCat("every backend of model \"", a_->route.model->name,
                                               "\" is ejected after repeated failures"));
  }

  // Accounts for an attempt that ended with `status`. Returns the delay before the next attempt
  // when one should follow; nullopt when the request ends with `status`. `may_retry` is false once
  // anything reached the client or the client is gone. A batched attempt's health is recorded once
  // for its whole call by the batch router, not by each request in it.
  std::optional<absl::Duration> AfterAttempt(const absl::Status& status, bool may_retry,
                                             bool record_health = true) {
    if (record_health) RecordHealth(status);
    std::optional<absl::Duration> delay;
    if (may_retry && !status.ok() && IsRetryable(status)) delay = PlanRetry(status);
    a_->snapshot->metrics->RecordAttempt(current().config->name,
                                         delay.has_value() ? AttemptResult::kRetried
                                         : status.ok()     ? AttemptResult::kOk
                                                           : AttemptResult::kFailed);
    if (delay.has_value() && *delay < absl::ZeroDuration()) {  // moving on to the next backend
      ++target_;
      attempts_on_target_ = 0;
      delay = absl::ZeroDuration();
    }
    return delay;
  }

 private:
  // Passive health (BackendHealth::RecordOutcome).
  void RecordHealth(const absl::Status& status) {
    const Target& target = current();
    if (target.health->RecordOutcome(status, target.config->ejection, absl::Now())) {
      a_->snapshot->metrics->SetEjected(target.config->name, target.health->ejected());
    }
  }

  // The backoff before retrying the same backend; a negative duration to move to the next one
  // at once; nullopt when nothing is left to try in time. A retry-after beyond the backoff cap
  // moves on.
  std::optional<absl::Duration> PlanRetry(const absl::Status& status) {
    last_failure_ = status;
    const RetryConfig& retry = current().config->retry;
    absl::Duration delay = Backoff(retry, attempts_on_target_);
    const auto retry_after = status.GetPayload(kRetryAfterPayload);
    double retry_after_s = 0;
    if (retry_after.has_value() && absl::SimpleAtod(std::string(*retry_after), &retry_after_s)) {
      delay = absl::Seconds(retry_after_s);
    }
    if (attempts_on_target_ < retry.max_attempts && delay <= retry.max_backoff) {
      if (absl::Now() + delay >= a_->deadline) return std::nullopt;
      return delay;
    }
    if (target_ + 1 == a_->route.targets.size()) return std::nullopt;
    return absl::Milliseconds(-1);
  }

  const Admission* const a_;
  size_t target_ = 0;  // index into a_->route.targets
  uint32_t attempts_on_target_ = 0;
  absl::Status last_failure_;
};

// An attempt's place in a backend's KV admission queue, held as the attempt's call so that the
// client's cancel reaches it: Cancel withdraws the waiter, whose `done` then ends the request. It
// is installed before Admit, whose ticket may come after the cancel; either order withdraws it.
class KvWait final : public BackendCall {
 public:
  explicit KvWait(KvAdmission* admission) : admission_(admission) {}

  void SetTicket(KvAdmission::Ticket ticket) ABSL_LOCKS_EXCLUDED(mu_) {
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      ticket_ = ticket;
      cancelled = cancelled_;
    }
    if (cancelled) admission_->Withdraw(ticket);
  }

  // Ends the wait with CANCELLED through the admission's `done`; nothing once it was decided.
  void Cancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    KvAdmission::Ticket ticket;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      ticket = ticket_;
    }
    admission_->Withdraw(ticket);
  }

 private:
  KvAdmission* const admission_;  // kept alive by the run's snapshot
  absl::Mutex mu_;
  KvAdmission::Ticket ticket_ ABSL_GUARDED_BY(mu_) = KvAdmission::kNoTicket;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// One generation in flight. Backend events for it arrive serialised (GenerateObserver contract);
// only Cancel() can race with them, and it touches nothing but `call_`, which is thread-safe. An
// attempt cancelled while queued (for a batch or KV room) ends on the canceller's thread, which is
// then the only event: nothing was sent to the backend.
class GenerateRun final : public GenerateObserver,
                          public RequestHandle,
                          public std::enable_shared_from_this<GenerateRun> {
 public:
  GenerateRun(Admission admission, bool stream, GenerateSink* sink, PromptTokens prompt,
              BudgetHold reservation, v1::CacheStatus cache_status)
      : a_(std::move(admission)),
        stream_(stream),
        sink_(sink),
        prompt_(prompt),
        reservation_(std::move(reservation)),
        cache_status_(cache_status) {
    if (stream_ && a_.tokenizer != nullptr) output_counter_.emplace(a_.tokenizer);
  }

  void Start(const v1::GenerateRequest& request) {
    request_ = request;
    request_.set_model(a_.route.model->backend_model);
    timing_.start = absl::Now();
    NextAttempt();
  }

  void Cancel() override { call_.Cancel(); }

  void OnMessage(const v1::GenerateResponse& message) override {
    // An empty message says nothing (gRPC delivers an unparseable unary reply as one).
    if (message.text().empty() && !message.has_usage() &&
        message.finish_reason() == v1::FINISH_REASON_UNSPECIFIED) {
      return;
    }
    received_any_ = true;
    if (message.has_usage()) {
      const v1::Usage& usage = message.usage();
      if (usage.input_tokens() > 0) {
        reported_input_ = usage.input_tokens();
        reported_cached_input_ = usage.cached_input_tokens();
      }
      if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED &&
          usage.source() != v1::USAGE_SOURCE_UNSPECIFIED) {
        final_usage_ = usage;
        has_final_usage_ = true;
      }
    }
    if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      finish_reason_ = message.finish_reason();
    }
    if (message.text().empty()) return;
    if (timing_.first_token == absl::InfiniteFuture()) timing_.first_token = absl::Now();
    output_bytes_ += message.text().size();
    if (output_counter_.has_value()) {
      const size_t final_tokens = output_counter_->Append(message.text());
      a_.snapshot->metrics->AddStreamedOutputTokens(a_.tenant_index, a_.model_index, final_tokens);
    }
    const uint64_t output_tokens_so_far =
        output_counter_.has_value() ? output_counter_->committed() : EstimateTokens(output_bytes_);
    gpu_.Progress(output_tokens_so_far);
    kv_.Progress(output_tokens_so_far);
    relay_.Relay(message.text(), a_.request_id, plan_.current().config->name, cache_status_);
  }

  void OnDone(const absl::Status& backend_status) override {
    timing_.done = absl::Now();
    gpu_.End();
    kv_.End();
    if (batched_ && backend_status.GetPayload(kRetryAlonePayload).has_value() &&
        !call_.cancelled()) {
      Call(plan_.current(), /*may_batch=*/false);  // the batch was refused, maybe for another
      return;
    }
    const std::optional<absl::Duration> delay = plan_.AfterAttempt(
        backend_status, !received_any_ && !call_.cancelled(), /*record_health=*/!batched_);
    if (!delay.has_value()) {
      Finish(backend_status);
    } else if (*delay <= absl::ZeroDuration()) {
      NextAttempt();
    } else {
      TimerQueue::Default().RunAfter(*delay, [self = shared_from_this()] { self->NextAttempt(); });
    }
  }

 private:
  // Starts a call on the plan's next target; finishes the request when the client is gone or no
  // target is left.
  void NextAttempt() {
    if (call_.cancelled()) {
      Finish(absl::CancelledError("cancelled by the client"));
      return;
    }
    const Target* target = plan_.Next();
    if (target == nullptr) {
      Finish(plan_.ExhaustedStatus());
      return;
    }
    AdmitAndCall(*target);
  }

  // Calls `target`, first waiting for KV-cache room when it admits by KV (backends[].kv.admission):
  // the attempt's projected footprint (prompt + max_tokens) is held from admission until the call
  // begins. A refusal ends the request RESOURCE_EXHAUSTED. An admitted attempt is not batched, so
  // its hold passes straight to its KV span. A client's cancel while waiting withdraws the attempt
  // from the queue at once (it would otherwise hold back the requests behind it until admitted or
  // timed out) and ends the request CANCELLED, charged nothing for an attempt never sent.
  void AdmitAndCall(const Target& target) {
    auto state = a_.snapshot->kv.find(target.config->name);
    KvAdmission* admission =
        state == a_.snapshot->kv.end() ? nullptr : state->second->admission.get();
    const KvCacheModel* cache_model =
        admission == nullptr ? nullptr : state->second->Model(a_.route.model->name);
    if (cache_model == nullptr) {
      Call(target, /*may_batch=*/true);
      return;
    }
    const uint64_t max_tokens = request_.params().max_tokens() > 0
                                    ? request_.params().max_tokens()
                                    : a_.snapshot->config->default_max_tokens;
    const uint64_t projected = cache_model->ProjectedBytes(prompt_.tokens, max_tokens);
    sent_ = false;
    // Installed before Admit: once admitted, Call replaces it with the backend call.
    auto wait = std::make_shared<KvWait>(admission);
    call_.Set(wait);
    const KvAdmission::Ticket ticket =
        admission->Admit(projected, a_.deadline,
                         [self = shared_from_this(), target = &target, admission,
                          projected](const absl::Status& admitted) {
                           if (self->call_.cancelled()) {
                             if (admitted.ok()) admission->Release(projected);
                             self->Finish(absl::CancelledError("cancelled by the client"));
                           } else if (!admitted.ok()) {
                             self->Finish(admitted);
                           } else {
                             self->kv_admitted_bytes_ = projected;
                             self->Call(*target, /*may_batch=*/false);
                           }
                         });
    wait->SetTicket(ticket);
  }

  // Calls `target`: through its batch queue when the request may share a call (a unary prompt
  // completion outside the cache, on a backend that batches them), else directly.
  void Call(const Target& target, bool may_batch) {
    GenerateCall call;
    call.request = request_;
    call.deadline = a_.deadline;
    call.client_streams = stream_;
    BatchRouter* batches = a_.snapshot->batches.get();
    batched_ = may_batch && batches != nullptr && !stream_ && !a_.cacheable &&
               request_.input_case() == v1::GenerateRequest::kPrompt &&
               batches->BatchesCompletions(target);
    if (!batched_) {
      sent_ = true;
      gpu_.Begin(*a_.snapshot, target.config->name, prompt_.tokens);
      kv_.Begin(*a_.snapshot, target.config->name, a_.route.model->name, prompt_.tokens,
                std::exchange(kv_admitted_bytes_, 0));
      call_.Set(target.backend->Generate(std::move(call), shared_from_this()));
      return;
    }
    sent_ = false;
    auto on_sent = [self = shared_from_this(), target = &target] {
      self->sent_ = true;
      self->gpu_.Begin(*self->a_.snapshot, target->config->name, self->prompt_.tokens);
      self->kv_.Begin(*self->a_.snapshot, target->config->name, self->a_.route.model->name,
                      self->prompt_.tokens);
    };
    call_.Set(batches->Complete(target, std::move(call), prompt_.tokens, a_.tokenizer,
                                std::move(on_sent), shared_from_this()));
  }

  void Finish(const absl::Status& backend_status) {
    // Every backend ends a successful generation with a finish reason. A stream that ends "OK"
    // without one was truncated or unparseable (gRPC reports a message it cannot parse as the end
    // of the stream), and must not pass as a complete answer.
    const absl::Status status =
        backend_status.ok() && finish_reason_ == v1::FINISH_REASON_UNSPECIFIED
            ? absl::InternalError(
                  "the backend ended the response without a finish reason "
                  "(truncated or malformed stream)")
            : backend_status;
    v1::GenerateResponse final;
    *final.mutable_usage() = ChargedUsage(backend_status);
    *final.mutable_cost() = PriceUsage(a_.route.model->prices, final.usage(), request_.batch());
    gpu_.AddTo(*final.mutable_cost(),
               a_.snapshot->gpu_meters.contains(plan_.current().config->name));
    final.set_text(relay_.TakeText());
    final.set_finish_reason(finish_reason_);
    final.set_cache_status(cache_status_);
    final.set_backend(plan_.current().config->name);
    final.set_request_id(a_.request_id);
    const absl::Status client_status = ClientStatus(status, a_.deadline);
    SettleAndRecord(a_, reservation_, client_status.code(), final, &timing_);
    sink_->OnFinish(client_status, std::move(final));
  }

 private:
  // Reported usage when the backend finished and said it. Otherwise the prompt and what was
  // generated before the end or the cut, counted with the model's tokenizer (source COUNTED), or
  // estimated when it has none (ESTIMATED); input the backend did report is kept. A call cut short
  // (cancel, deadline) before any answer is charged its input, which the backend had already
  // received; one the backend failed before answering (unreachable, refused), or cancelled while
  // it waited for a batch, is charged nothing.
  v1::Usage ChargedUsage(const absl::Status& backend_status) const {
    if (has_final_usage_) return final_usage_;
    v1::Usage usage;
    const bool cut_short = backend_status.code() == absl::StatusCode::kCancelled ||
                           backend_status.code() == absl::StatusCode::kDeadlineExceeded;
    if (!received_any_ && (!cut_short || !sent_)) return usage;
    usage.set_input_tokens(reported_input_ > 0 ? reported_input_ : prompt_.tokens);
    usage.set_cached_input_tokens(reported_cached_input_);
    if (output_counter_.has_value()) {
      usage.set_output_tokens(output_counter_->Total());
    } else if (a_.tokenizer != nullptr) {
      usage.set_output_tokens(a_.tokenizer->Count(relay_.text()));
    } else {
      usage.set_output_tokens(EstimateTokens(output_bytes_));
    }
    usage.set_source(a_.tokenizer != nullptr ? v1::USAGE_SOURCE_COUNTED
                                             : v1::USAGE_SOURCE_ESTIMATED);
    return usage;
  }

  const Admission a_;
  const bool stream_;
  GenerateSink* const sink_;
  const PromptTokens prompt_;
  BudgetHold reservation_;  // against the caller's budgets; settled in Finish
  const v1::CacheStatus cache_status_;
  GpuSpan gpu_;                     // the current attempt's, on a self-hosted backend's GPU meter
  KvSpan kv_;                       // the current attempt's, on a backend that tracks its KV cache
  uint64_t kv_admitted_bytes_ = 0;  // the next attempt's KV admission, handed to kv_.Begin
  // Streams with a tokenizer: output tokens counted as deltas arrive.
  std::optional<StreamCounter> output_counter_;

  CancelLatch<BackendCall> call_;  // the current attempt's call

  // Touched only by the serialised backend events, Start and retries (which run one at a time:
  // the next attempt starts after the previous one's OnDone).
  v1::GenerateRequest request_;  // as sent to the backend
  AttemptPlan plan_{&a_};
  BackendTiming timing_;
  bool received_any_ = false;
  bool has_final_usage_ = false;
  v1::Usage final_usage_;
  uint64_t reported_input_ = 0;
  uint64_t reported_cached_input_ = 0;
  uint64_t output_bytes_ = 0;
  v1::FinishReason finish_reason_ = v1::FINISH_REASON_UNSPECIFIED;
  bool batched_ = false;  // the current attempt waits for, or is part of, a batch
  bool sent_ = false;     // the current attempt's call has been made (a batch: left its queue)
  TextRelay relay_{stream_, sink_};  // after stream_ and sink_
};

// One embeddings request: attempts as the plan says, then usage, cost and metrics.
class EmbedRun final : public std::enable_shared_from_this<EmbedRun> {
 public:
  EmbedRun(Admission admission, v1::EmbedRequest request, EmbedDone done, PromptTokens inputs,
           BudgetHold reservation)
      : a_(std::move(admission)),
        request_(std::move(request)),
        done_(std::move(done)),
        inputs_(inputs),
        reservation_(std::move(reservation)) {
    request_.set_model(a_.route.model->backend_model);
  }

  void Start() {
    timing_.start = absl::Now();
    NextAttempt();
  }

 private:
  void NextAttempt() {
    const Target* target = plan_.Next();
    if (target == nullptr) {
      Finish(plan_.ExhaustedStatus());
      return;
    }
    Call(*target, /*may_batch=*/true);
  }

  // Calls `target`: through its batch queue when it batches embeddings, else directly.
  void Call(const Target& target, bool may_batch) {
    EmbedCall call;
    call.request = request_;
    call.deadline = a_.deadline;
    auto done = [self = shared_from_this()](absl::StatusOr<v1::EmbedResponse> result) {
      self->OnResult(std::move(result));
    };
    BatchRouter* batches = a_.snapshot->batches.get();
    batched_ = may_batch && batches != nullptr && batches->BatchesEmbeddings(target);
    if (!batched_) {
      gpu_.Begin(*a_.snapshot, target.config->name, inputs_.tokens);
      target.backend->Embed(std::move(call), std::move(done));
      return;
    }
    auto on_sent = [self = shared_from_this(), target = &target] {
      self->gpu_.Begin(*self->a_.snapshot, target->config->name, self->inputs_.tokens);
    };
    batches->Embed(target, std::move(call), inputs_.tokens, std::move(on_sent), std::move(done));
  }

  void OnResult(absl::StatusOr<v1::EmbedResponse> result) {
    timing_.done = absl::Now();
    gpu_.End();
    if (batched_ && result.status().GetPayload(kRetryAlonePayload).has_value()) {
      Call(plan_.current(), /*may_batch=*/false);  // the batch was refused, maybe for another
      return;
    }
    // One vector per input, or the answer is unusable (gRPC lets an unparseable reply through as
    // an empty message); it is then charged nothing.
    if (result.ok() && result->embeddings_size() != request_.inputs_size()) {
      result =
          absl::InternalError(absl::StrCat("the backend returned ", result->embeddings_size(),
                                           " embeddings for ", request_.inputs_size(), " inputs"));
    }
    const std::optional<absl::Duration> delay =
        plan_.AfterAttempt(result.status(), /*may_retry=*/true, /*record_health=*/!batched_);
    if (!delay.has_value()) {
      Finish(std::move(result));
    } else if (*delay <= absl::ZeroDuration()) {
      NextAttempt();
    } else {
      TimerQueue::Default().RunAfter(*delay, [self = shared_from_this()] { self->NextAttempt(); });
    }
  }

  void Finish(absl::StatusOr<v1::EmbedResponse> result) {
    v1::EmbedResponse response;
    const absl::Status status = ClientStatus(result.status(), a_.deadline);
    if (result.ok()) {
      response = *std::move(result);
      if (response.usage().source() == v1::USAGE_SOURCE_UNSPECIFIED) {
        response.mutable_usage()->set_input_tokens(inputs_.tokens);
        response.mutable_usage()->set_source(inputs_.counted ? v1::USAGE_SOURCE_COUNTED
                                                             : v1::USAGE_SOURCE_ESTIMATED);
      }
    }
    *response.mutable_cost() = PriceUsage(a_.route.model->prices, response.usage());
    gpu_.AddTo(*response.mutable_cost(),
               a_.snapshot->gpu_meters.contains(plan_.current().config->name));
    response.set_cache_status(v1::CACHE_STATUS_MISS);
    response.set_backend(plan_.current().config->name);
    response.set_request_id(a_.request_id);
    SettleAndRecord(a_, reservation_, status.code(), response, &timing_);
    done_(status, std::move(response));
  }

  const Admission a_;
  v1::EmbedRequest request_;  // as sent to the backend
  const EmbedDone done_;
  BudgetHold reservation_;     // against the caller's budgets; settled in Finish
  GpuSpan gpu_;                // the current attempt's, on a self-hosted backend's GPU meter
  const PromptTokens inputs_;  // counted (or estimated) before the call
  AttemptPlan plan_{&a_};
  BackendTiming timing_;
  bool batched_ = false;  // the current attempt waits for, or is part of, a batch
};

absl::Status ValidateEmbedRequest(const v1::EmbedRequest& request) {
  if (request.model().empty()) return absl::InvalidArgumentError("model is required");
  if (request.inputs().empty()) return absl::InvalidArgumentError("inputs must not be empty");
  return absl::OkStatus();
}

}  // namespace

namespace pipeline_internal {

std::shared_ptr<RequestHandle> StartGenerateRun(Admission admission, bool stream,
                                                GenerateSink* sink, PromptTokens prompt,
                                                BudgetHold reservation,
                                                const v1::GenerateRequest& request,
                                                v1::CacheStatus cache_status) {
  auto run = std::make_shared<GenerateRun>(std::move(admission), stream, sink, prompt,
                                           std::move(reservation), cache_status);
  run->Start(request);
  return run;
}

}  // namespace pipeline_internal

std::shared_ptr<const Snapshot> SnapshotHolder::Get() const {
  absl::ReaderMutexLock lock(&mu_);
  return current_;
}

void SnapshotHolder::Set(std::shared_ptr<const Snapshot> snapshot) {
  absl::MutexLock lock(&mu_);
  current_ = std::move(snapshot);
}

uint64_t EstimateTokens(uint64_t bytes) { return (bytes + 3) / 4; }

absl::StatusOr<std::string> Authenticate(const Config& config, absl::string_view authorization) {
  absl::StatusOr<Caller> caller = AuthenticateCaller(config, authorization);
  if (!caller.ok()) return caller.status();
  return std::move(caller->tenant);
}

absl::StatusOr<Caller> AuthenticateCaller(const Config& config, absl::string_view authorization) {
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  constexpr absl::string_view kBearer = "bearer ";
  if (value.empty()) {
    return absl::UnauthenticatedError("missing `authorization: Bearer <api key>` metadata");
  }
  if (value.size() <= kBearer.size() || !absl::StartsWithIgnoreCase(value, kBearer)) {
    return absl::UnauthenticatedError("authorization must be `Bearer <api key>`");
  }
  const absl::string_view key = absl::StripLeadingAsciiWhitespace(value.substr(kBearer.size()));
  std::string key_sha256 = ApiKeySha256Hex(key);
  auto it = config.tenant_by_key_sha256.find(key_sha256);
  if (it == config.tenant_by_key_sha256.end()) {
    return absl::UnauthenticatedError("unknown API key");
  }
  return Caller{it->second, std::move(key_sha256)};
}

absl::Status ValidateGenerateRequest(const v1::GenerateRequest& request) {
  if (request.model().empty()) return absl::InvalidArgumentError("model is required");
  switch (request.input_case()) {
    case v1::GenerateRequest::kChat:
      if (request.chat().messages().empty()) {
        return absl::InvalidArgumentError("chat.messages must not be empty");
      }
      return absl::OkStatus();
    case v1::GenerateRequest::kPrompt:
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("one of chat or prompt is required");
  }
}

std::shared_ptr<RequestHandle> Pipeline::Generate(const IngressInfo& info,
                                                  const v1::GenerateRequest& request, bool stream,
                                                  GenerateSink* sink) {
  Admission admission = Admit(*snapshots_, info, request.model(), ValidateGenerateRequest(request));
  if (!admission.status.ok()) {
    v1::GenerateResponse final;
    final.set_request_id(std::move(admission.request_id));
    sink->OnFinish(admission.status, std::move(final));
    return Noop();
  }
  if (pipeline_internal::UsesCache(admission, request)) {
    return pipeline_internal::GenerateThroughCache(std::move(admission), request, stream, sink);
  }
  const PromptTokens prompt = CountPrompt(admission.tokenizer, request);
  absl::StatusOr<BudgetHold> reservation = ReserveBudget(
      admission,
      WorstCaseNanoUsd(admission.route.model->prices, prompt.tokens,
                       MaxOutputTokens(admission, request.params().max_tokens(), prompt.tokens)));
  if (!reservation.ok()) {
    v1::GenerateResponse final;
    final.set_request_id(std::move(admission.request_id));
    sink->OnFinish(reservation.status(), std::move(final));
    return Noop();
  }
  return pipeline_internal::StartGenerateRun(std::move(admission), stream, sink, prompt,
                                             *std::move(reservation), request,
                                             v1::CACHE_STATUS_MISS);
}

void Pipeline::Embed(const IngressInfo& info, const v1::EmbedRequest& request, EmbedDone done) {
  Admission admission = Admit(*snapshots_, info, request.model(), ValidateEmbedRequest(request));
  if (!admission.status.ok()) {
    v1::EmbedResponse response;
    response.set_request_id(std::move(admission.request_id));
    done(admission.status, std::move(response));
    return;
  }
  const PromptTokens inputs = CountInputs(admission.tokenizer, request);
  absl::StatusOr<BudgetHold> reservation =
      ReserveBudget(admission, WorstCaseNanoUsd(admission.route.model->prices, inputs.tokens, 0));
  if (!reservation.ok()) {
    v1::EmbedResponse response;
    response.set_request_id(std::move(admission.request_id));
    done(reservation.status(), std::move(response));
    return;
  }
  std::make_shared<EmbedRun>(std::move(admission), request, std::move(done), inputs,
                             *std::move(reservation))
      ->Start();
}

}  // namespace tollgate
