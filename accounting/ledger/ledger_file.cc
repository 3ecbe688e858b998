#include "accounting/ledger/ledger_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tollgate::ledger_internal {
namespace {

constexpr char kStampFormat[] = "%E4Y%m%dT%H%M%SZ";  // %Y alone would parse all 8 digits
constexpr std::string_view kSuffix = ".jsonl";
constexpr size_t kIndexDigits = 8;

absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

absl::Status SyncDirectory(const std::string& directory) {
  const int fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return PathError(errno, "open", directory);
  const int result = fsync(fd);
  const int error = errno;
  close(fd);
  if (result != 0) return PathError(error, "fsync", directory);
  return absl::OkStatus();
}

// The size of `fd`'s content up to and including its last '\n' (0 when it has none).
absl::StatusOr<uint64_t> WholeLinesSize(int fd, uint64_t size, const std::string& path) {
  char buffer[64 * 1024];
  uint64_t end = size;
  while (end > 0) {
    const uint64_t begin = end > sizeof(buffer) ? end - sizeof(buffer) : 0;
    const ssize_t n = pread(fd, buffer, end - begin, static_cast<off_t>(begin));
    if (n < 0) {
      if (errno == EINTR) continue;
      return PathError(errno, "read", path);
    }
    if (static_cast<uint64_t>(n) != end - begin) {
      return PathError(EIO, "read (file shrank while opening)", path);
    }
    for (uint64_t i = end - begin; i > 0; --i) {
      if (buffer[i - 1] == '\n') return begin + i;
    }
    end = begin;
  }
  return 0;
}

}  // namespace

absl::Status PathError(int error, std::string_view what, std::string_view path) {
  return absl::ErrnoToStatus(error, absl::StrCat(Absl(what), " ", Absl(path)));
}

std::string FormatLedgerFileName(std::string_view prefix, const LedgerFileName& name) {
  std::string index = absl::StrCat(name.index);
  if (index.size() < kIndexDigits) index.insert(0, kIndexDigits - index.size(), '0');
  return absl::StrCat(Absl(prefix), "-", index, "-",
                      absl::FormatTime(kStampFormat, name.start, absl::UTCTimeZone()),
                      Absl(kSuffix));
}

std::optional<LedgerFileName> ParseLedgerFileName(std::string_view prefix, std::string_view name) {
  if (name.size() <= prefix.size() + 1 || name.substr(0, prefix.size()) != prefix ||
      name[prefix.size()] != '-' || name.size() < kSuffix.size() ||
      name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  std::string_view rest = name.substr(prefix.size() + 1);
  rest.remove_suffix(kSuffix.size());
  const size_t dash = rest.find('-');
  if (dash == std::string_view::npos || dash < kIndexDigits) return std::nullopt;
  const std::string_view digits = rest.substr(0, dash);
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  LedgerFileName parsed;
  std::string error;
  if (!absl::SimpleAtoi(Absl(digits), &parsed.index) ||
      !absl::ParseTime(kStampFormat, Absl(rest.substr(dash + 1)), &parsed.start, &error)) {
    return std::nullopt;
  }
  return parsed;
}

absl::StatusOr<std::vector<ListedFile>> ListFiles(std::string_view directory,
                                                  std::string_view prefix) {
  const std::string dir(directory);
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) return PathError(errno, "open directory", dir);
  std::vector<ListedFile> files;
  while (true) {
    errno = 0;
    const dirent* entry = readdir(handle);
    if (entry == nullptr) break;
    if (std::optional<LedgerFileName> name = ParseLedgerFileName(prefix, entry->d_name)) {
      files.push_back({absl::StrCat(dir, "/", entry->d_name), *name});
    }
  }
  const int error = errno;
  closedir(handle);
  if (error != 0) return PathError(error, "read directory", dir);
  std::sort(files.begin(), files.end(), [](const ListedFile& a, const ListedFile& b) {
    return a.name.index != b.name.index ? a.name.index < b.name.index : a.path < b.path;
  });
  return files;
}

absl::StatusOr<std::unique_ptr<AppendFile>> AppendFile::Create(const std::string& directory,
                                                               std::string_view prefix,
                                                               const LedgerFileName& name) {
  std::string path = absl::StrCat(directory, "/", FormatLedgerFileName(prefix, name));
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return PathError(errno, "create", path);
  std::unique_ptr<AppendFile> file(new AppendFile(fd, std::move(path), name, 0));
  if (absl::Status synced = SyncDirectory(directory); !synced.ok()) return synced;
  return file;
}

absl::StatusOr<std::unique_ptr<AppendFile>> AppendFile::Resume(const std::string& path,
                                                               const LedgerFileName& name,
                                                               const LogFn& log) {
  const int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0) return PathError(errno, "open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int error = errno;
    close(fd);
    return PathError(error, "stat", path);
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  std::unique_ptr<AppendFile> file(new AppendFile(fd, path, name, size));
  absl::StatusOr<uint64_t> whole = WholeLinesSize(fd, size, path);
  if (!whole.ok()) return whole.status();
  if (*whole != size) {
    if (ftruncate(fd, static_cast<off_t>(*whole)) != 0) return PathError(errno, "truncate", path);
    if (fdatasync(fd) != 0) return PathError(errno, "fsync", path);
    file->size_ = *whole;
    log(absl::StrCat("ledger ", path, ": truncated a torn last line (", size - *whole,
                     " bytes without a newline, left by a crash)"));
  }
  return file;
}

AppendFile::~AppendFile() { close(fd_); }

absl::Status AppendFile::Append(std::string_view lines) {
  int error = 0;
  const char* what = "write";
  size_t done = 0;
  while (done < lines.size()) {
    const ssize_t n = write(fd_, lines.data() + done, lines.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (error == 0 && fdatasync(fd_) != 0) {
    error = errno;
    what = "fsync";
  }
  if (error == 0) {
    size_ += lines.size();
    return absl::OkStatus();
  }
  // Nothing after size_ is known to be durable, and a short write leaves a torn line: drop it all.
  if (ftruncate(fd_, static_cast<off_t>(size_)) != 0) broken_ = true;
  return PathError(error, what, path_);
}

}  // namespace tollgate::ledger_internal
