// FakeInferenceService: an in-process tollgate.v1.Inference server for load-generator tests.
//
//   FakeInferenceServer server;  // listens on 127.0.0.1:<free port>
//   options.target = server.address();
//   ...
//   EXPECT_EQ(server.service().GenerateCalls(), 25);
//
// Generate answers at once with a fixed text; GenerateStream sends `kStreamMessages` messages.
// It can fail every Nth call with a chosen code, or hold every call unanswered until the client
// cancels it. It records the `authorization` metadata and the prompt of every call.
// Thread safety: internally synchronized; gRPC calls it from its own threads.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate::bench {

class FakeInferenceService final : public tollgate::v1::Inference::CallbackService {
 public:
  static constexpr int kStreamMessages = 3;

  // Calls number n, 2n, 3n, ... (1-based, Generate and GenerateStream together) fail with `code`.
  void FailEvery(int n, grpc::StatusCode code);
  // Calls are never answered; each ends when its client cancels it (e.g. at its deadline).
  void HoldCalls();

  int64_t GenerateCalls() const;
  int64_t StreamCalls() const;
  // One entry per call: the `authorization` header, or "<none>".
  std::vector<std::string> Authorizations() const;
  std::vector<std::string> Prompts() const;

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const tollgate::v1::GenerateRequest* request,
                                     tollgate::v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<tollgate::v1::GenerateResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const tollgate::v1::GenerateRequest* request) override;

 private:
  enum class Answer { kAnswer, kFail, kHold };
  // Records the call and decides how to answer it.
  Answer Admit(grpc::CallbackServerContext& context, const tollgate::v1::GenerateRequest& request,
               bool stream);

  mutable absl::Mutex mu_;
  int fail_every_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::StatusCode fail_code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  int64_t generate_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t stream_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> authorizations_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> prompts_ ABSL_GUARDED_BY(mu_);
};

// The fake, served on 127.0.0.1 at a port the kernel picks; shut down on destruction.
class FakeInferenceServer {
 public:
  FakeInferenceServer();
  ~FakeInferenceServer();

  const std::string& address() const { return address_; }
  FakeInferenceService& service() { return service_; }

 private:
  FakeInferenceService service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace tollgate::bench
