#include "proxy/backend_health.h"

namespace tollgate {

bool BackendHealth::AllowCall(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (!ejected_) return true;
  if (probe_in_flight_ || now < next_probe_) return false;
  probe_in_flight_ = true;
  return true;
}

void BackendHealth::RecordSuccess() {
  absl::MutexLock lock(&mu_);
  consecutive_failures_ = 0;
  ejected_ = false;
  probe_in_flight_ = false;
}

void BackendHealth::RecordFailure(const EjectionConfig& policy, absl::Time now) {
  absl::MutexLock lock(&mu_);
  ++consecutive_failures_;
  if (ejected_ || consecutive_failures_ >= policy.consecutive_failures) {
    ejected_ = true;
    probe_in_flight_ = false;
    next_probe_ = now + policy.probe_interval;
  }
}

bool BackendHealth::RecordOutcome(const absl::Status& status, const EjectionConfig& policy,
                                  absl::Time now) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      RecordFailure(policy, now);
      return true;
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      return false;
    default:
      RecordSuccess();
      return true;
  }
}

bool BackendHealth::ejected() const {
  absl::MutexLock lock(&mu_);
  return ejected_;
}

}  // namespace tollgate
