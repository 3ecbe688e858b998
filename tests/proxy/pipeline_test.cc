#include "proxy/pipeline.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace tollgate {
namespace {

// A backend whose calls the test drives by hand (unit test only; integration tests use real ones).
class FakeBackend final : public Backend {
 public:
  struct Call final : public BackendCall {
    void Cancel() override { cancelled = true; }
    bool cancelled = false;
  };

  const std::string& name() const override { return name_; }
  std::shared_ptr<BackendCall> Generate(GenerateCall call,
                                        std::shared_ptr<GenerateObserver> observer) override {
    last_call = std::move(call);
    observer_ = std::move(observer);
    call_ = std::make_shared<Call>();
    return call_;
  }
  void Embed(EmbedCall, EmbedCallback done) override { done(absl::UnimplementedError("fake")); }

  void Send(const std::string& text) {
    v1::GenerateResponse m;
    m.set_text(text);
    observer_->OnMessage(m);
  }
  void Send(const v1::GenerateResponse& m) { observer_->OnMessage(m); }
  void Done(const absl::Status& status) { observer_->OnDone(status); }

  GenerateCall last_call;
  std::shared_ptr<Call> call_;

 private:
  std::string name_ = "fake";
  std::shared_ptr<GenerateObserver> observer_;
};

class RecordingSink final : public GenerateSink {
 public:
  void OnDelta(v1::GenerateResponse delta) override { deltas.push_back(std::move(delta)); }
  void OnFinish(const absl::Status& s, v1::GenerateResponse f) override {
    ++finishes;
    status = s;
    final = std::move(f);
  }
  std::vector<v1::GenerateResponse> deltas;
  int finishes = 0;
  absl::Status status;
  v1::GenerateResponse final;
};

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = ParseConfigYaml(absl::StrCat(R"(
tenants: [{name: acme, api_key_sha256: [")",
                                               ApiKeySha256Hex("k1"), R"("]}]
backends: [{name: fake, kind: sim}]
models:
  - {name: m1, backend: fake, backend_model: upstream-m1,
     prices: {input_usd_per_mtok: 1.00, output_usd_per_mtok: 4.00}}
)"));
    ASSERT_TRUE(config.ok()) << config.status();
    auto snapshot = std::make_shared<Snapshot>();
    snapshot->config = *config;
    snapshot->router = Router::WithBackends(**config, {{"fake", backend_}});
    snapshot->metrics = metrics_.BuildTable((*config)->tenant_names, {"m1"});
    holder_.Set(snapshot);
  }

  std::shared_ptr<RequestHandle> Start(bool stream, IngressInfo info = {}) {
    if (info.authorization.empty()) info.authorization = "Bearer k1";
    v1::GenerateRequest request;
    request.set_model("m1");
    request.set_prompt("twelve bytes");
    return pipeline_.Generate(info, request, stream, &sink_);
  }

  double RequestsWithStatus(const std::string& status) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != "tollgate_requests_total") continue;
      for (const auto& metric : family.metric) {
        bool match = false;
        for (const auto& label : metric.label) {
          if (label.name == "status" && label.value == status) match = true;
          if (label.name == "tenant" && label.value != "acme") match = false;
        }
        if (match && metric.counter.value > 0) return metric.counter.value;
      }
    }
    return 0;
  }

  prometheus::Registry registry_;
  ProxyMetrics metrics_{registry_};
  SnapshotHolder holder_;
  Pipeline pipeline_{&holder_};
  std::shared_ptr<FakeBackend> backend_ = std::make_shared<FakeBackend>();
  RecordingSink sink_;
};

