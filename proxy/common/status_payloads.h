// absl::Status payloads that backends attach to their errors, so that the pipeline can decide
// retries without parsing messages.
#pragma once

#include "absl/strings/string_view.h"

namespace tollgate {

// The HTTP status of an error response, in decimal ("503").
inline constexpr absl::string_view kHttpStatusPayload = "tollgate.dev/http_status";
// The backend's retry-after, in seconds ("1").
inline constexpr absl::string_view kRetryAfterPayload = "tollgate.dev/retry_after_s";
// On a RESOURCE_EXHAUSTED from Tollgate's own budgets: the budget's name. The HTTP ingress then
// answers OpenAI's over-quota error (insufficient_quota) rather than a rate limit.
inline constexpr absl::string_view kBudgetPayload = "tollgate.dev/budget";

}  // namespace tollgate
