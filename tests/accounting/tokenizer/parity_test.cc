// Token ids equal those of the reference tokenizer (the npm package each vocabulary comes from, run
// with node by reference.mjs) on a generated corpus of over 1 MB, for every tokenizer; and the
// properties decode(encode(x)) == x for well-formed x and Count(x) == |Encode(x)| hold on it. Needs
// node and `scripts/fetch_vocab`; skips when they are missing locally, fails in CI.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "accounting/tokenizer/tokenizer.h"
#include "accounting/tokenizer/utf8.h"
#include "gtest/gtest.h"
#include "tests/accounting/tokenizer/corpus.h"
#include "tests/accounting/tokenizer/test_vocab.h"

namespace tollgate {
namespace {

constexpr size_t kCorpusBytes = 1200 * 1000;

// Runs reference.mjs; the ids per document, or an empty vector with *why set.
std::vector<std::vector<uint32_t>> ReferenceIds(const std::string& encoding,
                                                const std::string& mode,
                                                const std::vector<std::string>& docs,
                                                std::string* why) {
  std::string dir = testing::SourceDir() + "/tests/accounting/tokenizer";
  for (const char* package :
       {"tiktoken", "llama3-tokenizer-js", "llama-tokenizer-js", "mistral-tokenizer-js"}) {
    std::ifstream installed(absl::StrCat(dir, "/node_modules/", package, "/package.json"));
    if (!installed) {
      *why =
          absl::StrCat("the npm package ", package, " is not installed (run scripts/fetch_vocab)");
      return {};
    }
  }
  if (std::system("node --version >/dev/null 2>&1") != 0) {
    *why = "node is not installed";
    return {};
  }
  std::string input = ::testing::TempDir() + "/tokenizer_parity_" + encoding + "_" + mode + ".in";
  std::string output = input + ".out";
  {
    std::ofstream in(input, std::ios::binary);
    for (const std::string& doc : docs) in << testing::JsonString(doc) << "\n";
  }
  std::string command = absl::StrCat("node '", dir, "/reference.mjs' ", encoding, " ", mode, " '",
                                     input, "' '", output, "'");
  if (int rc = std::system(command.c_str()); rc != 0) {
    *why = absl::StrCat("`", command, "` exited with ", rc);
    return {};
  }
  std::ifstream out(output, std::ios::binary);
  std::vector<std::vector<uint32_t>> ids;
  std::string line;
  while (std::getline(out, line)) {
    std::vector<uint32_t>& doc_ids = ids.emplace_back();
    for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      uint32_t id = 0;
      if (!absl::SimpleAtoi(field, &id)) {
        *why = "unparsable reference output";
        return {};
      }
      doc_ids.push_back(id);
    }
  }
  if (ids.size() != docs.size()) {
    *why = absl::StrCat("reference gave ", ids.size(), " lines for ", docs.size(), " documents");
    return {};
  }
  return ids;
}

class ParityTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { TG_LOAD_TOKENIZER_OR_SKIP(tokenizer_, GetParam()); }

  // Compares every document; reports the mismatched ones (a few in full) and a summary.
  void ExpectParity(const std::string& mode, const std::vector<std::string>& docs) {
    std::string why;
    std::vector<std::vector<uint32_t>> expected = ReferenceIds(GetParam(), mode, docs, &why);
    if (expected.empty()) {
      if (testing::InCi()) FAIL() << why;
      GTEST_SKIP() << why;
    }
    size_t bytes = 0, tokens = 0, mismatched_docs = 0, mismatched_bytes = 0;
    for (size_t i = 0; i < docs.size(); ++i) {
      std::vector<uint32_t> actual = mode == "ordinary"
                                         ? tokenizer_->Encode(docs[i])
                                         : tokenizer_->EncodeWithSpecialTokens(docs[i]);
      bytes += docs[i].size();
      tokens += expected[i].size();
      if (actual == expected[i]) continue;
      ++mismatched_docs;
      mismatched_bytes += docs[i].size();
      if (mismatched_docs <= 3) {
        size_t at = 0;
        while (at < actual.size() && at < expected[i].size() && actual[at] == expected[i][at]) ++at;
        ADD_FAILURE() << GetParam() << " " << mode << " document " << i << " differs at token "
                      << at << ": tollgate decodes there to "
                      << testing::JsonString(tokenizer_->Decode(std::vector<uint32_t>(
                             actual.begin() + at,
                             actual.begin() + std::min(actual.size(), at + 4))))
                      << ", the reference to "
                      << testing::JsonString(tokenizer_->Decode(std::vector<uint32_t>(
                             expected[i].begin() + at,
                             expected[i].begin() + std::min(expected[i].size(), at + 4))))
                      << "\ndocument: " << testing::JsonString(docs[i].substr(0, 2000));
      }
    }
    std::printf(
        "[ parity   ] %s %s: %zu documents, %zu bytes, %zu tokens; %zu documents (%zu "
        "bytes) differ\n",
        GetParam(), mode.c_str(), docs.size(), bytes, tokens, mismatched_docs, mismatched_bytes);
    EXPECT_EQ(mismatched_docs, 0u);
  }

  std::shared_ptr<const Tokenizer> tokenizer_;
};

INSTANTIATE_TEST_SUITE_P(Tokenizers, ParityTest,
                         ::testing::Values("cl100k_base", "o200k_base", "llama3", "llama2",
                                           "mistral"));

TEST_P(ParityTest, EncodesTheCorpusToTheReferenceIds) {
  ExpectParity("ordinary", testing::GenerateCorpus(kCorpusBytes, 20261121));
}

TEST_P(ParityTest, EncodesSpecialTokensToTheReferenceIds) {
  std::vector<std::string> docs = testing::SpecialTokenDocuments();
  for (std::string& doc : testing::GenerateCorpus(20000, 7)) docs.push_back(std::move(doc));
  ExpectParity("special", docs);
}

TEST_P(ParityTest, DecodesEveryCorpusDocumentBackToItself) {
  size_t ill_formed = 0;
  for (const std::string& doc : testing::GenerateCorpus(kCorpusBytes, 20261121)) {
    std::string storage;
    std::string_view replaced = ReplaceInvalidUtf8(doc, &storage);
    ill_formed += replaced.data() != doc.data();
    ASSERT_EQ(tokenizer_->Decode(tokenizer_->Encode(doc)), replaced);
  }
  EXPECT_GT(ill_formed, 100u) << "the corpus should hold ill-formed UTF-8";
}

TEST_P(ParityTest, CountsAsManyTokensAsItEncodesOnTheCorpus) {
  for (const std::string& doc : testing::GenerateCorpus(kCorpusBytes, 20261121)) {
    ASSERT_EQ(tokenizer_->Count(doc), tokenizer_->Encode(doc).size());
  }
}

TEST_P(ParityTest, DecodesRandomBytesToThemWithIllFormedPartsReplaced) {
  std::mt19937 rng(4);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::string storage;
    ASSERT_EQ(tokenizer_->Decode(tokenizer_->Encode(bytes)), ReplaceInvalidUtf8(bytes, &storage));
    ASSERT_EQ(tokenizer_->Count(bytes), tokenizer_->Encode(bytes).size());
  }
}

}  // namespace
}  // namespace tollgate
