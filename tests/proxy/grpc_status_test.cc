#include "proxy/common/grpc_status.h"

#include "gtest/gtest.h"

namespace tollgate {
namespace {

TEST(GrpcStatus, MapsEveryCodeOneToOneBothWays) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), "message");
    const grpc::Status wire = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(wire.error_code()), code);
    EXPECT_EQ(wire.error_message(), code == 0 ? "" : "message");
    EXPECT_EQ(FromGrpcStatus(wire).code(), status.code());
  }
}

TEST(GrpcStatus, DesignDocumentMappingsHold) {
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("over budget")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("bad")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("down")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("key")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST(BackendErrorForClient, TurnsTheBackendsAuthFailuresIntoInternal) {
  EXPECT_EQ(BackendErrorForClient(absl::UnauthenticatedError("bad upstream key")).code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(BackendErrorForClient(absl::PermissionDeniedError("no")).code(),
            absl::StatusCode::kInternal);
}

TEST(BackendErrorForClient, PassesOtherErrorsThrough) {
  for (absl::StatusCode code :
       {absl::StatusCode::kUnavailable, absl::StatusCode::kInvalidArgument,
        absl::StatusCode::kNotFound, absl::StatusCode::kResourceExhausted,
        absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kCancelled}) {
    EXPECT_EQ(BackendErrorForClient(absl::Status(code, "x")).code(), code);
  }
}

}  // namespace
}  // namespace tollgate
