#include "proxy/backends/openai/openai_backend.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/http/client/http_status.h"
#include "rapidjson/document.h"
#include "tests/backends/recording_observer.h"
#include "tests/http_client/fake_http_server.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;
using ::tollgate::testing::Chunk;
using ::tollgate::testing::ChunkedHead;
using ::tollgate::testing::EmbedRecorder;
using ::tollgate::testing::FakeConnection;
using ::tollgate::testing::FakeHttpServer;
using ::tollgate::testing::HttpBackendConfig;
using ::tollgate::testing::HttpResponse;
using ::tollgate::testing::kLastChunk;
using ::tollgate::testing::kWait;
using ::tollgate::testing::Payload;
using ::tollgate::testing::ReceivedRequest;
using ::tollgate::testing::RecordingObserver;
using ::tollgate::testing::SseFrame;
using ::tollgate::testing::WriteEventStream;

std::unique_ptr<Backend> OpenAiFor(const FakeHttpServer& server) {
  auto backend = NewOpenAiBackend(HttpBackendConfig(BackendKind::kOpenAi, server.port()));
  EXPECT_TRUE(backend.ok()) << backend.status();
  return *std::move(backend);
}

GenerateCall Chat(bool stream) {
  GenerateCall call;
  call.request.set_model("gpt-4o-mini");
  auto* message = call.request.mutable_chat()->add_messages();
  message->set_role("user");
  message->set_content("Say hello");
  call.client_streams = stream;
  return call;
}

std::string ChunkJson(const std::string& content, const std::string& finish = "null") {
  return absl::StrCat(
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",)",
      R"("choices":[{"index":0,"delta":{"content":")", content,
      R"("},"logprobs":null,"finish_reason":)", finish, R"(}],"usage":null})");
}

constexpr char kUsageChunk[] =
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":1}}})";

// The SSE body of a whole, well-formed stream: "Hello" + " world", stop, usage, [DONE].
std::string GoodStream() {
  return SseFrame(ChunkJson("Hello")) + SseFrame(ChunkJson(" world")) +
         SseFrame(ChunkJson("", "\"stop\"")) + SseFrame(kUsageChunk) + SseFrame("[DONE]");
}

void ExpectUsage(const v1::GenerateResponse& message) {
  ASSERT_TRUE(message.has_usage());
  EXPECT_EQ(message.usage().input_tokens(), 12u);
  EXPECT_EQ(message.usage().cached_input_tokens(), 4u);
  EXPECT_EQ(message.usage().output_tokens(), 2u);
  EXPECT_EQ(message.usage().reasoning_tokens(), 1u);
  EXPECT_EQ(message.usage().source(), v1::USAGE_SOURCE_REPORTED);
}

TEST(OpenAiBackend, StreamsTextDeltasAndEndsWithFinishReasonAndUsage) {
  FakeHttpServer server(
      [](const ReceivedRequest&, FakeConnection& c) { WriteEventStream(c, GoodStream()); });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  ASSERT_TRUE(observer->Wait().ok());
  EXPECT_EQ(observer->text(), "Hello world");
  const std::vector<v1::GenerateResponse> messages = observer->messages();
  ASSERT_EQ(messages.size(), 3u);
  for (size_t i = 0; i + 1 < messages.size(); ++i) {
    EXPECT_FALSE(messages[i].has_usage()) << "the usage chunk is never text";
    EXPECT_EQ(messages[i].finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  }
  EXPECT_EQ(messages.back().text(), "");
  EXPECT_EQ(messages.back().finish_reason(), v1::FINISH_REASON_STOP);
  ExpectUsage(messages.back());

  const ReceivedRequest request = server.requests().at(0);
  EXPECT_EQ(request.target, "/prefix/v1/chat/completions");
  EXPECT_EQ(request.Header("authorization"), "Bearer sk-test-key");
  EXPECT_EQ(request.Header("content-type"), "application/json");
  rapidjson::Document body;
  body.Parse(request.body.c_str());
  EXPECT_TRUE(body["stream"].GetBool());
  EXPECT_TRUE(body["stream_options"]["include_usage"].GetBool());
}

TEST(OpenAiBackend, AUnaryCallIsOneRequestAndOneMessage) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "application/json", R"({"id":"x","object":"chat.completion",
      "choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"length"}],
      "usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14,
               "prompt_tokens_details":{"cached_tokens":4},
               "completion_tokens_details":{"reasoning_tokens":1}}})"));
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(false), observer);
  ASSERT_TRUE(observer->Wait().ok());
  ASSERT_EQ(observer->messages().size(), 1u);
  EXPECT_EQ(observer->last().text(), "Hello!");
  EXPECT_EQ(observer->last().finish_reason(), v1::FINISH_REASON_LENGTH);
  ExpectUsage(observer->last());
  rapidjson::Document body;
  body.Parse(server.requests().at(0).body.c_str());
  EXPECT_FALSE(body["stream"].GetBool());
}

