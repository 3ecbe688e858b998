#include "proxy/http/client/http_status.h"

#include <charconv>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace tollgate::http {

absl::StatusCode StatusForHttp(int http_status) {
  if (http_status >= 200 && http_status < 300) return absl::StatusCode::kOk;
  switch (http_status) {
    case 401:
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
      return absl::StatusCode::kUnavailable;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      break;
  }
  if (http_status >= 400 && http_status < 500) return absl::StatusCode::kInvalidArgument;
  if (http_status >= 500 && http_status < 600) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kInternal;
}

absl::Status HttpErrorStatus(int http_status, absl::string_view backend_message,
                             absl::string_view retry_after) {
  absl::StatusCode code = StatusForHttp(http_status);
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kInternal;
  absl::Status status(code, backend_message.empty()
                                ? absl::StrCat("HTTP ", http_status)
                                : absl::StrCat("HTTP ", http_status, ": ", backend_message));
  status.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(http_status)));
  const absl::string_view seconds = absl::StripAsciiWhitespace(retry_after);
  double value = 0;
  const auto [end, ec] = std::from_chars(seconds.data(), seconds.data() + seconds.size(), value);
  if (!seconds.empty() && ec == std::errc() && end == seconds.data() + seconds.size() &&
      value >= 0) {
    status.SetPayload(kRetryAfterPayload, absl::Cord(seconds));
  }
  return status;
}

}  // namespace tollgate::http
