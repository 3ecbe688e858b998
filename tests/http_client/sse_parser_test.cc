#include "proxy/http/client/sse_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tollgate::http {
namespace {

using ::testing::ElementsAre;

std::vector<SseEvent> ParseAll(absl::string_view stream, SseParser::Limits limits = {}) {
  SseParser parser(limits);
  std::vector<SseEvent> events;
  EXPECT_TRUE(parser.Feed(stream, &events).ok());
  EXPECT_TRUE(parser.Finish(&events).ok());
  return events;
}

SseEvent Event(std::string event, std::string data, std::string id = "") {
  return SseEvent{std::move(event), std::move(data), std::move(id)};
}

// A stream shaped like an Anthropic one, with every line-ending style, a BOM, comments, a field
// without a space after the colon, multi-line data and ids.
constexpr char kRealisticStream[] =
    "\xEF\xBB\xBF"
    ": stream opened\r\n"
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25}}}\r\n"
    "\r\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "id: 7\r"
    "event:content_block_delta\r"
    "data:{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hé\"}}\r"
    "\r"
    "data: first line\n"
    "data:second line\n"
    "data\n"
    "retry: 3000\n"
    "unknown-field: ignored\n"
    "\n"
    "data: [DONE]\r\n"
    "\r\n";

std::vector<SseEvent> RealisticEvents() {
  return {Event("message_start",
                "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25}}}"),
          Event("ping", "{\"type\": \"ping\"}"),
          Event("content_block_delta",
                "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hé\"}}", "7"),
          Event("", "first line\nsecond line\n", "7"), Event("", "[DONE]", "7")};
}

TEST(SseParser, ParsesARealisticStreamInOnePiece) {
  EXPECT_EQ(ParseAll(kRealisticStream), RealisticEvents());
}

TEST(SseParser, GivesTheSameEventsWhateverByteTheStreamIsSplitAt) {
  const std::string stream = kRealisticStream;
  for (size_t split = 0; split <= stream.size(); ++split) {
    SseParser parser;
    std::vector<SseEvent> events;
    ASSERT_TRUE(parser.Feed(absl::string_view(stream).substr(0, split), &events).ok());
    ASSERT_TRUE(parser.Feed(absl::string_view(stream).substr(split), &events).ok());
    ASSERT_TRUE(parser.Finish(&events).ok());
    EXPECT_EQ(events, RealisticEvents()) << "split at byte " << split;
  }
}

TEST(SseParser, GivesTheSameEventsWhenFedOneByteAtATime) {
  const std::string stream = kRealisticStream;
  SseParser parser;
  std::vector<SseEvent> events;
  for (char c : stream) ASSERT_TRUE(parser.Feed(absl::string_view(&c, 1), &events).ok());
  ASSERT_TRUE(parser.Finish(&events).ok());
  EXPECT_EQ(events, RealisticEvents());
}

TEST(SseParser, GivesTheSameEventsWhateverTwoBytesTheStreamIsSplitAt) {
  const std::string stream = kRealisticStream;
  for (size_t a = 0; a <= stream.size(); a += 3) {
    for (size_t b = a; b <= stream.size(); ++b) {
      SseParser parser;
      std::vector<SseEvent> events;
      ASSERT_TRUE(parser.Feed(stream.substr(0, a), &events).ok());
      ASSERT_TRUE(parser.Feed(stream.substr(a, b - a), &events).ok());
      ASSERT_TRUE(parser.Feed(stream.substr(b), &events).ok());
      ASSERT_TRUE(parser.Finish(&events).ok());
      ASSERT_EQ(events, RealisticEvents()) << "split at " << a << " and " << b;
    }
  }
}

TEST(SseParser, RemembersTheRetryInterval) {
  SseParser parser;
  std::vector<SseEvent> events;
  ASSERT_TRUE(parser.Feed("retry: 1500\n\nretry: x\n\n", &events).ok());
  EXPECT_EQ(parser.retry_ms(), 1500);
  EXPECT_TRUE(events.empty());
}

TEST(SseParser, DispatchesNothingForAnEventWithoutData) {
  EXPECT_TRUE(ParseAll("event: lonely\n\n: comment only\n\n").empty());
}

TEST(SseParser, ResetsTheEventTypeAfterEachEvent) {
  EXPECT_THAT(ParseAll("event: a\ndata: 1\n\ndata: 2\n\n"),
              ElementsAre(Event("a", "1"), Event("", "2")));
}

TEST(SseParser, KeepsOnlyOneLeadingSpaceOfAValue) {
  EXPECT_THAT(ParseAll("data:  two spaces\n\n"), ElementsAre(Event("", " two spaces")));
}

TEST(SseParser, TreatsABomAnywhereButTheStartAsData) {
  EXPECT_THAT(ParseAll("data: a\xEF\xBB\xBF\n\n"), ElementsAre(Event("", "a\xEF\xBB\xBF")));
}

TEST(SseParser, KeepsBytesThatOnlyBeganLikeABom) {
  EXPECT_THAT(ParseAll("\xEF"
                       "data: x\n\n"),
              ElementsAre());
  EXPECT_THAT(ParseAll("\xEF\xBB"
                       "\n"
                       "data: x\n\n"),
              ElementsAre(Event("", "x")));
}

TEST(SseParser, DeliversAnEventTheStreamDidNotTerminateAtFinish) {
  EXPECT_THAT(ParseAll("data: [DONE]"), ElementsAre(Event("", "[DONE]")));
  EXPECT_THAT(ParseAll("data: [DONE]\n"), ElementsAre(Event("", "[DONE]")));
}

TEST(SseParser, IgnoresAnIdContainingNul) {
  constexpr char kStream[] = "id: 1\ndata: a\n\nid: x\0y\ndata: b\n\n";
  EXPECT_THAT(ParseAll(std::string(kStream, sizeof(kStream) - 1)),
              ElementsAre(Event("", "a", "1"), Event("", "b", "1")));
}

TEST(SseParser, RejectsALineLongerThanTheLimitWithoutBufferingIt) {
  SseParser parser(SseParser::Limits{.max_line_bytes = 1024, .max_event_bytes = 4096});
  std::vector<SseEvent> events;
  const std::string chunk(600, 'x');
  ASSERT_TRUE(parser.Feed("data: " + chunk, &events).ok());
  const absl::Status status = parser.Feed(chunk, &events);
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(parser.Feed("\n\n", &events).code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(events.empty());
}

TEST(SseParser, RejectsAnEventWhoseDataGrowsPastTheLimit) {
  SseParser parser(SseParser::Limits{.max_line_bytes = 100, .max_event_bytes = 250});
  std::vector<SseEvent> events;
  const std::string line = "data: " + std::string(90, 'y') + "\n";
  ASSERT_TRUE(parser.Feed(line + line, &events).ok());
  EXPECT_EQ(parser.Feed(line, &events).code(), absl::StatusCode::kOutOfRange);
}

TEST(SseParser, RejectsATwoMebibyteLineUnderTheDefaultLimit) {
  SseParser parser;
  std::vector<SseEvent> events;
  const std::string line = "data: " + std::string(2 << 20, 'z') + "\n\n";
  EXPECT_EQ(parser.Feed(line, &events).code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace tollgate::http
