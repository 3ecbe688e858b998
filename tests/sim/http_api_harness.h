// A SimEngine with tollgate-sim's HTTP API on 127.0.0.1:0, and request helpers, for the
// simulator's HTTP tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proxy/http/server/http_server.h"
#include "sim/engine.h"
#include "sim/http_api.h"
#include "sim/presets.h"
#include "tests/http/raw_http_client.h"

namespace tollgate::sim {

using http::testing::HeaderList;
using http::testing::RawHttpClient;
using http::testing::RawResponse;

class HttpApiHarness {
 public:
  explicit HttpApiHarness(double time_scale = 0, FaultDefaults faults = {})
      : HttpApiHarness(DefaultEngineOptions(time_scale), faults) {}
  HttpApiHarness(const EngineOptions& engine_options, FaultDefaults faults) {
    engine_ = std::make_unique<SimEngine>(engine_options);
    HttpApiOptions options;
    options.faults = faults;
    api_ = std::make_unique<SimHttpApi>(engine_.get(), options);
    http::ServerOptions server_options;
    server_options.error_body = &SimHttpApi::ServerErrorBody;
    absl::StatusOr<std::unique_ptr<http::HttpServer>> server =
        http::HttpServer::Start(std::move(server_options), api_->Handler());
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) server_ = *std::move(server);
  }
  ~HttpApiHarness() {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
  }

  // As tollgate-sim starts by default: one A100-80GB serving Llama-3-8B (its KV cache what the
  // weights leave), at `time_scale`.
  static EngineOptions DefaultEngineOptions(double time_scale) {
    EngineOptions options;
    options.gpu = *FindGpu("a100-80gb");
    options.time_scale = time_scale;
    options.kv_capacity_bytes = static_cast<uint64_t>(
        KvCapacityBytesFor(options.gpu, options.gpu_count, ShapeForModel("llama-3-8b")));
    return options;
  }

  SimEngine& engine() { return *engine_; }
  int port() const { return server_->port(); }

  RawResponse Post(const std::string& path, const std::string& body,
                   const HeaderList& headers = {}) {
    HeaderList all = headers;
    all.emplace_back("Content-Type", "application/json");
    absl::StatusOr<RawResponse> response = http::testing::Fetch(port(), "POST", path, all, body);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *std::move(response) : RawResponse{};
  }
  RawResponse Get(const std::string& path) {
    absl::StatusOr<RawResponse> response = http::testing::Fetch(port(), "GET", path);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *std::move(response) : RawResponse{};
  }

 private:
  std::unique_ptr<SimEngine> engine_;
  std::unique_ptr<SimHttpApi> api_;
  std::unique_ptr<http::HttpServer> server_;
};

// A chat request body for `model` with one user message.
inline std::string ChatBody(const std::string& content, int max_tokens, bool stream,
                            bool include_usage = false) {
  return absl::StrCat(R"({"model":"llama-3-8b","messages":[{"role":"user","content":")", content,
                      R"("}],"max_tokens":)", max_tokens, R"(,"stream":)",
                      stream ? "true" : "false",
                      include_usage ? R"(,"stream_options":{"include_usage":true})" : "", "}");
}

inline std::string MessagesBody(const std::string& content, int max_tokens, bool stream) {
  return absl::StrCat(R"({"model":"claude-sim","max_tokens":)", max_tokens,
                      R"(,"system":"Be brief.","messages":[{"role":"user","content":")", content,
                      R"("}],"stream":)", stream ? "true" : "false", "}");
}

}  // namespace tollgate::sim
