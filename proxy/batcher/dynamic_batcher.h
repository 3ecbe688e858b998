// A dynamic batcher: items that arrive one by one wait in a queue, up to a bounded delay, so that
// several of them can share one backend call. The send rules are those of Triton's dynamic
// batcher, applied each time the queue changes (an item arrives, leaves, or its delay runs out):
//
//   1. Preferred size: when the items at the head of the queue add up to one of the preferred
//      batch sizes, the longest such head is sent (the largest preferred size reachable).
//   2. Max size: when the queue holds max_batch_size or more, or the next item would not fit, the
//      longest head that fits in max_batch_size is sent. An item larger than max_batch_size on its
//      own is sent alone.
//   3. Queue delay: when the oldest item has waited max_queue_delay, everything queued is sent (up
//      to max_batch_size), NOT only the largest preferred size that fits. The delay is a promise
//      about latency; holding back the younger items would only make them wait again, and one
//      backend call with a few more items costs less than a second call.
//   4. Otherwise a timer is armed for the oldest item's deadline (one timer at a time).
// With max_queue_delay zero every item is sent as it arrives (rule 3 fires at once).
//
// Sizes: each item has a size (default 1), the units max_batch_size and the preferred sizes count
// (prompts, or embedding inputs). Items are sent in arrival order; a batch is a head of the queue.
//
// Cancellation: Cancel(ticket) takes a queued item out of the queue and answers it through
// `reject` with CANCELLED; once an item has been sent it is part of its batch and Cancel returns
// false.
//
//   auto batcher = DynamicBatcher<Job>::Create(
//       {.max_batch_size = 8, .preferred_batch_sizes = {4, 8},
//        .max_queue_delay = absl::Milliseconds(2)},
//       &RealBatchScheduler(),
//       [](std::vector<Job> jobs, const BatchInfo& info) { StartCall(std::move(jobs)); },
//       [](Job job, const absl::Status& status) { job.Fail(status); });
//   DynamicBatcher<Job>::Ticket t = batcher->Enqueue(std::move(job), /*size=*/1);
//   batcher->Cancel(t);  // from any thread
//
// Thread safety: every method may be called from any thread. `send` and `reject` run without the
// batcher's lock, on the thread that caused them (Enqueue's or Cancel's caller, or the
// scheduler's timer thread); they may call back into the batcher. They must not block: `send`
// starts an asynchronous call. Ownership: always held by a shared_ptr (Create); a pending timer
// keeps the batcher alive until it fires, so queued items are always sent.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tollgate {

// The clock and timers of a DynamicBatcher; a fake in tests.
class BatchScheduler {
 public:
  virtual ~BatchScheduler() = default;
  virtual absl::Time Now() = 0;
  // Runs `callback` once, at `when` or later, never on the caller's stack.
  virtual void RunAt(absl::Time when, std::function<void()> callback) = 0;
};

// absl::Now() and the process-wide TimerQueue (proxy/common/timer_queue.h). Never destroyed.
BatchScheduler& RealBatchScheduler();

struct BatcherOptions {
  size_t max_batch_size = 1;                              // >= 1
  std::vector<size_t> preferred_batch_sizes;              // each in [1, max_batch_size]; any order
  absl::Duration max_queue_delay = absl::ZeroDuration();  // >= 0 and finite
};

// Why a batch left the queue (the rules above).
enum class BatchTrigger { kPreferredSize, kMaxSize, kQueueDelay };

struct BatchInfo {
  size_t size = 0;  // the sum of the items' sizes
  BatchTrigger trigger = BatchTrigger::kQueueDelay;
  absl::Time sent;                           // when the batch left the queue
  std::vector<absl::Duration> queue_delays;  // each item's wait, in batch order
};

template <typename Item>
class DynamicBatcher : public std::enable_shared_from_this<DynamicBatcher<Item>> {
 public:
  using SendFn = std::function<void(std::vector<Item> items, const BatchInfo& info)>;
  using RejectFn = std::function<void(Item item, const absl::Status& status)>;
  using Ticket = uint64_t;

  // REQUIRES: options as documented; `scheduler` outlives the batcher.
  static std::shared_ptr<DynamicBatcher> Create(BatcherOptions options, BatchScheduler* scheduler,
                                                SendFn send, RejectFn reject) {
    return std::shared_ptr<DynamicBatcher>(
        new DynamicBatcher(std::move(options), scheduler, std::move(send), std::move(reject)));
  }

  // Queues `item`, possibly sending it (and others) before returning. A size of 0 counts as 1.
  Ticket Enqueue(Item item, size_t size = 1) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<Ready> ready;
    Ticket ticket;
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

  // Takes a still-queued item out and rejects it with CANCELLED; false when it was already sent
  // (or never existed).
  bool Cancel(Ticket ticket) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<Ready> ready;
    std::optional<Item> cancelled;
    bool arm = false;
    absl::Time arm_at;
    {
      absl::MutexLock lock(&mu_);
      auto it = std::find_if(queue_.begin(), queue_.end(),
                             [ticket](const Entry& e) { return e.ticket == ticket; });
      if (it == queue_.end()) return false;
      cancelled.emplace(std::move(it->item));
      queue_.erase(it);
      TakeReadyLocked(ready);  // a head may now be a preferred size
      arm = ArmLocked(&arm_at);
    }
    reject_(*std::move(cancelled), absl::CancelledError("cancelled while waiting for a batch"));
    Deliver(std::move(ready), arm, arm_at);
    return true;
  }

  // Items waiting (for tests and gauges).
  size_t queued() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return queue_.size();
  }

  const BatcherOptions& options() const { return options_; }

 private:
  struct Entry {
    Ticket ticket;
    Item item;
    size_t size;
    absl::Time enqueued;
  };
  struct Ready {
    std::vector<Item> items;
    BatchInfo info;
  };

  DynamicBatcher(BatcherOptions options, BatchScheduler* scheduler, SendFn send, RejectFn reject)
      : options_(std::move(options)),
        scheduler_(scheduler),
        send_(std::move(send)),
        reject_(std::move(reject)) {
    options_.max_batch_size = std::max<size_t>(options_.max_batch_size, 1);
  }

  // How many items at the head to send now, and why; 0 when none yet.
  size_t DecideLocked(absl::Time now, BatchTrigger* trigger) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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

  // Moves every batch due now out of the queue.
  void TakeReadyLocked(std::vector<Ready>& ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = scheduler_->Now();
    BatchTrigger trigger;
    for (size_t n = DecideLocked(now, &trigger); n > 0; n = DecideLocked(now, &trigger)) {
      Ready batch;
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

  // Whether a timer must be armed (at *when) for the oldest item; at most one is pending.
  bool ArmLocked(absl::Time* when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty() || timer_pending_) return false;
    timer_pending_ = true;
    *when = queue_.front().enqueued + options_.max_queue_delay;
    return true;
  }

  void Deliver(std::vector<Ready> ready, bool arm, absl::Time arm_at) {
    if (arm) {
      scheduler_->RunAt(arm_at, [self = this->shared_from_this()] { self->OnTimer(); });
    }
    for (Ready& batch : ready) send_(std::move(batch.items), batch.info);
  }

  void OnTimer() ABSL_LOCKS_EXCLUDED(mu_) {
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

  BatcherOptions options_;
  BatchScheduler* const scheduler_;
  const SendFn send_;
  const RejectFn reject_;

  mutable absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  Ticket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  bool timer_pending_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tollgate
