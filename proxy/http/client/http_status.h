// How HTTP API error answers become absl::Status values, with the payloads the pipeline reads to
// decide retries:
//   kHttpStatusPayload  the HTTP status code, decimal ("429");
//   kRetryAfterPayload  the retry-after header in seconds ("2"), when the server sent one.
// (Failures before any response byte carry kBeforeResponsePayload, see http_client.h.)
//
// Stateless functions; thread-safe.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proxy/common/status_payloads.h"

namespace tollgate::http {

using ::tollgate::kHttpStatusPayload;  // defined with the pipeline, which reads them
using ::tollgate::kRetryAfterPayload;

// 400, 413, 422 and other 4xx → INVALID_ARGUMENT; 401, 403 → PERMISSION_DENIED (the backend
// refused our credentials); 404 → NOT_FOUND; 408 → UNAVAILABLE; 429 → RESOURCE_EXHAUSTED;
// 5xx → UNAVAILABLE; 1xx, 3xx → INTERNAL; 2xx → OK.
absl::StatusCode StatusForHttp(int http_status);

// The status for an error answer: code from StatusForHttp, message "HTTP 429: <backend_message>"
// (or "HTTP 429" when the body said nothing usable), and the payloads above. `retry_after` is the
// raw header; only a number of seconds is kept (an HTTP date is ignored).
absl::Status HttpErrorStatus(int http_status, absl::string_view backend_message,
                             absl::string_view retry_after);

}  // namespace tollgate::http
