// The engine's static-batch mode on a fake clock: a call of B items takes
// t_1 × (1 + f × (B − 1)), and calls run one at a time.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/engine.h"
#include "sim/generator.h"
#include "tests/sim/engine_recorder.h"
#include "tests/sim/fake_clock.h"

namespace tollgate::sim {
namespace {

using ::testing::HasSubstr;

EngineOptions StaticOptions(FakeClock* clock, double time_scale = 1.0) {
  EngineOptions options = Options(clock, time_scale);
  options.batch_mode = BatchMode::kStatic;
  options.static_per_item_fraction = 0.05;
  return options;
}

double Stretch(const EngineOptions& options, int batch_size) {
  return 1 + options.static_per_item_fraction * (batch_size - 1);
}

// Virtual seconds from a request's solo start to its first token: its prefill and one decode step.
double FirstTokenSeconds(const EngineOptions& options, const v1::GenerateRequest& request) {
  const LatencyModel model(options.gpu, options.gpu_count, options.mfu);
  const ModelShape shape = ShapeForModel(request.model());
  const uint32_t prompt_tokens = CountPromptTokens(request);
  return (model.PrefillSeconds(shape, prompt_tokens) +
          model.DecodeStepSeconds(shape, prompt_tokens)) *
         options.time_scale;
}

// One recorder per request, submitted as one SubmitBatch.
class BatchRecorder {
 public:
  BatchRecorder(SimEngine& engine, Clock* clock, const std::vector<v1::GenerateRequest>& requests) {
    std::vector<SimEngine::Callbacks> callbacks;
    for (size_t i = 0; i < requests.size(); ++i) {
      recorders_.push_back(std::make_unique<Recorder>(clock));
      callbacks.push_back(recorders_.back()->Callbacks());
    }
    ids_ = engine.SubmitBatch(requests, ShapeForModel(kModel), std::move(callbacks));
  }
  Recorder& operator[](size_t i) { return *recorders_[i]; }
  SimEngine::RequestId id(size_t i) const { return ids_[i]; }
  void WaitDone() {
    for (const std::unique_ptr<Recorder>& recorder : recorders_) recorder->WaitDone();
  }

