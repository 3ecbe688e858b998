// The Anthropic Messages API as Tollgate's Anthropic backend speaks it (the client side): the
// /v1/messages request body, and the answer (whole or streamed) parsed back into Tollgate's types.
//
//   absl::StatusOr<std::string> body = MessagesBody(request, /*stream=*/true);
//   absl::StatusOr<StreamEvent> event = ParseStreamEvent(sse_event.data);
//
// Usage is normalised here, once: Anthropic's input_tokens EXCLUDE the prompt tokens read from or
// written to its prompt cache, so input_tokens = input_tokens + cache_read_input_tokens +
// cache_creation_input_tokens, cached_input_tokens = cache_read_input_tokens,
// cache_write_input_tokens = cache_creation_input_tokens. Anthropic reports no separate count of
// thinking tokens (they are inside output_tokens), so reasoning_tokens stays 0.
//
// Malformed answers are INTERNAL("backend sent malformed JSON: ..."). Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::anthropic {

inline constexpr char kApiVersion[] = "2023-06-01";  // the anthropic-version header
// Anthropic requires max_tokens; a request that leaves it to the backend (0) gets this.
inline constexpr uint32_t kDefaultMaxTokens = 1024;

// System messages become the top-level "system" (joined with a blank line); assistant messages
// stay assistant, every other role is sent as user; a prompt becomes one user message. stop →
// stop_sequences. Anthropic has no seed; it is not sent.
absl::StatusOr<std::string> MessagesBody(const v1::GenerateRequest& request, bool stream);

// end_turn, stop_sequence, tool_use, pause_turn, refusal → STOP; max_tokens → LENGTH;
// absent → UNSPECIFIED.
v1::FinishReason FinishReasonFromStopReason(absl::string_view stop_reason);

// Anthropic's usage as sent; a field the message did not carry stays unset.
struct RawUsage {
  std::optional<uint64_t> input_tokens;
  std::optional<uint64_t> output_tokens;
  std::optional<uint64_t> cache_read_input_tokens;
  std::optional<uint64_t> cache_creation_input_tokens;

  // Takes the fields `later` carries (message_delta's counts are cumulative); a count never
  // decreases.
  void MergeFrom(const RawUsage& later);
};
v1::Usage NormaliseUsage(const RawUsage& usage);  // source REPORTED

// A whole (non-streamed) message: its text blocks joined, stop reason (STOP when absent: the
// message is complete) and usage.
struct Message {
  std::string text;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  RawUsage usage;
};
absl::StatusOr<Message> ParseMessage(absl::string_view body);

// One streamed event, from its data (whose "type" repeats the event name).
struct StreamEvent {
  enum class Type {
    kMessageStart,  // usage: input counts (and the first output count)
    kTextDelta,     // text
    kMessageDelta,  // finish_reason, usage: cumulative counts
    kMessageStop,
    kError,  // error
    kOther,  // ping, content_block_start/stop, thinking and tool deltas: nothing to count
  };
  Type type = Type::kOther;
  std::string text;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  std::optional<RawUsage> usage;
  absl::Status error;
};
absl::StatusOr<StreamEvent> ParseStreamEvent(absl::string_view data);

// The code for an Anthropic error type: rate_limit_error → RESOURCE_EXHAUSTED, overloaded_error
// and api_error → UNAVAILABLE, invalid_request_error and request_too_large → INVALID_ARGUMENT,
// authentication_error and permission_error → PERMISSION_DENIED, not_found_error → NOT_FOUND.
absl::StatusCode StatusForErrorType(absl::string_view type);

// The message of an error answer ({"type":"error","error":{"message": ...}}), "" when none.
std::string ErrorMessage(absl::string_view body);

}  // namespace tollgate::anthropic
