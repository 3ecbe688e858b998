#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "accounting/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/accounting/tokenizer/test_vocab.h"

namespace tollgate {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TiktokenTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { TG_LOAD_TOKENIZER_OR_SKIP(tokenizer_, GetParam()); }

  std::shared_ptr<const Tokenizer> tokenizer_;
};

INSTANTIATE_TEST_SUITE_P(Encodings, TiktokenTest, ::testing::Values("cl100k_base", "o200k_base"));

TEST_P(TiktokenTest, TreatsSpecialTokenTextAsOrdinaryTextByDefault) {
  std::vector<uint32_t> ids = tokenizer_->Encode("<|endoftext|>");
  EXPECT_EQ(ids.size(), 7u);
  EXPECT_EQ(tokenizer_->Decode(ids), "<|endoftext|>");
}

TEST_P(TiktokenTest, EncodesSpecialTokensWhenAsked) {
  uint32_t eot = std::string(GetParam()) == "cl100k_base" ? 100257 : 199999;
  EXPECT_THAT(tokenizer_->EncodeWithSpecialTokens("a<|endoftext|>b"), ElementsAre(64, eot, 65));
  EXPECT_EQ(tokenizer_->Decode({64, eot, 65}), "a<|endoftext|>b");
}

TEST_P(TiktokenTest, MergesALongRunOfOneLetter) {
  EXPECT_EQ(tokenizer_->Count(std::string(1000, 'a')), 125u);
}

TEST_P(TiktokenTest, CountsWhatItEncodes) {
  for (std::string_view text : {"", " ", "Ünïcödé 日本語 👨‍👩‍👧",
                                "def f(x):\n\treturn x  # ok\n\n", "\xff\xfe invalid \xc3("}) {
    EXPECT_EQ(tokenizer_->Count(text), tokenizer_->Encode(text).size()) << text;
  }
}

TEST_P(TiktokenTest, DecodesWhatItEncodesWithIllFormedUtf8Replaced) {
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode("Ünïcödé 日本語 👨‍👩‍👧")),
            "Ünïcödé 日本語 👨‍👩‍👧");
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode("\xff\xfe invalid \xc3(")),
            "\uFFFD\uFFFD invalid \uFFFD(");
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode("\xed\xa0\x80")), "\uFFFD\uFFFD\uFFFD");
  // The same ids as the replaced text, and the same count.
  EXPECT_EQ(tokenizer_->Encode("a\x80"
                               "b"),
            tokenizer_->Encode("a\uFFFDb"));
  EXPECT_EQ(tokenizer_->Count("a\x80"
                              "b"),
            tokenizer_->Encode("a\uFFFDb").size());
}

TEST_P(TiktokenTest, SkipsUnknownIdsWhenDecoding) {
  EXPECT_EQ(tokenizer_->Decode({64, 4000000000u, 65, 0xFFFFFFFFu}), "ab");
  EXPECT_EQ(tokenizer_->Decode({static_cast<uint32_t>(tokenizer_->vocabulary_size())}), "");
}

TEST_P(TiktokenTest, GivesTheSameIdsFromManyThreadsAtOnce) {
  const std::string text =
      "Ünïcödé 日本語 👨‍👩‍👧 It's HTTPServer\n\n  x = 12345;\t" +
      std::string(300, 'z');
  const std::vector<uint32_t> expected = tokenizer_->Encode(text);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (tokenizer_->Encode(text) != expected || tokenizer_->Count(text) != expected.size()) {
          ++mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_P(TiktokenTest, DecodesSpecialTokensBackToTheirText) {
  const std::string text = "x<|endoftext|>y <|endofprompt|>\n";
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->EncodeWithSpecialTokens(text)), text);
}

TEST_P(TiktokenTest, NamesItsEncoding) { EXPECT_EQ(tokenizer_->name(), GetParam()); }

TEST(Cl100kBase, EncodesHelloWorldAsTiktokenDoes) {
  std::shared_ptr<const Tokenizer> tokenizer;
  TG_LOAD_TOKENIZER_OR_SKIP(tokenizer, "cl100k_base");
  EXPECT_THAT(tokenizer->Encode("hello world"), ElementsAre(15339, 1917));
  EXPECT_EQ(tokenizer->vocabulary_size(), 100277u);
}

TEST(O200kBase, EncodesHelloWorldAsTiktokenDoes) {
  std::shared_ptr<const Tokenizer> tokenizer;
  TG_LOAD_TOKENIZER_OR_SKIP(tokenizer, "o200k_base");
  EXPECT_THAT(tokenizer->Encode("hello world"), ElementsAre(24912, 2375));
  EXPECT_EQ(tokenizer->vocabulary_size(), 200019u);
}

TEST(LoadTiktoken, RejectsAnUnknownEncoding) {
  auto loaded = LoadTiktoken("p99k_base", "/nonexistent");
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(), HasSubstr("p99k_base"));
}

TEST(LoadTiktoken, ReportsAMissingFileAsNotFound) {
  auto loaded = LoadTiktoken("cl100k_base", "/nonexistent/cl100k_base.json");
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(loaded.status().message(), HasSubstr("scripts/fetch_vocab"));
}

std::string WriteTemp(const std::string& name, const std::string& contents) {
  // Named per process: ctest runs this binary's tests in parallel processes.
  std::string path = ::testing::TempDir() + "/" + std::to_string(getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

TEST(LoadTiktoken, RejectsAFileWhosePatternIsNotTheEncodings) {
  std::string path =
      WriteTemp("wrong_pattern.json",
                R"({"pat_str": "\\w+", "special_tokens": {}, "bpe_ranks": "! 0 YQ=="})");
  auto loaded = LoadTiktoken("cl100k_base", path);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(), HasSubstr("pat_str"));
}

TEST(LoadTiktoken, RejectsMalformedJson) {
  auto loaded = LoadTiktoken("cl100k_base", WriteTemp("bad.json", "{\"pat_str\": "));
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tollgate
