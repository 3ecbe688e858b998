#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/anthropic/client_codec.h"
#include "rapidjson/document.h"
#include "tests/backends/recording_observer.h"

namespace tollgate::anthropic {
namespace {

using ::testing::HasSubstr;

rapidjson::Document Json(const std::string& text) { return testing::ParseJson(text); }

v1::GenerateRequest ChatRequest() {
  v1::GenerateRequest request;
  request.set_model("claude-sonnet-4-5");
  for (auto [role, content] : {std::pair{"system", "You are terse."}, std::pair{"user", "Hello"},
                               std::pair{"assistant", "Hi."},
                               std::pair{"system", "Answer in French."}, std::pair{"tool", "42"}}) {
    auto* message = request.mutable_chat()->add_messages();
    message->set_role(role);
    message->set_content(content);
  }
  return request;
}

TEST(AnthropicClientCodec, MovesSystemMessagesToTheTopLevelSystemField) {
  const rapidjson::Document json = Json(*MessagesBody(ChatRequest(), /*stream=*/true));
  EXPECT_STREQ(json["system"].GetString(), "You are terse.\n\nAnswer in French.");
  ASSERT_EQ(json["messages"].Size(), 3u);
  EXPECT_STREQ(json["messages"][0]["role"].GetString(), "user");
  EXPECT_STREQ(json["messages"][1]["role"].GetString(), "assistant");
  EXPECT_STREQ(json["messages"][2]["role"].GetString(), "user");  // a tool result
  EXPECT_STREQ(json["messages"][2]["content"].GetString(), "42");
  EXPECT_TRUE(json["stream"].GetBool());
}

TEST(AnthropicClientCodec, AlwaysSendsMaxTokensSinceAnthropicRequiresIt) {
  const rapidjson::Document defaulted = Json(*MessagesBody(ChatRequest(), false));
  EXPECT_EQ(defaulted["max_tokens"].GetUint(), kDefaultMaxTokens);
  v1::GenerateRequest request = ChatRequest();
  request.mutable_params()->set_max_tokens(50);
  EXPECT_EQ(Json(*MessagesBody(request, false))["max_tokens"].GetUint(), 50u);
}

TEST(AnthropicClientCodec, MapsSamplingParametersAndDropsTheSeed) {
  v1::GenerateRequest request = ChatRequest();
  request.mutable_params()->set_temperature(0.2f);
  request.mutable_params()->set_top_p(0.95f);
  request.mutable_params()->set_seed(7);
  request.mutable_params()->add_stop("Human:");
  const std::string body = *MessagesBody(request, false);
  EXPECT_THAT(body, HasSubstr("\"temperature\":0.2,"));
  const rapidjson::Document json = Json(body);
  EXPECT_DOUBLE_EQ(json["top_p"].GetDouble(), 0.95);
  EXPECT_STREQ(json["stop_sequences"][0].GetString(), "Human:");
  EXPECT_FALSE(json.HasMember("seed"));
  EXPECT_FALSE(json.HasMember("stop"));
  EXPECT_FALSE(json["stream"].GetBool());
}

TEST(AnthropicClientCodec, SendsAPromptAsOneUserMessage) {
  v1::GenerateRequest request;
  request.set_model("claude-haiku-4-5");
  request.set_prompt("Tell me a joke");
  const rapidjson::Document json = Json(*MessagesBody(request, false));
  ASSERT_EQ(json["messages"].Size(), 1u);
  EXPECT_STREQ(json["messages"][0]["role"].GetString(), "user");
  EXPECT_STREQ(json["messages"][0]["content"].GetString(), "Tell me a joke");
  EXPECT_FALSE(json.HasMember("system"));
  request.clear_prompt();
  EXPECT_EQ(MessagesBody(request, false).status().code(), absl::StatusCode::kInvalidArgument);
}

// Shaped like the Message object in Anthropic's API reference, after a prompt-caching write.
constexpr char kMessage[] = R"({
  "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
  "type": "message",
  "role": "assistant",
  "content": [
    {"type": "thinking", "thinking": "Let me think...", "signature": "abc"},
    {"type": "text", "text": "Hello"},
    {"type": "text", "text": ", world"}
  ],
  "model": "claude-sonnet-4-5-20250929",
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188086,
    "cache_read_input_tokens": 0,
    "output_tokens": 393
  }
})";

TEST(AnthropicClientCodec, CountsCacheWritesInsideTheInput) {
  absl::StatusOr<Message> message = ParseMessage(kMessage);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->text, "Hello, world");  // thinking blocks are not text
  EXPECT_EQ(message->finish_reason, v1::FINISH_REASON_STOP);
  const v1::Usage usage = NormaliseUsage(message->usage);
  EXPECT_EQ(usage.input_tokens(), 21u + 188086u);
  EXPECT_EQ(usage.cache_write_input_tokens(), 188086u);
  EXPECT_EQ(usage.cached_input_tokens(), 0u);
  EXPECT_EQ(usage.output_tokens(), 393u);
  EXPECT_EQ(usage.reasoning_tokens(), 0u);
  EXPECT_EQ(usage.source(), v1::USAGE_SOURCE_REPORTED);
}

TEST(AnthropicClientCodec, CountsCacheReadsInsideTheInputAsCached) {
  absl::StatusOr<Message> message = ParseMessage(R"({
    "type": "message", "role": "assistant", "content": [{"type": "text", "text": "Sure"}],
    "stop_reason": "max_tokens",
    "usage": {"input_tokens": 50, "cache_creation_input_tokens": 0,
              "cache_read_input_tokens": 100000, "output_tokens": 1024}})");
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->finish_reason, v1::FINISH_REASON_LENGTH);
  const v1::Usage usage = NormaliseUsage(message->usage);
  EXPECT_EQ(usage.input_tokens(), 100050u);
  EXPECT_EQ(usage.cached_input_tokens(), 100000u);
  EXPECT_EQ(usage.cache_write_input_tokens(), 0u);
}

