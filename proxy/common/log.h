// Minimal line logging to stderr ("2026-11-21T05:00:00Z tollgate: message"). Thread-safe: one
// write(2) per line, so lines from different threads never interleave. Not for the request path.
#pragma once

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tollgate {

void LogLine(absl::string_view message);

template <typename... Args>
void Log(const Args&... args) {
  LogLine(absl::StrCat(args...));
}

}  // namespace tollgate
