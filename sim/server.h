// The gRPC face of the simulator: tollgate.v1.Inference served from a SimEngine.
//
//   SimEngine engine(options);
//   SimService service(&engine);
//   absl::StatusOr<SimServer> server = StartSimServer("127.0.0.1:0", &service);
//   ... server->port ...
//   server->server->Shutdown();  // before `engine` and `service` go away
//
// Every RPC is a self-owning callback reactor; nothing blocks inside a reaction. The model shape
// of a request comes from ShapeForModel(request.model()); every response carries
// backend = "tollgate-sim". Engine errors map one to one onto gRPC codes. SimService holds no
// state of its own and is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "sim/engine.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate::sim {

inline constexpr absl::string_view kSimBackendName = "tollgate-sim";

class SimService final : public v1::Inference::CallbackService {
 public:
  // `engine` is not owned; it must outlive every RPC (shut the server down before destroying it).
  explicit SimService(SimEngine* engine) : engine_(engine) {}

  // The whole text in one response, with finish_reason and usage.
  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const v1::GenerateRequest* request,
                                     v1::GenerateResponse* response) override;
  // One message per token; the last one has empty text, finish_reason and usage. A client
  // cancel cancels the engine request.
  grpc::ServerWriteReactor<v1::GenerateResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* context,
                                  const v1::EmbedRequest* request,
                                  v1::EmbedResponse* response) override;

 private:
  SimEngine* const engine_;
};

struct SimServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port, also when the address asked for port 0
};

// Builds and starts a server for `service` on `address` ("host:port", port 0 picks a free one),
// with the standard health service and server reflection. UNAVAILABLE when it cannot listen.
// `service` is not owned and must outlive the server.
absl::StatusOr<SimServer> StartSimServer(const std::string& address, SimService* service);

}  // namespace tollgate::sim
