#include "accounting/ledger/reader.h"

#include <cerrno>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "accounting/ledger/ledger_file.h"
#include "proxy/common/log.h"

namespace tollgate {
namespace {

absl::Status ReadFile(const std::string& path,
                      const std::function<void(const LedgerRecord&)>& on_record, ReadStats& stats) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ledger_internal::PathError(errno, "open", path);
  ++stats.files;
  std::string line;
  for (uint64_t number = 1; std::getline(in, line); ++number) {
    if (in.eof()) {  // no '\n' after it
      ++stats.torn_lines;
      Log("ledger ", path, ":", number, ": dropped a torn last line (", line.size(),
          " bytes without a newline)");
      break;
    }
    absl::StatusOr<LedgerRecord> record = ParseJsonLine(line);
    if (!record.ok()) {
      ++stats.corrupt_lines;
      Log("ledger ", path, ":", number, ": skipped a corrupt line: ", record.status().message());
      continue;
    }
    ++stats.records;
    on_record(*record);
  }
  if (in.bad()) return ledger_internal::PathError(EIO, "read", path);
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadLedgerFiles(const std::vector<std::string>& paths,
                             const std::function<void(const LedgerRecord&)>& on_record,
                             ReadStats* stats) {
  ReadStats ignored;
  for (const std::string& path : paths) {
    if (absl::Status read = ReadFile(path, on_record, stats != nullptr ? *stats : ignored);
        !read.ok()) {
      return read;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListLedgerFiles(std::string_view directory,
                                                         std::string_view prefix) {
  absl::StatusOr<std::vector<ledger_internal::ListedFile>> files =
      ledger_internal::ListFiles(directory, prefix);
  if (!files.ok()) return files.status();
  std::vector<std::string> paths;
  paths.reserve(files->size());
  for (ledger_internal::ListedFile& file : *files) paths.push_back(std::move(file.path));
  return paths;
}

}  // namespace tollgate
