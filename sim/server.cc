#include "sim/server.h"

#include <atomic>
#include <deque>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "proxy/common/grpc_status.h"

namespace tollgate::sim {
namespace {

// absl and gRPC share the canonical code numbering.
// The engine request behind one Generate RPC. Keeps the reactor alive while gRPC or the engine
// may still call into it (one reference for gRPC until OnDone, one for Start until Submit has
// returned, one per running on_done), and routes a cancel to the engine request even when it
// arrives before Submit has returned the id. Thread-safe.
class EngineCall {
 public:
  EngineCall(const EngineCall&) = delete;
  EngineCall& operator=(const EngineCall&) = delete;

 protected:
  explicit EngineCall(SimEngine* engine) : engine_(engine), handle_(engine) {}
  virtual ~EngineCall() = default;

  // Called in order on one thread at a time; OnEngineDone exactly once, last.
  virtual void OnChunk(v1::GenerateResponse chunk) = 0;
  virtual void OnEngineDone(const absl::Status& status, v1::GenerateResponse last) = 0;

  // Submits the request. Call once, last thing in the RPC method.
  void Start(const v1::GenerateRequest& request) {
    SimEngine::Callbacks callbacks{
        .on_chunk = [this](v1::GenerateResponse chunk) { OnChunk(std::move(chunk)); },
        .on_done =
            [this](const absl::Status& status, v1::GenerateResponse last) {
              Ref();
              OnEngineDone(status, std::move(last));
              Unref();
            },
    };
    handle_.Submitted(
        engine_->Submit(request, ShapeForModel(request.model()), std::move(callbacks)));
    Unref();
  }

  void CancelEngineRequest() { handle_.Cancel(); }

  // gRPC's reference; call from OnDone.
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }

  SimEngine* const engine_;
  std::atomic<int> refs_{2};
  EngineRequestHandle handle_;
};

class GenerateUnaryReactor final : public grpc::ServerUnaryReactor, public EngineCall {
 public:
  GenerateUnaryReactor(SimEngine* engine, const v1::GenerateRequest& request,
                       v1::GenerateResponse* response)
      : EngineCall(engine), response_(response) {
    Start(request);
  }

  void OnCancel() override { CancelEngineRequest(); }
  void OnDone() override { Unref(); }

 private:
  void OnChunk(v1::GenerateResponse chunk) override {
    response_->mutable_text()->append(chunk.text());
  }
  void OnEngineDone(const absl::Status& status, v1::GenerateResponse last) override {
    if (status.ok()) {
      response_->set_finish_reason(last.finish_reason());
      *response_->mutable_usage() = last.usage();
      response_->set_backend(std::string(kSimBackendName));
    }
    Finish(ToGrpcStatus(status));
  }

  v1::GenerateResponse* const response_;  // owned by gRPC; written by the engine's callbacks
};

// Queues the engine's messages and keeps exactly one write outstanding; finishes once the queue
// has drained after the engine's on_done. StartWrite and Finish are called without mu_ held.
class GenerateStreamReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                                    public EngineCall {
 public:
  GenerateStreamReactor(SimEngine* engine, const v1::GenerateRequest& request)
      : EngineCall(engine) {
    Start(request);
  }

  void OnWriteDone(bool ok) override {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      queue_.pop_front();
      writing_ = false;
      if (!ok) {
        broken_ = true;
        queue_.clear();
      }
      action = NextActionLocked();
    }
    if (!ok) CancelEngineRequest();
    Perform(action);
  }
  void OnCancel() override { CancelEngineRequest(); }
  void OnDone() override { Unref(); }

 private:
  struct Action {
    const v1::GenerateResponse* write = nullptr;
    std::optional<grpc::Status> finish;
  };

  void OnChunk(v1::GenerateResponse chunk) override { Push(std::move(chunk), std::nullopt); }
  void OnEngineDone(const absl::Status& status, v1::GenerateResponse last) override {
    std::optional<v1::GenerateResponse> message;
    if (status.ok()) message = std::move(last);
    Push(std::move(message), ToGrpcStatus(status));
  }

  void Push(std::optional<v1::GenerateResponse> message, std::optional<grpc::Status> final) {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      if (message.has_value() && !broken_) {
        message->set_backend(std::string(kSimBackendName));
        queue_.push_back(*std::move(message));
      }
      if (final.has_value()) final_status_ = std::move(final);
      action = NextActionLocked();
    }
    Perform(action);
  }

  Action NextActionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Action action;
    if (writing_) return action;
    if (!queue_.empty()) {
      writing_ = true;
      action.write = &queue_.front();  // deque: stays put while later messages are appended
    } else if (final_status_.has_value() && !finish_called_) {
      finish_called_ = true;
      action.finish = *final_status_;
    }
    return action;
  }

  void Perform(const Action& action) {
    if (action.write != nullptr) {
      StartWrite(action.write);
    } else if (action.finish.has_value()) {
      Finish(*action.finish);
    }
  }

  absl::Mutex mu_;
  std::deque<v1::GenerateResponse> queue_ ABSL_GUARDED_BY(mu_);  // front is being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a write failed; drop further messages
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerUnaryReactor* SimService::Generate(grpc::CallbackServerContext* /*context*/,
                                               const v1::GenerateRequest* request,
                                               v1::GenerateResponse* response) {
  return new GenerateUnaryReactor(engine_, *request, response);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* SimService::GenerateStream(
    grpc::CallbackServerContext* /*context*/, const v1::GenerateRequest* request) {
  return new GenerateStreamReactor(engine_, *request);
}

grpc::ServerUnaryReactor* SimService::Embed(grpc::CallbackServerContext* context,
                                            const v1::EmbedRequest* request,
                                            v1::EmbedResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  engine_->SubmitEmbed(*request, ShapeForModel(request->model()),
                       [reactor, response](absl::StatusOr<v1::EmbedResponse> result) {
                         if (!result.ok()) {
                           reactor->Finish(ToGrpcStatus(result.status()));
                           return;
                         }
                         *response = *std::move(result);
                         response->set_backend(std::string(kSimBackendName));
                         reactor->Finish(grpc::Status::OK);
                       });
  return reactor;
}

absl::StatusOr<SimServer> StartSimServer(const std::string& address, SimService* service) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  SimServer result;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &result.port);
  builder.RegisterService(service);
  result.server = builder.BuildAndStart();
  if (result.server == nullptr || result.port == 0) {
    return absl::UnavailableError(absl::StrCat("tollgate-sim cannot listen on ", address));
  }
  return result;
}

}  // namespace tollgate::sim
