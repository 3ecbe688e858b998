#include "proxy/batcher/dynamic_batcher.h"

#include <algorithm>
#include <utility>

namespace tollgate {
namespace batcher_internal {

// A sent batch's place among its queue's calls in flight, given up when the call's last holder
// lets go of it. The queue looks again on the scheduler's thread, not on the releasing stack: a
// backend that fails a call before returning from it releases the place inside the send, and
// sending the next batch there would nest one send in another for as long as the queue lasts.
struct InFlight {
  explicit InFlight(std::weak_ptr<BatchQueue> queue) : queue(std::move(queue)) {}
  ~InFlight() {
    std::shared_ptr<BatchQueue> self = queue.lock();
    if (self == nullptr) return;
    Scheduler* scheduler = self->scheduler_;
    scheduler->RunAt(scheduler->Now(), [self = std::move(self)] { self->OnBatchDone(); });
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

  const std::weak_ptr<BatchQueue> queue;
};

BatchQueue::BatchQueue(BatcherOptions options, Scheduler* scheduler, SendFn send, RejectFn reject)
    : options_(std::move(options)),
      scheduler_(scheduler),
      send_(std::move(send)),
      reject_(std::move(reject)) {
  options_.max_batch_size = std::max<size_t>(options_.max_batch_size, 1);
}

uint64_t BatchQueue::EnqueueErased(Erased item, size_t size) {
  std::vector<Ready> ready;
  uint64_t ticket;
  bool arm = false;
  absl::Time arm_at;
  {
    absl::MutexLock lock(&mu_);
    ticket = next_ticket_++;
    queue_.push_back({ticket, std::move(item), std::max<size_t>(size, 1), scheduler_->Now()});
    TakeReadyLocked(ready);
    arm = ArmLocked(&arm_at);
  }
  Deliver(std::move(ready), arm, arm_at);
  return ticket;
}

bool BatchQueue::Cancel(uint64_t ticket) {
  std::vector<Ready> ready;
  Erased cancelled;
  bool arm = false;
  absl::Time arm_at;
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [ticket](const Entry& e) { return e.ticket == ticket; });
    if (it == queue_.end()) return false;
    cancelled = std::move(it->item);
    queue_.erase(it);
    TakeReadyLocked(ready);  // a head may now be a preferred size
    arm = ArmLocked(&arm_at);
  }
  reject_(std::move(cancelled), absl::CancelledError("cancelled while waiting for a batch"));
  Deliver(std::move(ready), arm, arm_at);
  return true;
}

size_t BatchQueue::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

bool BatchQueue::idle() const {
  absl::MutexLock lock(&mu_);
  return queue_.empty() && in_flight_ == 0;
}

size_t BatchQueue::DecideLocked(absl::Time now, BatchTrigger* trigger) const {
  if (queue_.empty()) return 0;
  size_t fit_items = 0, fit_size = 0, preferred_items = 0;
  for (const Entry& e : queue_) {
    if (fit_items > 0 && fit_size + e.size > options_.max_batch_size) break;
    fit_size += e.size;
    ++fit_items;
    if (std::find(options_.preferred_batch_sizes.begin(), options_.preferred_batch_sizes.end(),
                  fit_size) != options_.preferred_batch_sizes.end()) {
      preferred_items = fit_items;  // heads only grow: the last one found is the largest
    }
    if (fit_size >= options_.max_batch_size) break;
  }
  if (preferred_items > 0) {
    *trigger = BatchTrigger::kPreferredSize;
    return preferred_items;
  }
  if (fit_size >= options_.max_batch_size || fit_items < queue_.size()) {
    *trigger = BatchTrigger::kMaxSize;
    return fit_items;
  }
  if (now - queue_.front().enqueued >= options_.max_queue_delay) {
    *trigger = BatchTrigger::kQueueDelay;
    return fit_items;
  }
  return 0;
}

void BatchQueue::TakeReadyLocked(std::vector<Ready>& ready) {
  const absl::Time now = scheduler_->Now();
  BatchTrigger trigger;
  for (size_t n = DecideLocked(now, &trigger); n > 0 && !SaturatedLocked();
       n = DecideLocked(now, &trigger)) {
    Ready batch;
    if (options_.max_in_flight > 0) {
      ++in_flight_;
      batch.info.in_flight = std::make_shared<InFlight>(weak_from_this());
    }
    batch.info.trigger = trigger;
    batch.info.sent = now;
    batch.items.reserve(n);
    batch.info.queue_delays.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      Entry& e = queue_.front();
      batch.info.size += e.size;
      batch.info.queue_delays.push_back(now - e.enqueued);
      batch.items.push_back(std::move(e.item));
      queue_.pop_front();
    }
    ready.push_back(std::move(batch));
  }
}

bool BatchQueue::ArmLocked(absl::Time* when) {
  // While saturated, the next batch's call ending looks at the queue again.
  if (queue_.empty() || timer_pending_ || SaturatedLocked()) return false;
  timer_pending_ = true;
  *when = queue_.front().enqueued + options_.max_queue_delay;
  return true;
}

void BatchQueue::Deliver(std::vector<Ready> ready, bool arm, absl::Time arm_at) {
  if (arm) scheduler_->RunAt(arm_at, [self = shared_from_this()] { self->OnTimer(); });
  for (Ready& batch : ready) send_(std::move(batch.items), batch.info);
}

void BatchQueue::OnTimer() {
  std::vector<Ready> ready;
  bool arm = false;
  absl::Time arm_at;
  {
    absl::MutexLock lock(&mu_);
    timer_pending_ = false;
    TakeReadyLocked(ready);
    arm = ArmLocked(&arm_at);  // for the next oldest, or again if this one fired early
  }
  Deliver(std::move(ready), arm, arm_at);
}

void BatchQueue::OnBatchDone() {
  std::vector<Ready> ready;
  bool arm = false;
  absl::Time arm_at;
  {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    TakeReadyLocked(ready);
    arm = ArmLocked(&arm_at);
  }
  Deliver(std::move(ready), arm, arm_at);
}

}  // namespace batcher_internal

}  // namespace tollgate
