// Internal to the ledger: file names and one ledger file open for appending whole lines.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tollgate::ledger_internal {

using LogFn = std::function<void(std::string_view)>;

struct LedgerFileName {
  uint64_t index = 0;
  absl::Time start;  // to the second
};

// "<prefix>-<index, 8 digits or more>-<YYYYMMDDTHHMMSSZ>.jsonl"
std::string FormatLedgerFileName(std::string_view prefix, const LedgerFileName& name);
std::optional<LedgerFileName> ParseLedgerFileName(std::string_view prefix, std::string_view name);

// The errno status "<what> <path>: <strerror>".
absl::Status PathError(int error, std::string_view what, std::string_view path);

struct ListedFile {
  std::string path;
  LedgerFileName name;
};
// The ledger files of `directory` by index. NOT_FOUND when the directory does not exist.
absl::StatusOr<std::vector<ListedFile>> ListFiles(std::string_view directory,
                                                  std::string_view prefix);

// A ledger file that only ever holds whole lines: Append writes and fsyncs, or truncates the file
// back to what it held before. Owned by the writer thread; not thread-safe.
class AppendFile {
 public:
  // Creates a new, empty file (O_EXCL) and fsyncs the directory so that its name is durable.
  static absl::StatusOr<std::unique_ptr<AppendFile>> Create(const std::string& directory,
                                                            std::string_view prefix,
                                                            const LedgerFileName& name);
  // Opens an existing file; a torn last line (bytes after the last '\n') is truncated away, fsynced
  // and logged.
  static absl::StatusOr<std::unique_ptr<AppendFile>> Resume(const std::string& path,
                                                            const LedgerFileName& name,
                                                            const LogFn& log);
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  // Writes `lines` (whole lines) and fsyncs them. On failure the file is truncated back to size();
  // if even that fails the file is broken(): it may end with a torn line and takes no more writes.
  absl::Status Append(std::string_view lines);

  const std::string& path() const { return path_; }
  const LedgerFileName& name() const { return name_; }
  uint64_t size() const { return size_; }
  bool broken() const { return broken_; }

 private:
  AppendFile(int fd, std::string path, const LedgerFileName& name, uint64_t size)
      : fd_(fd), path_(std::move(path)), name_(name), size_(size) {}

  int fd_;
  std::string path_;
  LedgerFileName name_;
  uint64_t size_;  // bytes written and fsynced
  bool broken_ = false;
};

}  // namespace tollgate::ledger_internal
