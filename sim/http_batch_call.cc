#include "sim/http_batch_call.h"

#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "proxy/openai/server_codec.h"
#include "sim/http_generate_call.h"

namespace tollgate::sim {
namespace {

class BatchCompletionCall : public std::enable_shared_from_this<BatchCompletionCall> {
 public:
  BatchCompletionCall(SimEngine* engine, std::vector<v1::GenerateRequest> requests,
                      const RequestFaults& faults, std::string id, int64_t created,
                      std::shared_ptr<http::ResponseWriter> writer)
      : engine_(engine),
        requests_(std::move(requests)),
        faults_(faults),
        id_(std::move(id)),
        created_(created),
        writer_(std::move(writer)),
        choices_(requests_.size()),
        remaining_(requests_.size()) {
    for (size_t i = 0; i < requests_.size(); ++i) handles_.emplace_back(engine_);
  }

  void Start(DelayQueue* delays) {
    StartAfterFirstByteDelay(
        *writer_, delays, faults_.first_byte_delay,
        [weak = weak_from_this()] {
          if (std::shared_ptr<BatchCompletionCall> call = weak.lock()) call->CancelAll();
        },
        [self = shared_from_this()] { self->Begin(); });
  }

 private:
  void Begin() {
    if (faults_.reset_after_tokens == 0u) {
      writer_->Abort();
      return;
    }
    std::vector<SimEngine::Callbacks> callbacks;
    for (size_t i = 0; i < requests_.size(); ++i) {
      callbacks.push_back({
          .on_chunk = [self = shared_from_this(),
                       i](const v1::GenerateResponse& chunk) { self->OnChunk(i, chunk.text()); },
          .on_done = [self = shared_from_this(), i](
                         const absl::Status& status,
                         const v1::GenerateResponse& last) { self->OnDone(i, status, last); },
      });
    }
    const std::vector<SimEngine::RequestId> ids = engine_->SubmitBatch(
        requests_, ShapeForModel(requests_.front().model()), std::move(callbacks));
    for (size_t i = 0; i < ids.size(); ++i) handles_[i].Submitted(ids[i]);
  }

  void CancelAll() {
    for (EngineRequestHandle& handle : handles_) handle.Cancel();
  }

  void OnChunk(size_t i, const std::string& text) {
    bool reset = false;
    {
      absl::MutexLock lock(&mu_);
      if (answered_) return;
      choices_[i].mutable_text()->append(text);
      ++tokens_;
      reset = faults_.reset_after_tokens.has_value() && tokens_ >= *faults_.reset_after_tokens;
      if (reset) answered_ = true;
    }
    if (!reset) return;
    writer_->Abort();
    CancelAll();
  }

  void OnDone(size_t i, const absl::Status& status, const v1::GenerateResponse& last) {
    {
      absl::MutexLock lock(&mu_);
      if (answered_) return;
      if (status.ok()) {
        choices_[i].set_finish_reason(last.finish_reason());
        usage_.set_input_tokens(usage_.input_tokens() + last.usage().input_tokens());
        usage_.set_output_tokens(usage_.output_tokens() + last.usage().output_tokens());
        if (--remaining_ > 0) return;
      }
      answered_ = true;
    }
    if (status.ok()) {
      Answer();
      return;
    }
    // The first failed prompt fails the request; the others need not run on.
    writer_->Send(openai::HttpStatusFor(status.code()), {{"content-type", "application/json"}},
                  openai::ErrorJson(status));
    CancelAll();
  }

  // Once every prompt has succeeded.
  void Answer() ABSL_LOCKS_EXCLUDED(mu_) {
    std::string body;
    {
      absl::MutexLock lock(&mu_);
      usage_.set_source(v1::USAGE_SOURCE_REPORTED);
      const v1::Usage usage = WithKnobs(usage_, faults_);
      body = openai::BatchCompletionJson(choices_, faults_.omit_usage ? nullptr : &usage, id_,
                                         requests_.front().model(), created_, nullptr);
    }
    if (faults_.malformed_chunk) body.resize(body.size() / 2);
    writer_->Send(200, {{"content-type", "application/json"}}, std::move(body));
  }

  SimEngine* const engine_;
  const std::vector<v1::GenerateRequest> requests_;
  const RequestFaults faults_;
  const std::string id_;
  const int64_t created_;
  const std::shared_ptr<http::ResponseWriter> writer_;
  std::deque<EngineRequestHandle> handles_;  // one per prompt; a deque, as handles cannot move

  absl::Mutex mu_;
  std::vector<v1::GenerateResponse> choices_ ABSL_GUARDED_BY(mu_);
  v1::Usage usage_ ABSL_GUARDED_BY(mu_);
  size_t remaining_ ABSL_GUARDED_BY(mu_);  // prompts still to succeed
  uint32_t tokens_ ABSL_GUARDED_BY(mu_) = 0;
  bool answered_ ABSL_GUARDED_BY(mu_) = false;  // the writer has been (or is being) answered
};

}  // namespace

void StartBatchCompletionCall(SimEngine* engine, DelayQueue* delays,
                              std::vector<v1::GenerateRequest> requests,
                              const RequestFaults& faults, std::string id, int64_t created,
                              std::shared_ptr<http::ResponseWriter> writer) {
  auto call = std::make_shared<BatchCompletionCall>(engine, std::move(requests), faults,
                                                    std::move(id), created, std::move(writer));
  call->Start(delays);
}

}  // namespace tollgate::sim
