#include "proxy/backends/anthropic/anthropic_backend.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proxy/anthropic/client_codec.h"
#include "proxy/backends/openai/http_generation.h"

namespace tollgate {
namespace {

// Keeps the usage of one message across its events: message_start has the input counts,
// message_delta the cumulative output.
class AnthropicDecoder final : public GenerationDecoder {
 public:
  absl::StatusOr<GenerationUpdate> DecodeEvent(const http::SseEvent& event) override {
    absl::StatusOr<anthropic::StreamEvent> parsed = anthropic::ParseStreamEvent(event.data);
    if (!parsed.ok()) return parsed.status();
    GenerationUpdate update;
    using Type = anthropic::StreamEvent::Type;
    switch (parsed->type) {
      case Type::kMessageStart:
        if (parsed->usage.has_value()) usage_.MergeFrom(*parsed->usage);
        update.usage = anthropic::NormaliseUsage(usage_);
        update.report_usage_now = true;
        break;
      case Type::kTextDelta:
        update.text = std::move(parsed->text);
        break;
      case Type::kMessageDelta:
        if (parsed->usage.has_value()) usage_.MergeFrom(*parsed->usage);
        update.usage = anthropic::NormaliseUsage(usage_);
        update.finish_reason = parsed->finish_reason;
        break;
      case Type::kError:
        update.error = std::move(parsed->error);
        break;
      case Type::kMessageStop:
      case Type::kOther:
        break;
    }
    return update;
  }

  absl::StatusOr<GenerationUpdate> DecodeBody(absl::string_view body) override {
    absl::StatusOr<anthropic::Message> message = anthropic::ParseMessage(body);
    if (!message.ok()) return message.status();
    GenerationUpdate update;
    update.text = std::move(message->text);
    update.finish_reason = message->finish_reason;
    update.usage = anthropic::NormaliseUsage(message->usage);
    return update;
  }

 private:
  anthropic::RawUsage usage_;
};

class AnthropicBackend final : public Backend {
 public:
  AnthropicBackend(const BackendConfig& config, std::shared_ptr<HttpBackendChannel> channel)
      : name_(config.name), api_key_(config.api_key), channel_(std::move(channel)) {}

  const std::string& name() const override { return name_; }

  std::shared_ptr<BackendCall> Generate(GenerateCall call,
                                        std::shared_ptr<GenerateObserver> observer) override {
    const bool stream = call.client_streams;
    absl::StatusOr<std::string> body = anthropic::MessagesBody(call.request, stream);
    if (!body.ok()) {
      observer->OnDone(body.status());
      return FinishedCall();
    }
    http::Headers api_headers = {{"anthropic-version", std::string(anthropic::kApiVersion)}};
    if (!api_key_.empty()) api_headers.emplace_back("x-api-key", api_key_);
    http::ClientRequest request = channel_->JsonPost("/v1/messages", *std::move(body), stream,
                                                     std::move(api_headers), call.deadline);
    return channel_->Generate(std::move(request), std::make_unique<AnthropicDecoder>(),
                              std::move(observer));
  }

  void Embed(EmbedCall, EmbedCallback done) override {
    done(absl::UnimplementedError(
        absl::StrCat("backend \"", name_, "\" (Anthropic) has no embeddings API")));
  }

 private:
  const std::string name_;
  const std::string api_key_;
  const std::shared_ptr<HttpBackendChannel> channel_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> NewAnthropicBackend(const BackendConfig& config) {
  return NewAnthropicBackend(config, http::HttpClientOptions());
}

absl::StatusOr<std::unique_ptr<Backend>> NewAnthropicBackend(const BackendConfig& config,
                                                             http::HttpClientOptions options) {
  if (config.kind != BackendKind::kAnthropic) {
    return absl::InvalidArgumentError("not an anthropic backend");
  }
  absl::StatusOr<std::shared_ptr<HttpBackendChannel>> channel =
      NewHttpBackendChannel(config, std::move(options), &anthropic::ErrorMessage);
  if (!channel.ok()) return channel.status();
  return std::make_unique<AnthropicBackend>(config, *std::move(channel));
}

}  // namespace tollgate
