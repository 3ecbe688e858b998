#include "proxy/ingress/grpc_ingress.h"

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "proxy/common/grpc_status.h"
#include "proxy/common/status_payloads.h"

namespace tollgate {
namespace {

absl::string_view Metadata(const grpc::CallbackServerContext* context, absl::string_view key) {
  const auto& md = context->client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return {it->second.data(), it->second.size()};
}

IngressInfo InfoFor(const grpc::CallbackServerContext* context) {
  IngressInfo info;
  info.authorization = Metadata(context, "authorization");
  info.request_id = Metadata(context, "x-request-id");
  const auto deadline = context->deadline();
  if (deadline < std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    info.deadline = absl::FromChrono(deadline);
  }
  return info;
}

// Cost and request id travel as trailing metadata too, so a client sees what a failed or cut-off
// call was charged.
void AddAccountingTrailers(grpc::CallbackServerContext* context, const v1::Cost& cost,
                           const std::string& request_id, const absl::Status& status) {
  context->AddTrailingMetadata("x-tollgate-cost-nano-usd", absl::StrCat(cost.total_nano_usd()));
  if (!request_id.empty()) context->AddTrailingMetadata("x-request-id", request_id);
  if (const auto retry_after = status.GetPayload(kRetryAfterPayload); retry_after.has_value()) {
    context->AddTrailingMetadata("retry-after", std::string(*retry_after));
  }
}

class UnaryGenerate final : public grpc::ServerUnaryReactor, public GenerateSink {
 public:
  UnaryGenerate(Pipeline* pipeline, grpc::CallbackServerContext* context,
                const v1::GenerateRequest* request, v1::GenerateResponse* response)
      : context_(context), response_(response) {
    handle_ = pipeline->Generate(InfoFor(context), *request, /*stream=*/false, this);
  }

  void OnDelta(v1::GenerateResponse) override {}

  void OnFinish(const absl::Status& status, v1::GenerateResponse final) override {
    AddAccountingTrailers(context_, final.cost(), final.request_id(), status);
    if (status.ok()) *response_ = std::move(final);
    Finish(ToGrpcStatus(status));
  }

  void OnCancel() override { handle_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  grpc::CallbackServerContext* const context_;
  v1::GenerateResponse* const response_;
  std::shared_ptr<RequestHandle> handle_;
};

// Relays deltas with exactly one write outstanding. The pipeline's calls and gRPC's reactions
// arrive on different threads, so the queue is guarded; gRPC is only called with the lock released
// (a deque keeps the address of its front stable while other threads push behind it).
class StreamGenerate final : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                             public GenerateSink {
 public:
  StreamGenerate(Pipeline* pipeline, grpc::CallbackServerContext* context,
                 const v1::GenerateRequest* request)
      : context_(context) {
    handle_ = pipeline->Generate(InfoFor(context), *request, /*stream=*/true, this);
  }

  void OnDelta(v1::GenerateResponse delta) override {
    mu_.Lock();
    Enqueue(std::move(delta));
    Proceed();  // unlocks
  }

  void OnFinish(const absl::Status& status, v1::GenerateResponse final) override {
    AddAccountingTrailers(context_, final.cost(), final.request_id(), status);
    mu_.Lock();
    // The last message carries usage and cost; after an error it is still sent when the client
    // already received text, so a cut-off stream shows what it was charged.
    if (status.ok() || final.usage().output_tokens() > 0) Enqueue(std::move(final));
    finish_status_ = ToGrpcStatus(status);
    finishing_ = true;
    Proceed();
  }

  void OnWriteDone(bool ok) override {
    mu_.Lock();
    writing_ = false;
    if (ok) {
      queue_.pop_front();
    } else {
      broken_ = true;
      queue_.clear();
    }
    Proceed();
  }

  void OnCancel() override { handle_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  void Enqueue(v1::GenerateResponse message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!broken_) queue_.push_back(std::move(message));
  }

  // Starts the next write or the finish, if due, then releases the lock.
  void Proceed() ABSL_UNLOCK_FUNCTION(mu_) {
    const v1::GenerateResponse* next = nullptr;
    bool finish = false;
    if (!writing_ && !queue_.empty()) {
      writing_ = true;
      next = &queue_.front();
    } else if (!writing_ && finishing_ && !finished_) {
      finished_ = true;
      finish = true;
    }
    mu_.Unlock();
    if (next != nullptr) StartWrite(next);
    if (finish) Finish(finish_status_);
  }

  grpc::CallbackServerContext* const context_;
  std::shared_ptr<RequestHandle> handle_;
  absl::Mutex mu_;
  std::deque<v1::GenerateResponse> queue_ ABSL_GUARDED_BY(mu_);  // front is being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_;  // written before finishing_ is set, read after
};

}  // namespace

grpc::ServerUnaryReactor* InferenceService::Generate(grpc::CallbackServerContext* context,
                                                     const v1::GenerateRequest* request,
                                                     v1::GenerateResponse* response) {
  return new UnaryGenerate(pipeline_, context, request, response);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::GenerateStream(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return new StreamGenerate(pipeline_, context, request);
}

grpc::ServerUnaryReactor* InferenceService::Embed(grpc::CallbackServerContext* context,
                                                  const v1::EmbedRequest* request,
                                                  v1::EmbedResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  pipeline_->Embed(
      InfoFor(context), *request,
      [context, reactor, response](const absl::Status& status, v1::EmbedResponse result) {
        AddAccountingTrailers(context, result.cost(), result.request_id(), status);
        if (status.ok()) *response = std::move(result);
        reactor->Finish(ToGrpcStatus(status));
      });
  return reactor;
}

}  // namespace tollgate
