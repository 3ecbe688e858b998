// Tests accounting/ledger/summarize.cc: `tollgate ledger summarize`.
#include "accounting/ledger/summarize.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "accounting/ledger/ledger.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/accounting/ledger/ledger_test_util.h"

namespace tollgate::ledger_test {
namespace {

using ::testing::HasSubstr;

const absl::Time kNoon = absl::FromUnixSeconds(1'795'262'400);  // 2026-11-21T12:00:00Z

LedgerRecord Spend(std::string tenant, std::string model, std::string backend, absl::Time time,
                   int64_t nano_usd, uint64_t input_tokens, uint64_t output_tokens) {
  LedgerRecord r;
  r.request_id = absl::StrCat("r-", absl::ToUnixMicros(time));
  r.time = time;
  r.tenant = std::move(tenant);
  r.model = std::move(model);
  r.backend = std::move(backend);
  r.total_nano_usd = nano_usd;
  r.input_nano_usd = nano_usd;
  r.input_tokens = input_tokens;
  r.cached_input_tokens = input_tokens / 2;
  r.cache_write_input_tokens = input_tokens / 4;
  r.output_tokens = output_tokens;
  r.reasoning_tokens = output_tokens / 10;
  return r;
}

class SummarizeLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Two files, as rotation leaves them.
    std::ofstream(first_)
        << ToJsonLine(Spend("acme", "gpt-4o", "openai", kNoon, 999'999'999, 100, 10))
        << ToJsonLine(Spend("globex", "gpt-4o", "azure", kNoon + absl::Minutes(30), 1, 200, 20));
    std::ofstream(second_) << ToJsonLine(Spend("acme", "claude-sonnet-4", "anthropic",
                                               kNoon + absl::Hours(1), 2'500'000'000, 300, 30))
                           << ToJsonLine(Spend("acme", "gpt-4o", "openai", kNoon + absl::Hours(2),
                                               7, 400, 40));
  }

  std::string Summarize(const SummarizeOptions& options, int expected_code = 0) {
    std::ostringstream out, err;
    EXPECT_EQ(SummarizeLedger({first_, second_}, options, out, err), expected_code) << err.str();
    err_ = err.str();
    return out.str();
  }

  TempDir dir_;
  const std::string first_ = dir_.path() + "/ledger-00000001-20261121T120000Z.jsonl";
  const std::string second_ = dir_.path() + "/ledger-00000002-20261121T130000Z.jsonl";
  std::string err_;
};

TEST_F(SummarizeLedgerTest, SumsSpendAndTokensPerTenantExactly) {
  EXPECT_EQ(Summarize({}),
            "tenant  requests    spend_usd  input_tokens  cached_input_tokens  "
            "cache_write_input_tokens  output_tokens  reasoning_tokens\n"
            "acme           3  3.500000006           800                  400  "
            "                     200             80                 8\n"
            "globex         1  0.000000001           200                  100  "
            "                      50             20                 2\n"
            "total          4  3.500000007          1000                  500  "
            "                     250            100                10\n");
  EXPECT_EQ(err_, "");
}

TEST_F(SummarizeLedgerTest, GroupsByModelOrBackend) {
  SummarizeOptions options;
  options.group_by = SummaryGroup::kModel;
  EXPECT_THAT(Summarize(options), HasSubstr("\nclaude-sonnet-4         1  2.500000000"));
  EXPECT_THAT(Summarize(options), HasSubstr("\ngpt-4o                  3  1.000000007"));
  options.group_by = SummaryGroup::kBackend;
  const std::string out = Summarize(options);
  EXPECT_THAT(out, HasSubstr("\nanthropic         1  2.500000000"));
  EXPECT_THAT(out, HasSubstr("\nazure             1  0.000000001"));
  EXPECT_THAT(out, HasSubstr("\nopenai            2  1.000000006"));
  EXPECT_THAT(out, HasSubstr("\ntotal             4  3.500000007"));
}

TEST_F(SummarizeLedgerTest, CountsRecordsFromInclusiveToExclusive) {
  SummarizeOptions options;
  options.from = kNoon + absl::Minutes(30);
  options.to = kNoon + absl::Hours(2);
  const std::string out = Summarize(options);
  EXPECT_THAT(out, HasSubstr("\nacme           1  2.500000000"));
  EXPECT_THAT(out, HasSubstr("\nglobex         1  0.000000001"));
  EXPECT_THAT(out, HasSubstr("\ntotal          2  2.500000001"));
}

TEST_F(SummarizeLedgerTest, TotalsBeyondInt64NanoUsdStayExact) {
  std::ofstream(first_)
      << ToJsonLine(Spend("acme", "m", "b", kNoon, 4'000'000'000'000'000'001, 0, 0))
      << ToJsonLine(Spend("acme", "m", "b", kNoon, 4'000'000'000'000'000'001, 0, 0))
      << ToJsonLine(Spend("acme", "m", "b", kNoon, 4'000'000'000'000'000'001, 0, 0));
  std::ofstream(second_) << "";
  EXPECT_THAT(Summarize({}), HasSubstr("\ntotal          3  12000000000.000000003"));
}

TEST_F(SummarizeLedgerTest, WarnsAboutATornLineAndFailsOnAMissingFile) {
  std::ofstream(second_, std::ios::app) << R"({"request_id":"r-torn)";
  EXPECT_THAT(Summarize({}), HasSubstr("\ntotal          4"));
  EXPECT_EQ(err_, "warning: skipped 1 torn and 0 corrupt lines\n");

  std::ostringstream out, err;
  EXPECT_EQ(SummarizeLedger({first_, dir_.path() + "/missing.jsonl"}, {}, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("missing.jsonl"));
  EXPECT_EQ(out.str(), "");
}

TEST(ParseSummarizeArgs, TakesFilesAndFlagsInEitherForm) {
  absl::StatusOr<SummarizeCommand> command =
      ParseSummarizeArgs({"a.jsonl", "--from", "2026-11-21T12:00:00Z", "b.jsonl",
                          "--to=2026-11-21T14:00:00+01:00", "--by=model"});
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_THAT(command->files, ::testing::ElementsAre("a.jsonl", "b.jsonl"));
  EXPECT_EQ(command->options.from, kNoon);
  EXPECT_EQ(command->options.to, kNoon + absl::Hours(1));
  EXPECT_EQ(command->options.group_by, SummaryGroup::kModel);

  command = ParseSummarizeArgs({"a.jsonl"});
  ASSERT_TRUE(command.ok());
  EXPECT_FALSE(command->options.from.has_value());
  EXPECT_FALSE(command->options.to.has_value());
  EXPECT_EQ(command->options.group_by, SummaryGroup::kTenant);
}

TEST(ParseSummarizeArgs, RejectsBadArgumentsNamingThem) {
  const auto error = [](const std::vector<std::string>& args) {
    absl::StatusOr<SummarizeCommand> command = ParseSummarizeArgs(args);
    EXPECT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(command.status().message());
  };
  EXPECT_THAT(error({"a", "--from", "yesterday"}), HasSubstr("--from=yesterday: not an RFC 3339"));
  EXPECT_THAT(error({"a", "--by=region"}), HasSubstr("--by=region"));
  EXPECT_THAT(error({"a", "--to"}), HasSubstr("--to needs a value"));
  EXPECT_THAT(error({"a", "--json"}), HasSubstr("unknown flag --json"));
  EXPECT_THAT(error({"--by", "model"}), HasSubstr("no ledger files"));
}

}  // namespace
}  // namespace tollgate::ledger_test
