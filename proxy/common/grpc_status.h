// Conversions between absl::Status (the data path's errors) and grpc::Status (the wire).
//
// The codes map one to one. Errors a backend returns are translated for the client by
// BackendErrorForClient: the client must not see a backend's auth failure as its own.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace tollgate {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  return {static_cast<grpc::StatusCode>(status.code()), std::string(status.message())};
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  return {static_cast<absl::StatusCode>(status.error_code()), status.error_message()};
}

// What the client sees when a backend call fails with `backend_status`:
// - the backend refused Tollgate's own credentials (UNAUTHENTICATED, PERMISSION_DENIED) → INTERNAL,
//   since the client's key was fine;
// - the backend is unreachable or overloaded keeps UNAVAILABLE / RESOURCE_EXHAUSTED;
// - everything else (INVALID_ARGUMENT, NOT_FOUND, DEADLINE_EXCEEDED, CANCELLED, ...) passes
// through.
absl::Status BackendErrorForClient(const absl::Status& backend_status);

}  // namespace tollgate
