#include "proxy/pipeline.h"

#include <atomic>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "accounting/pricing.h"

namespace tollgate {
namespace {

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

uint64_t PromptBytes(const v1::GenerateRequest& request) {
  if (request.has_chat()) {
    uint64_t bytes = 0;
    for (const v1::Message& m : request.chat().messages()) bytes += m.content().size();
    return bytes;
  }
  return request.prompt().size();
}

class NoopHandle final : public RequestHandle {
 public:
  void Cancel() override {}
};

std::shared_ptr<RequestHandle> Noop() {
  static const auto* handle = new std::shared_ptr<RequestHandle>(std::make_shared<NoopHandle>());
  return *handle;
}

absl::Status ClientStatus(const absl::Status& status, absl::Time deadline) {
  if (status.code() == absl::StatusCode::kCancelled && absl::Now() >= deadline) {
    return absl::DeadlineExceededError("deadline exceeded");
  }
  return status;
}

// One generation in flight. Backend events for it arrive serialised (GenerateObserver contract);
// only Cancel() can race with them, and it touches nothing but `mu_`-guarded state.
class GenerateRun final : public GenerateObserver,
                          public RequestHandle,
                          public std::enable_shared_from_this<GenerateRun> {
 public:
  GenerateRun(std::shared_ptr<const Snapshot> snapshot, Route route, size_t tenant_index,
              size_t model_index, std::string request_id, const IngressInfo& info, bool stream,
              GenerateSink* sink, uint64_t prompt_bytes)
      : snapshot_(std::move(snapshot)),
        route_(std::move(route)),
        tenant_index_(tenant_index),
        model_index_(model_index),
        request_id_(std::move(request_id)),
        received_(info.received),
        deadline_(info.deadline),
        stream_(stream),
        sink_(sink),
        prompt_bytes_(prompt_bytes) {}

  void Start(const v1::GenerateRequest& request) {
    GenerateCall call;
    call.request = request;
    call.request.set_model(route_.model->backend_model);
    call.deadline = deadline_;
    backend_start_ = absl::Now();
    std::shared_ptr<BackendCall> handle =
        route_.backend->Generate(std::move(call), shared_from_this());
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      call_ = handle;
      cancelled = cancelled_;
    }
    if (cancelled) handle->Cancel();
  }

  void Cancel() override {
    std::shared_ptr<BackendCall> call;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      call = call_;
    }
    if (call != nullptr) call->Cancel();
  }

  void OnMessage(const v1::GenerateResponse& message) override {
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
    if (first_token_ == absl::InfiniteFuture()) first_token_ = absl::Now();
    output_bytes_ += message.text().size();
    if (!stream_) {
      text_.append(message.text());
      return;
    }
    v1::GenerateResponse delta;
    delta.set_text(message.text());
    if (!sent_first_delta_) {
      sent_first_delta_ = true;
      delta.set_request_id(request_id_);
      delta.set_backend(route_.backend->name());
    }
    sink_->OnDelta(std::move(delta));
  }

  void OnDone(const absl::Status& status) override {
    const absl::Time backend_done = absl::Now();
    v1::GenerateResponse final;
    *final.mutable_usage() = ChargedUsage();
    *final.mutable_cost() = PriceUsage(route_.model->prices, final.usage());
    final.set_text(std::move(text_));
    final.set_finish_reason(finish_reason_);
    final.set_cache_status(v1::CACHE_STATUS_MISS);
    final.set_backend(route_.backend->name());
    final.set_request_id(request_id_);

    const absl::Status client_status = ClientStatus(status, deadline_);
    RequestOutcome outcome;
    outcome.code = client_status.code();
    outcome.usage = final.usage();
    outcome.cost_nano_usd = final.cost().total_nano_usd();
    const absl::Time now = absl::Now();
    outcome.duration = now - received_;
    outcome.overhead = (backend_start_ - received_) + (now - backend_done);
    outcome.time_to_first_token =
        first_token_ == absl::InfiniteFuture() ? absl::Seconds(-1) : first_token_ - received_;
    snapshot_->metrics->Record(tenant_index_, model_index_, outcome);
    sink_->OnFinish(client_status, std::move(final));
  }

