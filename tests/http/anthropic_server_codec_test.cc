#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/anthropic/server_codec.h"
#include "tests/http/json_test_util.h"
#include "tests/http/raw_http_client.h"

namespace tollgate::anthropic {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

rapidjson::Document Json(const std::string& text) { return http::testing::ParseJsonOrFail(text); }

// The single event in an SSE string, checking its framing.
http::testing::SseEvent OnlyEvent(const std::string& sse) {
  EXPECT_TRUE(sse.size() >= 2 && sse.substr(sse.size() - 2) == "\n\n") << sse;
  std::vector<http::testing::SseEvent> events = http::testing::ParseSse(sse);
  EXPECT_EQ(events.size(), 1u) << sse;
  return events.empty() ? http::testing::SseEvent{} : events.front();
}

absl::Status ParseError(const std::string& body) { return ParseMessagesRequest(body).status(); }

TEST(AnthropicServerCodec, ParsesAMessagesRequestWithSystemBlocks) {
  absl::StatusOr<ParsedMessagesRequest> parsed = ParseMessagesRequest(R"({
    "model": "claude-3-5-haiku-20241022",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
      {"role": "user", "content": "Hello, Claude"},
      {"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]},
      {"role": "user", "content": "Bye"}
    ],
    "stream": true, "temperature": 0.2, "top_p": 0.9, "stop_sequences": ["END"],
    "metadata": {"user_id": "u"}, "top_k": 5
  })");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::GenerateRequest& generate = parsed->generate;
  EXPECT_EQ(generate.model(), "claude-3-5-haiku-20241022");
  EXPECT_EQ(generate.params().max_tokens(), 1024u);
  EXPECT_FLOAT_EQ(generate.params().temperature(), 0.2f);
  EXPECT_FLOAT_EQ(generate.params().top_p(), 0.9f);
  EXPECT_THAT(generate.params().stop(), ElementsAre("END"));
  EXPECT_TRUE(parsed->stream);
  ASSERT_EQ(generate.chat().messages_size(), 4);
  EXPECT_EQ(generate.chat().messages(0).role(), "system");
  EXPECT_EQ(generate.chat().messages(0).content(), "Be brief.");
  EXPECT_EQ(generate.chat().messages(1).content(), "Hello, Claude");
  EXPECT_EQ(generate.chat().messages(2).role(), "assistant");
  EXPECT_EQ(generate.chat().messages(2).content(), "Hi!");
}

TEST(AnthropicServerCodec, TakesASystemStringAndDefaultsToNotStreaming) {
  absl::StatusOr<ParsedMessagesRequest> parsed = ParseMessagesRequest(
      R"({"model":"m","max_tokens":5,"system":"S","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->stream);
  EXPECT_EQ(parsed->generate.chat().messages(0).content(), "S");
  EXPECT_FALSE(parsed->generate.params().has_temperature());
}

TEST(AnthropicServerCodec, RejectsMalformedRequestsNamingTheField) {
  EXPECT_THAT(ParseError(R"({"model":"m",)").message(), HasSubstr("invalid JSON"));
  EXPECT_EQ(ParseError(R"({"model":"m","messages":[{"role":"user","content":"x"}]})").message(),
            "max_tokens: required");
  EXPECT_EQ(ParseError(R"({"max_tokens":1,"messages":[{"role":"user","content":"x"}]})").message(),
            "model: required");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":1})").message(), "messages: required");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":1,"messages":[]})").message(),
            "messages: must not be empty");
  EXPECT_EQ(
      ParseError(R"({"model":"m","max_tokens":"9","messages":[{"role":"user","content":"x"}]})")
          .message(),
      "max_tokens: expected a non-negative integer below 2^32");
  EXPECT_EQ(
      ParseError(R"({"model":"m","max_tokens":1,"messages":[{"role":"robot","content":"x"}]})")
          .message(),
      "messages[0].role: expected \"user\" or \"assistant\"");
  EXPECT_EQ(ParseError(R"({"model":"m","max_tokens":1,"messages":[{"role":"user"}]})").message(),
            "messages[0].content: required");
  EXPECT_EQ(
      ParseError(
          R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image"}]}]})")
          .message(),
      "messages[0].content[0].type: only \"text\" parts are supported, got \"image\"");
  EXPECT_EQ(
      ParseError(
          R"({"model":"m","max_tokens":1,"system":7,"messages":[{"role":"user","content":"x"}]})")
          .message(),
      "system: expected a string or an array of text parts");
  EXPECT_EQ(
      ParseError(
          R"({"model":"m","max_tokens":1,"stop_sequences":"x","messages":[{"role":"user","content":"x"}]})")
          .message(),
      "stop_sequences: expected an array of strings");
}

v1::GenerateResponse Answer() {
  v1::GenerateResponse response;
  response.set_text("Hi there");
  response.set_finish_reason(v1::FINISH_REASON_STOP);
  v1::Usage* usage = response.mutable_usage();
  usage->set_input_tokens(100);
  usage->set_cached_input_tokens(60);
  usage->set_cache_write_input_tokens(10);
  usage->set_output_tokens(7);
  return response;
}

