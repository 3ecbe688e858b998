// A stream's output counted chunk by chunk gives exactly the count of the whole text, wherever the
// chunk boundaries fall, and what it commits on the way never exceeds that count.
#include "accounting/tokenizer/stream_counter.h"

#include <random>
#include <string>

#include "gtest/gtest.h"
#include "tests/accounting/tokenizer/corpus.h"
#include "tests/accounting/tokenizer/test_vocab.h"

namespace tollgate {
namespace {

class StreamCounterTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { TG_LOAD_TOKENIZER_OR_SKIP(tokenizer_, GetParam()); }
  std::shared_ptr<const Tokenizer> tokenizer_;
};

INSTANTIATE_TEST_SUITE_P(Tokenizers, StreamCounterTest,
                         ::testing::Values("cl100k_base", "o200k_base", "llama3", "llama2",
                                           "mistral"));

TEST_P(StreamCounterTest, CountsChunkedTextExactlyAsTheWholeText) {
  std::mt19937 rng(11);
  size_t committed_during_streams = 0, total_tokens = 0;
  for (const std::string& doc : testing::GenerateCorpus(200 * 1000, 99, /*long_words=*/false)) {
    StreamCounter counter(tokenizer_.get());
    const size_t expected = tokenizer_->Count(doc);
    size_t pos = 0, committed = 0;
    while (pos < doc.size()) {
      // Chunks of 1 to 12 bytes, cut anywhere, even inside a character.
      size_t length = 1 + rng() % 12;
      committed += counter.Append(std::string_view(doc).substr(pos, length));
      pos += length;
      ASSERT_EQ(committed, counter.committed());
      ASSERT_LE(committed, expected) << testing::JsonString(doc);
    }
    committed_during_streams += committed;
    total_tokens += expected;
    ASSERT_EQ(counter.Total(), expected) << testing::JsonString(doc);
  }
  std::printf("[ stream   ] %s: %zu of %zu tokens committed before the streams ended\n", GetParam(),
              committed_during_streams, total_tokens);
}

TEST_P(StreamCounterTest, CountsExactlyWhereverASingleCutFalls) {
  size_t documents = 0;
  for (const std::string& doc : testing::GenerateCorpus(300 * 1000, 5, /*long_words=*/false)) {
    if (doc.size() > 400) continue;
    ++documents;
    const size_t expected = tokenizer_->Count(doc);
    for (size_t cut = 1; cut < doc.size(); ++cut) {
      StreamCounter counter(tokenizer_.get());
      counter.Append(std::string_view(doc).substr(0, cut));
      counter.Append(std::string_view(doc).substr(cut));
      ASSERT_EQ(counter.Total(), expected) << "cut at " << cut << ": " << testing::JsonString(doc);
    }
  }
  EXPECT_GT(documents, 50u);
}

TEST_P(StreamCounterTest, MovesDuringTheStream) {
  StreamCounter counter(tokenizer_.get());
  size_t committed = counter.Append("Hello");
  EXPECT_EQ(committed, 0u);  // the last word may still grow
  committed += counter.Append(" world, how");
  committed += counter.Append(" are you today?");
  EXPECT_GT(committed, 0u);
  EXPECT_EQ(counter.Total(), tokenizer_->Count("Hello world, how are you today?"));
}

TEST_P(StreamCounterTest, CountsNothingForNoText) {
  StreamCounter counter(tokenizer_.get());
  EXPECT_EQ(counter.Append(""), 0u);
  EXPECT_EQ(counter.Total(), 0u);
}

}  // namespace
}  // namespace tollgate