 private:
  // Reported usage when the backend finished and said it; otherwise what was generated before the
  // cut, estimated, and nothing at all when the backend never answered.
  v1::Usage ChargedUsage() const {
    if (has_final_usage_) return final_usage_;
    v1::Usage usage;
    if (!received_any_) return usage;
    usage.set_input_tokens(reported_input_ > 0 ? reported_input_ : EstimateTokens(prompt_bytes_));
    usage.set_cached_input_tokens(reported_cached_input_);
    usage.set_output_tokens(EstimateTokens(output_bytes_));
    usage.set_source(v1::USAGE_SOURCE_ESTIMATED);
    return usage;
  }

  const std::shared_ptr<const Snapshot> snapshot_;
  const Route route_;
  const size_t tenant_index_;
  const size_t model_index_;
  const std::string request_id_;
  const absl::Time received_;
  const absl::Time deadline_;
  const bool stream_;
  GenerateSink* const sink_;
  const uint64_t prompt_bytes_;

  absl::Mutex mu_;
  std::shared_ptr<BackendCall> call_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;

  // Touched only by the serialised backend events (and Start, before any of them).
  absl::Time backend_start_;
  absl::Time first_token_ = absl::InfiniteFuture();
  bool received_any_ = false;
  bool sent_first_delta_ = false;
  bool has_final_usage_ = false;
  v1::Usage final_usage_;
  uint64_t reported_input_ = 0;
  uint64_t reported_cached_input_ = 0;
  uint64_t output_bytes_ = 0;
  v1::FinishReason finish_reason_ = v1::FINISH_REASON_UNSPECIFIED;
  std::string text_;
};

// Records a request that never reached a backend.
void RecordRejected(const Snapshot& snapshot, size_t tenant_index, size_t model_index,
                    const absl::Status& status, absl::Time received) {
  RequestOutcome outcome;
  outcome.code = status.code();
  outcome.duration = absl::Now() - received;
  outcome.overhead = outcome.duration;
  outcome.time_to_first_token = absl::Seconds(-1);
  snapshot.metrics->Record(tenant_index, model_index, outcome);
}

}  // namespace

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
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  constexpr absl::string_view kBearer = "bearer ";
  if (value.empty()) {
    return absl::UnauthenticatedError("missing `authorization: Bearer <api key>` metadata");
  }
  if (value.size() <= kBearer.size() || !absl::StartsWithIgnoreCase(value, kBearer)) {
    return absl::UnauthenticatedError("authorization must be `Bearer <api key>`");
  }
  const absl::string_view key = absl::StripLeadingAsciiWhitespace(value.substr(kBearer.size()));
  auto it = config.tenant_by_key_sha256.find(ApiKeySha256Hex(key));
  if (it == config.tenant_by_key_sha256.end()) {
    return absl::UnauthenticatedError("unknown API key");
  }
  return it->second;
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
  std::shared_ptr<const Snapshot> snapshot = snapshots_->Get();
  const MetricsTable& metrics = *snapshot->metrics;
  std::string request_id = NewRequestId(info.request_id);
  const size_t model_index = metrics.ModelIndex(request.model());
  size_t tenant_index = metrics.TenantIndex(kOtherLabel);

  absl::StatusOr<Route> route = absl::UnknownError("unreached");
  absl::Status status = [&]() -> absl::Status {
    absl::StatusOr<std::string> tenant = Authenticate(*snapshot->config, info.authorization);
    if (!tenant.ok()) return tenant.status();
    tenant_index = metrics.TenantIndex(*tenant);
    if (absl::Status valid = ValidateGenerateRequest(request); !valid.ok()) return valid;
    route = snapshot->router->Resolve(request.model());
    return route.status();
  }();
  if (!status.ok()) {
    RecordRejected(*snapshot, tenant_index, model_index, status, info.received);
    v1::GenerateResponse final;
    final.set_request_id(std::move(request_id));
    sink->OnFinish(status, std::move(final));
    return Noop();
  }
  auto run = std::make_shared<GenerateRun>(std::move(snapshot), *std::move(route), tenant_index,
                                           model_index, std::move(request_id), info, stream, sink,
                                           PromptBytes(request));
  run->Start(request);
  return run;
}

