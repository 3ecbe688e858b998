#include "sim/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sim/engine_request.h"
#include "sim/generator.h"

namespace tollgate::sim {

double KvCapacityBytesFor(const GpuSpec& gpu, uint32_t gpu_count, const ModelShape& served) {
  return gpu.memory_bytes * gpu_count * kGpuMemoryUtilization - served.WeightBytes();
}

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
    FinishAllStaticLocked(outbox, shutdown);
  }
  outbox.Deliver();
}

SimEngine::RequestId SimEngine::NextIdLocked() { return next_id_++; }

SimEngine::RequestId SimEngine::Submit(const v1::GenerateRequest& request, const ModelShape& shape,
                                       Callbacks cb) {
  std::vector<Callbacks> callbacks;
  callbacks.push_back(std::move(cb));
  return SubmitBatch({&request, 1}, shape, std::move(callbacks)).front();
}

std::vector<SimEngine::RequestId> SimEngine::SubmitBatch(
    absl::Span<const v1::GenerateRequest> requests, const ModelShape& shape,
    std::vector<Callbacks> callbacks) {
  std::vector<std::unique_ptr<Request>> entries;
  std::vector<RequestId> ids;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < requests.size(); ++i) {
      entries.push_back(std::make_unique<Request>());
      entries.back()->id = NextIdLocked();
      ids.push_back(entries.back()->id);
    }
  }
  absl::Status status;
  for (const v1::GenerateRequest& request : requests) {
    status.Update(ValidateRequest(request));
  }
  for (size_t i = 0; status.ok() && i < requests.size(); ++i) {
    entries[i]->shape = shape;
    entries[i]->output = Generate(requests[i]);
    entries[i]->prompt_tokens = entries[i]->output.prompt_tokens;
  }
  if (status.ok()) status = CheckFits(entries, static_cast<uint32_t>(entries.size()));
  for (size_t i = 0; i < requests.size(); ++i) {
    if (status.ok()) {
      entries[i]->callbacks = std::move(callbacks[i]);
    } else {
      callbacks[i].on_done(status, v1::GenerateResponse());
    }
  }
  if (status.ok()) Dispatch(std::move(entries), static_cast<uint32_t>(requests.size()));
  return ids;
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
    const uint32_t tokens = CountEmbedTokens(input);
    entry->prompt_tokens += tokens;
    entry->longest_input_tokens = std::max<uint64_t>(entry->longest_input_tokens, tokens);
  }
  v1::Usage* usage = entry->embed_response.mutable_usage();
  usage->set_input_tokens(entry->prompt_tokens);
  usage->set_source(v1::USAGE_SOURCE_REPORTED);
  entry->on_embed_done = std::move(on_done);
  {
    absl::MutexLock lock(&mu_);
    entry->id = NextIdLocked();
  }
  std::vector<std::unique_ptr<Request>> entries;
  entries.push_back(std::move(entry));
  const auto batch_size = static_cast<uint32_t>(request.inputs_size());
  if (absl::Status status = CheckFits(entries, batch_size); !status.ok()) {
    entries.front()->on_embed_done(status);
    return;
  }
  Dispatch(std::move(entries), batch_size);
}

absl::Status SimEngine::CheckFits(const std::vector<std::unique_ptr<Request>>& requests,
                                  uint32_t batch_size) const {
  const bool static_mode = options_.batch_mode == BatchMode::kStatic;
  if (static_mode && batch_size > options_.max_static_batch) {
    return absl::InvalidArgumentError(absl::StrCat("a batch of ", batch_size,
                                                   " inputs exceeds the static batch limit of ",
                                                   options_.max_static_batch));
  }
  const uint64_t capacity = options_.kv_capacity_bytes;
  if (capacity == 0) return absl::OkStatus();
  // A static call holds all its items' KV to its end; continuous mode needs each to fit alone.
  uint64_t call_bytes = 0;
  for (const std::unique_ptr<Request>& request : requests) {
    const uint64_t bytes = request->FinalKvBytes();
    call_bytes += bytes;
    if (bytes > capacity || (static_mode && call_bytes > capacity)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the prompt and answer (", request->prompt_tokens, " + ", request->output.tokens.size(),
          " tokens", static_mode && requests.size() > 1 ? " with the rest of its static batch" : "",
          ") need ", static_mode ? call_bytes : bytes,
          " bytes of KV cache, more than the simulated server's ", capacity));
    }
  }
  return absl::OkStatus();
}

