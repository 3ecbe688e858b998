// The OpenAI API as Tollgate's OpenAI backend speaks it (the client side): request bodies for
// /v1/chat/completions, /v1/completions and /v1/embeddings, and the answers parsed back into
// Tollgate's types. Any OpenAI-compatible server (vLLM, llama.cpp, TGI, ...) is spoken to this
// way.
//
//   absl::StatusOr<std::string> body = ChatCompletionsBody(request, /*stream=*/true);
//   absl::StatusOr<CompletionChunk> chunk = ParseCompletionChunk(event.data);
//
// Usage is normalised here, once: OpenAI's prompt_tokens already include the cached ones, so
// input_tokens = prompt_tokens, cached_input_tokens = prompt_tokens_details.cached_tokens,
// output_tokens = completion_tokens (which include reasoning), reasoning_tokens =
// completion_tokens_details.reasoning_tokens; the source is USAGE_SOURCE_REPORTED.
//
// Malformed answers are INTERNAL("backend sent malformed JSON: ..."). Stateless; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::openai {

// Chat input → /v1/chat/completions. Streaming bodies always ask for usage
// (stream_options.include_usage), so that a stream reports what it cost. max_tokens is omitted
// when 0. INVALID_ARGUMENT when the request has no chat input.
absl::StatusOr<std::string> ChatCompletionsBody(const v1::GenerateRequest& request, bool stream);
// Prompt input → /v1/completions, with the same parameters. INVALID_ARGUMENT without a prompt.
absl::StatusOr<std::string> CompletionsBody(const v1::GenerateRequest& request, bool stream);
// Several prompts sharing `request`'s model and parameters (its own input ignored) → one
// non-streamed /v1/completions call with `prompt` as an array of strings. INVALID_ARGUMENT
// without prompts.
absl::StatusOr<std::string> CompletionsBatchBody(const v1::GenerateRequest& request,
                                                 const std::vector<std::string>& prompts);
// → /v1/embeddings, as floats.
std::string EmbeddingsBody(const v1::EmbedRequest& request);

// "stop" and the other natural ends (tool_calls, content_filter, ...) → STOP; "length" → LENGTH;
// absent or null → UNSPECIFIED.
v1::FinishReason FinishReasonFromOpenAi(absl::string_view finish_reason);

// A whole (non-streamed) chat.completion or text_completion: choices[0]'s text, its finish reason
// (STOP when the server gave none: the answer is complete) and the usage, when reported.
struct Completion {
  std::string text;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  std::optional<v1::Usage> usage;
};
absl::StatusOr<Completion> ParseCompletion(absl::string_view body);

// A whole text_completion answering a batch of `prompts` prompts: choices[i] matched to its prompt
// by `index` (by position when a server omits it), and the whole call's usage when reported.
// A choice that is not there, or whose text or finish reason is malformed, fails alone
// (`choices[i]` holds its INTERNAL status); the whole answer is INTERNAL when it is not JSON, has
// no choices array, or a choice that cannot be placed (not an object, an index out of range or
// repeated: a server answering n > 1 completions per prompt).
struct BatchCompletionChoice {
  absl::Status status;
  std::string text;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;  // STOP when none was given
};
struct BatchCompletion {
  std::vector<BatchCompletionChoice> choices;  // one per prompt
  std::optional<v1::Usage> usage;
};
absl::StatusOr<BatchCompletion> ParseBatchCompletion(absl::string_view body, size_t prompts);

// One streamed chunk (the data of one event, "[DONE]" excluded): the text delta, a finish reason
// when the choice ended, usage on the usage-only chunk (whose choices are []), or the error an
// API put in the stream ({"error": {...}}) as UNAVAILABLE.
struct CompletionChunk {
  std::string text;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  std::optional<v1::Usage> usage;
  absl::Status error;
};
absl::StatusOr<CompletionChunk> ParseCompletionChunk(absl::string_view data);

// data[].embedding, ordered by index, and the usage (prompt_tokens as input). INTERNAL when the
// indices are not 0..n-1.
absl::StatusOr<v1::EmbedResponse> ParseEmbeddings(absl::string_view body);

// The message of an error answer ({"error": {"message": ...}}), "" when none.
std::string ErrorMessage(absl::string_view body);

}  // namespace tollgate::openai
