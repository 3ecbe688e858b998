// Records and directories for the ledger tests and their writer driver.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "accounting/ledger/ledger.h"
#include "accounting/ledger/reader.h"

namespace tollgate {

// gtest prints a record as its ledger line.
void PrintTo(const LedgerRecord& record, std::ostream* out);

}  // namespace tollgate

namespace tollgate::ledger_test {

// Record number `n`: request id "r-<n>", every count and cost derived from n.
LedgerRecord NumberedRecord(uint64_t n);

// A fresh directory under $TEST_TMPDIR (else /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ReadResult {
  absl::Status status;
  std::vector<LedgerRecord> records;
  ReadStats stats;
};
// Every record of the ledger files in `directory`, in order.
ReadResult ReadDirectory(const std::string& directory, const std::string& prefix = "ledger");
ReadResult ReadPaths(const std::vector<std::string>& paths);

}  // namespace tollgate::ledger_test
