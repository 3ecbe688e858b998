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

}  // namespace
}  // namespace tollgate
