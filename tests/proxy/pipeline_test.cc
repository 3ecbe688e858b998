#include "proxy/pipeline.h"

#include <atomic>
#include <cstdlib>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "accounting/gpu/gpu_meter.h"
#include "accounting/gpu/shadow_pricing.h"
#include "accounting/tokenizer/registry.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/proxy/pipeline_fixture.h"

namespace tollgate {
namespace {

using pipeline_test::FakeBackend;
using pipeline_test::kDefaultBackends;
using pipeline_test::PipelineTest;
using pipeline_test::RecordingSink;

TEST_F(PipelineTest, ChargesTheBackendsReportedUsageAtTheModelsPrices) {
  Start(/*stream=*/false);
  EXPECT_EQ(backend_->last_call.request.model(), "upstream-m1");
  backend_->Send("ab");
  backend_->Send("cd");
  backend_->FinishWithUsage(10, 2);

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

TEST_F(PipelineTest, AStreamWithoutReportedUsageIsCountedWithTheTokenizerAsItArrives) {
  UseTokenizer();
  Start(/*stream=*/true);
  backend_->Send("Hello world, how");
  backend_->Send(" are you today? Fine");
  // Everything but the last words is final, and already on the live series; the charged series
  // waits for the end.
  const double live = Series("tollgate_streamed_output_tokens_total", "model", "m1");
  EXPECT_GT(live, 0);
  EXPECT_LT(live, tokenizer_->Count("Hello world, how are you today? Fine"));
  EXPECT_EQ(Tokens("output"), 0);
  backend_->Send(", thanks.");
  backend_->FinishWithoutUsage();

  ASSERT_TRUE(sink_.status.ok()) << sink_.status;
  const v1::Usage& usage = sink_.final.usage();
  EXPECT_EQ(usage.source(), v1::USAGE_SOURCE_COUNTED);
  EXPECT_EQ(usage.input_tokens(), tokenizer_->Count("twelve bytes"));
  EXPECT_EQ(usage.output_tokens(),
            tokenizer_->Count("Hello world, how are you today? Fine, thanks."));
  EXPECT_EQ(Tokens("output"), usage.output_tokens());
  EXPECT_EQ(sink_.final.cost().total_nano_usd(),
            static_cast<int64_t>(usage.input_tokens() * 1000 + usage.output_tokens() * 4000));
}

TEST_F(PipelineTest, AStreamCutShortIsChargedByTheCountOfWhatArrived) {
  UseTokenizer();
  std::shared_ptr<RequestHandle> handle = Start(/*stream=*/true);
  backend_->Send("Once upon a time, there was a");
  handle->Cancel();
  backend_->Done(absl::CancelledError("cancelled"));
  EXPECT_EQ(sink_.final.usage().source(), v1::USAGE_SOURCE_COUNTED);
  EXPECT_EQ(sink_.final.usage().output_tokens(),
            tokenizer_->Count("Once upon a time, there was a"));
  EXPECT_EQ(Tokens("output"), sink_.final.usage().output_tokens());
}

TEST_F(PipelineTest, ReportedUsageIsChargedEvenWhenTheLiveCountSawMore) {
  UseTokenizer();
  Start(/*stream=*/true);
  backend_->Send("one two three four five six seven eight nine ten");
  const double live = Series("tollgate_streamed_output_tokens_total", "model", "m1");
  EXPECT_GT(live, 4);
  // The backend's own count is the truth, lower here than what Tollgate's tokenizer saw (as when
  // reasoning text is streamed); the charged series holds exactly the charged tokens.
  backend_->FinishWithUsage(10, 4);
  EXPECT_EQ(sink_.final.usage().source(), v1::USAGE_SOURCE_REPORTED);
  EXPECT_EQ(sink_.final.usage().output_tokens(), 4u);
  EXPECT_EQ(Tokens("output"), 4);
}

TEST_F(PipelineTest, AUnaryAnswerWithoutUsageIsCountedWithTheTokenizer) {
  UseTokenizer();
  Start(/*stream=*/false);
  backend_->Send("The answer is 42.");
  backend_->FinishWithoutUsage();
  EXPECT_EQ(sink_.final.usage().source(), v1::USAGE_SOURCE_COUNTED);
  EXPECT_EQ(sink_.final.usage().output_tokens(), tokenizer_->Count("The answer is 42."));
  EXPECT_EQ(sink_.final.usage().input_tokens(), tokenizer_->Count("twelve bytes"));
}

TEST_F(PipelineTest, ChatPromptsAreCountedWithTheChatFormatOverhead) {
  UseTokenizer();
  v1::GenerateRequest request;
  request.set_model("m1");
  v1::Message* message = request.mutable_chat()->add_messages();
  message->set_role("user");
  message->set_content("Hello!");
  IngressInfo info;
  info.authorization = "Bearer k1";
  pipeline_.Generate(info, request, /*stream=*/false, &sink_);
  backend_->Send("Hi.");
  backend_->FinishWithoutUsage();
  EXPECT_EQ(sink_.final.usage().input_tokens(), 9u);  // as OpenAI bills it
}

TEST_F(PipelineTest, EmbeddingsWithoutUsageAreCountedWithTheTokenizer) {
  UseTokenizer();
  backend_->embed_answer = [](const EmbedCall& call) -> absl::StatusOr<v1::EmbedResponse> {
    v1::EmbedResponse response;
    for (int i = 0; i < call.request.inputs_size(); ++i) response.add_embeddings();
    return response;
  };
  v1::EmbedRequest request;
  request.set_model("m1");
  request.add_inputs("first input text");
  request.add_inputs("second");
  IngressInfo info;
  info.authorization = "Bearer k1";
  v1::EmbedResponse got;
  pipeline_.Embed(info, request, [&](const absl::Status&, v1::EmbedResponse r) { got = r; });
  EXPECT_EQ(got.usage().source(), v1::USAGE_SOURCE_COUNTED);
  EXPECT_EQ(got.usage().input_tokens(),
            tokenizer_->Count("first input text") + tokenizer_->Count("second"));
}

TEST_F(PipelineTest, ASelfHostedBackendChargesItsGpuShareInsteadOfTokenPrices) {
  // 2 GPUs at $1.80/h: 1,000,000 nano-USD per second. The request is alone on them for 3 s.
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  GpuCostSpec spec;
  spec.gpu_count = 2;
  spec.usd_per_gpu_hour = 1.80;
  spec.watts = 500;
  absl::StatusOr<std::unique_ptr<GpuMeter>> meter = NewGpuMeter(spec, [&now] { return now; });
  ASSERT_TRUE(meter.ok()) << meter.status();
  auto snapshot = std::make_shared<Snapshot>(*holder_.Get());
  snapshot->gpu_meters["fake"] = *std::move(meter);
  holder_.Set(snapshot);

  Start(/*stream=*/true);
  now += absl::Seconds(1);
  backend_->Send("first words");
  now += absl::Seconds(2);
  backend_->Answer(" and the rest", 10, 5);
  const v1::Cost& cost = sink_.final.cost();
  EXPECT_EQ(cost.gpu_nano_usd(), 3'000'000);
  EXPECT_EQ(cost.input_nano_usd(), 0);  // the GPU share replaces the token prices
  EXPECT_EQ(cost.output_nano_usd(), 0);
  EXPECT_EQ(cost.total_nano_usd(), 3'000'000);
  EXPECT_DOUBLE_EQ(cost.energy_joules(), 2 * 500 * 3);
}

TEST_F(PipelineTest, EveryRequestIsAlsoPricedUnderEachShadowPlan) {
  Configure(std::string(kDefaultBackends) + R"(
shadow_plans:
  - {name: on-gpt-4o, prices: {input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00}}
  - name: own-h100s
    gpu: {gpu_count: 4, usd_per_gpu_hour: 2.00}
    prefill_tokens_per_second: 1000
    decode_tokens_per_second: 50
)",
            "");
  Start(/*stream=*/false);
  backend_->Answer("ok", 1000, 100);
  // 1000 × $2.50/M + 100 × $10/M = $0.0035.
  EXPECT_NEAR(Series("tollgate_shadow_cost_usd_total", "plan", "on-gpt-4o"), 0.0035, 1e-12);
  // (1000/1000 + 100/50) s × 4 GPUs × $2/h = 3 s × $8/h = $0.00666667.
  EXPECT_NEAR(Series("tollgate_shadow_cost_usd_total", "plan", "own-h100s"), 0.006666667, 1e-9);
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

constexpr char kRetryingBackends[] = R"(
backends:
  - {name: fake, kind: sim, retry: {max_attempts: 3, initial_backoff_ms: 1, max_backoff_ms: 5},
     ejection: {consecutive_failures: 100}}
  - {name: spare, kind: sim}
)";

absl::Status HttpError(int code) {
  absl::Status status = absl::UnavailableError(absl::StrCat("HTTP ", code));
  status.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(code)));
  return status;
}

