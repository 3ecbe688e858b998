#include "accounting/ledger/ledger.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "accounting/ledger/ledger_file.h"
#include "proxy/common/log.h"
#include "proxy/common/status_macros.h"

namespace tollgate {
namespace {

using ledger_internal::AppendFile;
using ledger_internal::LedgerFileName;
using ledger_internal::PathError;

absl::Status ValidateOptions(const LedgerOptions& o) {
  if (o.directory.empty()) return absl::InvalidArgumentError("ledger: directory is empty");
  if (o.file_prefix.empty() || o.file_prefix.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger: file_prefix \"", o.file_prefix, "\" must be a non-empty file name"));
  }
  if (o.max_buffered_records == 0) {
    return absl::InvalidArgumentError("ledger: max_buffered_records must be positive");
  }
  if (o.fsync_interval < absl::ZeroDuration() || o.rotate_interval < absl::ZeroDuration() ||
      o.retry_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ledger: fsync, rotate and retry intervals must be >= 0");
  }
  return absl::OkStatus();
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

// Holds an exclusive flock on "<directory>/<prefix>.lock" for the ledger's lifetime.
absl::StatusOr<int> LockDirectory(const LedgerOptions& o) {
  const std::string path = absl::StrCat(o.directory, "/", o.file_prefix, ".lock");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return PathError(errno, "create", path);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ledger: another ledger is writing to ", o.directory, " with prefix ", o.file_prefix));
    }
    return PathError(error, "lock", path);
  }
  return fd;
}

class LedgerImpl final : public Ledger {
 public:
  LedgerImpl(LedgerOptions options, int lock_fd, std::unique_ptr<AppendFile> file,
             uint64_t last_index)
      : options_(std::move(options)),
        lock_fd_(lock_fd),
        file_(std::move(file)),
        last_index_(last_index),
        writer_([this] { Run(); }) {}

  ~LedgerImpl() override {
    Close().IgnoreError();
    close(lock_fd_);
  }

  void Append(LedgerRecord record) override;
  absl::Status Flush() override;
  absl::Status Close() override;

  uint64_t write_errors() const override {
    absl::MutexLock lock(&mu_);
    return failed_attempts_;
  }
  uint64_t dropped_records() const override {
    absl::MutexLock lock(&mu_);
    return dropped_;
  }
  uint64_t buffered_records() const override {
    absl::MutexLock lock(&mu_);
    return incoming_.size() + in_writer_;
  }

 private:
  void Run();
  // Writes and fsyncs backlog_, oldest first, removing what became durable.
  absl::Status Commit();
  // Makes file_ the file to write next: rotates by time, replaces a broken or full one.
  absl::Status PrepareFile();
  void Log(std::string_view message) const { options_.log(message); }

  const LedgerOptions options_;
  const int lock_fd_;

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;  // the writer waits on it
  absl::CondVar done_cv_;  // Flush waits on it; signalled after every write attempt
  std::vector<LedgerRecord> incoming_ ABSL_GUARDED_BY(mu_);
  size_t in_writer_ ABSL_GUARDED_BY(mu_) = 0;  // records taken by the writer, not yet durable
  // Records are numbered in the order they are accepted; the first `durable_` are fsynced.
  uint64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_attempts_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  // Drops since the writer last logged them, with the first and last dropped request times.
  uint64_t unlogged_drops_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time first_drop_time_ ABSL_GUARDED_BY(mu_);
  absl::Time last_drop_time_ ABSL_GUARDED_BY(mu_);
  bool writer_idle_ ABSL_GUARDED_BY(mu_) = false;  // waiting with nothing to write
  bool flush_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool writer_exited_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);  // of the writer's last attempt, on Close

  // The writer thread's own state.
  std::unique_ptr<AppendFile> file_;
  uint64_t last_index_;
  std::vector<LedgerRecord> batch_;  // swapped with incoming_, so both keep their capacity
  std::deque<std::string> backlog_;  // lines not yet durable, oldest first
  std::string buffer_;

  absl::Mutex close_mu_;
  bool closed_ ABSL_GUARDED_BY(close_mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(close_mu_);

  std::thread writer_;  // last: starts once everything above is constructed
};

