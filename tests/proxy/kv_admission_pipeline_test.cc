// KV-aware admission in the pipeline (proxy/pipeline.cc AdmitAndCall): on backend `fake` with
// kv.admission enabled, generations wait for KV-cache room in arrival order, time out, or leave
// the queue at once when their client cancels. Admission timeouts run on a hand-driven clock.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "proxy/kv_accounting.h"
#include "tests/common/fake_scheduler.h"
#include "tests/proxy/pipeline_fixture.h"

namespace tollgate::pipeline_test {
namespace {

// Llama-3-8B on one A100-80GB: 131072 bytes per token and 55.94 GB of KV cache, about 426,000
// tokens. Two requests of kLargeTokens do not fit together; one of each size does.
constexpr uint32_t kLargeTokens = 300'000;
constexpr uint32_t kSmallTokens = 100'000;
constexpr absl::Duration kMaxQueueWait = absl::Seconds(5);

constexpr char kKvBackends[] = R"(
backends:
  - {name: fake, kind: sim, retry: {max_attempts: 1},
     kv: {gpu: a100-80gb, admission: {enabled: true, max_queue_wait_ms: 5000}}}
  - {name: spare, kind: sim}
)";
constexpr char kLlama3Shape[] =
    ", architecture: {parameters: 8030000000, layers: 32, kv_heads: 8, head_dim: 128}";

class KvAdmissionPipelineTest : public PipelineTest {
 protected:
  void SetUp() override {
    Configure(kKvBackends, kLlama3Shape);
    absl::StatusOr<KvStates> states = kv_.StatesFor(*holder_.Get()->config);
    ASSERT_TRUE(states.ok()) << states.status();
    kv_.Commit();
    auto snapshot = std::make_shared<Snapshot>(*holder_.Get());
    snapshot->kv = *std::move(states);
    holder_.Set(snapshot);
  }

  std::shared_ptr<RequestHandle> StartWith(uint32_t max_tokens, RecordingSink* sink) {
    IngressInfo info;
    info.authorization = "Bearer k1";
    v1::GenerateRequest request;
    request.set_model("m1");
    request.set_prompt("twelve bytes");
    request.mutable_params()->set_max_tokens(max_tokens);
    return pipeline_.Generate(info, request, /*stream=*/false, sink);
  }

  // tollgate_kv_admission_queue_depth{backend="fake"}, or -1 when absent.
  double QueueDepth() {
    for (const auto& family : registry_.Collect()) {
      if (family.name != "tollgate_kv_admission_queue_depth") continue;
      for (const auto& metric : family.metric) {
        for (const auto& label : metric.label) {
          if (label.name == "backend" && label.value == "fake") return metric.gauge.value;
        }
      }
    }
    return -1;
  }

  // Ends call `n` (from 0) with a complete answer.
  void Answer(int n) {
    std::shared_ptr<GenerateObserver> observer = backend_->ObserverOf(n);
    v1::GenerateResponse last;
    last.set_text("done");
    last.set_finish_reason(v1::FINISH_REASON_STOP);
    last.mutable_usage()->set_input_tokens(3);
    last.mutable_usage()->set_output_tokens(1);
    last.mutable_usage()->set_source(v1::USAGE_SOURCE_REPORTED);
    observer->OnMessage(last);
    observer->OnDone(absl::OkStatus());
  }

  testing::FakeScheduler kv_clock_;  // admission timeouts
  KvAccounting kv_{registry_, kv_clock_};
};

TEST_F(KvAdmissionPipelineTest, ASecondRequestWaitsForTheFirstToEnd) {
  RecordingSink first, second;
  StartWith(kLargeTokens, &first);
  ASSERT_EQ(backend_->calls(), 1);
  StartWith(kLargeTokens, &second);
  EXPECT_EQ(backend_->calls(), 1);
  EXPECT_EQ(QueueDepth(), 1);

  Answer(0);
  ASSERT_TRUE(first.finished.HasBeenNotified());
  EXPECT_TRUE(first.status.ok()) << first.status;
  EXPECT_EQ(backend_->calls(), 2) << "admitted when the first ended";
  EXPECT_EQ(QueueDepth(), 0);
  Answer(1);
  ASSERT_TRUE(second.finished.HasBeenNotified());
  EXPECT_TRUE(second.status.ok()) << second.status;
  EXPECT_EQ(RequestsWithStatus("ok"), 2);
}

TEST_F(KvAdmissionPipelineTest, AWaiterWithoutRoomInItsMaxQueueWaitIsRefusedAndRecorded) {
  RecordingSink first, second;
  StartWith(kLargeTokens, &first);
  StartWith(kLargeTokens, &second);
  kv_clock_.Advance(kMaxQueueWait - absl::Milliseconds(1));
  EXPECT_FALSE(second.finished.HasBeenNotified());
  kv_clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(second.finished.HasBeenNotified());
  EXPECT_EQ(second.status.code(), absl::StatusCode::kResourceExhausted) << second.status;
  EXPECT_NE(second.status.message().find("backend \"fake\""), std::string::npos);
  EXPECT_EQ(second.final.usage().input_tokens(), 0u) << "never sent: charged nothing";
  EXPECT_EQ(RequestsWithStatus("resource_exhausted"), 1);
  EXPECT_EQ(QueueDepth(), 0);
  EXPECT_EQ(backend_->calls(), 1);
  Answer(0);
  EXPECT_TRUE(first.status.ok()) << first.status;
}

TEST_F(KvAdmissionPipelineTest, AClientsCancelEndsAWaiterAtOnceAndLetsTheOnesBehindItIn) {
  RecordingSink first, cancelled, small;
  StartWith(kLargeTokens - kSmallTokens, &first);
  std::shared_ptr<RequestHandle> waiting = StartWith(kLargeTokens, &cancelled);
  StartWith(kSmallTokens, &small);  // fits beside the first, but waits its turn
  ASSERT_EQ(QueueDepth(), 2);

  waiting->Cancel();
  ASSERT_TRUE(cancelled.finished.HasBeenNotified()) << "ended within Cancel, before the first";
  EXPECT_EQ(cancelled.status.code(), absl::StatusCode::kCancelled) << cancelled.status;
  EXPECT_EQ(cancelled.final.usage().input_tokens(), 0u) << "never sent: charged nothing";
  EXPECT_EQ(RequestsWithStatus("cancelled"), 1);
  EXPECT_FALSE(first.finished.HasBeenNotified());
  EXPECT_EQ(backend_->calls(), 2) << "the small request behind it was admitted";
  EXPECT_EQ(QueueDepth(), 0);

  Answer(1);
  Answer(0);
  EXPECT_TRUE(small.status.ok()) << small.status;
  EXPECT_TRUE(first.status.ok()) << first.status;
  EXPECT_EQ(backend_->calls(), 2);
}

}  // namespace
}  // namespace tollgate::pipeline_test
