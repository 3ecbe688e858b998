// The simulator's deterministic text generator, tokenizer rule and embedder.
//
//   TG_RETURN_IF_ERROR(ValidateRequest(request));
//   SimOutput output = Generate(request);   // same request => same tokens, in every process
//   std::vector<float> vector = Embed("e5-small", "some text");
//
// Everything here is a pure function of its arguments (a stable FNV-1a/SplitMix64 hash, never a
// per-process seed), so it is safe to call from any thread and repeats across runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::sim {

// max_tokens == 0 means this many.
inline constexpr uint32_t kDefaultMaxTokens = 256;
// Larger max_tokens values are rejected.
inline constexpr uint32_t kMaxTokensLimit = 32768;
// Natural answer lengths are kMinAnswerTokens + (hash % kAnswerTokenSpread), i.e. 16..511.
inline constexpr uint32_t kMinAnswerTokens = 16;
inline constexpr uint32_t kAnswerTokenSpread = 496;
inline constexpr size_t kEmbeddingDimension = 64;

struct SimOutput {
  // Text pieces in order; each one is one output token.
  std::vector<std::string> tokens;
  uint32_t prompt_tokens = 0;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
};

// INVALID_ARGUMENT when the model is empty, there is no input (neither chat nor prompt, or a chat
// with no messages), or max_tokens exceeds kMaxTokensLimit.
absl::Status ValidateRequest(const v1::GenerateRequest& request);
// INVALID_ARGUMENT when the model is empty or there are no inputs.
absl::Status ValidateEmbedRequest(const v1::EmbedRequest& request);

// The simulator's tokenizer rule, which it reports as usage:
//   raw prompt: ceil(utf8 bytes / 4), at least 1;
//   chat: for each message ceil(content bytes / 4) + 4, plus 3 for the reply primer.
uint32_t CountPromptTokens(const v1::GenerateRequest& request);
// Tokens of one embedding input: ceil(bytes / 4), at least 1.
uint32_t CountEmbedTokens(absl::string_view input);

// The answer to `request`. Its natural length L is 16 + (hash % 496) tokens; when L reaches the
// max_tokens budget (0 = kDefaultMaxTokens) the answer is cut to max_tokens and finishes LENGTH,
// otherwise it has L tokens and finishes STOP. When a stop string occurs in the text, the text
// ends just before its first occurrence (the token holding it is shortened or dropped) and the
// answer finishes STOP. The hash covers the model, every message's role and content (or the raw
// prompt), max_tokens, temperature, top_p, seed and stop strings.
// REQUIRES: ValidateRequest(request).ok().
SimOutput Generate(const v1::GenerateRequest& request);

// A unit-norm vector of kEmbeddingDimension values, a pure function of (model, input).
std::vector<float> Embed(absl::string_view model, absl::string_view input);

}  // namespace tollgate::sim