void LedgerImpl::Append(LedgerRecord record) {
  {
    absl::MutexLock lock(&mu_);
    if (!closing_ && incoming_.size() + in_writer_ < options_.max_buffered_records) {
      incoming_.push_back(std::move(record));
      ++accepted_;
      if (writer_idle_) {
        writer_idle_ = false;
        work_cv_.Signal();
      }
      return;
    }
    ++dropped_;
    if (unlogged_drops_++ == 0) first_drop_time_ = record.time;
    last_drop_time_ = record.time;
  }
  if (options_.on_dropped_record) options_.on_dropped_record();
}

absl::Status LedgerImpl::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = accepted_;
  const uint64_t failures = failed_attempts_;
  while (durable_ < target) {
    if (failed_attempts_ != failures) return last_error_;
    if (writer_exited_) {
      return last_error_.ok() ? absl::FailedPreconditionError("ledger: closed") : last_error_;
    }
    flush_requested_ = true;
    work_cv_.Signal();
    done_cv_.Wait(&mu_);
  }
  return absl::OkStatus();
}

absl::Status LedgerImpl::Close() {
  absl::MutexLock close_lock(&close_mu_);
  if (closed_) return close_status_;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    work_cv_.Signal();
  }
  writer_.join();
  file_.reset();
  closed_ = true;
  absl::MutexLock lock(&mu_);
  close_status_ = final_status_;
  return close_status_;
}

void LedgerImpl::Run() {
  absl::Time next_commit = absl::InfinitePast();  // by the real clock
  absl::Time next_retry = absl::InfinitePast();
  bool failing = false;
  while (true) {
    bool closing;
    uint64_t batch_end;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        const bool work = !incoming_.empty() || !backlog_.empty();
        if (closing_ || (work && flush_requested_)) break;
        const absl::Time deadline = !work     ? absl::InfiniteFuture()
                                    : failing ? next_retry
                                              : next_commit;
        if (absl::Now() >= deadline) break;
        writer_idle_ = !work;
        work_cv_.WaitWithDeadline(&mu_, deadline);
        writer_idle_ = false;
      }
      flush_requested_ = false;
      closing = closing_;
      batch_.swap(incoming_);
      in_writer_ += batch_.size();
      batch_end = accepted_;
    }
    for (const LedgerRecord& record : batch_) backlog_.push_back(ToJsonLine(record));
    batch_.clear();

    const absl::Time start = absl::Now();
    const absl::Status status = Commit();
    const size_t unwritten = backlog_.size();
    if (status.ok()) {
      if (failing) Log("ledger: writes recovered");
      failing = false;
      next_commit = start + options_.fsync_interval;
    } else {
      failing = true;
      next_retry = absl::Now() + options_.retry_interval;
    }
    uint64_t drops;
    absl::Time first_drop, last_drop;
    {
      absl::MutexLock lock(&mu_);
      durable_ = batch_end - unwritten;
      in_writer_ = unwritten;
      if (!status.ok()) {
        ++failed_attempts_;
        last_error_ = status;
      }
      if (closing && unwritten > 0) {
        dropped_ += unwritten;
        in_writer_ = 0;
      }
      writer_exited_ = closing;
      if (closing) final_status_ = status;
      drops = std::exchange(unlogged_drops_, 0);
      first_drop = first_drop_time_;
      last_drop = last_drop_time_;
      done_cv_.SignalAll();
    }
    if (!status.ok()) {
      if (options_.on_write_error) options_.on_write_error();
      Log(closing ? absl::StrCat("ledger: closing with ", unwritten,
                                 " records unwritten, which are lost: ", status.ToString())
                  : absl::StrCat(
                        "ledger: write failed, ", unwritten, " records buffered, retry in ",
                        absl::FormatDuration(options_.retry_interval), ": ", status.ToString()));
      if (closing && options_.on_dropped_record) {
        for (size_t i = 0; i < unwritten; ++i) options_.on_dropped_record();
      }
    }
    if (drops > 0) {
      Log(absl::StrCat("ledger: dropped ", drops, " new records (request times ",
                       FormatUtc(first_drop), " to ", FormatUtc(last_drop), "): the buffer of ",
                       options_.max_buffered_records, " records is full while writes fail"));
    }
    if (closing) return;
  }
}

