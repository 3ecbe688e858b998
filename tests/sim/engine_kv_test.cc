// The continuous-batching engine's KV cache: admission, recompute preemption and its accounting,
// on a fake clock.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/engine.h"
#include "sim/generator.h"
#include "tests/sim/engine_recorder.h"
#include "tests/sim/fake_clock.h"

namespace tollgate::sim {
namespace {

using ::testing::HasSubstr;

// Llama-3-8B holds 128 KiB of KV per token: 2 MiB per 16-token block.
constexpr uint64_t kBlockBytes = SimEngine::kKvBlockTokens * 131072;

// 60 prompt tokens (240 bytes) and exactly kMinAnswerTokens (16) output tokens: 4 blocks when
// admitted, 5 from its 5th token on.
v1::GenerateRequest SixtyTokenPrompt(char fill) {
  return PromptRequest(std::string(240, fill), kMinAnswerTokens);
}

EngineOptions WithCapacity(FakeClock* clock, uint64_t blocks) {
  EngineOptions options = Options(clock);
  options.kv_capacity_bytes = blocks * kBlockBytes;
  return options;
}

// Submits `requests` as one batch (so they reach the same step) and runs them to their end.
std::vector<Record> RunBatch(SimEngine& engine, FakeClock& clock,
                             const std::vector<v1::GenerateRequest>& requests) {
  std::vector<std::unique_ptr<Recorder>> recorders;
  std::vector<SimEngine::Callbacks> callbacks;
  for (size_t i = 0; i < requests.size(); ++i) {
    recorders.push_back(std::make_unique<Recorder>(&clock));
    SimEngine::Callbacks cb = recorders.back()->Callbacks();
    // The KV cache never holds more than its capacity, seen from any chunk.
    cb.on_chunk = [&engine, record = std::move(cb.on_chunk)](v1::GenerateResponse chunk) {
      const uint64_t capacity = engine.kv_capacity_bytes();
      if (capacity > 0) {
        EXPECT_LE(engine.GetStats().kv_cache_bytes, capacity);
      }
      record(std::move(chunk));
    };
    callbacks.push_back(std::move(cb));
  }
  engine.SubmitBatch(requests, ShapeForModel(kModel), std::move(callbacks));
  clock.SetAutoAdvance();
  std::vector<Record> records;
  for (const std::unique_ptr<Recorder>& recorder : recorders) {
    recorder->WaitDone();
    records.push_back(recorder->Get());
  }
  return records;
}

TEST(SimEngineKv, PreemptsTheLatestRequestWhenANextTokenWouldNotFitAndRecomputesItLater) {
  FakeClock clock;
  const EngineOptions options = WithCapacity(&clock, 8);
  SimEngine engine(options);
  const v1::GenerateRequest a = SixtyTokenPrompt('a');
  const v1::GenerateRequest b = SixtyTokenPrompt('b');
  const std::vector<Record> records = RunBatch(engine, clock, {a, b});

  // Steps 0-3 hold 4 + 4 blocks; at step 4 both would need 5, so b (admitted last) goes back to
  // the queue and can come back only when a is done.
  EXPECT_EQ(engine.GetStats().num_preemptions, 1u);
  EXPECT_EQ(engine.GetStats().kv_cache_bytes, 0u);
  const LatencyModel model(options.gpu, 1, options.mfu);
  const ModelShape shape = ShapeForModel(kModel);
  double after_a = model.PrefillSeconds(shape, 60 + 4);  // b's prompt and its 4 tokens again
  for (int emitted = 4; emitted < 16; ++emitted) {
    after_a += model.DecodeStepSeconds(shape, 60 + emitted);
  }
  EXPECT_NEAR(absl::ToDoubleSeconds(records[1].done_at - records[0].done_at), after_a, 1e-6);
}

TEST(SimEngineKv, APreemptedRequestAnswersExactlyAsAnUnpreemptedOne) {
  FakeClock small_clock;
  SimEngine small(WithCapacity(&small_clock, 8));
  FakeClock unbounded_clock;
  SimEngine unbounded(Options(&unbounded_clock));
  const std::vector<v1::GenerateRequest> requests = {SixtyTokenPrompt('a'), SixtyTokenPrompt('b')};
  const std::vector<Record> preempted = RunBatch(small, small_clock, requests);
  const std::vector<Record> plain = RunBatch(unbounded, unbounded_clock, requests);
  ASSERT_EQ(small.GetStats().num_preemptions, 1u);
  ASSERT_EQ(unbounded.GetStats().num_preemptions, 0u);

  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(preempted[i].status.ok());
    EXPECT_EQ(preempted[i].done_count, 1);
    EXPECT_EQ(preempted[i].Text(), plain[i].Text());
    ASSERT_EQ(preempted[i].chunks.size(), 16u);
    EXPECT_EQ(preempted[i].chunks[0].usage().input_tokens(), 60u);
    for (size_t c = 1; c < preempted[i].chunks.size(); ++c) {
      EXPECT_FALSE(preempted[i].chunks[c].has_usage());
    }
    EXPECT_EQ(preempted[i].last.usage().input_tokens(), 60u);
    EXPECT_EQ(preempted[i].last.usage().output_tokens(), 16u);
    EXPECT_EQ(preempted[i].last.finish_reason(), plain[i].last.finish_reason());
  }
  // Recomputation is not counted as more prompt or more requests.
  EXPECT_EQ(small.GetStats().prompt_tokens_total, 120u);
  EXPECT_EQ(small.GetStats().generation_tokens_total, 32u);
  EXPECT_EQ(small.GetStats().requests_total, 2u);
}

TEST(SimEngineKv, NeverPreemptsWhenTheCapacityHoldsEveryAnswer) {
  FakeClock clock;
  const EngineOptions options = WithCapacity(&clock, 10);  // 5 + 5 blocks at the end
  SimEngine engine(options);
  FakeClock unbounded_clock;
  SimEngine unbounded(Options(&unbounded_clock));
  const std::vector<v1::GenerateRequest> requests = {SixtyTokenPrompt('a'), SixtyTokenPrompt('b')};
  const absl::Time start = clock.Now();
  const std::vector<Record> records = RunBatch(engine, clock, requests);
  const absl::Time unbounded_start = unbounded_clock.Now();
  const std::vector<Record> plain = RunBatch(unbounded, unbounded_clock, requests);
  EXPECT_EQ(engine.GetStats().num_preemptions, 0u);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(records[i].done_at - start, plain[i].done_at - unbounded_start);
  }

