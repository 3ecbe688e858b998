#include "accounting/kv/kv_admission.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace tollgate {

using AdmitDone = std::function<void(absl::Status)>;

// The waiters and the decisions, shared with the tracker (as its listener) and with pending
// timers (weakly), so that either may outlive the KvAdmission by a moment.
class KvAdmission::Queue final : public KvSpaceListener,
                                 public std::enable_shared_from_this<Queue> {
 public:
  Queue(KvTracker& tracker, Scheduler& scheduler, KvAdmissionOptions options)
      : tracker_(tracker), scheduler_(scheduler), options_(std::move(options)) {}

  uint64_t Admit(uint64_t bytes, absl::Time deadline, AdmitDone done) ABSL_LOCKS_EXCLUDED(mu_);
  void OnSpaceFreed() override ABSL_LOCKS_EXCLUDED(mu_);
  void Expire(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  bool Withdraw(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

  size_t depth() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return waiting_.size();
  }

  uint64_t LimitBytes() const {
    const double limit =
        std::floor(static_cast<double>(tracker_.capacity_bytes()) * options_.admit_ratio);
    return limit >= 0x1p64 ? UINT64_MAX : static_cast<uint64_t>(limit);
  }

 private:
  struct Waiter {
    uint64_t bytes;
    absl::Time since;
    AdmitDone done;
  };
  using Outcomes = std::vector<std::pair<AdmitDone, absl::Status>>;

  // Ends waiter `id` with why(waiter), then admits from the head, which may have been what held
  // the others back. False when `id` is not waiting (any more).
  template <typename Why>
  bool Remove(uint64_t id, Why why) ABSL_LOCKS_EXCLUDED(mu_);
  // Admits waiters from the head while they fit.
  void AdmitFromHeadLocked(Outcomes& outcomes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool FitsLocked(uint64_t bytes, uint64_t limit) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetDepthLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status Oversize(uint64_t bytes, uint64_t limit) const;
  // "the request needs N bytes of KV cache and F of L are free".
  std::string Shortage(uint64_t bytes, uint64_t limit) const;
  static void Run(Outcomes& outcomes);

  KvTracker& tracker_;
  Scheduler& scheduler_;
  const KvAdmissionOptions options_;

  mutable absl::Mutex mu_;
  std::map<uint64_t, Waiter> waiting_ ABSL_GUARDED_BY(mu_);  // by id: arrival order
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = KvAdmission::kNoTicket + 1;
};

uint64_t KvAdmission::Queue::Admit(uint64_t bytes, absl::Time deadline, AdmitDone done) {
  const uint64_t limit = LimitBytes();
  if (bytes > limit) {
    done(Oversize(bytes, limit));
    return KvAdmission::kNoTicket;
  }
  const absl::Time now = scheduler_.Now();
  const absl::Time wait_until = std::min(deadline, now + options_.max_queue_wait);
  absl::Status refusal;
  uint64_t id = KvAdmission::kNoTicket;
  {
    absl::MutexLock lock(&mu_);
    if (waiting_.empty() && FitsLocked(bytes, limit)) {
      tracker_.Hold(bytes);
    } else if (waiting_.size() >= options_.max_queue) {
      refusal = absl::ResourceExhaustedError(
          absl::StrCat("backend \"", options_.backend, "\": the KV-cache admission queue is full (",
                       waiting_.size(), " waiting); ", Shortage(bytes, limit)));
    } else if (wait_until <= now) {
      refusal = absl::ResourceExhaustedError(absl::StrCat(
          "backend \"", options_.backend, "\": no KV-cache room before the request's deadline; ",
          Shortage(bytes, limit)));
    } else {
      id = next_id_++;
      waiting_.emplace(id, Waiter{bytes, now, std::move(done)});
      SetDepthLocked();
    }
  }
  if (id != KvAdmission::kNoTicket) {
    scheduler_.RunAt(wait_until, [weak = weak_from_this(), id] {
      if (std::shared_ptr<Queue> queue = weak.lock()) queue->Expire(id);
    });
    return id;
  }
  done(std::move(refusal));
  return KvAdmission::kNoTicket;
}

void KvAdmission::Queue::OnSpaceFreed() {
  Outcomes outcomes;
  {
    absl::MutexLock lock(&mu_);
    if (waiting_.empty()) return;
    AdmitFromHeadLocked(outcomes);
  }
  Run(outcomes);
}

void KvAdmission::Queue::Expire(uint64_t id) {
  const absl::Time now = scheduler_.Now();
  Remove(id, [&](const Waiter& waiter) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "backend \"", options_.backend, "\": no KV-cache room after waiting ",
        absl::FormatDuration(now - waiter.since), "; ", Shortage(waiter.bytes, LimitBytes())));
  });
}

