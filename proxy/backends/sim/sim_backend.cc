#include "proxy/backends/sim/sim_backend.h"

#include <atomic>
#include <thread>
#include <utility>

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
