// Tests accounting/ledger/ledger.cc and reader.cc: group commit, rotation, torn lines, a disk that
// fails for real (RLIMIT_FSIZE), the overflow bound and concurrent appends.
#include "accounting/ledger/ledger.h"

#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "accounting/ledger/reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/accounting/ledger/ledger_test_util.h"

namespace tollgate::ledger_test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Log lines, kept for the test to look at.
class CapturedLog {
 public:
  std::function<void(std::string_view)> Sink() {
    return [this](std::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    };
  }
  std::string Joined() const {
    absl::MutexLock lock(&mu_);
    return absl::StrJoin(lines_, "\n");
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

class FakeClock {
 public:
  std::function<absl::Time()> Fn() {
    return [this] {
      absl::MutexLock lock(&mu_);
      return now_;
    };
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1'795'237'200);
};

LedgerOptions Options(const TempDir& dir) {
  LedgerOptions options;
  options.directory = dir.path();
  options.fsync_interval = absl::ZeroDuration();
  options.rotate_interval = absl::ZeroDuration();
  options.max_file_bytes = 0;
  return options;
}

std::unique_ptr<Ledger> OpenOrDie(LedgerOptions options) {
  absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(std::move(options));
  if (!ledger.ok()) {
    std::fprintf(stderr, "%s\n", ledger.status().ToString().c_str());
    std::abort();
  }
  return *std::move(ledger);
}

std::vector<std::string> Files(const TempDir& dir) {
  absl::StatusOr<std::vector<std::string>> files = ListLedgerFiles(dir.path());
  EXPECT_TRUE(files.ok()) << files.status();
  return files.ok() ? *files : std::vector<std::string>{};
}

// Records 1..n, in order, and nothing else.
void ExpectNumbered(const ReadResult& read, uint64_t n) {
  ASSERT_TRUE(read.status.ok()) << read.status;
  ASSERT_EQ(read.records.size(), n);
  for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(read.records[i], NumberedRecord(i + 1)) << i;
}

TEST(Ledger, FlushMakesEveryAppendedRecordDurable) {
  TempDir dir;
  LedgerOptions options = Options(dir);
  options.fsync_interval = absl::Hours(1);  // only Flush writes
  std::unique_ptr<Ledger> ledger = OpenOrDie(options);
  EXPECT_TRUE(ledger->Flush().ok()) << "nothing to flush";
  for (uint64_t n = 1; n <= 10; ++n) ledger->Append(NumberedRecord(n));
  EXPECT_EQ(ledger->buffered_records(), 10);
  ASSERT_TRUE(ledger->Flush().ok());
  EXPECT_EQ(ledger->buffered_records(), 0);
  ExpectNumbered(ReadDirectory(dir.path()), 10);
}

TEST(Ledger, GroupCommitWritesRecordsWithoutAFlush) {
  TempDir dir;
  LedgerOptions options = Options(dir);
  options.fsync_interval = absl::Milliseconds(5);
  std::unique_ptr<Ledger> ledger = OpenOrDie(options);
  ledger->Append(NumberedRecord(1));
  ledger->Append(NumberedRecord(2));
  // Polls: the writer needs no Flush to get there, however busy the machine.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (ReadDirectory(dir.path()).records.size() < 2 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ExpectNumbered(ReadDirectory(dir.path()), 2);
  ASSERT_TRUE(ledger->Flush().ok());  // returns once the writer has counted them durable
  EXPECT_EQ(ledger->buffered_records(), 0);
}

TEST(Ledger, CloseAndTheDestructorWriteEverythingAppended) {
  TempDir dir;
  LedgerOptions options = Options(dir);
  options.fsync_interval = absl::Hours(1);
  std::unique_ptr<Ledger> ledger = OpenOrDie(options);
  for (uint64_t n = 1; n <= 1000; ++n) ledger->Append(NumberedRecord(n));
  EXPECT_TRUE(ledger->Close().ok());
  EXPECT_TRUE(ledger->Close().ok()) << "idempotent";
  ExpectNumbered(ReadDirectory(dir.path()), 1000);
  ledger->Append(NumberedRecord(1001));
  EXPECT_EQ(ledger->dropped_records(), 1) << "appended after Close";
  ledger.reset();

  ledger = OpenOrDie(options);
  for (uint64_t n = 1001; n <= 2000; ++n) ledger->Append(NumberedRecord(n));
  ledger.reset();  // the destructor closes
  ExpectNumbered(ReadDirectory(dir.path()), 2000);
  EXPECT_THAT(Files(dir), SizeIs(1)) << "the second ledger resumed the file";
}

TEST(Ledger, OnlyOneLedgerWritesADirectoryAndPrefix) {
  TempDir dir;
  std::unique_ptr<Ledger> first = OpenOrDie(Options(dir));
  absl::StatusOr<std::unique_ptr<Ledger>> second = Ledger::Open(Options(dir));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  LedgerOptions other_prefix = Options(dir);
  other_prefix.file_prefix = "replica-2";
  EXPECT_TRUE(Ledger::Open(other_prefix).ok());
  first.reset();
  EXPECT_TRUE(Ledger::Open(Options(dir)).ok()) << "the lock goes with the ledger";
}

TEST(Ledger, RejectsBadOptions) {
  TempDir dir;
  LedgerOptions options = Options(dir);
  options.directory = "";
  EXPECT_EQ(Ledger::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Options(dir);
  options.file_prefix = "a/b";
  EXPECT_EQ(Ledger::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Options(dir);
  options.max_buffered_records = 0;
  EXPECT_EQ(Ledger::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Options(dir);
  options.fsync_interval = absl::Milliseconds(-1);
  EXPECT_EQ(Ledger::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Options(dir);
  options.directory = dir.path() + "/made/on/open";
  EXPECT_TRUE(Ledger::Open(options).ok());
}

TEST(Ledger, ReopeningTruncatesATornLastLineAndAppendsOnACleanLine) {
  TempDir dir;
  CapturedLog log;
  LedgerOptions options = Options(dir);
  options.log = log.Sink();
  std::unique_ptr<Ledger> ledger = OpenOrDie(options);
  for (uint64_t n = 1; n <= 3; ++n) ledger->Append(NumberedRecord(n));
  ledger.reset();
  ASSERT_THAT(Files(dir), SizeIs(1));
  const std::string path = Files(dir)[0];
  const uint64_t clean_size = std::filesystem::file_size(path);
  std::ofstream(path, std::ios::app) << ToJsonLine(NumberedRecord(4)).substr(0, 57);

  ReadResult read = ReadDirectory(dir.path());
  ExpectNumbered(read, 3);
  EXPECT_EQ(read.stats.torn_lines, 1);
  EXPECT_EQ(read.stats.corrupt_lines, 0);

  ledger = OpenOrDie(options);
  EXPECT_THAT(log.Joined(), HasSubstr("truncated a torn last line (57 bytes"));
  EXPECT_EQ(std::filesystem::file_size(path), clean_size);
  ledger->Append(NumberedRecord(4));
  ledger.reset();
  read = ReadDirectory(dir.path());
  ExpectNumbered(read, 4);
  EXPECT_EQ(read.stats.torn_lines, 0);
  EXPECT_EQ(read.stats.corrupt_lines, 0);
  EXPECT_THAT(Files(dir), SizeIs(1));
}

TEST(LedgerReader, SkipsACorruptLineAndCountsIt) {
  TempDir dir;
  const std::string path = dir.path() + "/ledger-00000001-20261121T050000Z.jsonl";
  std::ofstream(path) << ToJsonLine(NumberedRecord(1)) << "{\"garbage\n"
                      << ToJsonLine(NumberedRecord(2));
  const ReadResult read = ReadPaths({path});
  ExpectNumbered(read, 2);
  EXPECT_EQ(read.stats.corrupt_lines, 1);
  EXPECT_EQ(read.stats.torn_lines, 0);
  EXPECT_EQ(read.stats.files, 1);
  EXPECT_EQ(ReadPaths({path, dir.path() + "/missing"}).status.code(), absl::StatusCode::kNotFound);
}

TEST(LedgerReader, ListsLedgerFilesByIndex) {
  TempDir dir;
  for (const char* name :
       {"ledger-00000010-20261121T050000Z.jsonl", "ledger-00000002-20261121T060000Z.jsonl",
        "ledger-100000000-20261121T040000Z.jsonl", "ledger.lock", "notes.txt",
        "ledger-00000003-yesterday.jsonl", "other-00000001-20261121T050000Z.jsonl"}) {
    std::ofstream(dir.path() + "/" + name) << "";
  }
  EXPECT_THAT(Files(dir),
              ::testing::ElementsAre(dir.path() + "/ledger-00000002-20261121T060000Z.jsonl",
                                     dir.path() + "/ledger-00000010-20261121T050000Z.jsonl",
                                     dir.path() + "/ledger-100000000-20261121T040000Z.jsonl"));
  EXPECT_EQ(ListLedgerFiles(dir.path() + "/missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(Ledger, RotatesBySizeWithoutSplittingALine) {
  TempDir dir;
  LedgerOptions options = Options(dir);
  options.max_file_bytes = 1500;
  options.fsync_interval = absl::Hours(1);  // one batch, split by the writer
  std::unique_ptr<Ledger> ledger = OpenOrDie(options);
  for (uint64_t n = 1; n <= 20; ++n) ledger->Append(NumberedRecord(n));
  ASSERT_TRUE(ledger->Flush().ok());
  LedgerRecord big = NumberedRecord(21);
  big.tenant = std::string(2000, 't');
  ledger->Append(big);
  ledger->Append(NumberedRecord(22));
  ledger.reset();

  std::vector<LedgerRecord> expected;
  for (uint64_t n = 1; n <= 22; ++n) expected.push_back(n == 21 ? big : NumberedRecord(n));
  const std::vector<std::string> files = Files(dir);
  ASSERT_GE(files.size(), 6);
  size_t next = 0;  // index in `expected` of the file's first record
  for (size_t f = 0; f < files.size(); ++f) {
    const ReadResult read = ReadPaths({files[f]});
    ASSERT_TRUE(read.status.ok());
    ASSERT_THAT(read.records, ::testing::Not(IsEmpty())) << files[f];
    const uint64_t size = std::filesystem::file_size(files[f]);
    if (read.records.front() == big) {
      EXPECT_THAT(read.records, SizeIs(1)) << "an oversized record has a file of its own";
    } else {
      EXPECT_LE(size, options.max_file_bytes) << files[f];
    }
    next += read.records.size();
    if (f + 1 < files.size()) {  // full: its next record did not fit
      EXPECT_GT(size + ToJsonLine(expected[next]).size(), options.max_file_bytes) << files[f];
    }
  }
  const ReadResult all = ReadPaths(files);
  EXPECT_EQ(all.records, expected);
  EXPECT_EQ(all.stats.torn_lines + all.stats.corrupt_lines, 0);
}

TEST(Ledger, RotatesByTimeOnItsClock) {
  TempDir dir;
  FakeClock clock;
  LedgerOptions options = Options(dir);
  options.rotate_interval = absl::Hours(1);
  options.now = clock.Fn();
  std::unique_ptr<Ledger> ledger = OpenOrDie(options);
  ledger->Append(NumberedRecord(1));
  ASSERT_TRUE(ledger->Flush().ok());
  clock.Advance(absl::Minutes(59));
  ledger->Append(NumberedRecord(2));
  ASSERT_TRUE(ledger->Flush().ok());
  EXPECT_THAT(Files(dir), SizeIs(1));
  clock.Advance(absl::Minutes(2));
  ledger->Append(NumberedRecord(3));
  ASSERT_TRUE(ledger->Flush().ok());
  clock.Advance(absl::Hours(5));  // an empty file is not rotated, nothing is written
  ASSERT_TRUE(ledger->Flush().ok());
  ledger.reset();

  ledger = OpenOrDie(options);  // resumes the second file: 5 hours old, rotated on first write
  ledger->Append(NumberedRecord(4));
  ledger.reset();
  const std::string base = dir.path() + "/ledger-";
  EXPECT_THAT(Files(dir), ::testing::ElementsAre(base + "00000001-20261121T050000Z.jsonl",
                                                 base + "00000002-20261121T060100Z.jsonl",
                                                 base + "00000003-20261121T110100Z.jsonl"));
  ExpectNumbered(ReadDirectory(dir.path()), 4);
  EXPECT_THAT(ReadPaths({Files(dir)[0]}).records, SizeIs(2));
}

// Caps the size of any file this process writes; restores the old limit when it goes.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit limit = old_;
    limit.rlim_cur = bytes;
    EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  }
  ~FileSizeLimit() { setrlimit(RLIMIT_FSIZE, &old_); }

 private:
  rlimit old_;
};

TEST(Ledger, KeepsRecordsUpToTheBoundWhileWritesFailAndWritesThemWhenTheFaultClears) {
  TempDir dir;
  CapturedLog log;
  std::atomic<int> error_callbacks = 0, drop_callbacks = 0;
  LedgerOptions options = Options(dir);
  options.max_buffered_records = 100;
  options.fsync_interval = absl::Hours(1);  // writes, and retries, come from Flush only
  options.retry_interval = absl::Hours(1);
  options.log = log.Sink();
  options.on_write_error = [&] { ++error_callbacks; };
  options.on_dropped_record = [&] { ++drop_callbacks; };
  std::unique_ptr<Ledger> ledger = OpenOrDie(options);
  for (uint64_t n = 1; n <= 5; ++n) ledger->Append(NumberedRecord(n));
  ASSERT_TRUE(ledger->Flush().ok());
  const std::string path = Files(dir)[0];
  const uint64_t clean_size = std::filesystem::file_size(path);
  {
    // Room for part of one line: the write is cut short, as on a full disk, then fails.
    FileSizeLimit limit(clean_size + 100);
    for (uint64_t n = 6; n <= 155; ++n) ledger->Append(NumberedRecord(n));
    const absl::Status flushed = ledger->Flush();
    EXPECT_FALSE(flushed.ok());
    EXPECT_THAT(std::string(flushed.message()), HasSubstr(path));
    EXPECT_GE(ledger->write_errors(), 1);
    EXPECT_EQ(ledger->buffered_records(), 100);
    EXPECT_EQ(ledger->dropped_records(), 50) << "the newest records beyond the bound";
    EXPECT_EQ(std::filesystem::file_size(path), clean_size) << "the cut-short line rolled back";
    const ReadResult read = ReadDirectory(dir.path());
    ExpectNumbered(read, 5);
    EXPECT_EQ(read.stats.torn_lines, 0);
    EXPECT_FALSE(ledger->Flush().ok()) << "still failing";
  }
  ASSERT_TRUE(ledger->Flush().ok());
  EXPECT_EQ(ledger->buffered_records(), 0);
  const uint64_t errors = ledger->write_errors();
  ledger.reset();

  const ReadResult read = ReadDirectory(dir.path());
  ExpectNumbered(read, 105);
  EXPECT_EQ(read.stats.torn_lines + read.stats.corrupt_lines, 0);
  EXPECT_EQ(error_callbacks, errors);
  EXPECT_EQ(drop_callbacks, 50);
  EXPECT_THAT(log.Joined(), HasSubstr("File too large"));
  EXPECT_THAT(log.Joined(), HasSubstr("dropped 50 new records"));
  EXPECT_THAT(log.Joined(), HasSubstr("writes recovered"));
}

TEST(Ledger, KeepsEveryRecordOfManyThreadsExactlyOnceAndInEachThreadsOrder) {
  TempDir dir;
  LedgerOptions options = Options(dir);
  options.fsync_interval = absl::Milliseconds(1);
  options.max_file_bytes = 64 << 10;
  options.max_buffered_records = 1 << 20;
  std::unique_ptr<Ledger> ledger = OpenOrDie(options);
  constexpr int kThreads = 8;
  constexpr uint64_t kPerThread = 2000;
  std::atomic<bool> done = false;
  std::thread flusher([&] {
    while (!done) EXPECT_TRUE(ledger->Flush().ok());
  });
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        LedgerRecord record = NumberedRecord(i);
        record.request_id = absl::StrCat("t", t, "-", i);
        ledger->Append(std::move(record));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  done = true;
  flusher.join();
  ASSERT_TRUE(ledger->Close().ok());
  EXPECT_EQ(ledger->dropped_records(), 0);

  const ReadResult read = ReadDirectory(dir.path());
  ASSERT_TRUE(read.status.ok());
  EXPECT_EQ(read.stats.torn_lines + read.stats.corrupt_lines, 0);
  EXPECT_GT(read.stats.files, 1);
  ASSERT_THAT(read.records, SizeIs(kThreads * kPerThread));
  std::vector<uint64_t> next(kThreads, 0);
  absl::flat_hash_set<std::string> seen;
  for (const LedgerRecord& record : read.records) {
    ASSERT_TRUE(seen.insert(record.request_id).second) << record.request_id << " twice";
    const int t = record.request_id[1] - '0';
    ASSERT_EQ(record.request_id, absl::StrCat("t", t, "-", next[t]++));
  }
}

}  // namespace
}  // namespace tollgate::ledger_test
