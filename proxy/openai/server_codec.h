// The server side of OpenAI's HTTP API: request bodies of /v1/chat/completions, /v1/completions
// and /v1/embeddings decoded into Tollgate's protos, and responses, stream chunks, model lists and
// errors encoded in OpenAI's JSON shapes. Used by tollgate-sim's HTTP API and by the proxy's
// OpenAI-compatible ingress.
//
//   absl::StatusOr<ParsedRequest> parsed = ParseChatCompletionsRequest(body);
//   if (!parsed.ok()) return Reply(HttpStatusFor(parsed.status().code()),
//   ErrorJson(parsed.status()));
//   ... generate ...
//   Reply(200, ChatCompletionJson(response, "chatcmpl-1", model, created, &cost));
//
// Usage is mapped from Tollgate's normalised counts: prompt_tokens = input_tokens (cached ones
// included, as OpenAI counts them), completion_tokens = output_tokens (reasoning included),
// prompt_tokens_details.cached_tokens, completion_tokens_details.reasoning_tokens. A response
// without usage (GenerateResponse.has_usage() false) is encoded without a "usage" object.
//
// Pure functions; safe from any thread. JSON strings pass through byte for byte (invalid UTF-8 is
// neither rejected nor repaired).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::openai {

// What an OpenAI-shaped request asked for.
struct ParsedRequest {
  v1::GenerateRequest generate;  // for chat and completions
  v1::EmbedRequest embed;        // for embeddings
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string user;            // "user" field if present
  // Embeddings: encoding_format "base64" (the OpenAI Python SDK's default).
  bool base64_embeddings = false;
  // Completions: every prompt in order; `generate` holds the first, and its other fields are
  // shared by all of them.
  std::vector<std::string> prompts;
};

// INVALID_ARGUMENT with a message naming the field ("messages[1].content: expected a string") for
// malformed JSON, wrong types, a missing model or messages, n > 1 and non-text content parts.
// Content may be a string or an array of {type:"text", text} parts (joined with "\n").
// max_completion_tokens wins over max_tokens. Unknown fields are ignored (OpenAI SDKs send many).
absl::StatusOr<ParsedRequest> ParseChatCompletionsRequest(std::string_view json);
// prompt: a string or an array of one string (more → INVALID_ARGUMENT "batched prompts are not
// supported yet"; token-id arrays → INVALID_ARGUMENT).
absl::StatusOr<ParsedRequest> ParseCompletionsRequest(std::string_view json);
// For servers that answer OpenAI's batched completions (tollgate-sim): as ParseCompletionsRequest,
// but prompt may also be an array of several strings, all in `prompts`. Empty arrays, token ids
// and non-string items are INVALID_ARGUMENT naming the item ("prompt[1]: expected a string").
absl::StatusOr<ParsedRequest> ParseBatchCompletionsRequest(std::string_view json);
// input: a string or a non-empty array of strings; encoding_format "float" (default) or "base64".
absl::StatusOr<ParsedRequest> ParseEmbeddingsRequest(std::string_view json);

// Responses. `cost` non-null adds "x_tollgate": {"cost_usd": <double>, "cost_nano_usd": <int>}
// (a Tollgate extension) to the object.
std::string ChatCompletionJson(const v1::GenerateResponse& r, std::string_view id,
                               std::string_view model, int64_t created, const v1::Cost* cost);
// One "chat.completion.chunk". `first` adds role "assistant" to the delta; an empty delta_text
// with a finish reason gives an empty delta.
std::string ChatCompletionChunkJson(std::string_view delta_text, v1::FinishReason finish,
                                    std::string_view id, std::string_view model, int64_t created,
                                    bool first);
// The usage chunk of a chat stream (stream_options.include_usage): "choices": [] and "usage".
std::string UsageChunkJson(const v1::Usage& usage, std::string_view id, std::string_view model,
                           int64_t created, const v1::Cost* cost);

// The "text_completion" shapes of /v1/completions, analogous to the chat ones.
std::string CompletionJson(const v1::GenerateResponse& r, std::string_view id,
                           std::string_view model, int64_t created, const v1::Cost* cost);
// The answer to a batched completions request: choice i (with "index": i) is choices[i]'s text
// and finish reason; `usage` (null: none) is the whole call's, as OpenAI reports one per call.
std::string BatchCompletionJson(absl::Span<const v1::GenerateResponse> choices,
                                const v1::Usage* usage, std::string_view id, std::string_view model,
                                int64_t created, const v1::Cost* cost);
std::string CompletionChunkJson(std::string_view text, v1::FinishReason finish, std::string_view id,
                                std::string_view model, int64_t created);
std::string CompletionUsageChunkJson(const v1::Usage& usage, std::string_view id,
                                     std::string_view model, int64_t created, const v1::Cost* cost);

// {"object":"list","data":[{"object":"embedding","index":i,"embedding":[...]}],"model","usage"}.
// With base64, each embedding is the base64 of its little-endian float32 values.
std::string EmbeddingsJson(const v1::EmbedResponse& r, std::string_view model, const v1::Cost* cost,
                           bool base64 = false);

// {"object":"list","data":[{"id","object":"model","created","owned_by":"tollgate"}]}.
std::string ModelsJson(const std::vector<std::string>& model_ids, int64_t created);

// {"error":{"message","type","param":null,"code"}} with OpenAI's type and code for the status.
std::string ErrorJson(const absl::Status& status);

// INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404,
// RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, CANCELLED 499,
// UNIMPLEMENTED 501, others 500.
int HttpStatusFor(absl::StatusCode code);

// "data: <json>\n\n".
std::string SseEvent(std::string_view json);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// "stop", "length", or "" for FINISH_REASON_UNSPECIFIED.
std::string_view FinishReasonName(v1::FinishReason finish);

}  // namespace tollgate::openai