void SimEngine::Dispatch(std::vector<std::unique_ptr<Request>> requests, uint32_t batch_size) {
  if (options_.time_scale == 0) {
    for (std::unique_ptr<Request>& request : requests) RunSynchronously(std::move(request));
    return;
  }
  {
    // All at once: a batch's requests join the same step.
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      if (options_.batch_mode == BatchMode::kContinuous) {
        for (std::unique_ptr<Request>& request : requests) waiting_.push_back(std::move(request));
      } else {
        auto call = std::make_unique<StaticCall>();
        call->items = std::move(requests);
        call->batch_size = batch_size;
        static_waiting_.push_back(std::move(call));
      }
      return;
    }
  }
  for (std::unique_ptr<Request>& request : requests) {
    request->Finish(absl::UnavailableError("simulator engine shut down"));
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
    } else if (std::unique_ptr<Request> item = TakeStaticLocked(id); item != nullptr) {
      cancelled_.push_back(std::move(item));
    } else {
      return;
    }
  }
  clock_->Wake();
}

SimEngine::Stats SimEngine::GetStats() const {
  absl::MutexLock lock(&mu_);
  Stats stats{static_cast<uint32_t>(running_.size()), static_cast<uint32_t>(waiting_.size()),
              prompt_tokens_total_, generation_tokens_total_};
  for (const std::unique_ptr<Request>& request : running_) {
    stats.kv_cache_bytes += request->KvBytes(request->kv_tokens());
  }
  stats.requests_total = requests_total_;
  stats.num_preemptions = num_preemptions_;
  AddStaticStatsLocked(stats);
  return stats;
}

bool SimEngine::HasWorkLocked() const {
  return stopping_ || !waiting_.empty() || !running_.empty() || !cancelled_.empty() ||
         !static_waiting_.empty() || static_running_ != nullptr;
}

void SimEngine::Run() {
  if (options_.batch_mode == BatchMode::kStatic) {
    RunStatic();
  } else {
    RunContinuous();
  }
}

void SimEngine::RunContinuous() {
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
  const uint64_t capacity = options_.kv_capacity_bytes;
  uint64_t kv_bytes = PreemptToFitLocked();
  double seconds = 0;
  while (!waiting_.empty()) {
    const Request& next = *waiting_.front();
    if (!next.is_embed()) {
      if (running_.size() >= options_.max_running_requests) break;
      if (capacity > 0 && kv_bytes + next.StepKvBytes() > capacity) break;
      kv_bytes += next.StepKvBytes();
    }
    std::unique_ptr<Request> request = std::move(waiting_.front());
    waiting_.pop_front();
    if (!request->admitted) {
      request->admitted = true;
      ++requests_total_;
      prompt_tokens_total_ += request->prompt_tokens;
    }
    // A readmitted request recomputes the KV of the tokens it had generated too.
    seconds += latency_.PrefillSeconds(request->shape, request->kv_tokens());
    (request->is_embed() ? embedding_ : running_).push_back(std::move(request));
  }
  if (!running_.empty()) seconds += DecodeSecondsLocked();
  return seconds;
}

uint64_t SimEngine::PreemptToFitLocked() {
  uint64_t kv_bytes = 0;
  for (const std::unique_ptr<Request>& request : running_) kv_bytes += request->StepKvBytes();
  const uint64_t capacity = options_.kv_capacity_bytes;
  // One request alone always fits: CheckFits refused those that would not.
  while (capacity > 0 && kv_bytes > capacity && running_.size() > 1) {
    std::unique_ptr<Request> victim = std::move(running_.back());
    running_.pop_back();
    kv_bytes -= victim->StepKvBytes();
    ++num_preemptions_;
    waiting_.push_front(std::move(victim));
  }
  return kv_bytes;
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
