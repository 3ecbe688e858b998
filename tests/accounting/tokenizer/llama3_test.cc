// The llama3 tokenizer: ids that llama3-tokenizer-js gives (from the package's own tests), its
// special tokens, and the errors of a malformed vocabulary file. Parity on a large corpus is in
// parity_test.cc.
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "accounting/tokenizer/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/accounting/tokenizer/test_vocab.h"

namespace tollgate {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

class Llama3Test : public ::testing::Test {
 protected:
  void SetUp() override { TG_LOAD_TOKENIZER_OR_SKIP(tokenizer_, "llama3"); }

  std::shared_ptr<const Tokenizer> tokenizer_;
};

TEST_F(Llama3Test, EncodesAsTheReferencePackageDoes) {
  EXPECT_THAT(tokenizer_->Encode("This is a test sentence."),
              ElementsAre(2028, 374, 264, 1296, 11914, 13));
  EXPECT_THAT(tokenizer_->Encode("grabbed"), ElementsAre(59312, 2788));
  EXPECT_THAT(tokenizer_->Encode("           grabbed"), ElementsAre(1881, 30418));
  EXPECT_THAT(tokenizer_->Encode("\ttabs\t\t\t\tout here"),
              ElementsAre(3324, 3518, 573, 14294, 1618));
  EXPECT_THAT(tokenizer_->Encode("ax\n####\nboo"), ElementsAre(710, 198, 71050, 34093));
  EXPECT_THAT(tokenizer_->Encode("\xe9\x95\x87"), ElementsAre(104643));  // a token whole
  EXPECT_THAT(tokenizer_->Encode("\U0001F999\uA64A"), ElementsAre(9468, 99, 247, 166, 247, 232));
  EXPECT_EQ(tokenizer_->Count("This is a test sentence."), 6u);
  EXPECT_EQ(tokenizer_->vocabulary_size(), 128256u);
  EXPECT_EQ(tokenizer_->name(), "llama3");
}

TEST_F(Llama3Test, EncodesTheTextOfSpecialTokensAsTextByDefault) {
  EXPECT_THAT(tokenizer_->Encode("<|eot_id|>"), ElementsAre(27, 91, 68, 354, 851, 91, 29));
}

TEST_F(Llama3Test, EncodesSpecialTokensWhenAsked) {
  EXPECT_THAT(tokenizer_->EncodeWithSpecialTokens(
                  "<|start_header_id|>This text has special tokens<|eom_id|> in the middle of "
                  "it.<|end_header_id|><|eot_id|>"),
              ElementsAre(128006, 2028, 1495, 706, 3361, 11460, 128008, 304, 279, 6278, 315, 433,
                          13, 128007, 128009));
  EXPECT_THAT(tokenizer_->EncodeWithSpecialTokens("<|begin_of_text|><|end_of_text|>"),
              ElementsAre(128000, 128001));
}

TEST_F(Llama3Test, KnowsExactlyTheReservedSpecialTokensZeroTo247) {
  // The package's own test: the real tokens first, then look-alikes that are ordinary text.
  const std::vector<std::string> texts = {
      "<|reserved_special_token_0|>",   "<|reserved_special_token_9|>",
      "<|reserved_special_token_10|>",  "<|reserved_special_token_19|>",
      "<|reserved_special_token_53|>",  "<|reserved_special_token_99|>",
      "<|reserved_special_token_100|>", "<|reserved_special_token_178|>",
      "<|reserved_special_token_199|>", "<|reserved_special_token_200|>",
      "<|reserved_special_token_246|>", "<|reserved_special_token_247|>",
      "<|reserved_special_token_00|>",  "<|reserved_special_token_09|>",
      "<|reserved_special_token_010|>", "<|reserved_special_token_251|>",
      "<|reserved_special_token_666|>", "<|reserved_special_token_248|>",
      "<|reserved_special_token_249|>", "<|reserved_special_token_250|>",
  };
  const std::string text = absl::StrJoin(texts, "");
  EXPECT_THAT(
      tokenizer_->EncodeWithSpecialTokens(text),
      ElementsAreArray<uint32_t>(
          {128002, 128017, 128018, 128027, 128061, 128107, 128108, 128186, 128207, 128208, 128254,
           128255, 27,     91,     52202,  42729,  6594,   62,     410,    91,     1822,   91,
           52202,  42729,  6594,   62,     2545,   91,     1822,   91,     52202,  42729,  6594,
           62,     7755,   91,     1822,   91,     52202,  42729,  6594,   62,     13860,  91,
           1822,   91,     52202,  42729,  6594,   62,     10943,  91,     1822,   91,     52202,
           42729,  6594,   62,     14185,  91,     1822,   91,     52202,  42729,  6594,   62,
           14735,  91,     1822,   91,     52202,  42729,  6594,   62,     5154,   91,     29}));
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->EncodeWithSpecialTokens(text)), text);
}

TEST_F(Llama3Test, DecodesSpecialTokensToTheirText) {
  EXPECT_EQ(tokenizer_->Decode({128000, 2028, 374, 264, 1296, 11914, 13, 128001}),
            "<|begin_of_text|>This is a test sentence.<|end_of_text|>");
  EXPECT_EQ(tokenizer_->Decode({128004, 128010}), "<|finetune_right_pad_id|><|python_tag|>");
}