TEST(OpenAiBackend, SendsAPromptToTheCompletionsEndpoint) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    WriteEventStream(
        c, SseFrame(R"({"choices":[{"text":"Once","index":0,"finish_reason":null}]})") +
               SseFrame(R"({"choices":[{"text":"!","index":0,"finish_reason":"stop"}]})") +
               SseFrame(kUsageChunk) + SseFrame("[DONE]"));
  });
  auto backend = OpenAiFor(server);
  GenerateCall call;
  call.request.set_model("davinci");
  call.request.set_prompt("Tell me");
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(std::move(call), observer);
  ASSERT_TRUE(observer->Wait().ok());
  EXPECT_EQ(observer->text(), "Once!");
  EXPECT_EQ(server.requests().at(0).target, "/prefix/v1/completions");
}

TEST(OpenAiBackend, ReusesOneConnectionAcrossCalls) {
  FakeHttpServer server(
      [](const ReceivedRequest&, FakeConnection& c) { WriteEventStream(c, GoodStream()); });
  auto backend = OpenAiFor(server);
  for (int i = 0; i < 2; ++i) {
    auto observer = std::make_shared<RecordingObserver>();
    backend->Generate(Chat(true), observer);
    ASSERT_TRUE(observer->Wait().ok());
  }
  EXPECT_EQ(server.connections_accepted(), 1);
}

TEST(OpenAiBackend, AResetMidStreamDeliversThePartialTextThenUnavailable) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/event-stream") + Chunk(SseFrame(ChunkJson("partial"))));
    absl::SleepFor(absl::Milliseconds(20));
    c.Reset();
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  const absl::Status status = observer->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(observer->text(), "partial");
  EXPECT_EQ(observer->last().finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_FALSE(Payload(status, http::kBeforeResponsePayload).has_value());
}

TEST(OpenAiBackend, AStreamThatEndsWithoutAFinishReasonIsUnavailable) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    WriteEventStream(c, SseFrame(ChunkJson("cut")));
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  EXPECT_EQ(observer->Wait().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(observer->text(), "cut");
}

TEST(OpenAiBackend, SkipsAGarbageEventAndKeepsTheStream) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    WriteEventStream(c, SseFrame(ChunkJson("Hello")) + SseFrame("{not json at all") +
                            ": a comment\n\n" + SseFrame(R"({"choices":"wrong type"})") +
                            SseFrame(ChunkJson(" world")) + SseFrame(ChunkJson("", "\"stop\"")) +
                            SseFrame(kUsageChunk) + SseFrame("[DONE]"));
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  ASSERT_TRUE(observer->Wait().ok());
  EXPECT_EQ(observer->text(), "Hello world");
  ExpectUsage(observer->last());
}

TEST(OpenAiBackend, AnOversizedEventLineEndsTheStreamAfterTheTextBeforeIt) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    WriteEventStream(c,
                     SseFrame(ChunkJson("before")) + "data: " + std::string(2 << 20, 'x') + "\n\n" +
                         SseFrame(ChunkJson("", "\"stop\"")) + SseFrame("[DONE]"),
                     /*tcp_piece_bytes=*/0);
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  const absl::Status status = observer->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("line exceeds"));
  EXPECT_EQ(observer->text(), "before");
}

