#include "proxy/common/grpc_status.h"

#include "absl/strings/str_cat.h"

namespace tollgate {

absl::Status BackendErrorForClient(const absl::Status& backend_status) {
  switch (backend_status.code()) {
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return absl::InternalError(
          absl::StrCat("the backend rejected Tollgate's credentials: ", backend_status.message()));
    default:
      return backend_status;
  }
}

}  // namespace tollgate
