// The SentencePiece tokenizers (accounting/tokenizer/sentencepiece.cc): known ids of the npm
// packages, the loader's errors, merging by priority, decoding, sharing between threads, and
// living in one process with the system's libprotobuf.
#include <dlfcn.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "accounting/tokenizer/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/accounting/tokenizer/corpus.h"
#include "tests/accounting/tokenizer/test_vocab.h"

namespace tollgate {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// --- The real vocabularies -------------------------------------------------------------------

std::string VocabularyDir() {
  const char* env = std::getenv("TOLLGATE_VOCAB_DIR");
  return env != nullptr && *env != '\0' ? env : testing::SourceDir() + "/.cache/tokenizer";
}

class SentencePieceTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { TG_LOAD_TOKENIZER_OR_SKIP(tokenizer_, GetParam()); }
  bool llama2() const { return std::string(GetParam()) == "llama2"; }

  std::shared_ptr<const Tokenizer> tokenizer_;
};

INSTANTIATE_TEST_SUITE_P(Vocabularies, SentencePieceTest, ::testing::Values("llama2", "mistral"));

// The ids are those of llama-tokenizer-js 1.2.2 and mistral-tokenizer-js 1.0.0,
// encode(text, false, true).
TEST_P(SentencePieceTest, EncodesToTheIdsOfTheNpmPackage) {
  if (llama2()) {
    EXPECT_THAT(tokenizer_->Encode("Hello world"), ElementsAre(15043, 3186));
    EXPECT_THAT(tokenizer_->Encode(" leading space"), ElementsAre(29871, 8236, 2913));
    EXPECT_THAT(tokenizer_->Encode("a  b"), ElementsAre(263, 29871, 289));
    // 😀 is no piece: its four UTF-8 bytes are byte pieces <0xF0> <0x9F> <0x98> <0x80>.
    EXPECT_THAT(tokenizer_->Encode("日本語 😀"),
                ElementsAre(29871, 30325, 30346, 30968, 29871, 243, 162, 155, 131));
  } else {
    EXPECT_THAT(tokenizer_->Encode("Hello world"), ElementsAre(22557, 1526));
    EXPECT_THAT(tokenizer_->Encode(" leading space"), ElementsAre(28705, 5374, 2764));
    EXPECT_THAT(tokenizer_->Encode("a  b"), ElementsAre(264, 28705, 287));
    EXPECT_THAT(tokenizer_->Encode("日本語 😀"),
                ElementsAre(28705, 29142, 29119, 30321, 28705, 30575));
  }
  EXPECT_EQ(tokenizer_->vocabulary_size(), 32000u);
}

TEST_P(SentencePieceTest, EncodesNothingAsNoTokensWithoutADummyPrefix) {
  EXPECT_THAT(tokenizer_->Encode(""), IsEmpty());
  EXPECT_EQ(tokenizer_->Count(""), 0u);
  EXPECT_EQ(tokenizer_->Decode({}), "");
}

TEST_P(SentencePieceTest, TreatsSpecialTokenTextAsOrdinaryTextEvenWhenAskedToParseIt) {
  const std::string text = "<s>[INST] hi [/INST]</s>";
  std::vector<uint32_t> ids = tokenizer_->Encode(text);
  EXPECT_EQ(tokenizer_->EncodeWithSpecialTokens(text), ids);
  EXPECT_THAT(std::set<uint32_t>(ids.begin(), ids.end()), Not(::testing::Contains(1u)));
  EXPECT_EQ(tokenizer_->Decode(ids), text);
}

TEST_P(SentencePieceTest, DecodesAsSentencePieceDoes) {
  const uint32_t bos = 1, eos = 2, space = llama2() ? 29871 : 28705;
  std::vector<uint32_t> hello = tokenizer_->Encode("Hello");
  // The dummy prefix is removed once, from the first piece that shows any text.
  std::vector<uint32_t> ids = {bos};
  ids.insert(ids.end(), hello.begin(), hello.end());
  ids.push_back(eos);
  EXPECT_EQ(tokenizer_->Decode(ids), "Hello");
  EXPECT_EQ(tokenizer_->Decode({space, space}), " ");
  // Byte pieces are their bytes, whether or not they form UTF-8; <unk> is " ⁇ ".
  EXPECT_EQ(tokenizer_->Decode({3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80}), "😀");
  EXPECT_EQ(tokenizer_->Decode({3 + 0xF0}), "\xF0");
  EXPECT_EQ(tokenizer_->Decode({0}), " \xE2\x81\x87 ");
  EXPECT_EQ(tokenizer_->Decode({32000, 1u << 31}), "");  // not in the vocabulary: skipped
}

