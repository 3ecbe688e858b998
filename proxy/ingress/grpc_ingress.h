// gRPC ingress: tollgate.v1.Inference served with the callback API. Each call is a self-owning
// reactor that hands the request to the Pipeline and relays its results; nothing blocks inside a
// reaction. Thread-safe; the pipeline must outlive the service.
#pragma once

#include "proxy/pipeline.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate {

class InferenceService final : public v1::Inference::CallbackService {
 public:
  explicit InferenceService(Pipeline* pipeline) : pipeline_(pipeline) {}

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const v1::GenerateRequest* request,
                                     v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<v1::GenerateResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* context,
                                  const v1::EmbedRequest* request,
                                  v1::EmbedResponse* response) override;

 private:
  Pipeline* const pipeline_;
};

}  // namespace tollgate