 private:
  std::vector<std::unique_ptr<Recorder>> recorders_;
  std::vector<SimEngine::RequestId> ids_;
};

TEST(SimEngineStatic, ACallOfBItemsTakesItsLongestItemsSoloTimeStretchedByOnePlusFTimesBMinusOne) {
  FakeClock clock;
  clock.SetAutoAdvance();
  const EngineOptions options = StaticOptions(&clock, /*time_scale=*/2.0);
  SimEngine engine(options);
  const std::vector<v1::GenerateRequest> requests = {
      PromptRequest(std::string(400, 'a'), 40), PromptRequest(std::string(4000, 'b'), 20),
      PromptRequest("c", 300), PromptRequest(std::string(40, 'd'), 16)};
  const absl::Time start = clock.Now();
  BatchRecorder batch(engine, &clock, requests);
  batch.WaitDone();

  const double stretch = Stretch(options, 4);
  double longest = 0;
  absl::Time call_end = start;
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(i);
    const Record record = batch[i].Get();
    ASSERT_TRUE(record.status.ok());
    const SimOutput expected = Generate(requests[i]);
    ASSERT_EQ(record.chunks.size(), expected.tokens.size());
    EXPECT_EQ(record.last.usage().input_tokens(), expected.prompt_tokens);
    EXPECT_EQ(record.last.usage().output_tokens(), expected.tokens.size());
    // Each item on its own solo schedule, stretched.
    EXPECT_NEAR(absl::ToDoubleSeconds(record.done_at - start),
                stretch * SoloSeconds(options, requests[i]), 1e-6);
    EXPECT_NEAR(absl::ToDoubleSeconds(record.first_chunk_at - start),
                stretch * FirstTokenSeconds(options, requests[i]), 1e-6);
    longest = std::max(longest, SoloSeconds(options, requests[i]));
    call_end = std::max(call_end, record.done_at);
  }
  // t(B) = t_1 × (1 + f × (B − 1)) with t_1 the longest item's solo time.
  EXPECT_NEAR(absl::ToDoubleSeconds(call_end - start), longest * (1 + 0.05 * 3), 1e-6);
  const SimEngine::Stats stats = engine.GetStats();
  EXPECT_EQ(stats.requests_total, 4u);
  EXPECT_EQ(stats.running, 0u);
}

TEST(SimEngineStatic, CallsRunOneAtATimeInArrivalOrder) {
  FakeClock clock;
  const EngineOptions options = StaticOptions(&clock);
  SimEngine engine(options);
  const v1::GenerateRequest a = PromptRequest("first call", 30);
  const v1::GenerateRequest b = PromptRequest("second call, item one", 50);
  const v1::GenerateRequest c = PromptRequest("second call, item two", 20);
  const v1::GenerateRequest d = PromptRequest("third call", 10);
  const absl::Time start = clock.Now();
  Recorder recorder_a(&clock);
  engine.Submit(a, ShapeForModel(kModel), recorder_a.Callbacks());
  BatchRecorder second(engine, &clock, {b, c});
  Recorder recorder_d(&clock);
  engine.Submit(d, ShapeForModel(kModel), recorder_d.Callbacks());
  clock.AwaitSleeper();
  const SimEngine::Stats stats = engine.GetStats();
  EXPECT_EQ(stats.running, 1u);
  EXPECT_EQ(stats.waiting, 3u);
  EXPECT_GT(stats.kv_cache_bytes, 0u);
  clock.SetAutoAdvance();
  recorder_a.WaitDone();
  second.WaitDone();
  recorder_d.WaitDone();

  const double first_end = SoloSeconds(options, a);
  EXPECT_NEAR(absl::ToDoubleSeconds(recorder_a.Get().done_at - start), first_end, 1e-6);
  // The second call starts when the first ends, and holds the server until its longest item ends.
  const double stretch = Stretch(options, 2);
  EXPECT_NEAR(absl::ToDoubleSeconds(second[0].Get().first_chunk_at - start),
              first_end + stretch * FirstTokenSeconds(options, b), 1e-6);
  EXPECT_NEAR(absl::ToDoubleSeconds(second[1].Get().done_at - start),
              first_end + stretch * SoloSeconds(options, c), 1e-6);
  const double second_end =
      first_end + stretch * std::max(SoloSeconds(options, b), SoloSeconds(options, c));
  EXPECT_NEAR(absl::ToDoubleSeconds(second[0].Get().done_at - start), second_end, 1e-6);
  EXPECT_NEAR(absl::ToDoubleSeconds(recorder_d.Get().done_at - start),
              second_end + SoloSeconds(options, d), 1e-6);
}

TEST(SimEngineStatic, AnEmbedCallOfBInputsTakesItsLongestInputsPrefillStretched) {
  FakeClock clock;
  clock.SetAutoAdvance();
  const EngineOptions options = StaticOptions(&clock, /*time_scale=*/3.0);
  SimEngine engine(options);
  v1::EmbedRequest request;
  request.set_model("llama-3-8b");
  request.add_inputs(std::string(400, 'a'));  // 100 tokens
  request.add_inputs("tiny");                 // 1 token
  request.add_inputs(std::string(40, 'c'));   // 10 tokens
  const absl::Time start = clock.Now();
  const auto [result, done_at] = RunEmbed(engine, clock, request);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->embeddings_size(), 3);
  EXPECT_EQ(result->usage().input_tokens(), 111u);
  const LatencyModel model(options.gpu, 1, options.mfu);
  EXPECT_NEAR(absl::ToDoubleSeconds(done_at - start),
              3.0 * Stretch(options, 3) * model.PrefillSeconds(ShapeForModel("llama-3-8b"), 100),
              1e-6);
}

