// The server side of Anthropic's Messages API (POST /v1/messages): request bodies decoded into
// Tollgate's GenerateRequest, and responses, stream events and errors encoded in Anthropic's JSON
// shapes. Used by tollgate-sim's HTTP API (and available to an Anthropic-compatible ingress).
//
//   absl::StatusOr<ParsedMessagesRequest> parsed = ParseMessagesRequest(body);
//   ... generate ...
//   Reply(200, MessageJson(response, "msg_1", model));
//   // or stream: MessageStartEvent, ContentBlockStartEvent, PingEvent, ContentBlockDeltaEvent...,
//   //            ContentBlockStopEvent, MessageDeltaEvent, MessageStopEvent
//
// Usage: Anthropic's input_tokens EXCLUDES prompt-cache reads and writes, which it reports as
// cache_read_input_tokens and cache_creation_input_tokens. Tollgate's Usage counts every prompt
// token in input_tokens, so input_tokens here = input − cached_input − cache_write_input.
// Stop reasons: FINISH_REASON_STOP → "end_turn", FINISH_REASON_LENGTH → "max_tokens".
//
// Pure functions; safe from any thread. Strings pass through byte for byte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::anthropic {

struct ParsedMessagesRequest {
  // chat messages: the system prompt (if any) first as role "system", then the conversation.
  v1::GenerateRequest generate;
  bool stream = false;
};

// INVALID_ARGUMENT naming the field for malformed JSON, wrong types, and a missing model,
// max_tokens (required by Anthropic) or messages. system and message content may be a string or an
// array of {"type":"text","text"} blocks (joined with "\n"); other block types are rejected.
// Reads temperature, top_p and stop_sequences; unknown fields are ignored.
absl::StatusOr<ParsedMessagesRequest> ParseMessagesRequest(std::string_view json);

// A complete "message" object with one text content block and usage.
std::string MessageJson(const v1::GenerateResponse& response, std::string_view id,
                        std::string_view model);

// Stream events, each a whole SSE event "event: <type>\ndata: <json>\n\n".
// message_start: the message with empty content, and usage with the prompt counts (split as in
// MessageJson) and output_tokens 0; no usage when `usage` is null.
std::string MessageStartEvent(const v1::Usage* usage, std::string_view id, std::string_view model);
std::string ContentBlockStartEvent();  // index 0, an empty text block
std::string PingEvent();
std::string ContentBlockDeltaEvent(std::string_view text);  // a text_delta for block 0
std::string ContentBlockStopEvent();
// message_delta with the stop reason and usage.output_tokens (cumulative; no usage when unset).
std::string MessageDeltaEvent(v1::FinishReason finish, std::optional<uint64_t> output_tokens);
std::string MessageStopEvent();
// An "error" event carrying ErrorJson(status), for errors after the stream started.
std::string ErrorEvent(const absl::Status& status);

// {"type":"error","error":{"type":"invalid_request_error","message":"..."}}; the error type
// follows the status code (authentication_error, permission_error, not_found_error,
// rate_limit_error, overloaded_error for UNAVAILABLE, api_error otherwise).
std::string ErrorJson(const absl::Status& status);

// "end_turn", "max_tokens", or "" for FINISH_REASON_UNSPECIFIED.
std::string_view StopReasonName(v1::FinishReason finish);

}  // namespace tollgate::anthropic
