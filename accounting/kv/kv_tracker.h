// Live KV-cache bytes of one backend: what the requests in flight hold on its GPUs.
//
//   KvTracker tracker(model.capacity_bytes(), {.series = kv_metrics.AddBackend("gpu-a")});
//   KvRequest kv = tracker.Begin(prompt_tokens, model.bytes_per_token());  // sent to the backend
//   tracker.Update(kv, generated_tokens_so_far);                           // each streamed chunk
//   uint64_t peak_bytes = tracker.End(kv);                                 // however it ended
//
// A request holds (prompt + generated so far) tokens rounded up to whole blocks × bytes per token,
// from Begin to End. Its footprint never shrinks before End (a paged-attention server frees a
// request's blocks when it finishes), so an Update with fewer tokens than before changes nothing.
// live_bytes() sums the footprints; utilization() is live ÷ capacity.
//
// Admission (kv_admission.h) also counts what requests may still grow to. held_bytes() is
//   Σ over requests begun: max(admitted_bytes, footprint)  +  bytes admitted but not yet begun,
// so a request admitted with its projected bytes is counted once: by its admission until Begin,
// then as the larger of that projection and its real footprint until End. A request begun with
// admitted_bytes 0 (no admission) counts its footprint.
//
// Cost: Update compares against the current block's end and returns; only when a request crosses
// into a new block does it add to two atomics and set the gauges. No allocation after Begin, no
// lock except in End (to find the admission to wake).
//
// Thread safety: the tracker's methods may be called from any thread. One KvRequest is used by one
// thread at a time (the request's own) and needs no lock. Gauges are set after each change and
// re-set until they agree with the counters, so they are exact whenever the counters stand still.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "accounting/kv/kv_metrics.h"

namespace tollgate {

class KvTracker;

// One request's footprint on a tracker, from Begin to End. Destroying one that has not ended ends
// it. Move-only.
class KvRequest {
 public:
  KvRequest() = default;  // not active
  KvRequest(KvRequest&& other) noexcept;
  KvRequest& operator=(KvRequest&& other) noexcept;
  ~KvRequest();

  bool active() const { return tracker_ != nullptr; }
  // Bytes held now; after End, the peak (footprints only grow).
  uint64_t footprint_bytes() const { return footprint_bytes_; }

 private:
  friend class KvTracker;

  KvTracker* tracker_ = nullptr;
  uint64_t prompt_tokens_ = 0;
  uint64_t bytes_per_token_ = 0;
  uint64_t admitted_bytes_ = 0;
  uint64_t block_end_tokens_ = 0;  // tokens the current footprint has room for
  uint64_t footprint_bytes_ = 0;
};

struct KvTrackerOptions {
  uint32_t block_tokens = 16;  // >= 1
  KvBackendSeries series;      // all null: no metrics
};

// What KvAdmission is told when room frees up. Internal to the KV components.
class KvSpaceListener {
 public:
  virtual ~KvSpaceListener() = default;
  // Runs on the thread that freed the room, with no tracker lock held.
  virtual void OnSpaceFreed() = 0;
};

class KvTracker {
 public:
  explicit KvTracker(uint64_t capacity_bytes, KvTrackerOptions options = {});
  // REQUIRES: no request is active.
  ~KvTracker() = default;
  KvTracker(const KvTracker&) = delete;
  KvTracker& operator=(const KvTracker&) = delete;

  // A request whose prompt is being held. `admitted_bytes`: what KvAdmission admitted it with
  // (0 without admission); from here the request holds those bytes instead of the admission.
  // REQUIRES: the tracker outlives the returned request.
  KvRequest Begin(uint64_t prompt_tokens, uint64_t bytes_per_token, uint64_t admitted_bytes = 0);

  // `generated_tokens`: output tokens so far, in total. A no-op for a request that is not active.
  void Update(KvRequest& request, uint64_t generated_tokens);

  // Ends `request` and returns its peak footprint in bytes (observed in the peak histogram). A
  // request that is not active (never begun, or already ended) returns its last peak and changes
  // nothing.
  uint64_t End(KvRequest& request);

  uint64_t live_bytes() const { return live_bytes_.load(); }
  uint64_t held_bytes() const { return held_bytes_.load(); }
  uint64_t capacity_bytes() const { return capacity_bytes_.load(); }
  // live ÷ capacity; with capacity 0, 0 when nothing is live, else +Inf.
  double utilization() const;

  // For a config reload that changes the backend's GPUs or model. Requests in flight keep their
  // footprints.
  void SetCapacity(uint64_t capacity_bytes);

 private:
  friend class KvAdmission;

  // Room held for a request admitted but not yet begun, and its return when it will not begin.
  void Hold(uint64_t bytes) { held_bytes_.fetch_add(bytes); }
  void ReleaseHold(uint64_t bytes);
  void SetListener(std::shared_ptr<KvSpaceListener> listener) ABSL_LOCKS_EXCLUDED(listener_mu_);

  void NotifySpaceFreed() ABSL_LOCKS_EXCLUDED(listener_mu_);
  void Publish();

  const uint32_t block_tokens_;
  const KvBackendSeries series_;
  std::atomic<uint64_t> capacity_bytes_;
  std::atomic<uint64_t> live_bytes_{0};
  std::atomic<uint64_t> held_bytes_{0};

  absl::Mutex listener_mu_;
  std::shared_ptr<KvSpaceListener> listener_ ABSL_GUARDED_BY(listener_mu_);
};

}  // namespace tollgate