TEST(OpenAiBackend, ATruncatedJsonAnswerIsInternal) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "application/json", R"({"choices":[{"message":{"content":"Hi)"));
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(false), observer);
  const absl::Status status = observer->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("backend sent malformed JSON"));
  EXPECT_TRUE(observer->messages().empty());
}

TEST(OpenAiBackend, AnHtmlPageIsInternalAndNamesTheContentType) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "text/html", "<html><body>Sign in to the proxy</body></html>"));
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  const absl::Status status = observer->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("text/html"));
}

TEST(OpenAiBackend, AcceptsAWholeJsonAnswerToAStreamingRequest) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(
        200, "application/json",
        R"({"choices":[{"message":{"content":"ignored stream"},"finish_reason":"stop"}]})"));
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  ASSERT_TRUE(observer->Wait().ok());
  EXPECT_EQ(observer->text(), "ignored stream");
  EXPECT_EQ(observer->last().finish_reason(), v1::FINISH_REASON_STOP);
}

TEST(OpenAiBackend, AnErrorObjectInsideTheStreamIsUnavailable) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    WriteEventStream(
        c, SseFrame(ChunkJson("Hi")) +
               SseFrame(R"({"error":{"message":"upstream overloaded","type":"server_error"}})"));
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(true), observer);
  const absl::Status status = observer->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("upstream overloaded"));
  EXPECT_EQ(observer->text(), "Hi");
}

struct ErrorCase {
  int http_status;
  absl::StatusCode code;
};

TEST(OpenAiBackend, MapsHttpErrorsToStatusesWithPayloads) {
  for (const ErrorCase& c :
       {ErrorCase{400, absl::StatusCode::kInvalidArgument},
        ErrorCase{401, absl::StatusCode::kInternal},  // our key, not theirs
        ErrorCase{403, absl::StatusCode::kInternal}, ErrorCase{404, absl::StatusCode::kNotFound},
        ErrorCase{429, absl::StatusCode::kResourceExhausted},
        ErrorCase{500, absl::StatusCode::kUnavailable},
        ErrorCase{503, absl::StatusCode::kUnavailable}}) {
    FakeHttpServer server([&](const ReceivedRequest&, FakeConnection& conn) {
      conn.Write(HttpResponse(
          c.http_status, "application/json",
          absl::StrCat(R"({"error":{"message":"problem )", c.http_status, R"(","type":"x"}})"),
          {{"Retry-After", "3"}}));
    });
    auto backend = OpenAiFor(server);
    auto observer = std::make_shared<RecordingObserver>();
    backend->Generate(Chat(true), observer);
    const absl::Status status = observer->Wait();
    EXPECT_EQ(status.code(), c.code) << c.http_status;
    EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("problem ", c.http_status)));
    EXPECT_EQ(Payload(status, http::kHttpStatusPayload), absl::StrCat(c.http_status));
    EXPECT_EQ(Payload(status, http::kRetryAfterPayload), "3");
    EXPECT_FALSE(Payload(status, http::kBeforeResponsePayload).has_value());
    EXPECT_TRUE(observer->messages().empty());
  }
}

TEST(OpenAiBackend, ARateLimitWithoutRetryAfterHasNoRetryPayload) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(429, "text/plain", "slow down"));
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  backend->Generate(Chat(false), observer);
  const absl::Status status = observer->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(Payload(status, http::kRetryAfterPayload).has_value());
}

