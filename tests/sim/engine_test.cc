#include "sim/engine.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "sim/generator.h"
#include "tests/sim/engine_recorder.h"
#include "tests/sim/fake_clock.h"

namespace tollgate::sim {
namespace {

TEST(SimEngine, ZeroTimeScaleAnswersOnTheCallingThreadBeforeSubmitReturns) {
  SimEngine engine(Options(nullptr, /*time_scale=*/0));
  const v1::GenerateRequest request = PromptRequest("what does a token cost?");
  const SimOutput expected = Generate(request);
  Recorder recorder;
  engine.Submit(request, ShapeForModel(kModel), recorder.Callbacks());

  ASSERT_TRUE(recorder.done());
  const Record record = recorder.Get();
  EXPECT_TRUE(record.status.ok());
  ASSERT_EQ(record.chunks.size(), expected.tokens.size());
  std::string expected_text;
  for (const std::string& token : expected.tokens) expected_text += token;
  EXPECT_EQ(record.Text(), expected_text);

  EXPECT_EQ(record.chunks.front().usage().input_tokens(), expected.prompt_tokens);
  EXPECT_EQ(record.chunks.front().usage().source(), v1::USAGE_SOURCE_REPORTED);
  EXPECT_FALSE(record.chunks.back().has_usage());

  EXPECT_TRUE(record.last.text().empty());
  EXPECT_EQ(record.last.finish_reason(), expected.finish_reason);
  EXPECT_EQ(record.last.usage().input_tokens(), expected.prompt_tokens);
  EXPECT_EQ(record.last.usage().output_tokens(), expected.tokens.size());
  EXPECT_EQ(record.last.usage().source(), v1::USAGE_SOURCE_REPORTED);

  const SimEngine::Stats stats = engine.GetStats();
  EXPECT_EQ(stats.prompt_tokens_total, expected.prompt_tokens);
  EXPECT_EQ(stats.generation_tokens_total, expected.tokens.size());
  EXPECT_EQ(stats.requests_total, 1u);
}

TEST(SimEngine, InvalidRequestFailsWithInvalidArgumentWithinSubmit) {
  FakeClock clock;
  SimEngine engine(Options(&clock));
  v1::GenerateRequest request = PromptRequest("hi");
  request.clear_prompt();
  Recorder recorder;
  engine.Submit(request, ShapeForModel(kModel), recorder.Callbacks());
  ASSERT_TRUE(recorder.done());
  EXPECT_EQ(recorder.Get().status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(recorder.Get().chunks.size(), 0u);
}

TEST(SimEngine, SingleRequestFinishesAfterItsPrefillPlusOneDecodeStepPerToken) {
  FakeClock clock;
  clock.SetAutoAdvance();
  const EngineOptions options = Options(&clock, /*time_scale=*/2.0);
  SimEngine engine(options);
  const v1::GenerateRequest request = PromptRequest(std::string(4000, 'x'), 50);
  const absl::Time start = clock.Now();
  Recorder recorder(&clock);
  engine.Submit(request, ShapeForModel(kModel), recorder.Callbacks());
  recorder.WaitDone();

  ASSERT_TRUE(recorder.Get().status.ok());
  EXPECT_EQ(recorder.Get().chunks.size(), Generate(request).tokens.size());
  EXPECT_NEAR(absl::ToDoubleSeconds(recorder.Get().done_at - start), SoloSeconds(options, request),
              1e-6);
  const LatencyModel model(options.gpu, 1, options.mfu);
  const double ttft = 2.0 * (model.PrefillSeconds(ShapeForModel(kModel), 1000) +
                             model.DecodeStepSeconds(ShapeForModel(kModel), 1000));
  EXPECT_NEAR(absl::ToDoubleSeconds(recorder.Get().first_chunk_at - start), ttft, 1e-6);
}

TEST(SimEngine, ConcurrentRequestsShareDecodeStepsAndFinishFarSoonerThanSequentialOnes) {
  FakeClock clock;
  const EngineOptions options = Options(&clock);
  SimEngine engine(options);
  // max_tokens 16 is at most the shortest natural answer: both answers have exactly 16 tokens.
  const v1::GenerateRequest a = PromptRequest("first question", kMinAnswerTokens);
  const v1::GenerateRequest b = PromptRequest("second question", kMinAnswerTokens);
  const absl::Time start = clock.Now();
  Recorder recorder_a(&clock);
  Recorder recorder_b(&clock);
  engine.Submit(a, ShapeForModel(kModel), recorder_a.Callbacks());
  clock.AwaitSleeper();  // a is in its first step; b joins at the next one
  engine.Submit(b, ShapeForModel(kModel), recorder_b.Callbacks());
  const SimEngine::Stats stats = engine.GetStats();
  EXPECT_EQ(stats.running, 1u);
  EXPECT_EQ(stats.waiting, 1u);
  clock.SetAutoAdvance();
  recorder_a.WaitDone();
  recorder_b.WaitDone();

  const double together =
      absl::ToDoubleSeconds(std::max(recorder_a.Get().done_at, recorder_b.Get().done_at) - start);
  EXPECT_EQ(recorder_a.Get().chunks.size(), kMinAnswerTokens);
  EXPECT_EQ(recorder_b.Get().chunks.size(), kMinAnswerTokens);
  // Sharing: 17 decode steps instead of 32.
  const double sequential = SoloSeconds(options, a) + SoloSeconds(options, b);
  EXPECT_LT(together, 0.6 * sequential);
  EXPECT_GT(together, std::max(SoloSeconds(options, a), SoloSeconds(options, b)));
}

TEST(SimEngine, MaxRunningRequestsMakesTheRestWait) {
  FakeClock clock;
  EngineOptions options = Options(&clock);
  options.max_running_requests = 1;
  SimEngine engine(options);
  const v1::GenerateRequest a = PromptRequest("first question", 200);
  const v1::GenerateRequest b = PromptRequest("second question", 200);
  const absl::Time start = clock.Now();
  Recorder recorder_a(&clock);
  Recorder recorder_b(&clock);
  engine.Submit(a, ShapeForModel(kModel), recorder_a.Callbacks());
  engine.Submit(b, ShapeForModel(kModel), recorder_b.Callbacks());
  clock.SetAutoAdvance();
  recorder_a.WaitDone();
  recorder_b.WaitDone();

  const double sequential = SoloSeconds(options, a) + SoloSeconds(options, b);
  EXPECT_NEAR(absl::ToDoubleSeconds(recorder_b.Get().done_at - start), sequential, 1e-6);
}

TEST(SimEngine, CancelPartWayDeliversCancelledAndNoMoreChunks) {
  FakeClock clock;
  SimEngine engine(Options(&clock));
  Recorder recorder(&clock);
  const v1::GenerateRequest request = PromptRequest("cancel me", 100);
  const SimEngine::RequestId id =
      engine.Submit(request, ShapeForModel(kModel), recorder.Callbacks());
  for (int step = 0; step < 3; ++step) clock.FinishOneStep();
  clock.AwaitSleeper();  // the third step's chunk has been delivered
  ASSERT_EQ(recorder.Get().chunks.size(), 3u);

  engine.Cancel(id);
  recorder.WaitDone();
  EXPECT_EQ(recorder.Get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(recorder.Get().last.usage().output_tokens(), 3u);
  EXPECT_EQ(recorder.Get().last.usage().input_tokens(), CountPromptTokens(request));

  clock.SetAutoAdvance();
  engine.Cancel(id);  // finished ids are ignored
  EXPECT_EQ(engine.GetStats().running, 0u);
  EXPECT_EQ(recorder.Get().chunks.size(), 3u);
  EXPECT_EQ(recorder.Get().done_count, 1);
}

TEST(SimEngine, CancelFromWithinAChunkCallbackStopsTheStream) {
  FakeClock clock;
  clock.SetAutoAdvance();
  SimEngine engine(Options(&clock));
  absl::Notification submitted;
  SimEngine::RequestId id = 0;
  Recorder recorder(&clock);
  SimEngine::Callbacks callbacks = recorder.Callbacks();
  int seen = 0;
  callbacks.on_chunk = [&, record = std::move(callbacks.on_chunk)](v1::GenerateResponse chunk) {
    record(std::move(chunk));
    if (++seen == 2) {
      submitted.WaitForNotification();
      engine.Cancel(id);
    }
  };
  id = engine.Submit(PromptRequest("stop early", 100), ShapeForModel(kModel), std::move(callbacks));
  submitted.Notify();
  recorder.WaitDone();
  EXPECT_EQ(recorder.Get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(recorder.Get().chunks.size(), 2u);
}

TEST(SimEngine, DestructorFailsPendingRequestsWithUnavailable) {
  FakeClock clock;
  EngineOptions options = Options(&clock);
  options.max_running_requests = 1;
  auto engine = std::make_unique<SimEngine>(options);
  Recorder running(&clock);
  Recorder waiting(&clock);
  engine->Submit(PromptRequest("one"), ShapeForModel(kModel), running.Callbacks());
  engine->Submit(PromptRequest("two"), ShapeForModel(kModel), waiting.Callbacks());
  clock.FinishOneStep();
  clock.AwaitSleeper();
  engine.reset();

  EXPECT_EQ(running.Get().status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(running.Get().last.usage().output_tokens(), 1u);
  EXPECT_EQ(waiting.Get().status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(waiting.Get().last.usage().input_tokens(), 0u);
  EXPECT_EQ(waiting.Get().chunks.size(), 0u);
}

TEST(SimEngine, EmbedTakesThePrefillOfAllInputsAndReportsTheirTokens) {
  FakeClock clock;
  clock.SetAutoAdvance();
  const EngineOptions options = Options(&clock, /*time_scale=*/3.0);
  SimEngine engine(options);
  v1::EmbedRequest request;
  request.set_model("llama-3-8b");
  request.add_inputs(std::string(400, 'a'));  // 100 tokens
  request.add_inputs("tiny");                 // 1 token
  const absl::Time start = clock.Now();
  const auto [result, done_at] = RunEmbed(engine, clock, request);

  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->embeddings_size(), 2);
  EXPECT_EQ(result->embeddings(0).values_size(), static_cast<int>(kEmbeddingDimension));
  EXPECT_EQ(result->usage().input_tokens(), 101u);
  EXPECT_EQ(result->usage().source(), v1::USAGE_SOURCE_REPORTED);
  const LatencyModel model(options.gpu, 1, options.mfu);
  EXPECT_NEAR(absl::ToDoubleSeconds(done_at - start),
              3.0 * model.PrefillSeconds(ShapeForModel("llama-3-8b"), 101), 1e-6);
  EXPECT_EQ(engine.GetStats().prompt_tokens_total, 101u);
}

}  // namespace
}  // namespace tollgate::sim
