#include "proxy/backends/anthropic/anthropic_backend.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/http/client/http_status.h"
#include "rapidjson/document.h"
#include "tests/backends/recording_observer.h"
#include "tests/http_client/fake_http_server.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;
using ::tollgate::testing::EmbedRecorder;
using ::tollgate::testing::FakeConnection;
using ::tollgate::testing::FakeHttpServer;
using ::tollgate::testing::HttpBackendConfig;
using ::tollgate::testing::HttpResponse;
using ::tollgate::testing::Payload;
using ::tollgate::testing::ReceivedRequest;
using ::tollgate::testing::RecordingObserver;
using ::tollgate::testing::SseFrame;
using ::tollgate::testing::WriteEventStream;

std::unique_ptr<Backend> AnthropicFor(const FakeHttpServer& server) {
  auto backend = NewAnthropicBackend(HttpBackendConfig(BackendKind::kAnthropic, server.port()));
  EXPECT_TRUE(backend.ok()) << backend.status();
  return *std::move(backend);
}

GenerateCall Chat(bool stream) {
  GenerateCall call;
  call.request.set_model("claude-sonnet-4-5");
  auto* system = call.request.mutable_chat()->add_messages();
  system->set_role("system");
  system->set_content("Be kind.");
  auto* user = call.request.mutable_chat()->add_messages();
  user->set_role("user");
  user->set_content("Hello, Claude");
  call.client_streams = stream;
  return call;
}

constexpr char kMessageStart[] =
    R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":1}}})";

std::string TextDelta(const std::string& text) {
  return SseFrame(
      absl::StrCat(
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":")", text,
          R"("}})"),
      "content_block_delta");
}

// A whole stream as Anthropic's streaming documentation shows it.
std::string GoodStream(const std::string& stop_reason = "end_turn") {
  return SseFrame(kMessageStart, "message_start") +
         SseFrame(
             R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
             "content_block_start") +
         SseFrame(R"({"type": "ping"})", "ping") + TextDelta("Hello") + TextDelta("!") +
         SseFrame(R"({"type":"content_block_stop","index":0})", "content_block_stop") +
         SseFrame(absl::StrCat(R"({"type":"message_delta","delta":{"stop_reason":")", stop_reason,
                               R"(","stop_sequence":null},"usage":{"output_tokens":15}})"),
                  "message_delta") +
         SseFrame(R"({"type":"message_stop"})", "message_stop");
}

TEST(AnthropicBackend, StreamsTextAndReportsInputEarlyAndUsageLast) {
  FakeHttpServer server(
      [](const ReceivedRequest&, FakeConnection& c) { WriteEventStream(c, GoodStream()); });
  auto backend = AnthropicFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  ASSERT_TRUE(observer->Wait().ok());
  EXPECT_EQ(observer->text(), "Hello!");
  const std::vector<v1::GenerateResponse> messages = observer->messages();
  ASSERT_EQ(messages.size(), 4u);
  // message_start's counts, at once: a stream cut short is still charged its real input.
  EXPECT_EQ(messages[0].text(), "");
  EXPECT_EQ(messages[0].usage().input_tokens(), 135u);
  EXPECT_EQ(messages[0].finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  const v1::GenerateResponse& last = messages.back();
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(last.usage().input_tokens(), 25u + 100u + 10u);
  EXPECT_EQ(last.usage().cached_input_tokens(), 100u);
  EXPECT_EQ(last.usage().cache_write_input_tokens(), 10u);
  EXPECT_EQ(last.usage().output_tokens(), 15u);
  EXPECT_EQ(last.usage().source(), v1::USAGE_SOURCE_REPORTED);

  const ReceivedRequest request = server.requests().at(0);
  EXPECT_EQ(request.target, "/prefix/v1/messages");
  EXPECT_EQ(request.Header("x-api-key"), "sk-test-key");
  EXPECT_EQ(request.Header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(request.Header("authorization"), "");
  rapidjson::Document body;
  body.Parse(request.body.c_str());
  EXPECT_STREQ(body["system"].GetString(), "Be kind.");
  EXPECT_EQ(body["max_tokens"].GetUint(), 1024u);
  EXPECT_TRUE(body["stream"].GetBool());
}

TEST(AnthropicBackend, MapsMaxTokensToALengthFinish) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    WriteEventStream(c, GoodStream("max_tokens"));
  });
  auto backend = AnthropicFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  ASSERT_TRUE(observer->Wait().ok());
  EXPECT_EQ(observer->last().finish_reason(), v1::FINISH_REASON_LENGTH);
}

