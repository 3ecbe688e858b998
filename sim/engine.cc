#include "sim/engine.h"

#include <algorithm>
#include <utility>

#include "sim/engine_request.h"
#include "sim/generator.h"

namespace tollgate::sim {

SimEngine::SimEngine(EngineOptions options)
    : options_(std::move(options)),
      latency_(options_.gpu, options_.gpu_count, options_.mfu),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()) {
  if (options_.time_scale > 0) thread_ = std::thread([this] { Run(); });
}

SimEngine::~SimEngine() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    clock_->Wake();
    thread_.join();
  }
  Outbox outbox;
  {
    absl::MutexLock lock(&mu_);
    outbox.FinishAll(cancelled_, absl::CancelledError("request cancelled"));
    const absl::Status shutdown = absl::UnavailableError("simulator engine shut down");
    std::vector<std::unique_ptr<Request>> waiting(std::make_move_iterator(waiting_.begin()),
                                                  std::make_move_iterator(waiting_.end()));
    waiting_.clear();
    outbox.FinishAll(running_, shutdown);
    outbox.FinishAll(embedding_, shutdown);
    outbox.FinishAll(waiting, shutdown);
  }
  outbox.Deliver();
}

SimEngine::RequestId SimEngine::NextIdLocked() { return next_id_++; }

SimEngine::RequestId SimEngine::Submit(const v1::GenerateRequest& request, const ModelShape& shape,
                                       Callbacks cb) {
  auto entry = std::make_unique<Request>();
  {
    absl::MutexLock lock(&mu_);
    entry->id = NextIdLocked();
  }
  const RequestId id = entry->id;
  if (absl::Status status = ValidateRequest(request); !status.ok()) {
    cb.on_done(status, v1::GenerateResponse());
    return id;
  }
  entry->shape = shape;
  entry->output = Generate(request);
  entry->prompt_tokens = entry->output.prompt_tokens;
  entry->callbacks = std::move(cb);
  if (options_.time_scale > 0) {
    Enqueue(std::move(entry));
  } else {
    RunSynchronously(std::move(entry));
  }
  return id;
}

void SimEngine::SubmitEmbed(const v1::EmbedRequest& request, const ModelShape& shape,
                            std::function<void(absl::StatusOr<v1::EmbedResponse>)> on_done) {
  if (absl::Status status = ValidateEmbedRequest(request); !status.ok()) {
    on_done(status);
    return;
  }
  auto entry = std::make_unique<Request>();
  entry->shape = shape;
  for (const std::string& input : request.inputs()) {
    const std::vector<float> vector = Embed(request.model(), input);
    entry->embed_response.add_embeddings()->mutable_values()->Add(vector.begin(), vector.end());
    entry->prompt_tokens += CountEmbedTokens(input);
  }
  v1::Usage* usage = entry->embed_response.mutable_usage();
  usage->set_input_tokens(entry->prompt_tokens);
  usage->set_source(v1::USAGE_SOURCE_REPORTED);
  entry->on_embed_done = std::move(on_done);
  {
    absl::MutexLock lock(&mu_);
    entry->id = NextIdLocked();
  }
  if (options_.time_scale > 0) {
    Enqueue(std::move(entry));
  } else {
    RunSynchronously(std::move(entry));
  }
}

void SimEngine::RunSynchronously(std::unique_ptr<Request> request) {
  request->admitted = true;
  Outbox outbox;
  while (!request->is_embed() && !request->fully_emitted()) {
    outbox.chunks.emplace_back(request.get(), request->EmitNextToken());
  }
  {
    absl::MutexLock lock(&mu_);
    ++requests_total_;
    prompt_tokens_total_ += request->prompt_tokens;
    generation_tokens_total_ += request->emitted;
  }
  outbox.finished.emplace_back(std::move(request), absl::OkStatus());
  outbox.Deliver();
}

void SimEngine::Enqueue(std::unique_ptr<Request> request) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      waiting_.push_back(std::move(request));
      return;
    }
  }
  request->Finish(absl::UnavailableError("simulator engine shut down"));
}

void SimEngine::Cancel(RequestId id) {
  {
    absl::MutexLock lock(&mu_);
    auto matches = [id](const std::unique_ptr<Request>& request) { return request->id == id; };
    if (auto it = std::find_if(running_.begin(), running_.end(), matches); it != running_.end()) {
      cancelled_.push_back(std::move(*it));
      running_.erase(it);
    } else if (auto it = std::find_if(waiting_.begin(), waiting_.end(), matches);
               it != waiting_.end() && !(*it)->is_embed()) {
      cancelled_.push_back(std::move(*it));
      waiting_.erase(it);
    } else {
      return;
    }
  }
  clock_->Wake();
}

