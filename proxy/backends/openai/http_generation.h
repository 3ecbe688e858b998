// What the HTTP backends (OpenAI-compatible and Anthropic) share: turning one API call's answer,
// streamed or whole, into GenerateObserver messages, and its failures into the statuses the
// pipeline expects. Each API supplies a GenerationDecoder; HttpBackendChannel does the rest.
//
//   auto channel = std::make_shared<HttpBackendChannel>(config, std::move(client),
//                                                       &openai::ErrorMessage);
//   return channel->Generate(std::move(request), std::make_unique<MyDecoder>(), observer);
//
// Messages to the observer:
// - a streamed answer: one message per text delta, as it arrives; usage a decoder wants reported
//   early (Anthropic's input counts) in a message of its own; then, once the answer has ended
//   with a finish reason, a last message with the finish reason and the usage (when reported);
// - a whole answer: one message with text, finish reason and usage.
// An answer that ends without a finish reason (cut off, or unparseable at the end) ends with
// UNAVAILABLE after whatever text arrived, so that the pipeline charges what was generated. An
// event the decoder cannot parse is skipped and counted, not fatal.
//
// Errors reach the observer through BackendErrorForClient (the backend refusing Tollgate's
// credentials becomes INTERNAL) with their payloads kept (http_status.h, http_client.h); the first
// such refusal per backend is logged.
//
// Thread safety: HttpBackendChannel is thread-safe and shared by the backend and its calls (a call
// may outlive the backend). A decoder belongs to one call and sees its events one at a time.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proxy/backends/backend.h"
#include "proxy/config/config.h"
#include "proxy/http/client/api_exchange.h"
#include "proxy/http/client/http_client.h"
#include "proxy/http/client/sse_parser.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

// What a decoder makes of one event, or of a whole answer.
struct GenerationUpdate {
  std::string text;  // a delta, or the whole text
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  std::optional<v1::Usage> usage;  // cumulative so far; replaces what came before
  bool report_usage_now = false;   // send `usage` at once, before the end
  absl::Status error;              // an error the API reported inside its answer: ends the call
};

class GenerationDecoder {
 public:
  virtual ~GenerationDecoder() = default;
  // One event of a streamed answer. An error status means the event is malformed: it is skipped.
  virtual absl::StatusOr<GenerationUpdate> DecodeEvent(const http::SseEvent& event) = 0;
  // A whole JSON answer. An error status ends the call with it.
  virtual absl::StatusOr<GenerationUpdate> DecodeBody(absl::string_view body) = 0;
};

using EmbeddingsDecoder = absl::StatusOr<v1::EmbedResponse> (*)(absl::string_view body);
// A whole answer to a batch of `prompts` prompts (one choice per prompt).
using BatchCompletionDecoder = absl::StatusOr<CompleteBatchResult> (*)(absl::string_view body,
                                                                       size_t prompts);

// Always owned by a shared_ptr (make_shared): calls keep the channel alive.
class HttpBackendChannel : public std::enable_shared_from_this<HttpBackendChannel> {
 public:
  // `config.timeout` bounds every call that has no earlier deadline (zero or less: no bound).
  HttpBackendChannel(const BackendConfig& config, std::unique_ptr<http::HttpClient> client,
                     http::ErrorMessageFn error_message);

  const std::string& backend_name() const { return backend_name_; }
  // min(call_deadline, now + timeout).
  absl::Time Deadline(absl::Time call_deadline) const;

  // A JSON POST to <base_url path prefix><path>, accepting an event stream or JSON, with the
  // API's own headers (credentials, version), then the config's extra headers, and the deadline
  // bounded by the timeout.
  http::ClientRequest JsonPost(absl::string_view path, std::string body, bool stream,
                               http::Headers api_headers, absl::Time call_deadline) const;

  // Sends `request` (its deadline already set) and reports to `observer`. `observer` is kept
  // alive until its OnDone has returned, which may happen before Generate returns.
  std::shared_ptr<BackendCall> Generate(http::ClientRequest request,
                                        std::unique_ptr<GenerationDecoder> decoder,
                                        std::shared_ptr<GenerateObserver> observer);

  // Sends `request` and answers `done` with the decoded embeddings, INTERNAL unless there is
  // exactly one per input.
  void Embed(http::ClientRequest request, EmbeddingsDecoder decode, int expected_embeddings,
             EmbedCallback done);

  // Sends `request` (a non-streamed batch of `prompts` prompts) and answers `done` with the
  // decoded choices; an event stream is INTERNAL.
  void CompleteBatch(http::ClientRequest request, BatchCompletionDecoder decode, size_t prompts,
                     CompleteBatchCallback done);

  // `status` as the pipeline should see it (see the file comment).
  absl::Status ForClient(const absl::Status& status);
  void CountMalformedEvent();
  uint64_t malformed_events() const { return malformed_events_.load(); }

 private:
  const std::string backend_name_;
  const std::string path_prefix_;
  const http::Headers extra_headers_;  // backends[].headers
  const std::unique_ptr<http::HttpClient> client_;
  const absl::Duration timeout_;
  const http::ErrorMessageFn error_message_;
  std::atomic<bool> auth_failure_logged_{false};
  std::atomic<uint64_t> malformed_events_{0};
};

// The channel of an HTTP backend: a client for config.base_url with config.max_connections, and
// config.timeout. INVALID_ARGUMENT when the base URL has no host or port.
absl::StatusOr<std::shared_ptr<HttpBackendChannel>> NewHttpBackendChannel(
    const BackendConfig& config, http::HttpClientOptions options,
    http::ErrorMessageFn error_message);

// A call that already ended (a request that could not be built); Cancel does nothing.
std::shared_ptr<BackendCall> FinishedCall();

}  // namespace tollgate
