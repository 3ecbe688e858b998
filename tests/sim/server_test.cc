#include "sim/server.h"

#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "sim/generator.h"
#include "tests/sim/fake_clock.h"

namespace tollgate::sim {
namespace {

v1::GenerateRequest ChatRequest(const std::string& content, uint32_t max_tokens) {
  v1::GenerateRequest request;
  request.set_model("llama-3-8b-instruct");
  v1::Message* message = request.mutable_chat()->add_messages();
  message->set_role("user");
  message->set_content(content);
  request.mutable_params()->set_max_tokens(max_tokens);
  return request;
}

EngineOptions A100Options(double time_scale) {
  EngineOptions options;
  options.gpu = *FindGpu("a100-80gb");
  options.time_scale = time_scale;
  return options;
}

// An engine, the service and a server on a free local port, with a client stub.
class Harness {
 public:
  explicit Harness(double time_scale) : Harness(A100Options(time_scale)) {}
  explicit Harness(EngineOptions options) {
    engine_ = std::make_unique<SimEngine>(options);
    service_ = std::make_unique<SimService>(engine_.get());
    absl::StatusOr<SimServer> server = StartSimServer("127.0.0.1:0", service_.get());
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return;
    server_ = *std::move(server);
    stub_ = v1::Inference::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_.port),
                                                       grpc::InsecureChannelCredentials()));
  }
  ~Harness() {
    if (server_.server != nullptr) server_.server->Shutdown();
  }

  SimEngine& engine() { return *engine_; }
  grpc::Server& server() { return *server_.server; }
  v1::Inference::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<SimEngine> engine_;
  std::unique_ptr<SimService> service_;
  SimServer server_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

struct StreamResult {
  std::vector<v1::GenerateResponse> messages;
  grpc::Status status;
};

StreamResult ReadStream(v1::Inference::Stub& stub, const v1::GenerateRequest& request) {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub.GenerateStream(&context, request);
  StreamResult result;
  v1::GenerateResponse message;
  while (reader->Read(&message)) result.messages.push_back(message);
  result.status = reader->Finish();
  return result;
}

// Waits (a wait, not a timing assertion) for the server to pass cancels on to the engine and the
// engine to drain; gives up after 10 s. Returns the last stats seen.
SimEngine::Stats WaitUntilIdle(const SimEngine& engine) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  SimEngine::Stats stats = engine.GetStats();
  while (stats.running + stats.waiting > 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
    stats = engine.GetStats();
  }
  return stats;
}