TEST_F(Llama3Test, CommitsEveryPieceButTheLastAsTheStreamGoes) {
  // The package's position / text-length tie-break only orders equal merges left to right, so a
  // piece's ids do not depend on the text after it.
  size_t final_bytes = 0;
  EXPECT_EQ(tokenizer_->CountFinal("Hello world, how are you?", false, &final_bytes),
            tokenizer_->Count("Hello world, how are"));
  EXPECT_EQ(final_bytes, std::string("Hello world, how are").size());
}

// A vocabulary file in the package's format: the 256 bytes in GPT-2's byte-to-unicode form, then
// `extra` tokens, and `merges` packed at 17 bits an id.
std::string ByteLevelForm(int byte) {
  static const std::vector<std::string>* const forms = [] {
    auto* f = new std::vector<std::string>(256);
    int next = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      int c = printable ? b : next++;
      (*f)[b] = c < 0x80 ? std::string(1, static_cast<char>(c))
                         : std::string{static_cast<char>(0xC0 | (c >> 6)),
                                       static_cast<char>(0x80 | (c & 0x3F))};
    }
    return f;
  }();
  return (*forms)[byte];
}

std::string PackMerges(const std::vector<uint32_t>& ids) {
  std::string bits;
  for (uint32_t id : ids) {
    for (int bit = 16; bit >= 0; --bit) bits += ((id >> bit) & 1) ? '1' : '0';
  }
  bits.resize((bits.size() + 7) / 8 * 8, '0');
  std::string bytes;
  for (size_t i = 0; i < bits.size(); i += 8) {
    bytes += static_cast<char>(std::stoi(bits.substr(i, 8), nullptr, 2));
  }
  return bytes;
}

std::string FileJson(const std::string& vocab_base64, const std::string& merges_base64) {
  return absl::StrCat(R"({"vocab_base64": ")", vocab_base64, R"(", "merges_binary": ")",
                      merges_base64, R"("})");
}

std::string VocabularyBase64(const std::vector<std::string>& extra) {
  std::vector<std::string> tokens;
  tokens.reserve(256 + extra.size());
  for (int b = 0; b < 256; ++b) tokens.push_back(ByteLevelForm(b));
  tokens.insert(tokens.end(), extra.begin(), extra.end());
  return absl::Base64Escape(absl::StrJoin(tokens, "\n"));
}

std::string VocabularyJson(const std::vector<std::string>& extra,
                           const std::vector<uint32_t>& merges) {
  return FileJson(VocabularyBase64(extra), absl::Base64Escape(PackMerges(merges)));
}

absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadJson(const std::string& name,
                                                          const std::string& json) {
  // Named per process: ctest runs this binary's tests in parallel processes.
  std::string path = ::testing::TempDir() + "/" + std::to_string(getpid()) + "_" + name + ".json";
  std::ofstream(path, std::ios::binary) << json;
  return LoadLlama3(path);
}

TEST(LoadLlama3, MergesByTheListOfAFileItLoads) {
  // Ids 256 "ab" and 257 "abab"; merges "a b" then "ab ab".
  absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded =
      LoadJson("tiny", VocabularyJson({"ab", "abab"}, {'a', 'b', 256, 256}));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Tokenizer& tokenizer = **loaded;
  EXPECT_THAT(tokenizer.Encode("ababab"), ElementsAre(257, 256));
  EXPECT_THAT(tokenizer.Encode("abc"), ElementsAre(256, 'c'));
  EXPECT_THAT(tokenizer.EncodeWithSpecialTokens("ab<|eot_id|>"), ElementsAre(256, 258 + 9));
  EXPECT_EQ(tokenizer.vocabulary_size(), 258u + 256u);
}

TEST(LoadLlama3, ReportsAMissingFileAsNotFound) {
  absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded = LoadLlama3("/nonexistent/llama3.json");
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(loaded.status().message(), HasSubstr("scripts/fetch_vocab"));
}

TEST(LoadLlama3, RejectsMalformedFilesSayingWhatIsWrong) {
  const struct {
    const char* name;
    std::string json;
    const char* message;
  } cases[] = {
      {"not_json", "{\"vocab_base64\": ", "not a JSON object"},
      {"missing_merges", R"({"vocab_base64": "YQ=="})", "expected string vocab_base64"},
      {"numeric_vocab", R"({"vocab_base64": 1, "merges_binary": ""})",
       "expected string vocab_base64"},
      {"bad_vocab_base64", FileJson("!!!", ""), "vocab_base64 is not valid base64"},
      {"bad_merges_base64", FileJson(VocabularyBase64({}), "%%%"),
       "merges_binary is not valid base64"},
      {"odd_merge_ids", VocabularyJson({"ab"}, {'a', 'b', 'a'}), "odd number (3) of 17-bit"},
      {"merge_past_vocabulary", VocabularyJson({"ab"}, {'a', 300}), "names token 300"},
      {"merge_makes_no_token", VocabularyJson({"ab"}, {'b', 'a'}), "makes no token"},
      {"token_not_byte_level", VocabularyJson({"a b"}, {}), "token 256 is not in GPT-2's"},
      {"duplicate_token", VocabularyJson({"a"}, {}), "token 256 is a duplicate"},
      {"empty_token", VocabularyJson({""}, {}), "token 256 is empty"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded = LoadJson(c.name, c.json);
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(loaded.status().message(), HasSubstr(c.message)) << c.name;
    EXPECT_THAT(loaded.status().message(), HasSubstr(c.name)) << "names the file";
  }
}

}  // namespace
}  // namespace tollgate