TEST_F(PipelineTest, RetriesAFailedConnectAndChargesOnlyTheAttemptThatAnswered) {
  Configure(kRetryingBackends, "");
  Start(/*stream=*/true);
  backend_->Done(absl::UnavailableError("connection refused"));
  ASSERT_EQ(backend_->WaitForCalls(2), 2);
  backend_->Done(HttpError(503));
  ASSERT_EQ(backend_->WaitForCalls(3), 3);
  backend_->Answer("ok", 10, 2);
  ASSERT_TRUE(sink_.finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(sink_.status.ok()) << sink_.status;
  EXPECT_EQ(sink_.final.cost().total_nano_usd(), 10 * 1000 + 2 * 4000);
  EXPECT_EQ(Attempts("fake", "retried"), 2);
  EXPECT_EQ(Attempts("fake", "ok"), 1);
}

TEST_F(PipelineTest, RetriesAnAnthropicOverloaded529) {
  Configure(kRetryingBackends, "");
  Start(/*stream=*/false);
  backend_->Done(HttpError(529));
  ASSERT_EQ(backend_->WaitForCalls(2), 2);
  backend_->Answer("ok", 1, 1);
  ASSERT_TRUE(sink_.finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(sink_.status.ok());
}

TEST_F(PipelineTest, RetriesA429) {
  Configure(kRetryingBackends, "");
  Start(/*stream=*/false);
  backend_->Done(absl::ResourceExhaustedError("rate limited"));
  ASSERT_EQ(backend_->WaitForCalls(2), 2);
  backend_->Answer("ok", 1, 1);
  ASSERT_TRUE(sink_.finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(sink_.status.ok());
}

TEST_F(PipelineTest, DoesNotRetryOnceTextHasReachedTheClient) {
  Configure(kRetryingBackends, "");
  Start(/*stream=*/true);
  backend_->Send("partial");
  backend_->Done(absl::UnavailableError("reset"));
  ASSERT_TRUE(sink_.finished.HasBeenNotified());
  EXPECT_EQ(sink_.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(backend_->calls(), 1);
  EXPECT_EQ(Attempts("fake", "failed"), 1);
}

TEST_F(PipelineTest, DoesNotRetryAnHttp500OrABadRequest) {
  Configure(kRetryingBackends, "");
  Start(/*stream=*/false);
  backend_->Done(HttpError(500));
  EXPECT_TRUE(sink_.finished.HasBeenNotified());
  EXPECT_EQ(backend_->calls(), 1);
}

TEST_F(PipelineTest, FallsBackToTheNextBackendWhenRetriesAreUsedUp) {
  Configure(kDefaultBackends, ", fallback_backends: [spare]");  // fake makes one attempt
  Start(/*stream=*/false);
  backend_->Done(absl::UnavailableError("connection refused"));
  ASSERT_EQ(spare_->WaitForCalls(1), 1);
  EXPECT_EQ(spare_->last_call.request.model(), "upstream-m1");
  spare_->Answer("from spare", 3, 1);
  ASSERT_TRUE(sink_.finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(sink_.status.ok());
  EXPECT_EQ(sink_.final.backend(), "spare");
  EXPECT_EQ(sink_.final.text(), "from spare");
}

TEST_F(PipelineTest, ARetryAfterLongerThanTheBackoffCapGoesStraightToTheFallback) {
  Configure(kRetryingBackends, ", fallback_backends: [spare]");
  Start(/*stream=*/false);
  absl::Status limited = absl::ResourceExhaustedError("slow down");
  limited.SetPayload(kRetryAfterPayload, absl::Cord("30"));
  backend_->Done(limited);
  ASSERT_EQ(spare_->WaitForCalls(1), 1);
  EXPECT_EQ(backend_->calls(), 1);
  spare_->Answer("x", 1, 1);
  ASSERT_TRUE(sink_.finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST_F(PipelineTest, AnEjectedBackendIsSkippedUntilItsProbeIsDue) {
  Configure(R"(
backends:
  - {name: fake, kind: sim, retry: {max_attempts: 1},
     ejection: {consecutive_failures: 1, probe_interval_ms: 3600000}}
  - {name: spare, kind: sim}
)",
            ", fallback_backends: [spare]");
  Start(/*stream=*/false);
  backend_->Done(absl::UnavailableError("down"));
  ASSERT_EQ(spare_->WaitForCalls(1), 1);
  spare_->Answer("x", 1, 1);
  ASSERT_TRUE(sink_.finished.WaitForNotificationWithTimeout(absl::Seconds(10)));

  RecordingSink second;
  IngressInfo info;
  info.authorization = "Bearer k1";
  v1::GenerateRequest request;
  request.set_model("m1");
  request.set_prompt("again");
  pipeline_.Generate(info, request, false, &second);
  ASSERT_EQ(spare_->WaitForCalls(2), 2);
  EXPECT_EQ(backend_->calls(), 1) << "the ejected backend got a call";
  spare_->Answer("y", 1, 1);
  ASSERT_TRUE(second.finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(second.final.backend(), "spare");
}

// One vector per input, with reported usage.
absl::StatusOr<v1::EmbedResponse> Vectors(const EmbedCall& call) {
  v1::EmbedResponse response;
  for (int i = 0; i < call.request.inputs_size(); ++i) response.add_embeddings()->add_values(1);
  response.mutable_usage()->set_input_tokens(7);
  response.mutable_usage()->set_source(v1::USAGE_SOURCE_REPORTED);
  return response;
}

TEST_F(PipelineTest, EmbeddingsFallBackWhenThePrimaryIsDown) {
  Configure(kDefaultBackends, ", fallback_backends: [spare]");
  backend_->embed_answer = [](const EmbedCall&) {
    return absl::UnavailableError("connection refused");
  };
  spare_->embed_answer = Vectors;
  IngressInfo info;
  info.authorization = "Bearer k1";
  v1::EmbedRequest request;
  request.set_model("m1");
  request.add_inputs("a");
  request.add_inputs("b");
  absl::Notification finished;
  absl::Status status;
  v1::EmbedResponse response;
  pipeline_.Embed(info, request, [&](const absl::Status& s, v1::EmbedResponse r) {
    status = s;
    response = std::move(r);
    finished.Notify();
  });
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(backend_->embed_calls, 1);
  EXPECT_EQ(spare_->embed_calls, 1);
  EXPECT_EQ(response.backend(), "spare");
  EXPECT_EQ(response.embeddings_size(), 2);
  EXPECT_EQ(response.cost().total_nano_usd(), 7 * 1000);
  EXPECT_EQ(Attempts("fake", "retried"), 1);
}

TEST_F(PipelineTest, EmbeddingsWithTheWrongNumberOfVectorsAreAnErrorChargedNothing) {
  backend_->embed_answer = [](const EmbedCall&) -> absl::StatusOr<v1::EmbedResponse> {
    return v1::EmbedResponse();  // what gRPC makes of an unparseable reply
  };
  IngressInfo info;
  info.authorization = "Bearer k1";
  v1::EmbedRequest request;
  request.set_model("m1");
  request.add_inputs("a");
  absl::Status status;
  v1::EmbedResponse response;
  pipeline_.Embed(info, request, [&](const absl::Status& s, v1::EmbedResponse r) {
    status = s;
    response = std::move(r);
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(response.cost().total_nano_usd(), 0);
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
