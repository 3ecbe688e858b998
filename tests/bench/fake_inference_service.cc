#include "fake_inference_service.h"

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"

namespace tollgate::bench {
namespace {

using ::tollgate::v1::GenerateRequest;
using ::tollgate::v1::GenerateResponse;

// Sends kStreamMessages messages, or a failure, or nothing until cancelled; deletes itself.
class FakeStream final : public grpc::ServerWriteReactor<GenerateResponse> {
 public:
  FakeStream(bool fail, grpc::StatusCode code, bool hold) {
    if (fail) {
      Finish(grpc::Status(code, "fake failure"));
    } else if (!hold) {
      WriteNext();
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
    WriteNext();
  }
  void OnCancel() override { Finish(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (sent_ == FakeInferenceService::kStreamMessages) return Finish(grpc::Status::OK);
    ++sent_;
    response_.set_text(absl::StrCat("token", sent_));
    StartWrite(&response_);
  }

  GenerateResponse response_;
  int sent_ = 0;
};

// A unary reactor that answers only when its client cancels it.
class HeldCall final : public grpc::ServerUnaryReactor {
 public:
  void OnCancel() override { Finish(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }
};

}  // namespace

void FakeInferenceService::FailEvery(int n, grpc::StatusCode code) {
  absl::MutexLock lock(&mu_);
  fail_every_ = n;
  fail_code_ = code;
}

void FakeInferenceService::HoldCalls() {
  absl::MutexLock lock(&mu_);
  hold_ = true;
}

int64_t FakeInferenceService::GenerateCalls() const {
  absl::MutexLock lock(&mu_);
  return generate_calls_;
}

int64_t FakeInferenceService::StreamCalls() const {
  absl::MutexLock lock(&mu_);
  return stream_calls_;
}

std::vector<std::string> FakeInferenceService::Authorizations() const {
  absl::MutexLock lock(&mu_);
  return authorizations_;
}

std::vector<std::string> FakeInferenceService::Prompts() const {
  absl::MutexLock lock(&mu_);
  return prompts_;
}

FakeInferenceService::Answer FakeInferenceService::Admit(grpc::CallbackServerContext& context,
                                                         const GenerateRequest& request,
                                                         bool stream) {
  std::string authorization = "<none>";
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization.assign(it->second.data(), it->second.size());
  }
  absl::MutexLock lock(&mu_);
  ++(stream ? stream_calls_ : generate_calls_);
  authorizations_.push_back(std::move(authorization));
  prompts_.push_back(request.chat().messages_size() > 0 ? request.chat().messages(0).content()
                                                        : "");
  if (hold_) return Answer::kHold;
  const int64_t call_number = generate_calls_ + stream_calls_;
  if (fail_every_ > 0 && call_number % fail_every_ == 0) return Answer::kFail;
  return Answer::kAnswer;
}

grpc::ServerUnaryReactor* FakeInferenceService::Generate(grpc::CallbackServerContext* context,
                                                         const GenerateRequest* request,
                                                         GenerateResponse* response) {
  const Answer answer = Admit(*context, *request, /*stream=*/false);
  if (answer == Answer::kHold) return new HeldCall();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (answer == Answer::kFail) {
    absl::MutexLock lock(&mu_);
    reactor->Finish(grpc::Status(fail_code_, "fake failure"));
    return reactor;
  }
  response->set_text("fake answer");
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<GenerateResponse>* FakeInferenceService::GenerateStream(
    grpc::CallbackServerContext* context, const GenerateRequest* request) {
  const Answer answer = Admit(*context, *request, /*stream=*/true);
  absl::MutexLock lock(&mu_);
  return new FakeStream(answer == Answer::kFail, fail_code_, answer == Answer::kHold);
}

FakeInferenceServer::FakeInferenceServer() {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port);
}

FakeInferenceServer::~FakeInferenceServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

}  // namespace tollgate::bench
