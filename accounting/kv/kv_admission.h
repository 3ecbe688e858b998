// KV-aware admission for one backend: a request is sent only when its projected KV-cache footprint
// (prompt + max_tokens, block-rounded) fits beside what the backend's requests already hold;
// otherwise it waits, first come first served, for room.
//
//   KvAdmission admission(tracker, scheduler,
//                         {.backend = "gpu-a", .queue_depth = series.admission_queue_depth});
//   const uint64_t projected = model.ProjectedBytes(prompt_tokens, max_tokens);
//   const KvAdmission::Ticket ticket = admission.Admit(projected, deadline, [=](absl::Status s) {
//     if (!s.ok()) return Fail(s);  // RESOURCE_EXHAUSTED; CANCELLED when withdrawn or at shutdown
//     ... call the backend; when it starts:
//     KvRequest kv = tracker.Begin(prompt_tokens, model.bytes_per_token(), projected);
//     ... or, if the request ends before it begins: admission.Release(projected);
//   });
//   ... the client gives up meanwhile: admission.Withdraw(ticket);
//
// Accounting. The limit is admit_ratio × the tracker's capacity. A request is admitted when
//   tracker.held_bytes() + projected <= limit,
// where held_bytes (kv_tracker.h) counts every request once: an admitted request by its projected
// bytes from Admit to Begin, then by max(projected, its real footprint) until End; requests that
// bypass admission by their real footprint. Projections are worst cases (max_tokens is rarely all
// used), so admit_ratio above 1 overcommits on purpose; at 1 the backend cannot run out of KV
// memory if the projections hold.
//
// Order. Strictly FIFO: while the oldest waiter does not fit, later (even smaller) ones wait too,
// so large requests are not starved. Room is looked for when a request Ends, when a hold is
// Released, when the capacity changes, and when a waiter times out or is withdrawn.
//
// Refusals, all RESOURCE_EXHAUSTED naming the backend and the bytes needed and free:
//  - at once, a request whose projection exceeds the limit itself: it could never fit, and
//    waiting for an empty backend would stall the queue behind it. (vLLM refuses at start-up a
//    max_model_len that does not fit its cache, so a request valid for the server fits its
//    capacity; one that does not has a max_tokens past the model's context, or the capacity is
//    misconfigured.)
//  - at once, when max_queue requests are already waiting;
//  - at min(deadline, now + max_queue_wait), a waiter still without room.
// Withdraw (a client's cancel) takes a waiter out of the queue at once with CANCELLED, so that it
// holds back no one behind it. Destroying the admission fails its waiters with CANCELLED.
//
// `done` runs exactly once and never under a lock: on the caller's thread inside Admit when the
// request is admitted or refused at once; otherwise on the thread that made room (a tracker End or
// Release, the caller's), on the scheduler's thread for a timeout, or inside Withdraw. Whichever of
// these comes first decides; the others find the waiter gone. It must not block.
//
// Thread safety: all methods may be called from any thread. REQUIRES: the tracker and the
// scheduler outlive the admission.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "accounting/kv/kv_tracker.h"
#include "prometheus/gauge.h"
#include "proxy/common/scheduler.h"

namespace tollgate {

struct KvAdmissionOptions {
  std::string backend;     // in refusal messages
  double admit_ratio = 1;  // limit = admit_ratio × capacity; > 0
  uint32_t max_queue = 256;
  absl::Duration max_queue_wait = absl::Seconds(30);  // > 0
  prometheus::Gauge* queue_depth = nullptr;           // KvBackendSeries::admission_queue_depth
};

// INVALID_ARGUMENT naming the field ("admit_ratio", "max_queue_wait") when out of range.
absl::Status ValidateKvAdmissionOptions(const KvAdmissionOptions& options);

class KvAdmission {
 public:
  // REQUIRES: ValidateKvAdmissionOptions(options).ok(); at most one admission per tracker.
  KvAdmission(KvTracker& tracker, Scheduler& scheduler, KvAdmissionOptions options);
  ~KvAdmission();
  KvAdmission(const KvAdmission&) = delete;
  KvAdmission& operator=(const KvAdmission&) = delete;

  // Names a waiter for Withdraw. Tickets are not reused.
  using Ticket = uint64_t;
  // What Admit returns when it decided at once (`done` has run).
  static constexpr Ticket kNoTicket = 0;

  // Admits a request of `projected_bytes` now, later, or never (see above). On OK the bytes are
  // held on the tracker until handed to tracker.Begin(..., projected_bytes) or Release. Returns the
  // waiter's ticket, or kNoTicket when decided at once. `done` may run, on another thread, before
  // Admit returns.
  Ticket Admit(uint64_t projected_bytes, absl::Time deadline,
               std::function<void(absl::Status)> done);

  // Takes the request out of the queue if it is still waiting: its `done` runs here with CANCELLED
  // and the waiters behind it are admitted if they now fit. Returns false, doing nothing, when it
  // is not waiting (admitted, refused, timed out, withdrawn, kNoTicket or unknown).
  bool Withdraw(Ticket ticket);

  // Returns the hold of a request admitted with `projected_bytes` that will not Begin.
  void Release(uint64_t projected_bytes);

  size_t queue_depth() const;
  uint64_t limit_bytes() const;  // admit_ratio × the tracker's capacity, now

 private:
  class Queue;
  KvTracker& tracker_;
  std::shared_ptr<Queue> queue_;  // shared with the tracker and pending timers
};

}  // namespace tollgate
