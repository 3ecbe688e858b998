// SimEngine's static-batch mode (see engine.h): one call at a time, calls FIFO, a call of B items
// holding the server for t_1 × (1 + f × (B − 1)).
#include <algorithm>
#include <utility>

#include "sim/engine.h"
#include "sim/engine_request.h"

namespace tollgate::sim {

void SimEngine::RunStatic() {
  while (true) {
    Outbox outbox;
    bool calling = false;
    absl::Time deadline;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &SimEngine::HasWorkLocked));
      if (stopping_) return;
      outbox.FinishAll(cancelled_, absl::CancelledError("request cancelled"));
      // From idle a call starts now; queued calls start where the previous one ended.
      if (static_running_ == nullptr && !static_waiting_.empty()) {
        StartStaticCallLocked(clock_->Now());
      }
      calling = static_running_ != nullptr;
      if (calling) deadline = NextStaticEventLocked();
    }
    outbox.Deliver();
    if (!calling) continue;
    if (!SleepUntilStepEnd(deadline)) return;
    {
      absl::MutexLock lock(&mu_);
      StaticEventsLocked(deadline, outbox);
    }
    outbox.Deliver();
  }
}

void SimEngine::StartStaticCallLocked(absl::Time start) {
  static_running_ = std::move(static_waiting_.front());
  static_waiting_.pop_front();
  StaticCall& call = *static_running_;
  call.start = start;
  call.stretch = 1 + options_.static_per_item_fraction * (call.batch_size - 1);
  double longest_seconds = 0;
  for (const std::unique_ptr<Request>& item : call.items) {
    item->admitted = true;
    ++requests_total_;
    prompt_tokens_total_ += item->prompt_tokens;
    item->static_next_seconds = item->FirstEventSeconds(latency_);
    longest_seconds = std::max(longest_seconds, item->SoloSeconds(latency_));
  }
  call.end = call.At(longest_seconds, options_.time_scale);
}

absl::Time SimEngine::NextStaticEventLocked() const {
  const StaticCall& call = *static_running_;
  absl::Time next = call.end;
  for (const std::unique_ptr<Request>& item : call.items) {
    next = std::min(next, call.At(item->static_next_seconds, options_.time_scale));
  }
  return next;
}

void SimEngine::StaticEventsLocked(absl::Time now, Outbox& outbox) {
  StaticCall& call = *static_running_;
  // At the call's end every item is done, whatever rounding left of its last event.
  const bool ending = now >= call.end;
  std::vector<std::unique_ptr<Request>> unfinished;
  for (std::unique_ptr<Request>& item : call.items) {
    while (ending || call.At(item->static_next_seconds, options_.time_scale) <= now) {
      if (!item->fully_emitted()) {
        outbox.chunks.emplace_back(item.get(), item->EmitNextToken());
        ++generation_tokens_total_;
      }
      if (item->fully_emitted()) break;
      item->static_next_seconds += latency_.DecodeStepSeconds(item->shape, item->kv_tokens());
    }
    if (item->fully_emitted()) {
      outbox.finished.emplace_back(std::move(item), absl::OkStatus());
    } else {
      unfinished.push_back(std::move(item));
    }
  }
  call.items = std::move(unfinished);
  if (!ending) return;
  const absl::Time end = call.end;
  static_running_.reset();
  if (!static_waiting_.empty()) StartStaticCallLocked(end);
}

std::unique_ptr<SimEngine::Request> SimEngine::TakeStaticLocked(RequestId id) {
  auto take_from = [id](StaticCall& call) -> std::unique_ptr<Request> {
    for (auto it = call.items.begin(); it != call.items.end(); ++it) {
      if ((*it)->id != id || (*it)->is_embed()) continue;
      std::unique_ptr<Request> item = std::move(*it);
      call.items.erase(it);
      return item;
    }
    return nullptr;
  };
  if (static_running_ != nullptr) {
    // The call keeps the server until its end: a static batch runs to completion.
    if (std::unique_ptr<Request> item = take_from(*static_running_)) return item;
  }
  for (auto it = static_waiting_.begin(); it != static_waiting_.end(); ++it) {
    std::unique_ptr<Request> item = take_from(**it);
    if (item == nullptr) continue;
    if ((*it)->items.empty()) static_waiting_.erase(it);
    return item;
  }
  return nullptr;
}

void SimEngine::FinishAllStaticLocked(Outbox& outbox, const absl::Status& status) {
  if (static_running_ != nullptr) outbox.FinishAll(static_running_->items, status);
  static_running_.reset();
  for (std::unique_ptr<StaticCall>& call : static_waiting_) outbox.FinishAll(call->items, status);
  static_waiting_.clear();
}

void SimEngine::AddStaticStatsLocked(Stats& stats) const {
  if (static_running_ != nullptr) {
    stats.running += static_cast<uint32_t>(static_running_->items.size());
    for (const std::unique_ptr<Request>& item : static_running_->items) {
      if (!item->is_embed()) stats.kv_cache_bytes += item->KvBytes(item->kv_tokens());
    }
  }
  for (const std::unique_ptr<StaticCall>& call : static_waiting_) {
    stats.waiting += static_cast<uint32_t>(call->items.size());
  }
}

}  // namespace tollgate::sim