TEST(AnthropicBackend, AUnaryCallIsOneRequestAndOneMessage) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "application/json", R"({"id":"msg_1","type":"message",
      "role":"assistant","content":[{"type":"text","text":"Hi there"}],"model":"claude-sonnet-4-5",
      "stop_reason":"end_turn","stop_sequence":null,
      "usage":{"input_tokens":12,"cache_read_input_tokens":0,"cache_creation_input_tokens":0,
               "output_tokens":3}})"));
  });
  auto backend = AnthropicFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(false), observer);
  ASSERT_TRUE(observer->Wait().ok());
  ASSERT_EQ(observer->messages().size(), 1u);
  EXPECT_EQ(observer->last().text(), "Hi there");
  EXPECT_EQ(observer->last().finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(observer->last().usage().input_tokens(), 12u);
  EXPECT_EQ(observer->last().usage().output_tokens(), 3u);
}

TEST(AnthropicBackend, AnOverloadedErrorEventMidStreamIsUnavailableAfterTheText) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    WriteEventStream(
        c, SseFrame(kMessageStart, "message_start") + TextDelta("Par") +
               SseFrame(
                   R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
                   "error"));
  });
  auto backend = AnthropicFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  const absl::Status status = observer->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("Overloaded"));
  EXPECT_EQ(observer->text(), "Par");
  EXPECT_EQ(observer->messages().front().usage().input_tokens(), 135u);
}

TEST(AnthropicBackend, AResetAfterMessageStartHasAlreadyReportedTheInput) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(testing::ChunkedHead(200, "text/event-stream") +
            testing::Chunk(SseFrame(kMessageStart, "message_start") + TextDelta("cut")));
    absl::SleepFor(absl::Milliseconds(20));
    c.Reset();
  });
  auto backend = AnthropicFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  EXPECT_EQ(observer->Wait().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(observer->text(), "cut");
  ASSERT_FALSE(observer->messages().empty());
  EXPECT_EQ(observer->messages().front().usage().input_tokens(), 135u);
  EXPECT_EQ(observer->last().finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
}

TEST(AnthropicBackend, MapsAnOverloadedAnswerToUnavailableWithItsStatus) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(
        529, "application/json",
        R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"));
  });
  auto backend = AnthropicFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  const absl::Status status = observer->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "HTTP 529: Overloaded");
  EXPECT_EQ(Payload(status, http::kHttpStatusPayload), "529");
}

TEST(AnthropicBackend, ABadKeyIsInternalForTheClient) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(
        401, "application/json",
        R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})"));
  });
  auto backend = AnthropicFor(server);
  for (int i = 0; i < 2; ++i) {  // logged once, answered every time
    auto observer = std::make_shared<RecordingObserver>();
    backend->Generate(Chat(false), observer);
    const absl::Status status = observer->Wait();
    EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(status.message(), HasSubstr("invalid x-api-key"));
    EXPECT_EQ(Payload(status, http::kHttpStatusPayload), "401");
  }
}

TEST(AnthropicBackend, HasNoEmbeddings) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection&) {});
  auto backend = AnthropicFor(server);
  EmbedRecorder recorder;
  EmbedCall call;
  call.request.add_inputs("x");
  backend->Embed(std::move(call), recorder.Callback());
  EXPECT_EQ(recorder.Wait().status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(server.requests().empty());
}

TEST(AnthropicBackend, RejectsAConfigOfAnotherKind) {
  EXPECT_EQ(NewAnthropicBackend(HttpBackendConfig(BackendKind::kOpenAi, 443)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tollgate