TEST(OpenAiBackend, CancelMidStreamEndsTheCallAndTheConnection) {
  absl::Notification client_gone;
  FakeHttpServer server([&](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/event-stream") + Chunk(SseFrame(ChunkJson("one"))));
    if (c.WaitForPeerClose(kWait)) client_gone.Notify();
  });
  auto backend = OpenAiFor(server);
  auto observer = std::make_shared<RecordingObserver>();
  std::shared_ptr<BackendCall> call = backend->Generate(Chat(true), observer);
  ASSERT_TRUE(observer->WaitForFirstMessage());
  call->Cancel();
  EXPECT_EQ(observer->Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(observer->text(), "one");
  EXPECT_TRUE(client_gone.WaitForNotificationWithTimeout(kWait));
}

TEST(OpenAiBackend, TheConfiguredTimeoutBoundsACall) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/event-stream") + Chunk(SseFrame(ChunkJson("slow"))));
    c.WaitForPeerClose(kWait);
  });
  BackendConfig config = HttpBackendConfig(BackendKind::kOpenAi, server.port());
  config.timeout = absl::Milliseconds(200);
  auto backend = NewOpenAiBackend(config);
  ASSERT_TRUE(backend.ok());
  auto observer = std::make_shared<RecordingObserver>();
  (*backend)->Generate(Chat(true), observer);
  EXPECT_EQ(observer->Wait().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(observer->text(), "slow");
}

TEST(OpenAiBackend, AnUnreachableBackendIsUnavailableBeforeAnyResponse) {
  uint16_t port;
  {
    FakeHttpServer gone([](const ReceivedRequest&, FakeConnection&) {});
    port = gone.port();
  }
  auto backend = NewOpenAiBackend(HttpBackendConfig(BackendKind::kOpenAi, port));
  ASSERT_TRUE(backend.ok());
  auto observer = std::make_shared<RecordingObserver>();
  (*backend)->Generate(Chat(true), observer);
  const absl::Status status = observer->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Payload(status, http::kBeforeResponsePayload), "1");
}

TEST(OpenAiBackend, EmbedsInputsInOrder) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "application/json", R"({"object":"list","data":[
      {"object":"embedding","index":1,"embedding":[3,4]},
      {"object":"embedding","index":0,"embedding":[1,2]}],
      "model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}})"));
  });
  auto backend = OpenAiFor(server);
  EmbedCall call;
  call.request.set_model("text-embedding-3-small");
  call.request.add_inputs("a");
  call.request.add_inputs("b");
  EmbedRecorder recorder;
  backend->Embed(std::move(call), recorder.Callback());
  absl::StatusOr<v1::EmbedResponse> response = recorder.Wait();
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->embeddings_size(), 2);
  EXPECT_EQ(response->embeddings(0).values(1), 2.0f);
  EXPECT_EQ(response->embeddings(1).values(0), 3.0f);
  EXPECT_EQ(response->usage().input_tokens(), 5u);
  EXPECT_EQ(server.requests().at(0).target, "/prefix/v1/embeddings");
}

TEST(OpenAiBackend, TheWrongNumberOfEmbeddingsIsInternal) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "application/json", R"({"data":[{"index":0,"embedding":[1]}]})"));
  });
  auto backend = OpenAiFor(server);
  EmbedCall call;
  call.request.add_inputs("a");
  call.request.add_inputs("b");
  EmbedRecorder recorder;
  backend->Embed(std::move(call), recorder.Callback());
  EXPECT_EQ(recorder.Wait().status().code(), absl::StatusCode::kInternal);
}

// Waits for a CompleteBatch answer.
class BatchRecorder {
 public:
  CompleteBatchCallback Callback() {
    return [this](absl::StatusOr<CompleteBatchResult> result) {
      {
        absl::MutexLock lock(&mu_);
        result_ = std::move(result);
      }
      done_.Notify();
    };
  }
  absl::StatusOr<CompleteBatchResult> Wait() {
    EXPECT_TRUE(done_.WaitForNotificationWithTimeout(kWait)) << "no batch answer";
    absl::MutexLock lock(&mu_);
    return result_;
  }

 private:
  absl::Mutex mu_;
  absl::StatusOr<CompleteBatchResult> result_ ABSL_GUARDED_BY(mu_) = absl::UnknownError("none");
  absl::Notification done_;
};

CompleteBatchCall Batch(std::vector<std::string> prompts) {
  CompleteBatchCall call;
  call.request.set_model("llama");
  call.request.mutable_params()->set_max_tokens(4);
  call.prompts = std::move(prompts);
  return call;
}

