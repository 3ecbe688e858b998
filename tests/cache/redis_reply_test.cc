#include "cache/redis_reply.h"

#include <hiredis/hiredis.h>

#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cache/redis_test_util.h"

namespace tollgate {
namespace {

using ::testing::ElementsAre;

// Every reply `wire` holds, parsed in one go; an error if it breaks the protocol or stops short.
absl::StatusOr<std::vector<RedisReply>> ParseAll(std::string_view wire) {
  RedisReplyParser parser;
  parser.Feed(wire);
  std::vector<RedisReply> replies;
  while (true) {
    absl::StatusOr<std::optional<RedisReply>> next = parser.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) break;
    replies.push_back(**std::move(next));
  }
  return replies;
}

// One of each type, nested.
using std::string_view_literals::operator""sv;

constexpr std::string_view kEveryType =
    "+OK\r\n"
    "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    ":-42\r\n"
    "$5\r\nhe\0lo\r\n"
    "$-1\r\n"
    "*3\r\n:1\r\n*2\r\n$1\r\na\r\n*-1\r\n$0\r\n\r\n"sv;

std::vector<RedisReply> EveryTypeExpected() {
  return {RedisReply::Status("OK"),
          RedisReply::Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
          RedisReply::Integer(-42),
          RedisReply::String(std::string("he\0lo", 5)),
          RedisReply::Nil(),
          RedisReply::Array({RedisReply::Integer(1),
                             RedisReply::Array({RedisReply::String("a"), RedisReply::Nil()}),
                             RedisReply::String("")})};
}

TEST(RedisReply, ParsesEveryTypeIncludingNestedArraysAndBinaryStrings) {
  absl::StatusOr<std::vector<RedisReply>> replies = ParseAll(kEveryType);
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ(*replies, EveryTypeExpected());
}

TEST(RedisReply, AnErrorReplyIsAReplyWithItsCode) {
  absl::StatusOr<std::vector<RedisReply>> replies =
      ParseAll("-NOSCRIPT No matching script. Please use EVAL.\r\n");
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 1u);
  const RedisReply& reply = replies->front();
  EXPECT_TRUE(reply.is_error());
  EXPECT_TRUE(reply.HasErrorCode("NOSCRIPT"));
  EXPECT_FALSE(reply.HasErrorCode("NOSCRIPTS"));
  EXPECT_FALSE(reply.HasErrorCode("NO"));
  EXPECT_FALSE(RedisReply::String("NOSCRIPT x").HasErrorCode("NOSCRIPT"));
}

TEST(RedisReply, BytesArrivingOneAtATimeMakeTheSameReplies) {
  RedisReplyParser parser;
  std::vector<RedisReply> replies;
  for (char c : kEveryType) {
    parser.Feed(std::string_view(&c, 1));
    absl::StatusOr<std::optional<RedisReply>> next = parser.Next();
    ASSERT_TRUE(next.ok()) << next.status();
    if (next->has_value()) replies.push_back(**std::move(next));
  }
  EXPECT_EQ(replies, EveryTypeExpected());
}

TEST(RedisReply, EveryTruncationWaitsForMoreBytesAndNeverInventsAReply) {
  const std::string single = "*2\r\n$5\r\nhello\r\n:12345\r\n";
  for (size_t length = 0; length < single.size(); ++length) {
    absl::StatusOr<std::vector<RedisReply>> replies = ParseAll(single.substr(0, length));
    ASSERT_TRUE(replies.ok()) << "length " << length << ": " << replies.status();
    EXPECT_TRUE(replies->empty()) << "length " << length;
  }
}

TEST(RedisReply, ProtocolViolationsAreErrorsAndTheParserStaysFailed) {
  for (std::string_view wire : {
           std::string_view("?what\r\n"),              // unknown type byte
           std::string_view("$3\r\nabcd\r\n+OK\r\n"),  // bulk longer than its length
           std::string_view(":1\r\n\r\n"),             // stray line end between replies
           std::string_view(
               "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"),  // deep
       }) {
    RedisReplyParser parser;
    parser.Feed(wire);
    absl::Status status;
    while (status.ok()) {
      absl::StatusOr<std::optional<RedisReply>> next = parser.Next();
      status = next.status();
      if (next.ok() && !next->has_value()) break;
    }
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << wire;
    parser.Feed("+OK\r\n");
    EXPECT_FALSE(parser.Next().ok()) << wire;
  }
}

TEST(RedisReply, RandomBytesNeverCrashTheParser) {
  std::mt19937 rng(20240607);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string alphabet = "+-:$*\r\n0123456789-";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  for (int round = 0; round < 2000; ++round) {
    std::string wire;
    const size_t length = static_cast<size_t>(byte(rng)) % 64;
    for (size_t i = 0; i < length; ++i) {
      // Half the rounds from RESP's own characters, so that the parser gets past the first byte.
      wire.push_back(round % 2 == 0 ? static_cast<char>(byte(rng)) : alphabet[pick(rng)]);
    }
    absl::StatusOr<std::vector<RedisReply>> replies = ParseAll(wire);
    if (replies.ok()) {
      for (const RedisReply& reply : *replies) EXPECT_FALSE(reply.DebugString().empty());
    }
  }
}

TEST(RedisReply, ConversionRejectsStructuresHiredisNeverBuilds) {
  EXPECT_EQ(RedisReplyFromHiredis(nullptr).status().code(), absl::StatusCode::kInternal);

  redisReply unknown{};
  unknown.type = 99;
  EXPECT_EQ(RedisReplyFromHiredis(&unknown).status().code(), absl::StatusCode::kInternal);

  redisReply null_string{};
  null_string.type = REDIS_REPLY_STRING;
  null_string.len = 3;
  EXPECT_EQ(RedisReplyFromHiredis(&null_string).status().code(), absl::StatusCode::kInternal);

  redisReply* elements[2] = {&unknown, nullptr};
  redisReply array{};
  array.type = REDIS_REPLY_ARRAY;
  array.elements = 2;
  array.element = elements;
  EXPECT_EQ(RedisReplyFromHiredis(&array).status().code(), absl::StatusCode::kInternal);
  elements[0] = nullptr;
  EXPECT_EQ(RedisReplyFromHiredis(&array).status().code(), absl::StatusCode::kInternal);

  redisReply no_list{};
  no_list.type = REDIS_REPLY_ARRAY;
  no_list.elements = 1;
  EXPECT_EQ(RedisReplyFromHiredis(&no_list).status().code(), absl::StatusCode::kInternal);

  // A self-referencing array would recurse forever without the depth bound.
  redisReply* self[1];
  redisReply loop{};
  loop.type = REDIS_REPLY_ARRAY;
  loop.elements = 1;
  loop.element = self;
  self[0] = &loop;
  EXPECT_EQ(RedisReplyFromHiredis(&loop).status().code(), absl::StatusCode::kInternal);
}

TEST(RedisReply, DebugStringShowsTypeAndValue) {
  EXPECT_EQ(RedisReply::Array({RedisReply::Integer(3), RedisReply::String("a\nb"),
                               RedisReply::Nil(), RedisReply::Error("ERR x")})
                .DebugString(),
            "[(integer) 3, \"a\\nb\", (nil), (error) ERR x]");
  EXPECT_THAT(std::vector<std::string_view>({RedisReplyTypeName(RedisReply::Type::kString),
                                             RedisReplyTypeName(RedisReply::Type::kError)}),
              ElementsAre("string", "error"));
}

}  // namespace
}  // namespace tollgate
