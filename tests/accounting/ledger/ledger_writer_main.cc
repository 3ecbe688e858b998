// Test driver for crash_test.cc: appends NumberedRecord(1), (2), ... to a ledger.
//
//   ledger_writer DIR FSYNC_INTERVAL_MS FLUSH_EVERY LIMIT MAX_FILE_BYTES
//
// Every FLUSH_EVERY records (0: never) it calls Flush and, when that succeeds, prints
// "acked N": records 1..N are durable. With LIMIT > 0 it stops after LIMIT records, prints
// "appended LIMIT", waits for SIGTERM, closes the ledger and prints "closed DROPPED" (exit 0 when
// Close succeeded). With LIMIT 0 it appends until killed.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "accounting/ledger/ledger.h"
#include "tests/accounting/ledger/ledger_test_util.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s DIR FSYNC_INTERVAL_MS FLUSH_EVERY LIMIT MAX_FILE_BYTES\n",
                 argv[0]);
    return 2;
  }
  // Blocked before the writer thread starts, so that only sigwait below receives it.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);

  tollgate::LedgerOptions options;
  options.directory = argv[1];
  options.fsync_interval = absl::Milliseconds(std::atoll(argv[2]));
  const uint64_t flush_every = std::strtoull(argv[3], nullptr, 10);
  const uint64_t limit = std::strtoull(argv[4], nullptr, 10);
  options.max_file_bytes = std::strtoull(argv[5], nullptr, 10);
  absl::StatusOr<std::unique_ptr<tollgate::Ledger>> ledger =
      tollgate::Ledger::Open(std::move(options));
  if (!ledger.ok()) {
    std::fprintf(stderr, "%s\n", ledger.status().ToString().c_str());
    return 2;
  }
  for (uint64_t n = 1; limit == 0 || n <= limit; ++n) {
    (*ledger)->Append(tollgate::ledger_test::NumberedRecord(n));
    if (flush_every > 0 && n % flush_every == 0 && (*ledger)->Flush().ok()) {
      std::printf("acked %llu\n", static_cast<unsigned long long>(n));
      std::fflush(stdout);
    }
  }
  std::printf("appended %llu\n", static_cast<unsigned long long>(limit));
  std::fflush(stdout);
  int signal = 0;
  sigwait(&term, &signal);
  const bool closed = (*ledger)->Close().ok();
  std::printf("closed %llu\n", static_cast<unsigned long long>((*ledger)->dropped_records()));
  std::fflush(stdout);
  return closed ? 0 : 1;
}