TEST(OpenAiBackend, ABatchOfPromptsIsOneCompletionsRequestAnsweredPerPrompt) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "application/json", R"({"object":"text_completion","choices":[
      {"index":1,"text":"B","finish_reason":"length"},{"index":0,"text":"A","finish_reason":"stop"}],
      "usage":{"prompt_tokens":6,"completion_tokens":5,"total_tokens":11}})"));
  });
  auto backend = OpenAiFor(server);
  EXPECT_TRUE(backend->SupportsCompleteBatch());
  BatchRecorder recorder;
  backend->CompleteBatch(Batch({"first", "second"}), recorder.Callback());
  absl::StatusOr<CompleteBatchResult> result = recorder.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->choices.size(), 2u);
  EXPECT_EQ(result->choices[0].text, "A");
  EXPECT_EQ(result->choices[1].text, "B");
  EXPECT_EQ(result->choices[1].finish_reason, v1::FINISH_REASON_LENGTH);
  ASSERT_TRUE(result->usage.has_value());
  EXPECT_EQ(result->usage->input_tokens(), 6u);
  ASSERT_EQ(server.requests().size(), 1u);
  const ReceivedRequest request = server.requests().at(0);
  EXPECT_EQ(request.target, "/prefix/v1/completions");
  EXPECT_EQ(request.Header("accept"), "application/json");
  rapidjson::Document body;
  body.Parse(request.body.c_str());
  ASSERT_TRUE(body["prompt"].IsArray());
  EXPECT_STREQ(body["prompt"][1].GetString(), "second");
  EXPECT_EQ(body["max_tokens"].GetUint(), 4u);
}

TEST(OpenAiBackend, ABatchRefusedOrUnreadableFailsAsAWhole) {
  FakeHttpServer refusing([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(400, "application/json", R"({"error":{"message":"prompt too long"}})"));
  });
  BatchRecorder refused;
  OpenAiFor(refusing)->CompleteBatch(Batch({"a", "b"}), refused.Callback());
  const absl::Status status = refused.Wait().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("prompt too long"));
  EXPECT_EQ(Payload(status, http::kHttpStatusPayload), "400");

  FakeHttpServer streaming(
      [](const ReceivedRequest&, FakeConnection& c) { WriteEventStream(c, GoodStream()); });
  BatchRecorder streamed;
  OpenAiFor(streaming)->CompleteBatch(Batch({"a"}), streamed.Callback());
  EXPECT_EQ(streamed.Wait().status().code(), absl::StatusCode::kInternal);

  FakeHttpServer garbled([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "application/json", R"({"choices":[{"index":7,"text":"x"}]})"));
  });
  BatchRecorder unreadable;
  OpenAiFor(garbled)->CompleteBatch(Batch({"a"}), unreadable.Callback());
  EXPECT_EQ(unreadable.Wait().status().code(), absl::StatusCode::kInternal);
}

TEST(OpenAiBackend, SpeaksTlsWhenTheBaseUrlSaysSo) {
  FakeHttpServer server(
      [](const ReceivedRequest&, FakeConnection& c) { WriteEventStream(c, GoodStream()); },
      /*tls=*/true);
  BackendConfig config = HttpBackendConfig(BackendKind::kOpenAi, server.port());
  config.base_url.tls = true;
  config.base_url.host = "localhost";
  http::HttpClientOptions options;
  options.extra_trusted_ca_pem = server.certificate_pem();
  auto backend = NewOpenAiBackend(config, options);
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto observer = std::make_shared<RecordingObserver>();
  (*backend)->Generate(Chat(true), observer);
  ASSERT_TRUE(observer->Wait().ok());
  EXPECT_EQ(observer->text(), "Hello world");
}

TEST(OpenAiBackend, RejectsAConfigOfAnotherKindOrWithoutHost) {
  BackendConfig config = HttpBackendConfig(BackendKind::kAnthropic, 443);
  EXPECT_EQ(NewOpenAiBackend(config).status().code(), absl::StatusCode::kInvalidArgument);
  config = HttpBackendConfig(BackendKind::kOpenAi, 443);
  config.base_url.host = "";
  EXPECT_EQ(NewOpenAiBackend(config).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tollgate
