// Backend kind `anthropic`: the Anthropic Messages API over HTTP/1.1 with keep-alive and TLS.
//
//   absl::StatusOr<std::unique_ptr<Backend>> backend = NewAnthropicBackend(config);
//
// Every generation goes to <path_prefix>/v1/messages with `x-api-key: <api_key>` (when the config
// has a key) and `anthropic-version: 2023-06-01`. A streamed client call is streamed from the
// backend: the input counts of message_start are reported at once, so a stream cut short is
// still charged its real input; a unary call is one non-streamed request. Each call is bounded by
// min(its deadline, now + config.timeout). Anthropic has no embeddings API: Embed is UNIMPLEMENTED.
//
// Errors map as for the OpenAI backend (HTTP status → code, payloads for retries); error events
// inside a stream map by their type (overloaded_error → UNAVAILABLE, rate_limit_error →
// RESOURCE_EXHAUSTED, ...).
//
// Thread-safe; calls may outlive the backend.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "proxy/backends/backend.h"
#include "proxy/config/config.h"
#include "proxy/http/client/http_client.h"

namespace tollgate {

// INVALID_ARGUMENT for a config that is not kind anthropic or has no usable base_url.
absl::StatusOr<std::unique_ptr<Backend>> NewAnthropicBackend(const BackendConfig& config);

// The same with client settings chosen by the caller (tests trust their own TLS certificate
// here); max_connections still comes from `config`.
absl::StatusOr<std::unique_ptr<Backend>> NewAnthropicBackend(const BackendConfig& config,
                                                             http::HttpClientOptions options);

}  // namespace tollgate
