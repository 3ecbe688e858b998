#include "proxy/batcher/dynamic_batcher.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

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

struct BatchQueue::Ready {
  std::vector<Erased> items;
  BatchInfo info;
};

struct BatchQueue::Rejected {
  Erased item;
  absl::Status status;
};

struct BatchQueue::Actions {
  std::vector<Rejected> rejected;
  std::vector<Ready> ready;
  bool arm = false;
  absl::Time arm_at;
};

BatchQueue::BatchQueue(BatcherOptions options, Scheduler* scheduler, SendFn send, RejectFn reject)
    : options_(std::move(options)),
      scheduler_(scheduler),
      send_(std::move(send)),
      reject_(std::move(reject)) {
  options_.max_batch_size = std::max<size_t>(options_.max_batch_size, 1);
}

uint64_t BatchQueue::EnqueueErased(Erased item, size_t size, absl::Time deadline) {
  Actions actions;
  uint64_t ticket;
  {
    absl::MutexLock lock(&mu_);
    ticket = next_ticket_++;
    queue_.push_back(
        {ticket, std::move(item), std::max<size_t>(size, 1), scheduler_->Now(), deadline});
    earliest_deadline_ = std::min(earliest_deadline_, deadline);
    LookLocked(actions);
  }
  Deliver(std::move(actions));
  return ticket;
}

bool BatchQueue::Cancel(uint64_t ticket) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [ticket](const Entry& e) { return e.ticket == ticket; });
    if (it == queue_.end()) return false;
    actions.rejected.push_back(
        {std::move(it->item), absl::CancelledError("cancelled while waiting for a batch")});
    queue_.erase(it);
    LookLocked(actions);  // a head may now be a preferred size
  }
  Deliver(std::move(actions));
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

void BatchQueue::LookLocked(Actions& actions) {
  const absl::Time now = scheduler_->Now();
  ExpireLocked(now, actions.rejected);
  TakeReadyLocked(now, actions.ready);
  if (queue_.empty()) earliest_deadline_ = absl::InfiniteFuture();
  actions.arm = ArmLocked(&actions.arm_at);
}

void BatchQueue::ExpireLocked(absl::Time now, std::vector<Rejected>& rejected) {
  if (now < earliest_deadline_) return;  // nothing has expired; most calls end here
  earliest_deadline_ = absl::InfiniteFuture();
  std::deque<Entry> kept;
  for (Entry& e : queue_) {
    if (e.deadline > now) {
      earliest_deadline_ = std::min(earliest_deadline_, e.deadline);
      kept.push_back(std::move(e));
      continue;
    }
    std::string why = absl::StrCat("deadline passed after ", absl::FormatDuration(now - e.enqueued),
                                   " waiting for a batch");
    if (SaturatedLocked()) {
      absl::StrAppend(&why, ": ", in_flight_, " call", in_flight_ == 1 ? "" : "s",
                      " of this queue still running (max_in_flight_batches: ",
                      options_.max_in_flight, "), so no batch could be sent");
    }
    rejected.push_back({std::move(e.item), absl::DeadlineExceededError(why)});
  }
  queue_.swap(kept);
}

void BatchQueue::TakeReadyLocked(absl::Time now, std::vector<Ready>& ready) {
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
  if (queue_.empty()) return false;
  absl::Time due = earliest_deadline_;
  // While saturated, the next call's end looks at the queue again; only deadlines need a timer.
  if (!SaturatedLocked()) due = std::min(due, queue_.front().enqueued + options_.max_queue_delay);
  if (due == absl::InfiniteFuture()) return false;
  if (!timers_.empty() && *timers_.begin() <= due) return false;  // it will look again
  timers_.insert(due);
  *when = due;
  return true;
}

void BatchQueue::Deliver(Actions actions) {
  if (actions.arm) {
    scheduler_->RunAt(actions.arm_at,
                      [self = shared_from_this(), at = actions.arm_at] { self->OnTimer(at); });
  }
  for (Rejected& r : actions.rejected) reject_(std::move(r.item), r.status);
  for (Ready& batch : actions.ready) send_(std::move(batch.items), batch.info);
}

void BatchQueue::OnTimer(absl::Time armed_for) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    timers_.erase(timers_.find(armed_for));
    LookLocked(actions);  // arms for the next time due, or again if this one fired early
  }
  Deliver(std::move(actions));
}

void BatchQueue::OnBatchDone() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    LookLocked(actions);
  }
  Deliver(std::move(actions));
}

}  // namespace batcher_internal

}  // namespace tollgate