bool KvAdmission::Queue::Withdraw(uint64_t id) {
  return Remove(id, [&](const Waiter& /*waiter*/) {
    return absl::CancelledError(absl::StrCat("backend \"", options_.backend,
                                             "\": withdrawn while waiting for KV-cache room"));
  });
}

template <typename Why>
bool KvAdmission::Queue::Remove(uint64_t id, Why why) {
  Outcomes outcomes;
  {
    absl::MutexLock lock(&mu_);
    const auto it = waiting_.find(id);
    if (it == waiting_.end()) return false;
    outcomes.emplace_back(std::move(it->second.done), why(it->second));
    waiting_.erase(it);
    AdmitFromHeadLocked(outcomes);
  }
  Run(outcomes);
  return true;
}

void KvAdmission::Queue::Close() {
  Outcomes outcomes;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, waiter] : waiting_) {
      outcomes.emplace_back(std::move(waiter.done),
                            absl::CancelledError(absl::StrCat("backend \"", options_.backend,
                                                              "\": KV-cache admission shut down")));
    }
    waiting_.clear();
    SetDepthLocked();
  }
  Run(outcomes);
}

void KvAdmission::Queue::AdmitFromHeadLocked(Outcomes& outcomes) {
  const uint64_t limit = LimitBytes();
  while (!waiting_.empty()) {
    const auto head = waiting_.begin();
    if (head->second.bytes > limit) {  // the capacity shrank under it
      outcomes.emplace_back(std::move(head->second.done), Oversize(head->second.bytes, limit));
    } else if (FitsLocked(head->second.bytes, limit)) {
      tracker_.Hold(head->second.bytes);
      outcomes.emplace_back(std::move(head->second.done), absl::OkStatus());
    } else {
      break;
    }
    waiting_.erase(head);
  }
  SetDepthLocked();
}

bool KvAdmission::Queue::FitsLocked(uint64_t bytes, uint64_t limit) const {
  const uint64_t held = tracker_.held_bytes();
  return bytes <= limit && held <= limit - bytes;
}

void KvAdmission::Queue::SetDepthLocked() {
  if (options_.queue_depth != nullptr) {
    options_.queue_depth->Set(static_cast<double>(waiting_.size()));
  }
}

absl::Status KvAdmission::Queue::Oversize(uint64_t bytes, uint64_t limit) const {
  return absl::ResourceExhaustedError(
      absl::StrCat("backend \"", options_.backend,
                   "\": the request's projected KV cache (prompt + max_tokens) of ", bytes,
                   " bytes exceeds the backend's admission limit of ", limit, " bytes (",
                   options_.admit_ratio, " x capacity ", tracker_.capacity_bytes(),
                   " bytes), so it can never be admitted; lower max_tokens"));
}

std::string KvAdmission::Queue::Shortage(uint64_t bytes, uint64_t limit) const {
  const uint64_t held = tracker_.held_bytes();
  return absl::StrCat("the request needs ", bytes, " bytes of KV cache and ",
                      held < limit ? limit - held : 0, " of ", limit, " are free");
}

void KvAdmission::Queue::Run(Outcomes& outcomes) {
  for (auto& [done, status] : outcomes) done(std::move(status));
}

absl::Status ValidateKvAdmissionOptions(const KvAdmissionOptions& options) {
  if (!(options.admit_ratio > 0 && std::isfinite(options.admit_ratio))) {
    return absl::InvalidArgumentError(
        absl::StrCat("admit_ratio: must be a finite number > 0, got ", options.admit_ratio));
  }
  if (!(options.max_queue_wait > absl::ZeroDuration())) {
    return absl::InvalidArgumentError(absl::StrCat("max_queue_wait: must be > 0, got ",
                                                   absl::FormatDuration(options.max_queue_wait)));
  }
  return absl::OkStatus();
}

KvAdmission::KvAdmission(KvTracker& tracker, Scheduler& scheduler, KvAdmissionOptions options)
    : tracker_(tracker), queue_(std::make_shared<Queue>(tracker, scheduler, std::move(options))) {
  tracker_.SetListener(queue_);
}

KvAdmission::~KvAdmission() {
  tracker_.SetListener(nullptr);
  queue_->Close();
}

KvAdmission::Ticket KvAdmission::Admit(uint64_t projected_bytes, absl::Time deadline,
                                       AdmitDone done) {
  return queue_->Admit(projected_bytes, deadline, std::move(done));
}

bool KvAdmission::Withdraw(Ticket ticket) { return queue_->Withdraw(ticket); }

void KvAdmission::Release(uint64_t projected_bytes) { tracker_.ReleaseHold(projected_bytes); }

size_t KvAdmission::queue_depth() const { return queue_->depth(); }

uint64_t KvAdmission::limit_bytes() const { return queue_->LimitBytes(); }

}  // namespace tollgate
