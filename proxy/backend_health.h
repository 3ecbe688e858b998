// Passive health of one backend: after `consecutive_failures` failed calls in a row the backend is
// ejected (skipped, so fallbacks serve); once per `probe_interval` one call is let through as a
// probe, and its success brings the backend back.
//
// Thread-safe. One instance per backend, kept across reloads together with the backend.
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"

namespace tollgate {

class BackendHealth {
 public:
  // Whether a call may go to the backend now. While ejected, true for one probe per interval.
  bool AllowCall(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  void RecordSuccess() ABSL_LOCKS_EXCLUDED(mu_);
  void RecordFailure(const EjectionConfig& policy, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Records a call that ended with `status`: unreachable and failing backends count against
  // ejection; an answer, even a client error, shows the backend alive; rate limiting, cancels and
  // deadlines say nothing about health. Returns whether it counted either way.
  bool RecordOutcome(const absl::Status& status, const EjectionConfig& policy, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool ejected() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  uint32_t consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  bool ejected_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_probe_ ABSL_GUARDED_BY(mu_);
  bool probe_in_flight_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tollgate
