// `tollgate count-tokens`, the operator's command for checking a bill, run as a real process.
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace tollgate {
namespace {

using ::tollgate::testing::Binary;
using ::tollgate::testing::RunCommand;

class CountTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vocab_dir_ = absl::StrCat(TOLLGATE_SOURCE_DIR, "/.cache/tokenizer");
    if (RunCommand("test -f " + vocab_dir_ + "/cl100k_base.json").exit_code != 0) {
      if (getenv("CI") != nullptr) FAIL() << "vocabularies missing in CI (scripts/setup)";
      GTEST_SKIP() << "no vocabularies in " << vocab_dir_ << "; run scripts/fetch_vocab";
    }
  }

  testing::CommandResult Count(const std::string& input, const std::string& flags) {
    return RunCommand(absl::StrCat("printf '%s' '", input, "' | ", Binary("proxy/tollgate"),
                                   " count-tokens --vocab_dir ", vocab_dir_, " ", flags));
  }

  std::string vocab_dir_;
};

TEST_F(CountTokensTest, PrintsTheCountAndTheIdsOfStdin) {
  // "hello world" is [15339, 1917] in cl100k_base.
  const testing::CommandResult counted = Count("hello world", "--tokenizer cl100k_base");
  EXPECT_EQ(counted.exit_code, 0) << counted.output;
  EXPECT_EQ(counted.output, "2\n");
  const testing::CommandResult ids = Count("hello world", "--tokenizer cl100k_base --ids");
  EXPECT_EQ(ids.output, "2\n15339 1917\n");
}

TEST_F(CountTokensTest, ReadsAFileAndCountsTheEmptyInputAsZero) {
  const std::string dir = testing::MakeTempDir();
  testing::WriteFile(dir + "/prompt.txt", "hello world");
  const testing::CommandResult file =
      RunCommand(absl::StrCat(Binary("proxy/tollgate"), " count-tokens --vocab_dir ", vocab_dir_,
                              " --tokenizer o200k_base ", dir, "/prompt.txt"));
  EXPECT_EQ(file.exit_code, 0) << file.output;
  EXPECT_EQ(file.output, "2\n");
  EXPECT_EQ(Count("", "--tokenizer o200k_base").output, "0\n");
}

TEST_F(CountTokensTest, AnUnknownTokenizerOrAMissingFileIsAClearError) {
  const testing::CommandResult unknown = Count("x", "--tokenizer llama-9");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("unknown tokenizer \"llama-9\""), std::string::npos);
  const testing::CommandResult missing =
      RunCommand(absl::StrCat(Binary("proxy/tollgate"), " count-tokens --vocab_dir ", vocab_dir_,
                              " --tokenizer cl100k_base /nonexistent/prompt.txt"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot read /nonexistent/prompt.txt"), std::string::npos);
  const testing::CommandResult no_vocab =
      Count("x", "--tokenizer cl100k_base --vocab_dir /nowhere");
  EXPECT_EQ(no_vocab.exit_code, 1);
  EXPECT_NE(no_vocab.output.find("fetch_vocab"), std::string::npos) << no_vocab.output;
}

TEST_F(CountTokensTest, CountsWithEveryTokenizer) {
  // Reference ids from the npm packages (tests/accounting/tokenizer/reference.mjs).
  EXPECT_EQ(Count("hello world", "--tokenizer llama3 --ids").output, "2\n15339 1917\n");
  EXPECT_EQ(Count("Hello world", "--tokenizer llama2 --ids").output, "2\n15043 3186\n");
  EXPECT_EQ(Count("Hello world", "--tokenizer mistral --ids").output, "2\n22557 1526\n");
}

// A model whose vocabulary is missing cannot be counted, so the config is refused: by
// --check-config, and at start-up.
TEST_F(CountTokensTest, AMissingVocabularyIsAStartUpErrorNamingTheModel) {
  const std::string dir = testing::MakeTempDir();
  testing::WriteFile(dir + "/tollgate.yaml", absl::StrCat("vocab_dir: ", dir, R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0"}
models:
  - {name: plain}
  - {name: llama, backend_model: meta-llama/Meta-Llama-3-8B-Instruct}
)"));
  for (const char* flag : {"--check-config", "--config"}) {
    const testing::CommandResult result =
        RunCommand(absl::StrCat(Binary("proxy/tollgate"), " ", flag, " ", dir, "/tollgate.yaml"));
    EXPECT_EQ(result.exit_code, 1) << flag << ": " << result.output;
    EXPECT_NE(result.output.find(absl::StrCat("models[1].tokenizer: vocabulary of tokenizer llama3 "
                                              "not found at ",
                                              dir, "/llama3.json (run scripts/fetch_vocab)")),
              std::string::npos)
        << flag << ": " << result.output;
  }
}

}  // namespace
}  // namespace tollgate
