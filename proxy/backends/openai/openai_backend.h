// Backend kind `openai`: the OpenAI API, or any server that speaks it (vLLM, llama.cpp, TGI, ...),
// over HTTP/1.1 with keep-alive and TLS.
//
//   absl::StatusOr<std::unique_ptr<Backend>> backend = NewOpenAiBackend(config);
//
// Chat input goes to <path_prefix>/v1/chat/completions, a prompt to <path_prefix>/v1/completions,
// embeddings to <path_prefix>/v1/embeddings, with `authorization: Bearer <api_key>` when the
// config has a key. A streamed client call is streamed from the backend (stream_options.
// include_usage is always set, so the stream ends with the usage); a unary one is one
// non-streamed request. A batch of prompts (CompleteBatch) is one non-streamed /v1/completions
// request with `prompt` as an array. Each call is bounded by min(its deadline, now +
// config.timeout).
//
// Errors: HTTP 400 → INVALID_ARGUMENT, 401/403 → PERMISSION_DENIED (logged once; the client sees
// INTERNAL), 404 → NOT_FOUND, 429 → RESOURCE_EXHAUSTED, 5xx and transport failures →
// UNAVAILABLE, a 2xx that is neither JSON nor an event stream or is malformed → INTERNAL. The
// statuses carry the payloads of proxy/http/client/http_status.h and http_client.h (HTTP status,
// retry-after, before-response) for the pipeline's retry decisions.
//
// Thread-safe; calls may outlive the backend.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "proxy/backends/backend.h"
#include "proxy/config/config.h"
#include "proxy/http/client/http_client.h"

namespace tollgate {

// INVALID_ARGUMENT for a config that is not kind openai or has no usable base_url.
absl::StatusOr<std::unique_ptr<Backend>> NewOpenAiBackend(const BackendConfig& config);

// The same with client settings chosen by the caller (tests trust their own TLS certificate
// here); max_connections still comes from `config`.
absl::StatusOr<std::unique_ptr<Backend>> NewOpenAiBackend(const BackendConfig& config,
                                                          http::HttpClientOptions options);

}  // namespace tollgate