SimEngine::Stats SimEngine::GetStats() const {
  absl::MutexLock lock(&mu_);
  uint64_t kv_cache_bytes = 0;
  for (const std::unique_ptr<Request>& request : running_) {
    const uint64_t blocks = (request->kv_tokens() + kKvBlockTokens - 1) / kKvBlockTokens;
    kv_cache_bytes += blocks * kKvBlockTokens * request->shape.KvBytesPerToken();
  }
  return Stats{static_cast<uint32_t>(running_.size()),
               static_cast<uint32_t>(waiting_.size()),
               prompt_tokens_total_,
               generation_tokens_total_,
               kv_cache_bytes,
               requests_total_};
}

bool SimEngine::HasWorkLocked() const {
  return stopping_ || !waiting_.empty() || !running_.empty() || !cancelled_.empty();
}

void SimEngine::Run() {
  absl::Time step_end = absl::InfinitePast();
  while (true) {
    Outbox outbox;
    bool stepping = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &SimEngine::HasWorkLocked));
      if (stopping_) return;
      outbox.FinishAll(cancelled_, absl::CancelledError("request cancelled"));
      // From idle the schedule restarts now; while busy, steps chain on absolute deadlines.
      if (running_.empty()) step_end = clock_->Now();
      const double step_seconds = StartStepLocked();
      stepping = !running_.empty() || !embedding_.empty();
      if (stepping) step_end += absl::Seconds(step_seconds * options_.time_scale);
    }
    outbox.Deliver();
    if (!stepping) continue;
    if (!SleepUntilStepEnd(step_end)) return;
    {
      absl::MutexLock lock(&mu_);
      EndStepLocked(outbox);
    }
    outbox.Deliver();
  }
}

double SimEngine::StartStepLocked() {
  double seconds = 0;
  while (!waiting_.empty() &&
         (waiting_.front()->is_embed() || running_.size() < options_.max_running_requests)) {
    std::unique_ptr<Request> request = std::move(waiting_.front());
    waiting_.pop_front();
    request->admitted = true;
    ++requests_total_;
    prompt_tokens_total_ += request->prompt_tokens;
    seconds += latency_.PrefillSeconds(request->shape, request->prompt_tokens);
    (request->is_embed() ? embedding_ : running_).push_back(std::move(request));
  }
  if (!running_.empty()) seconds += DecodeSecondsLocked();
  return seconds;
}

double SimEngine::DecodeSecondsLocked() const {
  double weight_bytes = 0;
  uint64_t kv_bytes = 0;
  for (const std::unique_ptr<Request>& request : running_) {
    weight_bytes = std::max(weight_bytes, request->shape.WeightBytes());
    kv_bytes += request->kv_tokens() * request->shape.KvBytesPerToken();
  }
  return latency_.ReadSeconds(weight_bytes + static_cast<double>(kv_bytes));
}

bool SimEngine::SleepUntilStepEnd(absl::Time deadline) {
  while (true) {
    Outbox outbox;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return false;
      outbox.FinishAll(cancelled_, absl::CancelledError("request cancelled"));
    }
    outbox.Deliver();
    if (clock_->Now() >= deadline) return true;
    clock_->SleepUntil(deadline);
  }
}

void SimEngine::EndStepLocked(Outbox& outbox) {
  outbox.FinishAll(embedding_, absl::OkStatus());
  std::vector<std::unique_ptr<Request>> still_running;
  still_running.reserve(running_.size());
  for (std::unique_ptr<Request>& request : running_) {
    if (!request->fully_emitted()) {
      outbox.chunks.emplace_back(request.get(), request->EmitNextToken());
      ++generation_tokens_total_;
    }
    if (request->fully_emitted()) {
      outbox.finished.emplace_back(std::move(request), absl::OkStatus());
    } else {
      still_running.push_back(std::move(request));
    }
  }
  running_ = std::move(still_running);
}

void EngineRequestHandle::Submitted(SimEngine::RequestId id) {
  bool cancel_requested;
  {
    absl::MutexLock lock(&mu_);
    id_ = id;
    cancel_requested = cancel_requested_;
  }
  if (cancel_requested) engine_->Cancel(id);
}

void EngineRequestHandle::Cancel() {
  std::optional<SimEngine::RequestId> id;
  {
    absl::MutexLock lock(&mu_);
    cancel_requested_ = true;
    id = id_;
  }
  if (id.has_value()) engine_->Cancel(*id);
}

}  // namespace tollgate::sim