void Pipeline::Embed(const IngressInfo& info, const v1::EmbedRequest& request, EmbedDone done) {
  std::shared_ptr<const Snapshot> snapshot = snapshots_->Get();
  const MetricsTable& metrics = *snapshot->metrics;
  std::string request_id = NewRequestId(info.request_id);
  const size_t model_index = metrics.ModelIndex(request.model());
  size_t tenant_index = metrics.TenantIndex(kOtherLabel);

  absl::StatusOr<Route> route = absl::UnknownError("unreached");
  absl::Status status = [&]() -> absl::Status {
    absl::StatusOr<std::string> tenant = Authenticate(*snapshot->config, info.authorization);
    if (!tenant.ok()) return tenant.status();
    tenant_index = metrics.TenantIndex(*tenant);
    if (request.model().empty()) return absl::InvalidArgumentError("model is required");
    if (request.inputs().empty()) return absl::InvalidArgumentError("inputs must not be empty");
    route = snapshot->router->Resolve(request.model());
    return route.status();
  }();
  if (!status.ok()) {
    RecordRejected(*snapshot, tenant_index, model_index, status, info.received);
    v1::EmbedResponse response;
    response.set_request_id(std::move(request_id));
    done(status, std::move(response));
    return;
  }
  uint64_t input_bytes = 0;
  for (const std::string& input : request.inputs()) input_bytes += input.size();

  EmbedCall call;
  call.request = request;
  call.request.set_model(route->model->backend_model);
  call.deadline = info.deadline;
  const absl::Time backend_start = absl::Now();
  const absl::Time received = info.received;
  const absl::Time deadline = info.deadline;
  Route r = *std::move(route);
  std::shared_ptr<Backend> backend = r.backend;
  backend->Embed(std::move(call), [snapshot = std::move(snapshot), r, tenant_index, model_index,
                                   request_id = std::move(request_id), received, deadline,
                                   backend_start, input_bytes, done = std::move(done)](
                                      absl::StatusOr<v1::EmbedResponse> result) mutable {
    const absl::Time backend_done = absl::Now();
    v1::EmbedResponse response;
    absl::Status status = ClientStatus(result.status(), deadline);
    if (result.ok()) {
      response = *std::move(result);
      if (response.usage().source() == v1::USAGE_SOURCE_UNSPECIFIED) {
        response.mutable_usage()->set_input_tokens(EstimateTokens(input_bytes));
        response.mutable_usage()->set_source(v1::USAGE_SOURCE_ESTIMATED);
      }
    }
    *response.mutable_cost() = PriceUsage(r.model->prices, response.usage());
    response.set_cache_status(v1::CACHE_STATUS_MISS);
    response.set_backend(r.backend->name());
    response.set_request_id(request_id);

    RequestOutcome outcome;
    outcome.code = status.code();
    outcome.usage = response.usage();
    outcome.cost_nano_usd = response.cost().total_nano_usd();
    const absl::Time now = absl::Now();
    outcome.duration = now - received;
    outcome.overhead = (backend_start - received) + (now - backend_done);
    outcome.time_to_first_token = absl::Seconds(-1);
    snapshot->metrics->Record(tenant_index, model_index, outcome);
    done(status, std::move(response));
  });
}

}  // namespace tollgate
