#include "tests/accounting/ledger/ledger_test_util.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace tollgate {

void PrintTo(const LedgerRecord& record, std::ostream* out) {
  std::string line = ToJsonLine(record);
  line.pop_back();
  *out << line;
}

}  // namespace tollgate

namespace tollgate::ledger_test {

LedgerRecord NumberedRecord(uint64_t n) {
  LedgerRecord r;
  r.request_id = absl::StrCat("r-", n);
  r.time = absl::FromUnixSeconds(1'795'000'000) + absl::Microseconds(1'001 * n);
  r.tenant = n % 3 == 0 ? "acme" : "globex";
  r.key_id = absl::StrCat("k-", n % 7);
  r.model = n % 2 == 0 ? "gpt-4o" : "claude-sonnet-4";
  r.backend = n % 2 == 0 ? "openai" : "anthropic";
  r.input_tokens = 1000 + n;
  r.cached_input_tokens = n % 500;
  r.cache_write_input_tokens = n % 11;
  r.output_tokens = 200 + n % 100;
  r.reasoning_tokens = n % 13;
  r.usage_source = n % 5 == 0 ? "counted" : "reported";
  r.input_nano_usd = 2'500 * static_cast<int64_t>(n);
  r.cached_input_nano_usd = 1'250 * static_cast<int64_t>(n % 500);
  r.cache_write_nano_usd = 3'750 * static_cast<int64_t>(n % 11);
  r.output_nano_usd = 10'000 * static_cast<int64_t>(200 + n % 100);
  r.reasoning_nano_usd = 10'000 * static_cast<int64_t>(n % 13);
  r.gpu_nano_usd = 0;
  r.total_nano_usd = r.input_nano_usd + r.cached_input_nano_usd + r.cache_write_nano_usd +
                     r.output_nano_usd + r.reasoning_nano_usd + r.gpu_nano_usd;
  r.cache_status = n % 4 == 0 ? "hit" : "miss";
  r.latency = absl::Microseconds(5'000 + n);
  r.status = n % 17 == 0 ? "cancelled" : "ok";
  return r;
}

TempDir::TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/ledger_test.XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

ReadResult ReadPaths(const std::vector<std::string>& paths) {
  ReadResult result;
  result.status = ReadLedgerFiles(
      paths, [&](const LedgerRecord& r) { result.records.push_back(r); }, &result.stats);
  return result;
}

ReadResult ReadDirectory(const std::string& directory, const std::string& prefix) {
  absl::StatusOr<std::vector<std::string>> paths = ListLedgerFiles(directory, prefix);
  if (!paths.ok()) return ReadResult{paths.status(), {}, {}};
  return ReadPaths(*paths);
}

}  // namespace tollgate::ledger_test