// Instant answers (time_scale 0) and answers paced by the engine thread on the real clock.
class SimServiceTest : public testing::TestWithParam<double> {
 protected:
  Harness harness_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(TimeScales, SimServiceTest, testing::Values(0.0, 0.001));

TEST_P(SimServiceTest, StreamedDeltasConcatenateToTheUnaryTextAndEndWithUsage) {
  const v1::GenerateRequest request = ChatRequest("what will this cost me?", 300);
  grpc::ClientContext context;
  v1::GenerateResponse unary;
  ASSERT_TRUE(harness_.stub().Generate(&context, request, &unary).ok());
  const SimOutput expected = Generate(request);
  EXPECT_EQ(unary.backend(), "tollgate-sim");
  EXPECT_EQ(unary.finish_reason(), expected.finish_reason);
  EXPECT_EQ(unary.usage().input_tokens(), CountPromptTokens(request));
  EXPECT_EQ(unary.usage().output_tokens(), expected.tokens.size());
  EXPECT_EQ(unary.usage().source(), v1::USAGE_SOURCE_REPORTED);

  const StreamResult stream = ReadStream(harness_.stub(), request);
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  ASSERT_EQ(stream.messages.size(), expected.tokens.size() + 1);
  std::string text;
  for (const v1::GenerateResponse& message : stream.messages) text += message.text();
  EXPECT_EQ(text, unary.text());
  EXPECT_EQ(stream.messages.front().usage().input_tokens(), CountPromptTokens(request));
  const v1::GenerateResponse& last = stream.messages.back();
  EXPECT_TRUE(last.text().empty());
  EXPECT_EQ(last.finish_reason(), unary.finish_reason());
  EXPECT_EQ(last.usage().input_tokens(), unary.usage().input_tokens());
  EXPECT_EQ(last.usage().output_tokens(), unary.usage().output_tokens());
  EXPECT_EQ(last.backend(), "tollgate-sim");
}

TEST_P(SimServiceTest, EmbedReturnsOneUnitVectorPerInputWithReportedUsage) {
  v1::EmbedRequest request;
  request.set_model("llama-3-8b");
  request.add_inputs("first input");  // 11 bytes: 3 tokens
  request.add_inputs("second");       // 6 bytes: 2 tokens
  grpc::ClientContext context;
  v1::EmbedResponse response;
  ASSERT_TRUE(harness_.stub().Embed(&context, request, &response).ok());
  ASSERT_EQ(response.embeddings_size(), 2);
  for (const v1::Embedding& embedding : response.embeddings()) {
    ASSERT_EQ(embedding.values_size(), static_cast<int>(kEmbeddingDimension));
    double norm_squared = 0;
    for (float value : embedding.values()) norm_squared += static_cast<double>(value) * value;
    EXPECT_NEAR(std::sqrt(norm_squared), 1.0, 1e-5);
  }
  EXPECT_EQ(response.usage().input_tokens(), 5u);
  EXPECT_EQ(response.usage().source(), v1::USAGE_SOURCE_REPORTED);
  EXPECT_EQ(response.backend(), "tollgate-sim");
}

TEST_P(SimServiceTest, RequestWithoutInputFailsWithInvalidArgument) {
  v1::GenerateRequest request;
  request.set_model("llama-3-8b");
  grpc::ClientContext context;
  v1::GenerateResponse response;
  EXPECT_EQ(harness_.stub().Generate(&context, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const StreamResult stream = ReadStream(harness_.stub(), request);
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(stream.messages.empty());

  v1::EmbedRequest embed;
  embed.set_model("llama-3-8b");
  grpc::ClientContext embed_context;
  v1::EmbedResponse embed_response;
  EXPECT_EQ(harness_.stub().Embed(&embed_context, embed, &embed_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(SimServiceTest, ConcurrentStreamsEachReceiveTheirOwnAnswer) {
  constexpr int kStreams = 8;
  std::vector<std::string> texts(kStreams);
  std::vector<grpc::Status> statuses(kStreams);
  std::vector<std::thread> clients;
  clients.reserve(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&, i] {
      const StreamResult stream =
          ReadStream(harness_.stub(), ChatRequest(absl::StrCat("client ", i), 64));
      statuses[i] = stream.status;
      for (const v1::GenerateResponse& message : stream.messages) texts[i] += message.text();
    });
  }
  for (std::thread& client : clients) client.join();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    std::string expected;
    for (const std::string& token : Generate(ChatRequest(absl::StrCat("client ", i), 64)).tokens) {
      expected += token;
    }
    EXPECT_EQ(texts[i], expected) << "stream " << i;
  }
}

TEST_P(SimServiceTest, StreamsCancelledAtAnyPointEndAndReleaseTheEngine) {
  constexpr int kStreams = 8;
  std::vector<grpc::StatusCode> codes(kStreams);
  std::vector<std::thread> clients;
  clients.reserve(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&, i] {
      grpc::ClientContext context;
      std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
          harness_.stub().GenerateStream(&context, ChatRequest(absl::StrCat("client ", i), 64));
      v1::GenerateResponse message;
      for (int read = 0; read < 2 * i && reader->Read(&message); ++read) {
      }
      context.TryCancel();
      while (reader->Read(&message)) {
      }
      codes[i] = reader->Finish().error_code();
    });
  }
  for (std::thread& client : clients) client.join();
  for (grpc::StatusCode code : codes) {
    EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::CANCELLED) << code;
  }
  const SimEngine::Stats stats = WaitUntilIdle(harness_.engine());
  EXPECT_EQ(stats.running, 0u);
  EXPECT_EQ(stats.waiting, 0u);
}

TEST_P(SimServiceTest, HealthServiceIsEnabled) {
  EXPECT_NE(harness_.server().GetHealthCheckService(), nullptr);
}

TEST(SimService, ClientCancelStopsTheEngineRequest) {
  Harness harness(/*time_scale=*/1.0);  // about 8 ms per token: far longer than the test
  v1::GenerateRequest request;
  for (int i = 0;; ++i) {  // a request whose answer is long
    request = ChatRequest(absl::StrCat("long answer ", i), kMaxTokensLimit);
    if (Generate(request).tokens.size() > 300) break;
  }
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      harness.stub().GenerateStream(&context, request);
  v1::GenerateResponse message;
  ASSERT_TRUE(reader->Read(&message));
  ASSERT_TRUE(reader->Read(&message));
  context.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  const SimEngine::Stats stats = WaitUntilIdle(harness.engine());
  EXPECT_EQ(stats.running, 0u);
  EXPECT_LT(stats.generation_tokens_total, 300u);
}

TEST(SimService, StaticModeServesEveryRpcThroughTheSerialQueue) {
  FakeClock clock;
  clock.SetAutoAdvance();
  EngineOptions options = A100Options(/*time_scale=*/1.0);
  options.batch_mode = BatchMode::kStatic;
  options.max_static_batch = 2;
  options.clock = &clock;
  Harness harness(options);
  grpc::ClientContext context;
  v1::GenerateResponse response;
  ASSERT_TRUE(harness.stub().Generate(&context, ChatRequest("static", 8), &response).ok());
  EXPECT_EQ(response.usage().output_tokens(), 8u);
  StreamResult stream = ReadStream(harness.stub(), ChatRequest("static", 8));
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  EXPECT_EQ(stream.messages.back().usage().output_tokens(), 8u);

  v1::EmbedRequest embed;
  embed.set_model("e5");
  embed.add_inputs("one");
  embed.add_inputs("two");
  grpc::ClientContext embed_context;
  v1::EmbedResponse embed_response;
  ASSERT_TRUE(harness.stub().Embed(&embed_context, embed, &embed_response).ok());
  embed.add_inputs("three");  // B = 3 > max_static_batch
  grpc::ClientContext refused_context;
  EXPECT_EQ(harness.stub().Embed(&refused_context, embed, &embed_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(harness.engine().GetStats().requests_total, 3u);
}

}  // namespace
}  // namespace tollgate::sim
