// Tests the ledger across process death: ledger_writer_main.cc appends numbered records, is
// killed with SIGKILL (everything acknowledged by Flush survives, nothing is corrupt, at most a
// torn tail that the reader drops and a restart truncates) or stopped with SIGTERM (Close loses
// nothing).
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "accounting/ledger/ledger.h"
#include "accounting/ledger/reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/accounting/ledger/ledger_test_util.h"

namespace tollgate::ledger_test {
namespace {

// ledger_writer running with its stdout on a pipe.
class Writer {
 public:
  explicit Writer(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) std::abort();
    std::vector<std::string> argv_storage = {LEDGER_WRITER_PATH};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(argv_storage.size() + 1);
    for (std::string& arg : argv_storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }
  ~Writer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
    close(out_);
  }

  // Reads whole lines until `done` accepts one or the output ends (then false). Fails the test
  // after a minute, which only a hung writer takes.
  bool ReadUntil(const std::function<bool(const std::string&)>& done) {
    const absl::Time give_up = absl::Now() + absl::Minutes(1);
    while (true) {
      while (line_start_ < pending_.size()) {
        const size_t newline = pending_.find('\n', line_start_);
        if (newline == std::string::npos) break;
        lines_.push_back(pending_.substr(line_start_, newline - line_start_));
        line_start_ = newline + 1;
        if (done(lines_.back())) return true;
      }
      pollfd p = {out_, POLLIN, 0};
      const int remaining_ms = static_cast<int>(absl::ToInt64Milliseconds(give_up - absl::Now()));
      if (remaining_ms <= 0 || poll(&p, 1, remaining_ms) <= 0) {
        ADD_FAILURE() << "ledger_writer printed nothing for a minute";
        return false;
      }
      char buffer[4096];
      const ssize_t n = read(out_, buffer, sizeof(buffer));
      if (n <= 0) return false;
      pending_.append(buffer, static_cast<size_t>(n));
    }
  }
  void ReadToEnd() {
    ReadUntil([](const std::string&) { return false; });
  }

  // The wait status.
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  void Signal(int signal) { kill(pid_, signal); }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string pending_;
  size_t line_start_ = 0;
  std::vector<std::string> lines_;
};

uint64_t Acked(const std::string& line) {
  uint64_t n = 0;
  if (absl::StartsWith(line, "acked ") && absl::SimpleAtoi(line.substr(6), &n)) return n;
  return 0;
}

// Kills the writer once it has acknowledged `min_acked` records, then checks the files and that a
// restarted ledger carries on after them.
void KillAndRestart(const std::string& fsync_ms, const std::string& flush_every, uint64_t min_acked,
                    const std::string& max_file_bytes) {
  TempDir dir;
  Writer writer({dir.path(), fsync_ms, flush_every, "0", max_file_bytes});
  ASSERT_TRUE(writer.ReadUntil([&](const std::string& line) { return Acked(line) >= min_acked; }));
  // Not a wait for anything: it moves the kill off the moment of an ack, into the writer's work.
  std::random_device random;
  absl::SleepFor(absl::Microseconds(std::uniform_int_distribution<int>(0, 20'000)(random)));
  writer.Signal(SIGKILL);
  writer.ReadToEnd();
  const int status = writer.Wait();
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  uint64_t acked = 0;
  for (const std::string& line : writer.lines()) acked = std::max(acked, Acked(line));

  absl::StatusOr<std::vector<std::string>> files = ListLedgerFiles(dir.path());
  ASSERT_TRUE(files.ok() && !files->empty()) << files.status();
  const ReadResult all = ReadPaths(*files);
  ASSERT_TRUE(all.status.ok()) << all.status;
  EXPECT_EQ(all.stats.corrupt_lines, 0);
  EXPECT_LE(all.stats.torn_lines, 1);
  if (all.stats.torn_lines > 0) {
    files->pop_back();
    EXPECT_EQ(ReadPaths(*files).stats.torn_lines, 0) << "only the last file may be torn";
  }
  const uint64_t kept = all.records.size();
  EXPECT_GE(kept, acked) << "a record acknowledged by Flush is missing";
  for (uint64_t i = 0; i < kept; ++i) {
    ASSERT_EQ(all.records[i], NumberedRecord(i + 1)) << "not the appended sequence at " << i;
  }

  std::string log;
  LedgerOptions options;
  options.directory = dir.path();
  options.log = [&log](std::string_view line) { log.append(line).append("\n"); };
  absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  if (all.stats.torn_lines > 0) {
    EXPECT_THAT(log, ::testing::HasSubstr("torn"));
  }
  (*ledger)->Append(NumberedRecord(kept + 1));
  ASSERT_TRUE((*ledger)->Close().ok());
  const ReadResult after = ReadDirectory(dir.path());
  ASSERT_TRUE(after.status.ok());
  EXPECT_EQ(after.stats.corrupt_lines + after.stats.torn_lines, 0);
  ASSERT_EQ(after.records.size(), kept + 1);
  EXPECT_EQ(after.records.back(), NumberedRecord(kept + 1));
}

TEST(LedgerCrash, SigkillLosesNothingAcknowledgedWithAnFsyncPerCommit) {
  KillAndRestart("0", "50", 1000, "0");
}

TEST(LedgerCrash, SigkillLosesNothingAcknowledgedWithGroupCommit) {
  // Flushes are rare: the kill lands among the writer's own 2 ms group commits, in large writes
  // (which SIGKILL can cut short), across files of 1 MiB.
  KillAndRestart("2", "5000", 20000, "1048576");
}

TEST(LedgerCrash, SigtermClosesTheLedgerWithoutLosingARecord) {
  TempDir dir;
  // A one-hour interval: nothing is written before Close.
  Writer writer({dir.path(), "3600000", "0", "20000", "0"});
  ASSERT_TRUE(writer.ReadUntil([](const std::string& line) { return line == "appended 20000"; }));
  writer.Signal(SIGTERM);
  writer.ReadToEnd();
  const int status = writer.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_THAT(writer.lines(), ::testing::Contains("closed 0"));
  const ReadResult read = ReadDirectory(dir.path());
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(read.stats.torn_lines + read.stats.corrupt_lines, 0);
  ASSERT_EQ(read.records.size(), 20000);
  for (uint64_t i = 0; i < 20000; ++i) ASSERT_EQ(read.records[i], NumberedRecord(i + 1));
}

}  // namespace
}  // namespace tollgate::ledger_test
