#include "sim/http_generate_call.h"

#include <algorithm>
#include <string>
#include <utility>

#include "proxy/openai/server_codec.h"
#include "sim/generator.h"

namespace tollgate::sim {
namespace {

const http::Headers& SseHeaders() {
  static const auto* const headers =
      new http::Headers{{"content-type", "text/event-stream"}, {"cache-control", "no-cache"}};
  return *headers;
}

class GenerateCall : public std::enable_shared_from_this<GenerateCall> {
 public:
  GenerateCall(SimEngine* engine, v1::GenerateRequest request, bool stream,
               const RequestFaults& faults, std::unique_ptr<GenerateEncoder> encoder,
               std::shared_ptr<http::ResponseWriter> writer)
      : engine_(engine),
        request_(std::move(request)),
        stream_(stream),
        faults_(faults),
        encoder_(std::move(encoder)),
        writer_(std::move(writer)) {}

  void Start(DelayQueue* delays) {
    StartAfterFirstByteDelay(
        *writer_, delays, faults_.first_byte_delay,
        [weak = weak_from_this()] {
          if (std::shared_ptr<GenerateCall> call = weak.lock()) call->CancelEngineRequest();
        },
        [self = shared_from_this()] { self->Begin(); });
  }

 private:
  void Begin() {
    if (stream_) {
      writer_->StartStream(200, SseHeaders());
      v1::Usage prompt_usage;
      prompt_usage.set_input_tokens(CountPromptTokens(request_));
      prompt_usage = WithKnobs(prompt_usage, faults_);
      writer_->Write(encoder_->StreamHead(faults_.omit_usage ? nullptr : &prompt_usage));
    }
    if (faults_.reset_after_tokens == 0u) {
      writer_->Abort();
      return;
    }
    SimEngine::Callbacks callbacks{
        .on_chunk = [self = shared_from_this()](
                        v1::GenerateResponse chunk) { self->OnChunk(std::move(chunk)); },
        .on_done = [self = shared_from_this()](
                       const absl::Status& status,
                       v1::GenerateResponse last) { self->OnDone(status, std::move(last)); },
    };
    handle_.Submitted(
        engine_->Submit(request_, ShapeForModel(request_.model()), std::move(callbacks)));
  }

  void CancelEngineRequest() { handle_.Cancel(); }

  void OnChunk(v1::GenerateResponse chunk) {
    if (aborted_) return;
    ++tokens_;
    if (stream_) {
      writer_->Write(encoder_->StreamToken(chunk.text(), tokens_ == 1));
      if (faults_.malformed_chunk && tokens_ == 1) writer_->Write(encoder_->MalformedChunk());
    } else {
      text_ += chunk.text();
    }
    if (faults_.reset_after_tokens.has_value() && tokens_ >= *faults_.reset_after_tokens) {
      aborted_ = true;
      writer_->Abort();
      CancelEngineRequest();
    }
  }

  void OnDone(const absl::Status& status, v1::GenerateResponse last) {
    if (aborted_) return;
    if (!status.ok()) {
      if (stream_) {
        writer_->Write(encoder_->StreamError(status));
        writer_->End();
      } else {
        writer_->Send(openai::HttpStatusFor(status.code()), {{"content-type", "application/json"}},
                      encoder_->ErrorJson(status));
      }
      return;
    }
    const v1::Usage usage = WithKnobs(last.usage(), faults_);
    if (stream_) {
      writer_->Write(
          encoder_->StreamTail(last.finish_reason(), faults_.omit_usage ? nullptr : &usage));
      writer_->End();
      return;
    }
    v1::GenerateResponse response;
    response.set_text(std::move(text_));
    response.set_finish_reason(last.finish_reason());
    if (!faults_.omit_usage) *response.mutable_usage() = usage;
    std::string body = encoder_->Unary(response);
    if (faults_.malformed_chunk) body.resize(body.size() / 2);
    writer_->Send(200, {{"content-type", "application/json"}}, std::move(body));
  }

  SimEngine* const engine_;
  const v1::GenerateRequest request_;
  const bool stream_;
  const RequestFaults faults_;
  const std::unique_ptr<GenerateEncoder> encoder_;
  const std::shared_ptr<http::ResponseWriter> writer_;

  EngineRequestHandle handle_{engine_};

  // Touched only by the engine's callbacks, which never overlap.
  uint32_t tokens_ = 0;
  bool aborted_ = false;
  std::string text_;
};

}  // namespace

void StartAfterFirstByteDelay(http::ResponseWriter& writer, DelayQueue* delays,
                              absl::Duration first_byte_delay, std::function<void()> on_client_gone,
                              std::function<void()> begin) {
  writer.OnClientGone(std::move(on_client_gone));
  if (first_byte_delay > absl::ZeroDuration()) {
    delays->RunAfter(first_byte_delay, std::move(begin));
  } else {
    begin();
  }
}

v1::Usage WithKnobs(v1::Usage usage, const RequestFaults& faults) {
  usage.set_cached_input_tokens(std::min<uint64_t>(faults.cache_read_tokens, usage.input_tokens()));
  usage.set_reasoning_tokens(std::min<uint64_t>(faults.reasoning_tokens, usage.output_tokens()));
  return usage;
}

void StartGenerateCall(SimEngine* engine, DelayQueue* delays, v1::GenerateRequest request,
                       bool stream, const RequestFaults& faults,
                       std::unique_ptr<GenerateEncoder> encoder,
                       std::shared_ptr<http::ResponseWriter> writer) {
  auto call = std::make_shared<GenerateCall>(engine, std::move(request), stream, faults,
                                             std::move(encoder), std::move(writer));
  call->Start(delays);
}

}  // namespace tollgate::sim
