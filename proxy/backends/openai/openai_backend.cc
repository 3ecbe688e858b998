#include "proxy/backends/openai/openai_backend.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proxy/backends/openai/http_generation.h"
#include "proxy/openai/client_codec.h"

namespace tollgate {
namespace {

class OpenAiDecoder final : public GenerationDecoder {
 public:
  absl::StatusOr<GenerationUpdate> DecodeEvent(const http::SseEvent& event) override {
    GenerationUpdate update;
    if (event.data == "[DONE]") return update;
    absl::StatusOr<openai::CompletionChunk> chunk = openai::ParseCompletionChunk(event.data);
    if (!chunk.ok()) return chunk.status();
    update.text = std::move(chunk->text);
    update.finish_reason = chunk->finish_reason;
    update.usage = std::move(chunk->usage);
    update.error = std::move(chunk->error);
    return update;
  }

  absl::StatusOr<GenerationUpdate> DecodeBody(absl::string_view body) override {
    absl::StatusOr<openai::Completion> completion = openai::ParseCompletion(body);
    if (!completion.ok()) return completion.status();
    GenerationUpdate update;
    update.text = std::move(completion->text);
    update.finish_reason = completion->finish_reason;
    update.usage = std::move(completion->usage);
    return update;
  }
};

absl::StatusOr<CompleteBatchResult> DecodeBatch(absl::string_view body, size_t prompts) {
  absl::StatusOr<openai::BatchCompletion> batch = openai::ParseBatchCompletion(body, prompts);
  if (!batch.ok()) return batch.status();
  CompleteBatchResult result;
  result.usage = std::move(batch->usage);
  result.choices.reserve(batch->choices.size());
  for (openai::BatchCompletionChoice& choice : batch->choices) {
    result.choices.push_back({.status = std::move(choice.status),
                              .text = std::move(choice.text),
                              .finish_reason = choice.finish_reason,
                              .usage = std::nullopt});
  }
  return result;
}

class OpenAiBackend final : public Backend {
 public:
  OpenAiBackend(const BackendConfig& config, std::shared_ptr<HttpBackendChannel> channel)
      : name_(config.name), api_key_(config.api_key), channel_(std::move(channel)) {}

  const std::string& name() const override { return name_; }

  std::shared_ptr<BackendCall> Generate(GenerateCall call,
                                        std::shared_ptr<GenerateObserver> observer) override {
    const bool stream = call.client_streams;
    const bool chat = call.request.has_chat();
    absl::StatusOr<std::string> body = chat ? openai::ChatCompletionsBody(call.request, stream)
                                            : openai::CompletionsBody(call.request, stream);
    if (!body.ok()) {
      observer->OnDone(body.status());
      return FinishedCall();
    }
    http::ClientRequest request =
        channel_->JsonPost(chat ? "/v1/chat/completions" : "/v1/completions", *std::move(body),
                           stream, Auth(), call.deadline);
    return channel_->Generate(std::move(request), std::make_unique<OpenAiDecoder>(),
                              std::move(observer));
  }

  bool SupportsCompleteBatch() const override { return true; }

  // One /v1/completions call with the prompts as an array; choices come back by index, with one
  // usage for the whole call.
  void CompleteBatch(CompleteBatchCall call, CompleteBatchCallback done) override {
    absl::StatusOr<std::string> body = openai::CompletionsBatchBody(call.request, call.prompts);
    if (!body.ok()) {
      done(body.status());
      return;
    }
    http::ClientRequest request = channel_->JsonPost("/v1/completions", *std::move(body),
                                                     /*stream=*/false, Auth(), call.deadline);
    channel_->CompleteBatch(std::move(request), &DecodeBatch, call.prompts.size(), std::move(done));
  }

  void Embed(EmbedCall call, EmbedCallback done) override {
    const int inputs = call.request.inputs_size();
    http::ClientRequest request = channel_->JsonPost(
        "/v1/embeddings", openai::EmbeddingsBody(call.request), false, Auth(), call.deadline);
    channel_->Embed(std::move(request), &openai::ParseEmbeddings, inputs, std::move(done));
  }

 private:
  http::Headers Auth() const {
    if (api_key_.empty()) return {};
    return {{"authorization", "Bearer " + api_key_}};
  }

  const std::string name_;
  const std::string api_key_;
  const std::shared_ptr<HttpBackendChannel> channel_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> NewOpenAiBackend(const BackendConfig& config) {
  return NewOpenAiBackend(config, http::HttpClientOptions());
}

absl::StatusOr<std::unique_ptr<Backend>> NewOpenAiBackend(const BackendConfig& config,
                                                          http::HttpClientOptions options) {
  if (config.kind != BackendKind::kOpenAi) {
    return absl::InvalidArgumentError("not an openai backend");
  }
  absl::StatusOr<std::shared_ptr<HttpBackendChannel>> channel =
      NewHttpBackendChannel(config, std::move(options), &openai::ErrorMessage);
  if (!channel.ok()) return channel.status();
  return std::make_unique<OpenAiBackend>(config, *std::move(channel));
}

}  // namespace tollgate
