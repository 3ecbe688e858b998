// `tollgate ledger summarize FILE... [--from T] [--to T] [--by tenant|model|backend]`: spend and
// tokens per group, from ledger files.
//
//   tenant  requests  spend_usd    input_tokens  cached_input_tokens  ...
//   acme           2  0.004910000          2400                 1024  ...
//   total          2  0.004910000          2400                 1024  ...
//
// Spend is summed in 128-bit integers of nano-USD and printed with nine decimals, so it is exact.
// Records count in the window from <= time < to (their request time).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tollgate {

enum class SummaryGroup { kTenant, kModel, kBackend };

struct SummarizeOptions {
  std::optional<absl::Time> from;  // inclusive
  std::optional<absl::Time> to;    // exclusive
  SummaryGroup group_by = SummaryGroup::kTenant;
};

// Prints the summary of `files` to `out`; warnings (torn or corrupt lines) and errors to `err`.
// Returns the exit code: 0, or 1 when a file cannot be read.
int SummarizeLedger(const std::vector<std::string>& files, const SummarizeOptions& options,
                    std::ostream& out, std::ostream& err);

// The command line after `tollgate ledger summarize`: files and --from/--to (RFC 3339, e.g.
// 2026-11-21T00:00:00Z) and --by, as "--flag value" or "--flag=value". INVALID_ARGUMENT naming
// the bad argument; at least one file is required.
struct SummarizeCommand {
  std::vector<std::string> files;
  SummarizeOptions options;
};
absl::StatusOr<SummarizeCommand> ParseSummarizeArgs(const std::vector<std::string>& args);

inline constexpr std::string_view kSummarizeUsage =
    "usage: tollgate ledger summarize FILE... [--from RFC3339] [--to RFC3339] "
    "[--by tenant|model|backend]";

}  // namespace tollgate
