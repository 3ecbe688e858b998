#include "proxy/backends/sim/sim_backend.h"

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

// Holds the last reference to the backend and drops it when the call finishes, as a request on a
// backend retired by a reload does.
class LastOwner final : public GenerateObserver {
 public:
  void OnMessage(const v1::GenerateResponse& message) override {
    if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) final_seen = true;
  }
  void OnDone(const absl::Status& s) override {
    status = s;
    backend.reset();
    done.Notify();
  }
  std::shared_ptr<Backend> backend;
  bool final_seen = false;
  absl::Status status;
  absl::Notification done;
};

v1::GenerateRequest Prompt(uint32_t max_tokens) {
  v1::GenerateRequest request;
  request.set_model("llama-3-8b");
  request.set_prompt("hello");
  request.mutable_params()->set_max_tokens(max_tokens);
  return request;
}

TEST(SimBackend, SurvivesLosingItsLastReferenceOnTheEngineThread) {
  SimConfig config;
  config.time_scale = 0.001;  // real engine thread, microseconds per step
  auto backend = NewSimBackend("sim", config, {});
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto observer = std::make_shared<LastOwner>();
  observer->backend = std::shared_ptr<Backend>(std::move(*backend));
  GenerateCall call;
  call.request = Prompt(4);
  observer->backend->Generate(std::move(call), observer);
  observer->done.WaitForNotification();
  EXPECT_TRUE(observer->status.ok()) << observer->status;
  EXPECT_TRUE(observer->final_seen);
}

TEST(SimBackend, InstantModeAnswersBeforeGenerateReturns) {
  SimConfig config;
  config.time_scale = 0;
  auto backend = NewSimBackend("sim", config, {});
  ASSERT_TRUE(backend.ok());
  auto observer = std::make_shared<LastOwner>();
  GenerateCall call;
  call.request = Prompt(8);
  (*backend)->Generate(std::move(call), observer);
  EXPECT_TRUE(observer->done.HasBeenNotified());
  EXPECT_TRUE(observer->final_seen);
}

TEST(SimBackend, RejectsAnUnknownGpuPreset) {
  SimConfig config;
  config.gpu = "tpu-v9";
  EXPECT_EQ(NewSimBackend("sim", config, {}).status().code(), absl::StatusCode::kNotFound);
}

TEST(SimBackend, CompletesABatchOfPromptsWithEachChoicesUsageAndTheirSum) {
  SimConfig config;
  config.time_scale = 0.001;
  auto backend = NewSimBackend("sim", config, {});
  ASSERT_TRUE(backend.ok());
  EXPECT_TRUE((*backend)->SupportsCompleteBatch());
  CompleteBatchCall call;
  call.request = Prompt(3);
  call.request.clear_input();
  call.prompts = {"one", "a somewhat longer prompt than the first"};
  absl::Notification done;
  absl::StatusOr<CompleteBatchResult> result;
  (*backend)->CompleteBatch(std::move(call), [&](absl::StatusOr<CompleteBatchResult> r) {
    result = std::move(r);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->choices.size(), 2u);
  uint64_t input = 0, output = 0;
  for (const BatchChoice& choice : result->choices) {
    EXPECT_TRUE(choice.status.ok()) << choice.status;
    EXPECT_FALSE(choice.text.empty());
    EXPECT_EQ(choice.finish_reason, v1::FINISH_REASON_LENGTH);
    ASSERT_TRUE(choice.usage.has_value());
    EXPECT_EQ(choice.usage->output_tokens(), 3u);
    input += choice.usage->input_tokens();
    output += choice.usage->output_tokens();
  }
  EXPECT_LT(result->choices[0].usage->input_tokens(), result->choices[1].usage->input_tokens());
  ASSERT_TRUE(result->usage.has_value());
  EXPECT_EQ(result->usage->input_tokens(), input);
  EXPECT_EQ(result->usage->output_tokens(), output);
  EXPECT_EQ(result->usage->source(), v1::USAGE_SOURCE_REPORTED);
}

TEST(SimBackend, PromptsTheEngineRefusesFailOneByOne) {
  SimConfig config;
  config.time_scale = 0;
  auto backend = NewSimBackend("sim", config, {});
  ASSERT_TRUE(backend.ok());
  CompleteBatchCall call;
  call.request = Prompt(1u << 30);  // beyond the simulator's max_tokens limit
  call.request.clear_input();
  call.prompts = {"a", "b"};
  absl::StatusOr<CompleteBatchResult> result;
  (*backend)->CompleteBatch(std::move(call),
                            [&](absl::StatusOr<CompleteBatchResult> r) { result = std::move(r); });
  ASSERT_TRUE(result.ok()) << result.status();
  for (const BatchChoice& choice : result->choices) {
    EXPECT_EQ(choice.status.code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(result->usage.has_value());
}

}  // namespace
}  // namespace tollgate
