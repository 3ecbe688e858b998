#include "proxy/backends/sim/sim_backend.h"

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "proxy/common/status_macros.h"
#include "sim/engine.h"

namespace tollgate {
namespace {

class SimCall final : public BackendCall {
 public:
  SimCall(sim::SimEngine* engine, sim::SimEngine::RequestId id) : engine_(engine), id_(id) {}
  void Cancel() override { engine_->Cancel(id_); }

 private:
  sim::SimEngine* const engine_;
  const sim::SimEngine::RequestId id_;
};

// The prompts of one CompleteBatch, answered as they finish; the last one answers the call.
class SimBatch {
 public:
  SimBatch(size_t prompts, CompleteBatchCallback done)
      : remaining_(prompts), done_(std::move(done)) {
    result_.choices.resize(prompts);
  }

  void OnChunk(size_t i, const v1::GenerateResponse& chunk) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    result_.choices[i].text += chunk.text();
  }

  void OnDone(size_t i, const absl::Status& status, const v1::GenerateResponse& last)
      ABSL_LOCKS_EXCLUDED(mu_) {
    CompleteBatchCallback done;
    CompleteBatchResult result;
    {
      absl::MutexLock lock(&mu_);
      BatchChoice& choice = result_.choices[i];
      choice.status = status;
      choice.text += last.text();
      choice.finish_reason = last.finish_reason();
      if (status.ok() && last.has_usage()) {
        choice.usage = last.usage();
        if (!result_.usage.has_value()) {
          result_.usage.emplace();
          result_.usage->set_source(v1::USAGE_SOURCE_REPORTED);
        }
        result_.usage->set_input_tokens(result_.usage->input_tokens() +
                                        last.usage().input_tokens());
        result_.usage->set_output_tokens(result_.usage->output_tokens() +
                                         last.usage().output_tokens());
      }
      if (--remaining_ > 0) return;
      done = std::move(done_);
      result = std::move(result_);
    }
    done(std::move(result));
  }

 private:
  absl::Mutex mu_;
  size_t remaining_ ABSL_GUARDED_BY(mu_);
  CompleteBatchCallback done_ ABSL_GUARDED_BY(mu_);
  CompleteBatchResult result_ ABSL_GUARDED_BY(mu_);
};

class SimBackend final : public Backend {
 public:
  SimBackend(std::string name, sim::EngineOptions options,
             absl::flat_hash_map<std::string, sim::ModelShape> shapes)
      : name_(std::move(name)),
        shapes_(std::move(shapes)),
        engine_(std::make_unique<sim::SimEngine>(std::move(options))) {}

  // After a reload retires this backend, the last request on it may finish on the engine's own
  // thread and drop the last reference there; the engine is then destroyed from a thread of its
  // own, since it cannot join itself.
  ~SimBackend() override {
    if (engine_->IsEngineThread()) std::thread([engine = std::move(engine_)] {}).detach();
  }

  const std::string& name() const override { return name_; }

  std::shared_ptr<BackendCall> Generate(GenerateCall call,
                                        std::shared_ptr<GenerateObserver> observer) override {
    sim::SimEngine::Callbacks callbacks;
    callbacks.on_chunk = [observer](const v1::GenerateResponse& chunk) {
      observer->OnMessage(chunk);
    };
    callbacks.on_done = [observer](const absl::Status& status, const v1::GenerateResponse& last) {
      if (status.ok()) observer->OnMessage(last);
      observer->OnDone(status);
    };
    const sim::ModelShape shape = Shape(call.request.model());
    return std::make_shared<SimCall>(engine_.get(),
                                     engine_->Submit(call.request, shape, std::move(callbacks)));
  }

  bool SupportsCompleteBatch() const override { return true; }

  // One call of the engine (SubmitBatch): in continuous mode its prompts run as requests that
  // share the engine's steps, so the batch costs about one request's time. The usage is the
  // prompts' sum, and each choice carries its own.
  void CompleteBatch(CompleteBatchCall call, CompleteBatchCallback done) override {
    if (call.prompts.empty()) {
      done(absl::InvalidArgumentError("a batch needs at least one prompt"));
      return;
    }
    auto batch = std::make_shared<SimBatch>(call.prompts.size(), std::move(done));
    std::vector<v1::GenerateRequest> requests(call.prompts.size(), call.request);
    std::vector<sim::SimEngine::Callbacks> callbacks(call.prompts.size());
    for (size_t i = 0; i < call.prompts.size(); ++i) {
      requests[i].set_prompt(std::move(call.prompts[i]));
      callbacks[i].on_chunk = [batch, i](const v1::GenerateResponse& chunk) {
        batch->OnChunk(i, chunk);
      };
      callbacks[i].on_done = [batch, i](const absl::Status& status,
                                        const v1::GenerateResponse& last) {
        batch->OnDone(i, status, last);
      };
    }
    engine_->SubmitBatch(requests, Shape(call.request.model()), std::move(callbacks));
  }

  void Embed(EmbedCall call, EmbedCallback done) override {
    engine_->SubmitEmbed(call.request, Shape(call.request.model()), std::move(done));
  }

 private:
  sim::ModelShape Shape(const std::string& model) const {
    auto it = shapes_.find(model);
    return it != shapes_.end() ? it->second : sim::ShapeForModel(model);
  }

  const std::string name_;
  const absl::flat_hash_map<std::string, sim::ModelShape> shapes_;
  std::unique_ptr<sim::SimEngine> engine_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> NewSimBackend(
    std::string name, const SimConfig& config,
    absl::flat_hash_map<std::string, sim::ModelShape> shapes) {
  sim::EngineOptions options;
  TG_ASSIGN_OR_RETURN(options.gpu, sim::FindGpu(config.gpu));
  options.gpu_count = config.gpu_count;
  options.time_scale = config.time_scale;
  options.mfu = config.mfu;
  options.max_running_requests = config.max_running_requests;
  return std::make_unique<SimBackend>(std::move(name), std::move(options), std::move(shapes));
}

}  // namespace tollgate
