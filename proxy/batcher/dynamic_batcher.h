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
//   4. Otherwise a timer is armed for when the oldest item's delay runs out.
// With max_queue_delay zero every item is sent as it arrives (rule 3 fires at once).
//
// Calls in flight: with max_in_flight > 0, no batch is sent while that many sent batches are still
// running (each batch's BatchInfo::in_flight is held by its call until the call ends). Items keep
// queueing meanwhile, and when a call ends the rules above are applied again: the oldest item has
// usually waited past max_queue_delay by then, so everything queued leaves as full batches. This is
// Triton's hold-until-an-instance-is-free, and it is what keeps a closed loop's batches whole in
// front of a server that runs one call at a time: without it, a group of requests split once comes
// back split, one call apart, and each part goes alone when its delay runs out.
//
// Deadlines: an item still queued when its deadline (Enqueue's; none by default) passes leaves
// through `reject` with DEADLINE_EXCEEDED, saying how long it waited and, when the queue was held
// at max_in_flight, how many calls were running: a call that hangs (up to the backend's timeout)
// no longer keeps the items behind it waiting silently past their deadlines. Timers: one pending
// at a time, for the earliest of the items' deadlines and (unless held) the oldest item's delay;
// an item arriving with an earlier deadline arms an earlier one, and the later one finds nothing
// to do (a Scheduler has no cancel).
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
//       &RealScheduler(),
//       [](std::vector<Job> jobs, const BatchInfo& info) { StartCall(std::move(jobs)); },
//       [](Job job, const absl::Status& status) { job.Fail(status); });
//   DynamicBatcher<Job>::Ticket t = batcher->Enqueue(std::move(job), /*size=*/1, deadline);
//   batcher->Cancel(t);  // from any thread
//
// Thread safety: every method may be called from any thread. `send` and `reject` run without the
// batcher's lock, on the thread that caused them (Enqueue's or Cancel's caller, or the
// scheduler's timer thread); they may call back into the batcher. They must not block: `send`
// starts an asynchronous call. Ownership: always held by a shared_ptr (Create); a pending timer
// keeps the batcher alive until it fires, so queued items are always sent or rejected.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proxy/common/scheduler.h"

namespace tollgate {

struct BatcherOptions {
  size_t max_batch_size = 1;                              // >= 1
  std::vector<size_t> preferred_batch_sizes;              // each in [1, max_batch_size]; any order
  absl::Duration max_queue_delay = absl::ZeroDuration();  // >= 0 and finite
  size_t max_in_flight = 0;  // batches sent and still running at most; 0 = unbounded
};

// Why a batch left the queue (the rules above).
enum class BatchTrigger { kPreferredSize, kMaxSize, kQueueDelay };

struct BatchInfo {
  size_t size = 0;  // the sum of the items' sizes
  BatchTrigger trigger = BatchTrigger::kQueueDelay;
  absl::Time sent;                           // when the batch left the queue
  std::vector<absl::Duration> queue_delays;  // each item's wait, in batch order
  // With max_in_flight: held by the batch's call until it ends; when the last copy goes, the
  // batch no longer counts as running and the queue may send again. Null without a bound.
  std::shared_ptr<void> in_flight;
};

namespace batcher_internal {

struct InFlight;

// The queue and its send rules, over items the typed DynamicBatcher erases to shared_ptr<void>.
class BatchQueue : public std::enable_shared_from_this<BatchQueue> {
 public:
  using Erased = std::shared_ptr<void>;
  using SendFn = std::function<void(std::vector<Erased> items, const BatchInfo& info)>;
  using RejectFn = std::function<void(Erased item, const absl::Status& status)>;

  virtual ~BatchQueue() = default;
  BatchQueue(const BatchQueue&) = delete;
  BatchQueue& operator=(const BatchQueue&) = delete;