TEST_F(PipelineTest, ChargesTheBackendsReportedUsageAtTheModelsPrices) {
  Start(/*stream=*/false);
  EXPECT_EQ(backend_->last_call.request.model(), "upstream-m1");
  backend_->Send("ab");
  backend_->Send("cd");
  v1::GenerateResponse last;
  last.set_finish_reason(v1::FINISH_REASON_STOP);
  last.mutable_usage()->set_input_tokens(10);
  last.mutable_usage()->set_output_tokens(2);
  last.mutable_usage()->set_source(v1::USAGE_SOURCE_REPORTED);
  backend_->Send(last);
  backend_->Done(absl::OkStatus());

  ASSERT_EQ(sink_.finishes, 1);
  EXPECT_TRUE(sink_.status.ok());
  EXPECT_EQ(sink_.final.text(), "abcd");
  EXPECT_EQ(sink_.final.usage().source(), v1::USAGE_SOURCE_REPORTED);
  EXPECT_EQ(sink_.final.cost().total_nano_usd(), 10 * 1000 + 2 * 4000);
  EXPECT_EQ(sink_.final.backend(), "fake");
  EXPECT_EQ(RequestsWithStatus("ok"), 1);
}

TEST_F(PipelineTest, AStreamCutOffByTheBackendIsChargedForWhatItGeneratedNeverZero) {
  Start(/*stream=*/true);
  v1::GenerateResponse first;
  first.set_text("hello world!");  // 12 bytes: 3 tokens at 4 bytes per token
  first.mutable_usage()->set_input_tokens(7);
  first.mutable_usage()->set_source(v1::USAGE_SOURCE_REPORTED);
  backend_->Send(first);
  backend_->Done(absl::UnavailableError("connection reset"));

  ASSERT_EQ(sink_.finishes, 1);
  EXPECT_EQ(sink_.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sink_.final.usage().input_tokens(), 7u);
  EXPECT_EQ(sink_.final.usage().output_tokens(), 3u);
  EXPECT_EQ(sink_.final.usage().source(), v1::USAGE_SOURCE_ESTIMATED);
  EXPECT_EQ(sink_.final.cost().total_nano_usd(), 7 * 1000 + 3 * 4000);
  ASSERT_EQ(sink_.deltas.size(), 1u);
  EXPECT_EQ(sink_.deltas[0].text(), "hello world!");
  EXPECT_EQ(sink_.deltas[0].request_id(), sink_.final.request_id());
  EXPECT_EQ(RequestsWithStatus("unavailable"), 1);
}

