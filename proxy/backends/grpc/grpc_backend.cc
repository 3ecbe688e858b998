#include "proxy/backends/grpc/grpc_backend.h"

#include <utility>

#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proxy/common/grpc_status.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate {
namespace {

std::chrono::system_clock::time_point CallDeadline(absl::Time client_deadline,
                                                   absl::Duration timeout) {
  return absl::ToChronoTime(std::min(client_deadline, absl::Now() + timeout));
}

// One streaming call. Owns itself through `self_` from StartCall until OnDone, so that Cancel() on
// a handle the pipeline still holds never touches a destroyed reactor.
class StreamCall final : public grpc::ClientReadReactor<v1::GenerateResponse>, public BackendCall {
 public:
  StreamCall(std::shared_ptr<GenerateObserver> observer) : observer_(std::move(observer)) {}

  void Start(const std::shared_ptr<StreamCall>& self, v1::Inference::Stub* stub, GenerateCall call,
             absl::Duration timeout) {
    self_ = self;
    request_ = std::move(call.request);
    context_.set_deadline(CallDeadline(call.deadline, timeout));
    stub->async()->GenerateStream(&context_, &request_, this);
    StartRead(&message_);
    StartCall();
  }

  void Cancel() override { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows with the status
    observer_->OnMessage(message_);
    StartRead(&message_);
  }

  void OnDone(const grpc::Status& status) override {
    observer_->OnDone(BackendErrorForClient(FromGrpcStatus(status)));
    observer_.reset();
    self_.reset();  // may delete this
  }

 private:
  std::shared_ptr<StreamCall> self_;
  std::shared_ptr<GenerateObserver> observer_;
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateResponse message_;
};

// One unary call; owns itself like StreamCall.
class UnaryCall final : public BackendCall {
 public:
  explicit UnaryCall(std::shared_ptr<GenerateObserver> observer) : observer_(std::move(observer)) {}

  void Start(const std::shared_ptr<UnaryCall>& self, v1::Inference::Stub* stub, GenerateCall call,
             absl::Duration timeout) {
    self_ = self;
    request_ = std::move(call.request);
    context_.set_deadline(CallDeadline(call.deadline, timeout));
    stub->async()->Generate(&context_, &request_, &response_, [this](const grpc::Status& status) {
      if (status.ok()) observer_->OnMessage(response_);
      observer_->OnDone(BackendErrorForClient(FromGrpcStatus(status)));
      observer_.reset();
      self_.reset();  // may delete this
    });
  }

  void Cancel() override { context_.TryCancel(); }

 private:
  std::shared_ptr<UnaryCall> self_;
  std::shared_ptr<GenerateObserver> observer_;
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateResponse response_;
};

class GrpcBackend final : public Backend {
 public:
  GrpcBackend(std::string name, const std::string& address, absl::Duration timeout)
      : name_(std::move(name)),
        timeout_(timeout),
        stub_(v1::Inference::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {}

  const std::string& name() const override { return name_; }

  std::shared_ptr<BackendCall> Generate(GenerateCall call,
                                        std::shared_ptr<GenerateObserver> observer) override {
    if (!call.client_streams) {
      auto unary = std::make_shared<UnaryCall>(std::move(observer));
      unary->Start(unary, stub_.get(), std::move(call), timeout_);
      return unary;
    }
    auto stream = std::make_shared<StreamCall>(std::move(observer));
    stream->Start(stream, stub_.get(), std::move(call), timeout_);
    return stream;
  }

  void Embed(EmbedCall call, EmbedCallback done) override {
    struct State {
      grpc::ClientContext context;
      v1::EmbedRequest request;
      v1::EmbedResponse response;
      EmbedCallback done;
    };
    auto* state = new State;
    state->request = std::move(call.request);
    state->done = std::move(done);
    state->context.set_deadline(CallDeadline(call.deadline, timeout_));
    stub_->async()->Embed(&state->context, &state->request, &state->response,
                          [state](const grpc::Status& status) {
                            std::unique_ptr<State> owned(state);
                            if (status.ok()) {
                              owned->done(std::move(owned->response));
                            } else {
                              owned->done(BackendErrorForClient(FromGrpcStatus(status)));
                            }
                          });
  }

 private:
  const std::string name_;
  const absl::Duration timeout_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

}  // namespace

std::unique_ptr<Backend> NewGrpcBackend(std::string name, const std::string& address,
                                        absl::Duration timeout) {
  return std::make_unique<GrpcBackend>(std::move(name), address, timeout);
}

}  // namespace tollgate