  uint64_t EnqueueErased(Erased item, size_t size, absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes a still-queued item out and rejects it with CANCELLED; false when it was already sent
  // (or never existed).
  bool Cancel(uint64_t ticket) ABSL_LOCKS_EXCLUDED(mu_);
  size_t queued() const ABSL_LOCKS_EXCLUDED(mu_);  // items waiting
  // Nothing waits and no sent batch is still running.
  bool idle() const ABSL_LOCKS_EXCLUDED(mu_);
  const BatcherOptions& options() const { return options_; }

 protected:
  BatchQueue(BatcherOptions options, Scheduler* scheduler, SendFn send, RejectFn reject);

 private:
  struct Entry {
    uint64_t ticket;
    Erased item;
    size_t size;
    absl::Time enqueued;
    absl::Time deadline;
  };
  struct Ready;     // a batch taken out, to send
  struct Rejected;  // an item taken out, to reject
  struct Actions;   // what a change of the queue leads to, carried out after the lock is released

  // How many items at the head to send now, and why; 0 when none yet.
  size_t DecideLocked(absl::Time now, BatchTrigger* trigger) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After any change: rejects the items past their deadlines, takes the batches due, arms a timer.
  void LookLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLocked(absl::Time now, std::vector<Rejected>& rejected)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakeReadyLocked(absl::Time now, std::vector<Ready>& ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a timer must be armed (at *when): none pending fires by the next time due.
  bool ArmLocked(absl::Time* when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Outside the lock: arms the timer, rejects, then sends.
  void Deliver(Actions actions) ABSL_LOCKS_EXCLUDED(mu_);
  void OnTimer(absl::Time armed_for) ABSL_LOCKS_EXCLUDED(mu_);
  friend struct InFlight;
  // A sent batch's call ended (its BatchInfo::in_flight was released).
  void OnBatchDone() ABSL_LOCKS_EXCLUDED(mu_);
  bool SaturatedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return options_.max_in_flight > 0 && in_flight_ >= options_.max_in_flight;
  }

  BatcherOptions options_;
  Scheduler* const scheduler_;
  const SendFn send_;
  const RejectFn reject_;

  mutable absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::multiset<absl::Time> timers_ ABSL_GUARDED_BY(mu_);  // armed and not yet fired
  // At most the earliest queued item's deadline (exact after ExpireLocked).
  absl::Time earliest_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // counted only with max_in_flight
};

}  // namespace batcher_internal

template <typename Item>
class DynamicBatcher final : public batcher_internal::BatchQueue {
 public:
  using SendFn = std::function<void(std::vector<Item> items, const BatchInfo& info)>;
  using RejectFn = std::function<void(Item item, const absl::Status& status)>;
  using Ticket = uint64_t;

  // REQUIRES: options as documented; `scheduler` outlives the batcher.
  static std::shared_ptr<DynamicBatcher> Create(BatcherOptions options, Scheduler* scheduler,
                                                SendFn send, RejectFn reject) {
    return std::shared_ptr<DynamicBatcher>(
        new DynamicBatcher(std::move(options), scheduler, std::move(send), std::move(reject)));
  }

  // Queues `item`, possibly sending it (and others) before returning. A size of 0 counts as 1.
  // Still queued at `deadline` (on the scheduler's clock), it is rejected with DEADLINE_EXCEEDED.
  Ticket Enqueue(Item item, size_t size = 1, absl::Time deadline = absl::InfiniteFuture()) {
    return EnqueueErased(std::make_shared<Item>(std::move(item)), size, deadline);
  }

  // Cancel(ticket), queued() and options() are BatchQueue's.

 private:
  static Item Take(const Erased& item) { return std::move(*std::static_pointer_cast<Item>(item)); }

  DynamicBatcher(BatcherOptions options, Scheduler* scheduler, SendFn send, RejectFn reject)
      : BatchQueue(
            std::move(options), scheduler,
            [send = std::move(send)](const std::vector<Erased>& erased, const BatchInfo& info) {
              std::vector<Item> items;
              items.reserve(erased.size());
              for (const Erased& item : erased) items.push_back(Take(item));
              send(std::move(items), info);
            },
            [reject = std::move(reject)](const Erased& item, const absl::Status& status) {
              reject(Take(item), status);
            }) {}
};

}  // namespace tollgate