TEST(AnthropicClientCodec, ACountNeverDecreasesWhenALaterEventRepeatsIt) {
  RawUsage usage{.input_tokens = 25, .output_tokens = 1, .cache_read_input_tokens = 100,
                 .cache_creation_input_tokens = std::nullopt};
  usage.MergeFrom(RawUsage{.input_tokens = 0, .output_tokens = 15,
                           .cache_read_input_tokens = std::nullopt,
                           .cache_creation_input_tokens = 3});
  EXPECT_EQ(usage.input_tokens, 25u);
  EXPECT_EQ(usage.output_tokens, 15u);
  EXPECT_EQ(usage.cache_read_input_tokens, 100u);
  EXPECT_EQ(usage.cache_creation_input_tokens, 3u);
}

TEST(AnthropicClientCodec, MapsStopReasons) {
  EXPECT_EQ(FinishReasonFromStopReason("end_turn"), v1::FINISH_REASON_STOP);
  EXPECT_EQ(FinishReasonFromStopReason("stop_sequence"), v1::FINISH_REASON_STOP);
  EXPECT_EQ(FinishReasonFromStopReason("tool_use"), v1::FINISH_REASON_STOP);
  EXPECT_EQ(FinishReasonFromStopReason("max_tokens"), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(FinishReasonFromStopReason(""), v1::FINISH_REASON_UNSPECIFIED);
}

TEST(AnthropicClientCodec, ParsesEveryKindOfStreamEvent) {
  using Type = StreamEvent::Type;
  absl::StatusOr<StreamEvent> start = ParseStreamEvent(
      R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":1}}})");
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(start->type, Type::kMessageStart);
  ASSERT_TRUE(start->usage.has_value());
  EXPECT_EQ(start->usage->input_tokens, 25u);
  EXPECT_EQ(start->usage->cache_read_input_tokens, 100u);

  absl::StatusOr<StreamEvent> text = ParseStreamEvent(
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->type, Type::kTextDelta);
  EXPECT_EQ(text->text, "Hi");

  absl::StatusOr<StreamEvent> thinking = ParseStreamEvent(
      R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}})");
  ASSERT_TRUE(thinking.ok());
  EXPECT_EQ(thinking->type, Type::kOther);
  EXPECT_EQ(thinking->text, "");

  absl::StatusOr<StreamEvent> delta = ParseStreamEvent(
      R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}})");
  ASSERT_TRUE(delta.ok());
  EXPECT_EQ(delta->type, Type::kMessageDelta);
  EXPECT_EQ(delta->finish_reason, v1::FINISH_REASON_STOP);
  EXPECT_EQ(delta->usage->output_tokens, 15u);
  EXPECT_FALSE(delta->usage->input_tokens.has_value());

  for (const char* other :
       {R"({"type": "ping"})",
        R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
        R"({"type":"content_block_stop","index":0})"}) {
    absl::StatusOr<StreamEvent> event = ParseStreamEvent(other);
    ASSERT_TRUE(event.ok()) << other;
    EXPECT_EQ(event->type, Type::kOther) << other;
  }
  EXPECT_EQ(ParseStreamEvent(R"({"type":"message_stop"})")->type, Type::kMessageStop);
}

TEST(AnthropicClientCodec, MapsErrorEventsByType) {
  absl::StatusOr<StreamEvent> overloaded = ParseStreamEvent(
      R"({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})");
  ASSERT_TRUE(overloaded.ok());
  EXPECT_EQ(overloaded->type, StreamEvent::Type::kError);
  EXPECT_EQ(overloaded->error.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(overloaded->error.message(), HasSubstr("Overloaded"));
  EXPECT_EQ(StatusForErrorType("rate_limit_error"), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusForErrorType("invalid_request_error"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusForErrorType("authentication_error"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusForErrorType("not_found_error"), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusForErrorType("api_error"), absl::StatusCode::kUnavailable);
}

TEST(AnthropicClientCodec, MalformedEventsAndMessagesAreInternalErrors) {
  for (const char* bad :
       {"", "{", "[]", R"({"type": 5})", R"({"no_type": true})",
        R"({"type":"content_block_delta","delta":{"type":"text_delta","text":7}})",
        R"({"type":"message_delta","usage":{"output_tokens":"15"}})",
        R"({"type":"message_start"})"}) {
    absl::StatusOr<StreamEvent> event = ParseStreamEvent(bad);
    EXPECT_EQ(event.status().code(), absl::StatusCode::kInternal) << bad;
  }
  const std::string whole = kMessage;
  for (size_t n = 0; n < whole.size(); ++n) {
    EXPECT_EQ(ParseMessage(whole.substr(0, n)).status().code(), absl::StatusCode::kInternal);
  }
  EXPECT_EQ(ParseMessage(R"({"content":[{"type":"text","text":"x"}]})").status().code(),
            absl::StatusCode::kInternal);  // no usage
}

TEST(AnthropicClientCodec, ReadsTheMessageOfAnErrorAnswer) {
  EXPECT_EQ(
      ErrorMessage(
          R"({"type":"error","error":{"type":"not_found_error","message":"model: claude-9"},"request_id":"req_1"})"),
      "model: claude-9");
}

}  // namespace
}  // namespace tollgate::anthropic