TEST_P(SentencePieceTest, DecodesWhatItEncodes) {
  const std::string_view texts[] = {" ",
                                    "  two leading spaces",
                                    "trailing  ",
                                    "\n\ttabs\r\n",
                                    "Ünïcödé 日本語 👨‍👩‍👧",
                                    "<0x41> <unk>",
                                    std::string_view("nul\0byte", 8)};
  for (std::string_view text : texts) {
    EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(text)), text) << testing::JsonString(text);
    EXPECT_EQ(tokenizer_->Count(text), tokenizer_->Encode(text).size());
  }
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode("\xff ill-formed \xc3(")),
            "\xEF\xBF\xBD ill-formed \xEF\xBF\xBD(");
}

// SentencePiece writes a space as "▁" (U+2581) before merging, so the character itself is a space
// to it, in the npm packages as in libsentencepiece: the one well-formed text that does not decode
// back to itself.
TEST_P(SentencePieceTest, TakesTheSpaceSymbolForASpace) {
  const std::string space_symbol = "\xE2\x96\x81";
  EXPECT_EQ(tokenizer_->Encode("a" + space_symbol + "b"), tokenizer_->Encode("a b"));
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(space_symbol + " is")), "  is");
}

TEST_P(SentencePieceTest, GivesEveryThreadTheSameIds) {
  std::vector<std::string> docs = testing::GenerateCorpus(100 * 1000, 99);
  std::vector<std::vector<uint32_t>> expected;
  for (const std::string& doc : docs) expected.push_back(tokenizer_->Encode(doc));
  std::vector<int> mismatches(6, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 2; ++round) {
        for (size_t i = (t * 7) % docs.size(), n = 0; n < docs.size();
             ++n, i = (i + 1) % docs.size()) {
          mismatches[t] += tokenizer_->Encode(docs[i]) != expected[i];
          mismatches[t] += tokenizer_->Count(docs[i]) != expected[i].size();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(mismatches, ::testing::Each(0));
}

// libsentencepiece merges by one score per piece, the npm packages by the rank of each merge. The
// scores (minus the first rank that makes the piece) give the same merges when every way to split
// an ordinary piece into two ordinary pieces is itself a merge, and every character of a piece is
// a piece: then libsentencepiece can make no piece the package cannot, nor merge through a
// character the package has turned into bytes.
TEST_P(SentencePieceTest, VocabularyHasTheMergesThatMakeScoresEqualRanks) {
  std::ifstream in(VocabularyDir() + "/" + GetParam() + ".json");
  std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  ASSERT_TRUE(doc.IsObject());
  std::string pieces_text, merge_bytes;
  ASSERT_TRUE(absl::Base64Unescape(doc["vocab_base64"].GetString(), &pieces_text));
  ASSERT_TRUE(absl::Base64Unescape(doc["merges_binary"].GetString(), &merge_bytes));
  std::vector<std::string> pieces = absl::StrSplit(pieces_text, '\n');
  auto ordinary = [](absl::string_view p) {
    return p != "<unk>" && p != "<s>" && p != "</s>" &&
           !(p.size() == 6 && absl::StartsWith(p, "<0x") && p.back() == '>');
  };
  std::set<std::pair<std::string, std::string>> merges;
  for (size_t at = 0; at + 4 <= merge_bytes.size(); at += 4) {
    auto id = [&](size_t i) {
      return static_cast<uint8_t>(merge_bytes[i]) | static_cast<uint8_t>(merge_bytes[i + 1]) << 8;
    };
    merges.emplace(pieces[id(at)], pieces[id(at + 2)]);
  }
  std::set<std::string> ordinary_pieces;
  for (const std::string& p : pieces) {
    if (ordinary(p)) ordinary_pieces.insert(p);
  }
  size_t missing_merges = 0, missing_characters = 0;
  for (const std::string& piece : ordinary_pieces) {
    for (size_t cut = 1; cut < piece.size(); ++cut) {
      std::string left = piece.substr(0, cut), right = piece.substr(cut);
      if (ordinary_pieces.count(left) && ordinary_pieces.count(right) &&
          !merges.count({left, right})) {
        ++missing_merges;
      }
    }
    for (size_t at = 0; at < piece.size();) {
      size_t length = 1;
      while (at + length < piece.size() && (piece[at + length] & 0xC0) == 0x80) ++length;
      missing_characters += !ordinary_pieces.count(piece.substr(at, length));
      at += length;
    }
  }
  EXPECT_EQ(missing_merges, 0u);
  EXPECT_EQ(missing_characters, 0u);
}

// Debian's libsentencepiece carries its own protobuf 3.14 under the symbols of the system's
// libprotobuf 3.21; linked into a process that also has libprotobuf (as the gRPC proxy does), the
// process aborts or crashes at start-up. The tokenizer opens it privately instead. Runs in a fresh
// process, libprotobuf loaded first, as in the proxy.
TEST(SentencePieceLibrary, WorksInAProcessThatHasTheSystemLibprotobuf) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process, which has loaded nothing
  std::string why;
  if (!std::ifstream(VocabularyDir() + "/llama2.json")) {
    why = "no llama2 vocabulary in " + VocabularyDir() + " (run scripts/fetch_vocab)";
    if (testing::InCi()) FAIL() << why;
    GTEST_SKIP() << why;
  }
  EXPECT_EXIT(
      {
        if (dlopen("libprotobuf.so", RTLD_NOW | RTLD_GLOBAL) == nullptr) {
          std::fprintf(stderr, "no libprotobuf: %s\n", dlerror());
          std::exit(2);
        }
        std::shared_ptr<const Tokenizer> tokenizer = testing::TestTokenizer("llama2", &why);
        std::exit(tokenizer != nullptr &&
                          tokenizer->Encode("Hello world") == std::vector<uint32_t>{15043, 3186}
                      ? 0
                      : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// --- Small vocabularies written by the test --------------------------------------------------

// The 3 special and 256 byte pieces, then `pieces`.
std::vector<std::string> WithSpecialAndBytePieces(const std::vector<std::string>& pieces) {
  std::vector<std::string> all = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) all.push_back(absl::StrFormat("<0x%02X>", b));
  all.insert(all.end(), pieces.begin(), pieces.end());
  return all;
}

// A vocabulary file in the format of scripts/fetch_vocab.
std::string RawVocabularyFile(const std::vector<std::string>& pieces,
                              const std::string& merge_bytes) {
  return absl::StrCat(R"({"package": "test", "vocab_base64": ")",
                      absl::Base64Escape(absl::StrJoin(pieces, "\n")), R"(", "merges_binary": ")",
                      absl::Base64Escape(merge_bytes), R"("})");
}

// The special and byte pieces, `pieces`, and `merges` named by the pieces' text.
std::string VocabularyFile(const std::vector<std::string>& pieces,
                           const std::vector<std::pair<std::string, std::string>>& merges) {
  std::vector<std::string> all = WithSpecialAndBytePieces(pieces);
  absl::flat_hash_map<std::string, int> ids;
  for (size_t i = 0; i < all.size(); ++i) ids[all[i]] = static_cast<int>(i);
  std::string merge_bytes;
  for (const auto& [left, right] : merges) {
    for (int id : {ids.at(left), ids.at(right)}) {
      merge_bytes.push_back(static_cast<char>(id & 0xFF));
      merge_bytes.push_back(static_cast<char>(id >> 8));
    }
  }
  return RawVocabularyFile(all, merge_bytes);
}

class SentencePieceFileTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::shared_ptr<const Tokenizer>> Load(const std::string& json) {
    std::ofstream(path_, std::ios::binary) << json;
    return LoadSentencePiece("llama2", path_);
  }
  void ExpectInvalid(const std::string& json, const std::string& message) {
    absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded = Load(json);
    ASSERT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << loaded.status();
    EXPECT_THAT(loaded.status().message(), HasSubstr(path_));
    EXPECT_THAT(loaded.status().message(), HasSubstr(message));
  }

  // One file per test process: ctest runs this binary's tests in parallel processes.
  const std::string path_ =
      absl::StrCat(::testing::TempDir(), "/sentencepiece_test_vocab_", getpid(), ".json");
  const uint32_t first_ = 259;  // id of the first piece after the special and byte ones
};

TEST_F(SentencePieceFileTest, MergesByPriorityThenLeftmost) {
  const std::string s = "\xE2\x96\x81";  // ▁
  // Pieces: ▁ a b ▁a ab ▁ab aa; "a b" outranks "▁ a", so "▁ab" comes from "▁ ab".
  auto loaded = Load(VocabularyFile({s, "a", "b", s + "a", "ab", s + "ab", "aa"},
                                    {{"a", "b"}, {s, "ab"}, {s, "a"}, {"a", "a"}}));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Tokenizer& tok = **loaded;
  const uint32_t space = first_, a = first_ + 1, b = first_ + 2, space_a = first_ + 3,
                 space_ab = first_ + 5, aa = first_ + 6;
  EXPECT_THAT(tok.Encode("ab"), ElementsAre(space_ab));
  EXPECT_THAT(tok.Encode("a"), ElementsAre(space_a));
  EXPECT_THAT(tok.Encode("aaa"), ElementsAre(space_a, aa));  // "▁ a" before "a a"
  EXPECT_THAT(tok.Encode("ba a"), ElementsAre(space, b, a, space_a));
  // c is no piece: its byte piece. ▁ stays alone, no merge joining it to a byte.
  EXPECT_THAT(tok.Encode("c"), ElementsAre(space, 3 + 'c'));
  EXPECT_EQ(tok.Decode(tok.Encode("ba ac")), "ba ac");
}

TEST_F(SentencePieceFileTest, AMissingFileIsNotFound) {
  absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded =
      LoadSentencePiece("mistral", "/nonexistent/mistral.json");
  ASSERT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(loaded.status().message(), HasSubstr("/nonexistent/mistral.json"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("scripts/fetch_vocab"));
}

TEST_F(SentencePieceFileTest, AnUnknownNameIsInvalid) {
  EXPECT_EQ(LoadSentencePiece("gemma", path_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SentencePieceFileTest, AMalformedFileIsInvalidAndNamed) {
  const std::string valid = VocabularyFile({"a", "b", "ab"}, {{"a", "b"}});
  ASSERT_TRUE(Load(valid).ok());
  ExpectInvalid("[1, 2]", "not a JSON object");
  ExpectInvalid("{\"vocab_base64\": 1", "not JSON: ");
  ExpectInvalid(R"({"merges_binary": ""})", "no string vocab_base64");
  ExpectInvalid(R"({"vocab_base64": "", "merges_binary": 7})", "no string merges_binary");
  ExpectInvalid(R"({"vocab_base64": "not base64!", "merges_binary": ""})",
                "vocab_base64 is not base64");
  ExpectInvalid(R"({"vocab_base64": "YQ==", "merges_binary": "%%%"})",
                "merges_binary is not base64");
}

TEST_F(SentencePieceFileTest, MalformedMergesAreInvalid) {
  const std::vector<std::string> pieces = WithSpecialAndBytePieces({"a", "b", "ab"});  // 259..261
  auto with_merges = [&](const std::string& bytes) { return RawVocabularyFile(pieces, bytes); };
  ExpectInvalid(with_merges(std::string("\x03\x01\x04\x01\x05", 5)),
                "merges_binary holds 5 bytes, not pairs of 16-bit ids");
  ExpectInvalid(with_merges(std::string("\x03\x01\xFF\x7F", 4)),
                "merge 0 names id 32767, past the 262 pieces of the vocabulary");
  // "b" + "a" is no piece.
  ExpectInvalid(with_merges(std::string("\x04\x01\x03\x01", 4)),
                "merge 0 makes \"ba\", which is not an ordinary piece");
}

TEST_F(SentencePieceFileTest, VocabularyThatLibsentencepieceRejectsIsInvalid) {
  ExpectInvalid(VocabularyFile({"a", "b", "a"}, {}), "piece 261 \"a\" is a duplicate");
  // No <0x41>: byte fallback needs all 256 byte pieces.
  std::vector<std::string> pieces = WithSpecialAndBytePieces({"a"});
  pieces.erase(pieces.begin() + 3 + 0x41);
  ExpectInvalid(RawVocabularyFile(pieces, ""), "libsentencepiece");
}

}  // namespace
}  // namespace tollgate