  FakeClock large_clock;
  EngineOptions large = Options(&large_clock);
  large.kv_capacity_bytes = static_cast<uint64_t>(
      KvCapacityBytesFor(large.gpu, large.gpu_count, ShapeForModel("llama-3-8b")));
  SimEngine engine_large(large);
  std::vector<v1::GenerateRequest> many;
  many.reserve(32);
  for (int i = 0; i < 32; ++i) {
    many.push_back(PromptRequest(absl::StrCat(i, std::string(4000, 'x')), 200));
  }
  for (const Record& record : RunBatch(engine_large, large_clock, many)) {
    EXPECT_TRUE(record.status.ok());
  }
  EXPECT_EQ(engine_large.GetStats().num_preemptions, 0u);
}

TEST(SimEngineKv, AWaitingRequestIsAdmittedOnlyWhenItsPromptFits) {
  FakeClock clock;
  const EngineOptions options = WithCapacity(&clock, 8);
  SimEngine engine(options);
  // 100 prompt tokens: 7 blocks with its first token, 8 at its end; b's 4 do not fit beside it.
  const v1::GenerateRequest a = PromptRequest(std::string(400, 'a'), kMinAnswerTokens);
  const v1::GenerateRequest b = SixtyTokenPrompt('b');
  Recorder recorder_a(&clock);
  Recorder recorder_b(&clock);
  std::vector<SimEngine::Callbacks> callbacks;
  callbacks.push_back(recorder_a.Callbacks());
  callbacks.push_back(recorder_b.Callbacks());
  engine.SubmitBatch({a, b}, ShapeForModel(kModel), std::move(callbacks));
  clock.AwaitSleeper();
  const SimEngine::Stats stats = engine.GetStats();
  EXPECT_EQ(stats.running, 1u);
  EXPECT_EQ(stats.waiting, 1u);
  EXPECT_EQ(stats.kv_cache_bytes, 7 * kBlockBytes);  // 100 prompt tokens
  clock.SetAutoAdvance();
  recorder_a.WaitDone();
  recorder_b.WaitDone();

  EXPECT_EQ(engine.GetStats().num_preemptions, 0u);
  EXPECT_NEAR(absl::ToDoubleSeconds(recorder_b.Get().done_at - recorder_a.Get().done_at),
              SoloSeconds(options, b), 1e-6);
}

TEST(SimEngineKv, RefusesARequestThatCouldNotFitEvenAlone) {
  FakeClock clock;
  SimEngine engine(WithCapacity(&clock, 4));  // 64 tokens; 60 + 16 need 5 blocks
  Recorder recorder(&clock);
  engine.Submit(SixtyTokenPrompt('a'), ShapeForModel(kModel), recorder.Callbacks());
  ASSERT_TRUE(recorder.done());
  EXPECT_EQ(recorder.Get().status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(recorder.Get().status.message(), HasSubstr("KV cache"));
  EXPECT_EQ(engine.GetStats().requests_total, 0u);
}

TEST(SimEngineKv, CancellingAPreemptedRequestReportsTheTokensItHadSpent) {
  FakeClock clock;
  SimEngine engine(WithCapacity(&clock, 8));
  Recorder recorder_a(&clock);
  Recorder recorder_b(&clock);
  std::vector<SimEngine::Callbacks> callbacks;
  callbacks.push_back(recorder_a.Callbacks());
  callbacks.push_back(recorder_b.Callbacks());
  const std::vector<SimEngine::RequestId> ids = engine.SubmitBatch(
      {SixtyTokenPrompt('a'), SixtyTokenPrompt('b')}, ShapeForModel(kModel), std::move(callbacks));
  for (int step = 0; step < 4; ++step) clock.FinishOneStep();
  clock.AwaitSleeper();  // step 4, which preempted b
  SimEngine::Stats stats = engine.GetStats();
  EXPECT_EQ(stats.num_preemptions, 1u);
  EXPECT_EQ(stats.running, 1u);
  EXPECT_EQ(stats.waiting, 1u);
  EXPECT_EQ(stats.kv_cache_bytes, 4 * kBlockBytes);  // a's 64 tokens

  engine.Cancel(ids[1]);
  recorder_b.WaitDone();
  EXPECT_EQ(recorder_b.Get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(recorder_b.Get().last.usage().input_tokens(), 60u);
  EXPECT_EQ(recorder_b.Get().last.usage().output_tokens(), 4u);
  clock.SetAutoAdvance();
  recorder_a.WaitDone();
  EXPECT_TRUE(recorder_a.Get().status.ok());
  EXPECT_EQ(engine.GetStats().num_preemptions, 1u);
}

}  // namespace
}  // namespace tollgate::sim
