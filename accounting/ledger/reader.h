// Reading ledger files back: the budget rebuild at start-up and `tollgate ledger summarize`.
//
//   TG_ASSIGN_OR_RETURN(std::vector<std::string> files, ListLedgerFiles(dir, "ledger"));
//   ReadStats stats;
//   TG_RETURN_IF_ERROR(ReadLedgerFiles(files, [&](const LedgerRecord& r) { Replay(r); }, &stats));
//
// Pure functions, safe to call while a Ledger appends to the same files (a line being written may
// then look torn, and is dropped like one).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "accounting/ledger/ledger.h"

namespace tollgate {

struct ReadStats {
  uint64_t files = 0;
  uint64_t records = 0;
  // A file's last line without its '\n': a write cut short by a crash. Dropped with a warning.
  uint64_t torn_lines = 0;
  // A complete line that does not parse. Skipped with a warning; the writer never leaves one, so
  // any is damage from outside.
  uint64_t corrupt_lines = 0;
};

// Calls `on_record` for every record of `paths`, file by file, line by line. Torn and corrupt lines
// are logged (tollgate::LogLine) and counted in `stats` (which may be null; it is added to, not
// reset). Returns the errno status of the first file that cannot be opened or read, after the
// records before it were delivered.
absl::Status ReadLedgerFiles(const std::vector<std::string>& paths,
                             const std::function<void(const LedgerRecord&)>& on_record,
                             ReadStats* stats);

// The ledger files `<prefix>-<index>-<stamp>.jsonl` of `directory`, as paths, in the order they
// were written (by index). Other files are ignored. NOT_FOUND when the directory does not exist.
absl::StatusOr<std::vector<std::string>> ListLedgerFiles(std::string_view directory,
                                                         std::string_view prefix = "ledger");

}  // namespace tollgate
