#include "cache/replay.h"

#include "gtest/gtest.h"

namespace tollgate {
namespace {

CachedResponse Streamed() {
  CachedResponse cached;
  cached.chunks = {"The ", "answer", " is 4."};
  cached.finish_reason = v1::FINISH_REASON_STOP;
  cached.usage.set_input_tokens(12);
  cached.usage.set_output_tokens(5);
  cached.cost.set_total_nano_usd(1'234);
  return cached;
}

TEST(ReplayStream, KeepsTheOriginalChunkBoundariesThenFinishes) {
  std::vector<v1::GenerateResponse> messages = ReplayStream(Streamed());
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0].text(), "The ");
  EXPECT_EQ(messages[1].text(), "answer");
  EXPECT_EQ(messages[2].text(), " is 4.");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(messages[i].finish_reason(), v1::FINISH_REASON_UNSPECIFIED) << i;
    EXPECT_FALSE(messages[i].has_usage()) << i;
    EXPECT_EQ(messages[i].cache_status(), v1::CACHE_STATUS_HIT) << i;
  }
  const v1::GenerateResponse& last = messages[3];
  EXPECT_EQ(last.text(), "");
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(last.usage().input_tokens(), 12u);
  EXPECT_EQ(last.usage().output_tokens(), 5u);
  EXPECT_EQ(last.cache_status(), v1::CACHE_STATUS_HIT);
  EXPECT_FALSE(last.has_cost()) << "a hit is charged nothing";
}

TEST(ReplayUnary, JoinsAStreamedAnswer) {
  v1::GenerateResponse response = ReplayUnary(Streamed());
  EXPECT_EQ(response.text(), "The answer is 4.");
  EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(response.usage().output_tokens(), 5u);
  EXPECT_EQ(response.cache_status(), v1::CACHE_STATUS_HIT);
  EXPECT_FALSE(response.has_cost());
}

TEST(ReplayStream, ServesAUnaryAnswerAsOneDelta) {
  CachedResponse unary;
  unary.chunks = {"The answer is 4."};
  unary.finish_reason = v1::FINISH_REASON_LENGTH;
  unary.usage.set_output_tokens(5);
  std::vector<v1::GenerateResponse> messages = ReplayStream(unary);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].text(), "The answer is 4.");
  EXPECT_EQ(messages[1].finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(messages[1].usage().output_tokens(), 5u);
  EXPECT_EQ(ReplayUnary(unary).text(), "The answer is 4.");
}

TEST(ReplayStream, EmptyAnswerIsJustTheFinalMessage) {
  CachedResponse empty;
  empty.finish_reason = v1::FINISH_REASON_STOP;
  std::vector<v1::GenerateResponse> messages = ReplayStream(empty);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(ReplayUnary(empty).text(), "");
}

}  // namespace
}  // namespace tollgate