TEST_F(PipelineTest, AStreamEndingOkWithoutAFinishReasonIsAnError) {
  Start(/*stream=*/true);
  backend_->Send("half an ans");
  backend_->Done(absl::OkStatus());
  EXPECT_EQ(sink_.status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(sink_.final.usage().source(), v1::USAGE_SOURCE_ESTIMATED);
  EXPECT_GT(sink_.final.cost().total_nano_usd(), 0);
  EXPECT_EQ(RequestsWithStatus("internal"), 1);
}

TEST_F(PipelineTest, AUnaryCallCutShortBeforeAnyAnswerIsChargedItsEstimatedInput) {
  std::shared_ptr<RequestHandle> handle = Start(/*stream=*/false);
  EXPECT_FALSE(backend_->last_call.client_streams);
  handle->Cancel();
  backend_->Done(absl::CancelledError("cancelled"));
  EXPECT_EQ(sink_.final.usage().input_tokens(), 3u);  // "twelve bytes"
  EXPECT_EQ(sink_.final.usage().output_tokens(), 0u);
  EXPECT_EQ(sink_.final.usage().source(), v1::USAGE_SOURCE_ESTIMATED);
  EXPECT_EQ(sink_.final.cost().total_nano_usd(), 3 * 1000);
}

TEST_F(PipelineTest, ABackendThatNeverAnsweredChargesNothing) {
  Start(/*stream=*/false);
  backend_->Done(absl::UnavailableError("connect failed"));
  EXPECT_EQ(sink_.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sink_.final.usage().input_tokens(), 0u);
  EXPECT_EQ(sink_.final.cost().total_nano_usd(), 0);
}

TEST_F(PipelineTest, CancelReachesTheBackendCall) {
  std::shared_ptr<RequestHandle> handle = Start(/*stream=*/true);
  EXPECT_TRUE(backend_->last_call.client_streams);
  handle->Cancel();
  EXPECT_TRUE(backend_->call_->cancelled);
  backend_->Done(absl::CancelledError("cancelled"));
  EXPECT_EQ(sink_.status.code(), absl::StatusCode::kCancelled);
}

TEST_F(PipelineTest, ACancelAfterTheDeadlineIsReportedAsDeadlineExceeded) {
  IngressInfo info;
  info.deadline = absl::Now() - absl::Seconds(1);
  Start(/*stream=*/false, info);
  EXPECT_EQ(backend_->last_call.deadline, info.deadline);
  backend_->Send("partial");
  backend_->Done(absl::CancelledError("cancelled"));
  EXPECT_EQ(sink_.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GT(sink_.final.cost().total_nano_usd(), 0);
  EXPECT_EQ(RequestsWithStatus("deadline_exceeded"), 1);
}

TEST_F(PipelineTest, RejectsBeforeTheBackendAndStillCountsTheRequest) {
  IngressInfo info;
  info.authorization = "Bearer nope";
  Start(/*stream=*/false, info);
  EXPECT_EQ(sink_.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(sink_.final.request_id().empty());
  EXPECT_EQ(backend_->call_, nullptr);
}

TEST_F(PipelineTest, EchoesASafeClientRequestIdAndReplacesAnUnsafeOne) {
  IngressInfo info;
  info.request_id = "client-id.42";
  Start(/*stream=*/false, info);
  backend_->Done(absl::OkStatus());
  EXPECT_EQ(sink_.final.request_id(), "client-id.42");

  RecordingSink other;
  info.request_id = "bad id\nwith newline";
  info.authorization = "Bearer k1";
  v1::GenerateRequest request;
  request.set_model("m1");
  request.set_prompt("x");
  pipeline_.Generate(info, request, false, &other);
  backend_->Done(absl::OkStatus());
  EXPECT_EQ(other.final.request_id().size(), 24u);
}

TEST(Authenticate, AcceptsBearerInAnyCaseAndRejectsEverythingElse) {
  auto config = ParseConfigYaml(
      absl::StrCat("tenants: [{name: acme, api_key_sha256: [\"", ApiKeySha256Hex("k1"), "\"]}]"));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(*Authenticate(**config, "Bearer k1"), "acme");
  EXPECT_EQ(*Authenticate(**config, "bearer   k1 "), "acme");
  for (const char* bad : {"", "Bearer", "Bearer ", "Basic k1", "k1", "Bearer k2"}) {
    EXPECT_EQ(Authenticate(**config, bad).status().code(), absl::StatusCode::kUnauthenticated)
        << bad;
  }
}

TEST(ValidateGenerateRequest, RequiresAModelAndAnInput) {
  v1::GenerateRequest request;
  EXPECT_EQ(ValidateGenerateRequest(request).code(), absl::StatusCode::kInvalidArgument);
  request.set_model("m");
  EXPECT_EQ(ValidateGenerateRequest(request).code(), absl::StatusCode::kInvalidArgument);
  request.mutable_chat();
  EXPECT_EQ(ValidateGenerateRequest(request).code(), absl::StatusCode::kInvalidArgument);
  request.mutable_chat()->add_messages()->set_content("hi");
  EXPECT_TRUE(ValidateGenerateRequest(request).ok());
  request.set_prompt("");
  EXPECT_TRUE(ValidateGenerateRequest(request).ok());
}

TEST(EstimateTokens, RoundsUpAtFourBytesPerToken) {
  EXPECT_EQ(EstimateTokens(0), 0u);
  EXPECT_EQ(EstimateTokens(1), 1u);
  EXPECT_EQ(EstimateTokens(4), 1u);
  EXPECT_EQ(EstimateTokens(5), 2u);
}

}  // namespace
}  // namespace tollgate