TEST(AnthropicServerCodec, EncodesAMessageWithInputTokensExcludingCacheReadsAndWrites) {
  rapidjson::Document doc = Json(MessageJson(Answer(), "msg_1", "claude-x"));
  EXPECT_STREQ(doc["id"].GetString(), "msg_1");
  EXPECT_STREQ(doc["type"].GetString(), "message");
  EXPECT_STREQ(doc["role"].GetString(), "assistant");
  EXPECT_STREQ(doc["model"].GetString(), "claude-x");
  EXPECT_STREQ(doc["content"][0]["type"].GetString(), "text");
  EXPECT_STREQ(doc["content"][0]["text"].GetString(), "Hi there");
  EXPECT_STREQ(doc["stop_reason"].GetString(), "end_turn");
  EXPECT_TRUE(doc["stop_sequence"].IsNull());
  EXPECT_EQ(doc["usage"]["input_tokens"].GetInt(), 30);
  EXPECT_EQ(doc["usage"]["cache_read_input_tokens"].GetInt(), 60);
  EXPECT_EQ(doc["usage"]["cache_creation_input_tokens"].GetInt(), 10);
  EXPECT_EQ(doc["usage"]["output_tokens"].GetInt(), 7);

  v1::GenerateResponse cut = Answer();
  cut.set_finish_reason(v1::FINISH_REASON_LENGTH);
  EXPECT_STREQ(Json(MessageJson(cut, "m", "m"))["stop_reason"].GetString(), "max_tokens");
}

TEST(AnthropicServerCodec, EncodesTheStreamEventSequence) {
  http::testing::SseEvent start = OnlyEvent(MessageStartEvent(&Answer().usage(), "msg_1", "c"));
  EXPECT_EQ(start.event, "message_start");
  rapidjson::Document start_doc = Json(start.data);
  EXPECT_STREQ(start_doc["type"].GetString(), "message_start");
  EXPECT_TRUE(start_doc["message"]["content"].Empty());
  EXPECT_EQ(start_doc["message"]["usage"]["input_tokens"].GetInt(), 30);
  EXPECT_EQ(start_doc["message"]["usage"]["output_tokens"].GetInt(), 0);

  http::testing::SseEvent block = OnlyEvent(ContentBlockStartEvent());
  EXPECT_EQ(block.event, "content_block_start");
  EXPECT_STREQ(Json(block.data)["content_block"]["type"].GetString(), "text");
  EXPECT_EQ(OnlyEvent(PingEvent()).event, "ping");

  http::testing::SseEvent delta = OnlyEvent(ContentBlockDeltaEvent("Hel\"lo\n"));
  EXPECT_EQ(delta.event, "content_block_delta");
  rapidjson::Document delta_doc = Json(delta.data);
  EXPECT_EQ(delta_doc["index"].GetInt(), 0);
  EXPECT_STREQ(delta_doc["delta"]["type"].GetString(), "text_delta");
  EXPECT_STREQ(delta_doc["delta"]["text"].GetString(), "Hel\"lo\n");

  EXPECT_EQ(OnlyEvent(ContentBlockStopEvent()).event, "content_block_stop");
  http::testing::SseEvent message_delta =
      OnlyEvent(MessageDeltaEvent(v1::FINISH_REASON_LENGTH, 42));
  EXPECT_EQ(message_delta.event, "message_delta");
  rapidjson::Document message_delta_doc = Json(message_delta.data);
  EXPECT_STREQ(message_delta_doc["delta"]["stop_reason"].GetString(), "max_tokens");
  EXPECT_EQ(message_delta_doc["usage"]["output_tokens"].GetInt(), 42);
  EXPECT_EQ(OnlyEvent(MessageStopEvent()).event, "message_stop");

  // Without usage (a backend that reports none).
  EXPECT_FALSE(
      Json(OnlyEvent(MessageStartEvent(nullptr, "m", "c")).data)["message"].HasMember("usage"));
  EXPECT_FALSE(Json(OnlyEvent(MessageDeltaEvent(v1::FINISH_REASON_STOP, std::nullopt)).data)
                   .HasMember("usage"));
}

TEST(AnthropicServerCodec, EncodesErrorsInAnthropicsShape) {
  rapidjson::Document doc = Json(ErrorJson(absl::InvalidArgumentError("max_tokens: required")));
  EXPECT_STREQ(doc["type"].GetString(), "error");
  EXPECT_STREQ(doc["error"]["type"].GetString(), "invalid_request_error");
  EXPECT_STREQ(doc["error"]["message"].GetString(), "max_tokens: required");
  EXPECT_STREQ(Json(ErrorJson(absl::ResourceExhaustedError("x")))["error"]["type"].GetString(),
               "rate_limit_error");
  EXPECT_STREQ(Json(ErrorJson(absl::UnavailableError("x")))["error"]["type"].GetString(),
               "overloaded_error");
  EXPECT_STREQ(Json(ErrorJson(absl::UnauthenticatedError("x")))["error"]["type"].GetString(),
               "authentication_error");
  EXPECT_STREQ(Json(ErrorJson(absl::InternalError("x")))["error"]["type"].GetString(), "api_error");
  EXPECT_EQ(OnlyEvent(ErrorEvent(absl::InternalError("x"))).event, "error");
}

}  // namespace
}  // namespace tollgate::anthropic
