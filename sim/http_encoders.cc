#include "sim/http_encoders.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "proxy/anthropic/server_codec.h"
#include "proxy/openai/server_codec.h"

namespace tollgate::sim {
namespace {

// The parts shared by OpenAI's chat and completion streams.
class OpenAiEncoder : public GenerateEncoder {
 public:
  OpenAiEncoder(std::string id, std::string model, int64_t created, bool include_usage)
      : id_(std::move(id)),
        model_(std::move(model)),
        created_(created),
        include_usage_(include_usage) {}

  std::string StreamHead(const v1::Usage*) override { return ""; }
  std::string StreamTail(v1::FinishReason finish, const v1::Usage* usage) override {
    std::string tail = openai::SseEvent(FinishChunk(finish));
    if (include_usage_ && usage != nullptr) tail += openai::SseEvent(UsageChunk(*usage));
    tail += openai::kSseDone;
    return tail;
  }
  std::string StreamError(const absl::Status& status) override {
    return openai::SseEvent(openai::ErrorJson(status));
  }
  std::string MalformedChunk() override { return "data: {\"choices\": [{\"delta\": \n\n"; }
  std::string ErrorJson(const absl::Status& status) override { return openai::ErrorJson(status); }

 protected:
  virtual std::string FinishChunk(v1::FinishReason finish) = 0;
  virtual std::string UsageChunk(const v1::Usage& usage) = 0;

  const std::string id_;
  const std::string model_;
  const int64_t created_;
  const bool include_usage_;
};

class ChatEncoder final : public OpenAiEncoder {
 public:
  using OpenAiEncoder::OpenAiEncoder;

  std::string StreamToken(std::string_view text, bool first) override {
    return openai::SseEvent(openai::ChatCompletionChunkJson(text, v1::FINISH_REASON_UNSPECIFIED,
                                                            id_, model_, created_, first));
  }
  std::string Unary(const v1::GenerateResponse& response) override {
    return openai::ChatCompletionJson(response, id_, model_, created_, nullptr);
  }

 private:
  std::string FinishChunk(v1::FinishReason finish) override {
    return openai::ChatCompletionChunkJson("", finish, id_, model_, created_, false);
  }
  std::string UsageChunk(const v1::Usage& usage) override {
    return openai::UsageChunkJson(usage, id_, model_, created_, nullptr);
  }
};

class CompletionEncoder final : public OpenAiEncoder {
 public:
  using OpenAiEncoder::OpenAiEncoder;

  std::string StreamToken(std::string_view text, bool) override {
    return openai::SseEvent(
        openai::CompletionChunkJson(text, v1::FINISH_REASON_UNSPECIFIED, id_, model_, created_));
  }
  std::string Unary(const v1::GenerateResponse& response) override {
    return openai::CompletionJson(response, id_, model_, created_, nullptr);
  }

 private:
  std::string FinishChunk(v1::FinishReason finish) override {
    return openai::CompletionChunkJson("", finish, id_, model_, created_);
  }
  std::string UsageChunk(const v1::Usage& usage) override {
    return openai::CompletionUsageChunkJson(usage, id_, model_, created_, nullptr);
  }
};

class MessagesEncoder final : public GenerateEncoder {
 public:
  MessagesEncoder(std::string id, std::string model)
      : id_(std::move(id)), model_(std::move(model)) {}

  std::string StreamHead(const v1::Usage* prompt_usage) override {
    return absl::StrCat(anthropic::MessageStartEvent(prompt_usage, id_, model_),
                        anthropic::ContentBlockStartEvent(), anthropic::PingEvent());
  }
  std::string StreamToken(std::string_view text, bool) override {
    return anthropic::ContentBlockDeltaEvent(text);
  }
  std::string StreamTail(v1::FinishReason finish, const v1::Usage* usage) override {
    std::optional<uint64_t> output_tokens;
    if (usage != nullptr) output_tokens = usage->output_tokens();
    return absl::StrCat(anthropic::ContentBlockStopEvent(),
                        anthropic::MessageDeltaEvent(finish, output_tokens),
                        anthropic::MessageStopEvent());
  }
  std::string StreamError(const absl::Status& status) override {
    return anthropic::ErrorEvent(status);
  }
  std::string MalformedChunk() override {
    return "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \n\n";
  }
  std::string Unary(const v1::GenerateResponse& response) override {
    return anthropic::MessageJson(response, id_, model_);
  }
  std::string ErrorJson(const absl::Status& status) override {
    return anthropic::ErrorJson(status);
  }

 private:
  const std::string id_;
  const std::string model_;
};

}  // namespace

std::unique_ptr<GenerateEncoder> MakeChatEncoder(std::string id, std::string model, int64_t created,
                                                 bool include_usage) {
  return std::make_unique<ChatEncoder>(std::move(id), std::move(model), created, include_usage);
}

std::unique_ptr<GenerateEncoder> MakeCompletionEncoder(std::string id, std::string model,
                                                       int64_t created, bool include_usage) {
  return std::make_unique<CompletionEncoder>(std::move(id), std::move(model), created,
                                             include_usage);
}

std::unique_ptr<GenerateEncoder> MakeMessagesEncoder(std::string id, std::string model) {
  return std::make_unique<MessagesEncoder>(std::move(id), std::move(model));
}

}  // namespace tollgate::sim
