// Helpers of the engine tests: requests, options on a fake clock, the solo time of a request, and
// a Recorder of one request's callbacks stamped with virtual time.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sim/clock.h"
#include "sim/engine.h"
#include "sim/generator.h"
#include "sim/latency_model.h"

namespace tollgate::sim {

inline constexpr absl::string_view kModel = "llama-3-8b-instruct";

inline v1::GenerateRequest PromptRequest(const std::string& prompt, uint32_t max_tokens = 100) {
  v1::GenerateRequest request;
  request.set_model(std::string(kModel));
  request.set_prompt(prompt);
  request.mutable_params()->set_max_tokens(max_tokens);
  return request;
}

inline EngineOptions Options(Clock* clock, double time_scale = 1.0) {
  EngineOptions options;
  options.gpu = *FindGpu("a100-80gb");
  options.time_scale = time_scale;
  options.clock = clock;
  return options;
}

// Virtual seconds one request takes alone: its prefill, then one decode step per token.
inline double SoloSeconds(const EngineOptions& options, const v1::GenerateRequest& request) {
  const LatencyModel model(options.gpu, options.gpu_count, options.mfu);
  const ModelShape shape = ShapeForModel(request.model());
  const SimOutput output = Generate(request);
  double seconds = model.PrefillSeconds(shape, output.prompt_tokens);
  for (size_t i = 0; i < output.tokens.size(); ++i) {
    seconds += model.DecodeStepSeconds(shape, output.prompt_tokens + i);
  }
  return seconds * options.time_scale;
}

// Everything the callbacks of one request delivered.
struct Record {
  std::vector<v1::GenerateResponse> chunks;
  absl::Status status;
  v1::GenerateResponse last;
  int done_count = 0;
  absl::Time first_chunk_at;
  absl::Time done_at;

  std::string Text() const {
    std::string text;
    for (const v1::GenerateResponse& chunk : chunks) text += chunk.text();
    return text;
  }
};

// Records one request's callbacks, which arrive on the engine thread, stamped with virtual time.
// Thread-safe.
class Recorder {
 public:
  explicit Recorder(Clock* clock = nullptr) : clock_(clock) {}

  SimEngine::Callbacks Callbacks() {
    return {
        .on_chunk =
            [this](v1::GenerateResponse chunk) {
              absl::MutexLock lock(&mu_);
              EXPECT_EQ(record_.done_count, 0) << "chunk after on_done";
              if (record_.chunks.empty()) record_.first_chunk_at = Now();
              record_.chunks.push_back(std::move(chunk));
            },
        .on_done =
            [this](absl::Status status, v1::GenerateResponse last) {
              absl::MutexLock lock(&mu_);
              record_.done_at = Now();
              record_.status = std::move(status);
              record_.last = std::move(last);
              if (++record_.done_count == 1) done_.Notify();
            },
    };
  }

  void WaitDone() { done_.WaitForNotification(); }
  bool done() const { return done_.HasBeenNotified(); }
  Record Get() const {
    absl::MutexLock lock(&mu_);
    return record_;
  }

 private:
  absl::Time Now() { return clock_ != nullptr ? clock_->Now() : absl::InfinitePast(); }

  Clock* const clock_;
  absl::Notification done_;
  mutable absl::Mutex mu_;
  Record record_ ABSL_GUARDED_BY(mu_);
};

// What one SubmitEmbed answered, and when (virtual time).
struct EmbedResult {
  absl::StatusOr<v1::EmbedResponse> response;
  absl::Time done_at;
};

// Submits `request` (of `request.model()`'s shape) and waits for its answer.
inline EmbedResult RunEmbed(SimEngine& engine, Clock& clock, const v1::EmbedRequest& request) {
  absl::Notification done;
  EmbedResult result;
  engine.SubmitEmbed(request, ShapeForModel(request.model()),
                     [&](absl::StatusOr<v1::EmbedResponse> response) {
                       result.response = std::move(response);
                       result.done_at = clock.Now();
                       done.Notify();
                     });
  done.WaitForNotification();
  return result;
}

}  // namespace tollgate::sim
