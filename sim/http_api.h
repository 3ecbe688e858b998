// tollgate-sim's HTTP API: OpenAI- and Anthropic-compatible endpoints served from a SimEngine,
// plus vLLM-style Prometheus metrics, with fault knobs for testing HTTP clients.
//
//   SimHttpApi api(&engine, {.served_model_name = "llama-3-8b"});
//   auto server = http::HttpServer::Start({.address = "127.0.0.1:0"}, api.Handler());
//
// Endpoints:
//   POST /v1/chat/completions, /v1/completions, /v1/embeddings   OpenAI shapes; "stream": true
//        answers text/event-stream (one chunk per token, a usage chunk with
//        stream_options.include_usage, then "data: [DONE]"). /v1/completions also takes an
//        array of prompts (not streamed): one choice per prompt, "index" = its position, one
//        usage summed over the prompts (SimEngine::SubmitBatch: in static mode one call)
//   POST /v1/messages                                            Anthropic shapes and stream events
//   GET  /v1/models, /health, /metrics
// Request bodies are read as JSON whatever their Content-Type says (clients that send none or
// text/plain are tolerated; no 415). Errors use the matching API's error shape. The model shape of
// a request comes from ShapeForModel(model); any model name is accepted. Fault and usage knobs:
// see sim/http_faults.h.
//
// Thread-safe: the handler may run on any io thread. The engine is not owned and, like the
// SimHttpApi, must outlive the HTTP server (shut the server down first).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "proxy/http/server/http_server.h"
#include "sim/delay_queue.h"
#include "sim/engine.h"
#include "sim/http_faults.h"

namespace tollgate::sim {

struct HttpApiOptions {
  // Listed by /v1/models and used as the model_name label of /metrics.
  std::string served_model_name = "llama-3-8b";
  FaultDefaults faults;
};

class SimHttpApi {
 public:
  SimHttpApi(SimEngine* engine, HttpApiOptions options);
  SimHttpApi(const SimHttpApi&) = delete;
  SimHttpApi& operator=(const SimHttpApi&) = delete;

  // The request handler for an http::HttpServer; it refers to this object.
  http::Handler Handler();
  void Handle(http::Request request, std::shared_ptr<http::ResponseWriter> writer);

  // For http::ServerOptions::error_body: errors the HTTP server answers itself (malformed HTTP,
  // bodies over the limit) in OpenAI's error shape.
  static std::pair<std::string, std::string> ServerErrorBody(int status, std::string_view message);

  // The Prometheus text exposition of /metrics. vllm:kv_cache_usage_perc is the engine's KV bytes
  // over its kv_capacity_bytes (0 when that is unbounded).
  std::string MetricsText() const;

 private:
  enum class Api { kChat, kCompletions, kEmbeddings, kMessages };

  void HandleApi(Api api, const http::Request& request,
                 std::shared_ptr<http::ResponseWriter> writer);
  void HandleEmbeddings(const http::Request& request, const RequestFaults& faults,
                        std::shared_ptr<http::ResponseWriter> writer);
  // Runs `fn` after `delay` on the delay queue, or now when there is none.
  void AfterDelay(absl::Duration delay, std::function<void()> fn);
  std::string NextId(std::string_view prefix);

  SimEngine* const engine_;
  const HttpApiOptions options_;
  FaultPlanner faults_;
  std::atomic<uint64_t> next_id_{1};
  DelayQueue delays_;
};

}  // namespace tollgate::sim
