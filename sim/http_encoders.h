// How each HTTP API of tollgate-sim shapes the output of one generate call: OpenAI chat
// completions, OpenAI (text) completions and Anthropic messages, streamed as SSE or whole.
// Internal to tollgate_sim_http. An encoder belongs to one call and is used by one thread at a
// time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::sim {

class GenerateEncoder {
 public:
  virtual ~GenerateEncoder() = default;

  // What a stream sends before its first token; `prompt_usage` is null when usage is omitted.
  virtual std::string StreamHead(const v1::Usage* prompt_usage) = 0;
  virtual std::string StreamToken(std::string_view text, bool first) = 0;
  // After the last token: the finish reason, the usage (null when omitted) and the end marker.
  virtual std::string StreamTail(v1::FinishReason finish, const v1::Usage* usage) = 0;
  // An error after the stream has started.
  virtual std::string StreamError(const absl::Status& status) = 0;
  // An event whose data is not valid JSON (the malformed-chunk fault).
  virtual std::string MalformedChunk() = 0;
  // The whole response of a non-streaming call.
  virtual std::string Unary(const v1::GenerateResponse& response) = 0;
  // The error body, in this API's shape.
  virtual std::string ErrorJson(const absl::Status& status) = 0;
};

// OpenAI chat.completion(.chunk); a usage chunk ends the stream only with include_usage.
std::unique_ptr<GenerateEncoder> MakeChatEncoder(std::string id, std::string model, int64_t created,
                                                 bool include_usage);
// OpenAI text_completion.
std::unique_ptr<GenerateEncoder> MakeCompletionEncoder(std::string id, std::string model,
                                                       int64_t created, bool include_usage);
// Anthropic message and its stream events.
std::unique_ptr<GenerateEncoder> MakeMessagesEncoder(std::string id, std::string model);

}  // namespace tollgate::sim
