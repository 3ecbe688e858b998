// A loopback port the kernel considers free right now: bound to port 0, read back, closed. For a
// server that cannot report the port it picked itself (redis-server, prometheus, alertmanager).
// Another process may take it before the server binds it; callers that can, retry on that.
#pragma once

#include "absl/status/statusor.h"

namespace tollgate::testing {

absl::StatusOr<int> PickFreePort();

}  // namespace tollgate::testing
