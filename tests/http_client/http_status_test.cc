#include "proxy/http/client/http_status.h"

#include "gtest/gtest.h"

namespace tollgate::http {
namespace {

TEST(StatusForHttp, MapsTheStatusesBackendsAnswerWith) {
  EXPECT_EQ(StatusForHttp(200), absl::StatusCode::kOk);
  EXPECT_EQ(StatusForHttp(400), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusForHttp(401), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusForHttp(403), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusForHttp(404), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusForHttp(422), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusForHttp(429), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusForHttp(500), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusForHttp(503), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusForHttp(529), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusForHttp(302), absl::StatusCode::kInternal);
}

TEST(HttpErrorStatus, CarriesTheHttpStatusAndRetryAfterAsPayloads) {
  const absl::Status status = HttpErrorStatus(429, "Rate limit reached", " 2 ");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(), "HTTP 429: Rate limit reached");
  EXPECT_EQ(status.GetPayload(kHttpStatusPayload), absl::Cord("429"));
  EXPECT_EQ(status.GetPayload(kRetryAfterPayload), absl::Cord("2"));
}

TEST(HttpErrorStatus, IgnoresARetryAfterThatIsNotANumberOfSeconds) {
  const absl::Status status = HttpErrorStatus(503, "", "Wed, 21 Oct 2015 07:28:00 GMT");
  EXPECT_EQ(status.message(), "HTTP 503");
  EXPECT_FALSE(status.GetPayload(kRetryAfterPayload).has_value());
  EXPECT_EQ(status.GetPayload(kHttpStatusPayload), absl::Cord("503"));
}

}  // namespace
}  // namespace tollgate::http