absl::Status LedgerImpl::Commit() {
  while (!backlog_.empty()) {
    TG_RETURN_IF_ERROR(PrepareFile());
    const uint64_t limit = options_.max_file_bytes;
    buffer_.clear();
    size_t lines = 0;
    for (; lines < backlog_.size(); ++lines) {
      const uint64_t size = file_->size() + buffer_.size();
      if (limit > 0 && size > 0 && size + backlog_[lines].size() > limit) break;
      buffer_ += backlog_[lines];
    }
    if (lines == 0) {  // full
      file_.reset();
      continue;
    }
    if (absl::Status written = file_->Append(buffer_); !written.ok()) {
      if (file_->broken()) {
        Log(absl::StrCat("ledger ", file_->path(),
                         ": could not truncate a failed write, continuing in a new file"));
        file_.reset();
      }
      return written;
    }
    backlog_.erase(backlog_.begin(), backlog_.begin() + static_cast<ptrdiff_t>(lines));
    if (!backlog_.empty()) file_.reset();  // the rest did not fit
  }
  return absl::OkStatus();
}

absl::Status LedgerImpl::PrepareFile() {
  const absl::Time now = options_.now();
  if (file_ != nullptr && file_->size() > 0 && options_.rotate_interval > absl::ZeroDuration() &&
      now - file_->name().start >= options_.rotate_interval) {
    file_.reset();
  }
  if (file_ != nullptr) return absl::OkStatus();
  const LedgerFileName name{++last_index_, absl::FromUnixSeconds(absl::ToUnixSeconds(now))};
  TG_ASSIGN_OR_RETURN(file_, AppendFile::Create(options_.directory, options_.file_prefix, name));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Open(LedgerOptions options) {
  TG_RETURN_IF_ERROR(ValidateOptions(options));
  if (!options.now) options.now = [] { return absl::Now(); };
  if (!options.log) {
    options.log = [](std::string_view m) { LogLine(absl::string_view(m.data(), m.size())); };
  }
  std::error_code error;
  std::filesystem::create_directories(options.directory, error);
  if (error) return PathError(error.value(), "create directory", options.directory);

  TG_ASSIGN_OR_RETURN(const int lock_fd, LockDirectory(options));
  auto fail = [lock_fd](absl::Status status) {
    close(lock_fd);
    return status;
  };
  absl::StatusOr<std::vector<ledger_internal::ListedFile>> files =
      ledger_internal::ListFiles(options.directory, options.file_prefix);
  if (!files.ok()) return fail(files.status());

  std::unique_ptr<AppendFile> file;
  uint64_t last_index = 0;
  if (!files->empty()) {
    const ledger_internal::ListedFile& newest = files->back();
    last_index = newest.name.index;
    absl::StatusOr<std::unique_ptr<AppendFile>> resumed =
        AppendFile::Resume(newest.path, newest.name, options.log);
    if (resumed.ok()) {
      file = *std::move(resumed);
    } else {
      options.log(absl::StrCat("ledger: cannot resume ", newest.path,
                               ", starting a new file: ", resumed.status().ToString()));
    }
  }
  if (file == nullptr) {
    const LedgerFileName name{++last_index,
                              absl::FromUnixSeconds(absl::ToUnixSeconds(options.now()))};
    absl::StatusOr<std::unique_ptr<AppendFile>> created =
        AppendFile::Create(options.directory, options.file_prefix, name);
    if (!created.ok()) return fail(created.status());
    file = *std::move(created);
  }
  return std::make_unique<LedgerImpl>(std::move(options), lock_fd, std::move(file), last_index);
}

}  // namespace tollgate
