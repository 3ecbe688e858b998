#include "sim/http_faults.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tollgate::sim {
namespace {

absl::string_view Absl(std::string_view text) { return {text.data(), text.size()}; }

// An absent header leaves `value` unchanged.
absl::Status ReadCount(const http::Request& request, std::string_view name, uint64_t& value) {
  const std::string_view header = request.Header(name);
  if (header.empty()) return absl::OkStatus();
  if (!absl::SimpleAtoi(Absl(header), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Absl(name), ": expected a non-negative integer, got \"", Absl(header), "\""));
  }
  return absl::OkStatus();
}

absl::Status ApplyFaultHeader(absl::string_view header, RequestFaults& faults) {
  for (absl::string_view item : absl::StrSplit(header, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    uint32_t tokens = 0;
    if (item == "429" || item == "500" || item == "503") {
      absl::SimpleAtoi(item, &faults.status);
    } else if (absl::ConsumePrefix(&item, "reset-after=") && absl::SimpleAtoi(item, &tokens)) {
      faults.reset_after_tokens = tokens;
    } else if (item == "malformed-chunk") {
      faults.malformed_chunk = true;
    } else if (item == "no-usage") {
      faults.omit_usage = true;
    } else if (item != "none") {
      return absl::InvalidArgumentError(absl::StrCat(
          "x-sim-fault: unknown fault \"", item,
          "\" (expected 429, 500, 503, reset-after=N, malformed-chunk, no-usage or none)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool RateFires(double rate, uint64_t n) {
  if (rate <= 0 || n == 0) return false;
  return std::floor(static_cast<double>(n) * rate) > std::floor(static_cast<double>(n - 1) * rate);
}

absl::StatusOr<RequestFaults> FaultPlanner::ForRequest(const http::Request& request) {
  RequestFaults faults;
  if (const std::string_view header = request.Header("x-sim-fault"); !header.empty()) {
    if (absl::Status status = ApplyFaultHeader(Absl(header), faults); !status.ok()) return status;
  } else {
    const uint64_t n = requests_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (RateFires(defaults_.rate_429, n)) {
      faults.status = 429;
    } else if (RateFires(defaults_.rate_500, n)) {
      faults.status = 500;
    } else if (RateFires(defaults_.rate_503, n)) {
      faults.status = 503;
    }
    faults.reset_after_tokens = defaults_.reset_after_tokens;
    faults.omit_usage = defaults_.omit_usage;
  }
  faults.first_byte_delay = defaults_.first_byte_delay;
  uint64_t delay_ms = 0;
  if (!request.Header("x-sim-first-byte-delay-ms").empty()) {
    if (absl::Status status = ReadCount(request, "x-sim-first-byte-delay-ms", delay_ms);
        !status.ok()) {
      return status;
    }
    faults.first_byte_delay = absl::Milliseconds(static_cast<int64_t>(delay_ms));
  }
  if (absl::Status status = ReadCount(request, "x-sim-cache-read", faults.cache_read_tokens);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = ReadCount(request, "x-sim-reasoning", faults.reasoning_tokens);
      !status.ok()) {
    return status;
  }
  return faults;
}

}  // namespace tollgate::sim