TEST(SimEngineStatic, RefusesCallsOfMoreThanMaxStaticBatchInputs) {
  FakeClock clock;
  EngineOptions options = StaticOptions(&clock);
  options.max_static_batch = 2;
  SimEngine engine(options);
  const std::vector<v1::GenerateRequest> three = {PromptRequest("a"), PromptRequest("b"),
                                                  PromptRequest("c")};
  BatchRecorder batch(engine, &clock, three);
  for (size_t i = 0; i < three.size(); ++i) {
    ASSERT_TRUE(batch[i].done());
    EXPECT_EQ(batch[i].Get().status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(batch[i].Get().status.message(), HasSubstr("static batch limit of 2"));
  }
  v1::EmbedRequest embed;
  embed.set_model("e5");
  for (const char* input : {"a", "b", "c"}) embed.add_inputs(input);
  EXPECT_EQ(RunEmbed(engine, clock, embed).response.status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine.GetStats().requests_total, 0u);

  // Continuous mode has no such limit.
  EngineOptions continuous = Options(nullptr, /*time_scale=*/0);
  continuous.max_static_batch = 2;
  SimEngine continuous_engine(continuous);
  BatchRecorder accepted(continuous_engine, nullptr, three);
  for (size_t i = 0; i < three.size(); ++i) EXPECT_TRUE(accepted[i].Get().status.ok());
}

TEST(SimEngineStatic, ACancelledItemEndsAtOnceButItsCallHoldsTheServerToItsEnd) {
  FakeClock clock;
  const EngineOptions options = StaticOptions(&clock);
  SimEngine engine(options);
  const v1::GenerateRequest longer = PromptRequest(std::string(4000, 'l'), 200);
  const v1::GenerateRequest shorter = PromptRequest("short", kMinAnswerTokens);
  const v1::GenerateRequest next = PromptRequest("next call", 20);
  ASSERT_GT(SoloSeconds(options, longer), SoloSeconds(options, shorter));
  const absl::Time start = clock.Now();
  BatchRecorder batch(engine, &clock, {longer, shorter});
  Recorder recorder_next(&clock);
  engine.Submit(next, ShapeForModel(kModel), recorder_next.Callbacks());
  clock.AwaitSleeper();
  engine.Cancel(batch.id(0));
  batch[0].WaitDone();
  EXPECT_EQ(batch[0].Get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(batch[0].Get().last.usage().input_tokens(), 1000u);
  EXPECT_EQ(batch[0].Get().last.usage().output_tokens(), 0u);
  EXPECT_EQ(batch[0].Get().done_at, start);
  clock.SetAutoAdvance();
  batch[1].WaitDone();
  recorder_next.WaitDone();

  const double stretch = Stretch(options, 2);
  EXPECT_NEAR(absl::ToDoubleSeconds(batch[1].Get().done_at - start),
              stretch * SoloSeconds(options, shorter), 1e-6);
  EXPECT_NEAR(absl::ToDoubleSeconds(recorder_next.Get().done_at - start),
              stretch * SoloSeconds(options, longer) + SoloSeconds(options, next), 1e-6);
}

TEST(SimEngineStatic, AStaticCallMustHoldAllItsItemsKvAtOnce) {
  FakeClock clock;
  EngineOptions options = StaticOptions(&clock);
  // 60 + 16 tokens need 5 blocks each; 8 blocks hold one such item but not two.
  options.kv_capacity_bytes = 8 * SimEngine::kKvBlockTokens * 131072;
  SimEngine engine(options);
  const v1::GenerateRequest item = PromptRequest(std::string(240, 'x'), kMinAnswerTokens);
  BatchRecorder pair(engine, &clock, {item, item});
  ASSERT_TRUE(pair[0].done());
  EXPECT_EQ(pair[0].Get().status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pair[0].Get().status.message(), HasSubstr("KV cache"));
  BatchRecorder single(engine, &clock, {item});
  clock.SetAutoAdvance();
  single.WaitDone();
  EXPECT_TRUE(single[0].Get().status.ok());
}

TEST(SimEngineStatic, ZeroTimeScaleAnswersABatchOnTheCallingThread) {
  EngineOptions options = StaticOptions(nullptr, /*time_scale=*/0);
  SimEngine engine(options);
  const std::vector<v1::GenerateRequest> requests = {PromptRequest("a", 20),
                                                     PromptRequest("b", 20)};
  BatchRecorder batch(engine, nullptr, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(batch[i].done());
    EXPECT_EQ(batch[i].Get().chunks.size(), Generate(requests[i]).tokens.size());
  }
  EXPECT_EQ(engine.GetStats().requests_total, 2u);
}

}  // namespace
}  // namespace tollgate::sim
