#include "bench/load_generator.h"

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fake_inference_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tollgate::bench {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::Pair;

// Options for a run bounded by count: the time bounds are far away and never reached.
LoadOptions CountedRun(const std::string& target, int64_t requests) {
  LoadOptions options;
  options.target = target;
  options.api_key = "test-key";
  options.concurrency = 4;
  options.max_requests = requests;
  options.warmup = absl::ZeroDuration();
  options.duration = absl::Seconds(120);
  options.deadline = absl::Seconds(60);
  return options;
}

TEST(ValidateLoadOptions, AcceptsExactlyOneOfRateAndConcurrency) {
  LoadOptions options;
  options.target = "127.0.0.1:1";
  options.rate_rps = 100;
  EXPECT_TRUE(ValidateLoadOptions(options).ok());
  options.concurrency = 2;
  EXPECT_EQ(ValidateLoadOptions(options).code(), absl::StatusCode::kInvalidArgument);
  options.rate_rps = 0;
  EXPECT_TRUE(ValidateLoadOptions(options).ok());
  options.concurrency = 0;
  EXPECT_EQ(ValidateLoadOptions(options).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateLoadOptions, RequiresTargetAndPositiveDuration) {
  LoadOptions options;
  options.concurrency = 1;
  EXPECT_THAT(ValidateLoadOptions(options).message(), ::testing::HasSubstr("--target"));
  options.target = "127.0.0.1:1";
  options.duration = absl::ZeroDuration();
  EXPECT_THAT(ValidateLoadOptions(options).message(), ::testing::HasSubstr("--duration_s"));
}

TEST(ParseLoadMode, KnowsUnaryAndStreamOnly) {
  EXPECT_EQ(*ParseLoadMode("unary"), LoadMode::kUnary);
  EXPECT_EQ(*ParseLoadMode("stream"), LoadMode::kStream);
  EXPECT_FALSE(ParseLoadMode("bidi").ok());
}

TEST(MakeGenerateRequest, BuildsOneUserMessageOfTheRequestedSize) {
  LoadOptions options;
  options.prompt_bytes = 200;
  options.max_tokens = 16;
  const tollgate::v1::GenerateRequest request = MakeGenerateRequest(options, 12345);
  EXPECT_EQ(request.model(), "llama-3-8b");
  ASSERT_EQ(request.chat().messages_size(), 1);
  EXPECT_EQ(request.chat().messages(0).role(), "user");
  EXPECT_EQ(request.chat().messages(0).content().size(), 200u);
  EXPECT_EQ(request.params().max_tokens(), 16u);
  EXPECT_TRUE(request.params().has_temperature());
  EXPECT_EQ(request.params().temperature(), 0.0f);
}

TEST(MakeGenerateRequest, IsDeterministicAndDistinctPerSequenceByDefault) {
  LoadOptions options;
  EXPECT_EQ(MakeGenerateRequest(options, 7).SerializeAsString(),
            MakeGenerateRequest(options, 7).SerializeAsString());
  EXPECT_NE(MakeGenerateRequest(options, 7).chat().messages(0).content(),
            MakeGenerateRequest(options, 8).chat().messages(0).content());
}

TEST(MakeGenerateRequest, CyclesThroughDistinctPrompts) {
  LoadOptions options;
  options.distinct_prompts = 3;
  std::set<std::string> prompts;
  for (uint64_t sequence = 0; sequence < 30; ++sequence) {
    prompts.insert(MakeGenerateRequest(options, sequence).chat().messages(0).content());
  }
  EXPECT_EQ(prompts.size(), 3u);
  EXPECT_EQ(MakeGenerateRequest(options, 1).chat().messages(0).content(),
            MakeGenerateRequest(options, 4).chat().messages(0).content());
}

TEST(RunLoad, ClosedLoopSendsExactlyTheRequestedNumberWithTheApiKey) {
  FakeInferenceServer server;
  const absl::StatusOr<LoadReport> report = RunLoad(CountedRun(server.address(), 25));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok, 25);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->dropped, 0);
  EXPECT_EQ(report->latency.Count(), 25);
  EXPECT_EQ(server.service().GenerateCalls(), 25);
  EXPECT_EQ(server.service().StreamCalls(), 0);
  EXPECT_THAT(server.service().Authorizations(), Each(std::string("Bearer test-key")));
  const std::vector<std::string> prompts = server.service().Prompts();
  EXPECT_EQ(std::set<std::string>(prompts.begin(), prompts.end()).size(), 25u);
}

TEST(RunLoad, SendsNoAuthorizationWithoutAnApiKey) {
  FakeInferenceServer server;
  LoadOptions options = CountedRun(server.address(), 3);
  options.api_key.clear();
  ASSERT_TRUE(RunLoad(options).ok());
  EXPECT_THAT(server.service().Authorizations(), Each(std::string("<none>")));
}

TEST(RunLoad, ClosedLoopStreamsRecordTimeToFirstMessage) {
  FakeInferenceServer server;
  LoadOptions options = CountedRun(server.address(), 10);
  options.mode = LoadMode::kStream;
  options.concurrency = 3;
  const absl::StatusOr<LoadReport> report = RunLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok, 10);
  EXPECT_EQ(report->ttft.Count(), 10);
  EXPECT_LE(report->ttft.Max(), report->latency.Max());
  EXPECT_EQ(server.service().StreamCalls(), 10);
  EXPECT_EQ(server.service().GenerateCalls(), 0);
}

TEST(RunLoad, OpenLoopSendsEveryScheduledRequest) {
  FakeInferenceServer server;
  LoadOptions options = CountedRun(server.address(), 20);
  options.concurrency = 0;
  options.rate_rps = 1000;
  const absl::StatusOr<LoadReport> report = RunLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok, 20);
  EXPECT_EQ(report->dropped, 0);
  EXPECT_EQ(server.service().GenerateCalls(), 20);
}

TEST(RunLoad, CountsErrorsByGrpcCodeName) {
  FakeInferenceServer server;
  server.service().FailEvery(2, grpc::StatusCode::RESOURCE_EXHAUSTED);
  LoadOptions options = CountedRun(server.address(), 10);
  options.concurrency = 1;  // one at a time, so every second call fails
  const absl::StatusOr<LoadReport> report = RunLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok, 5);
  EXPECT_EQ(report->errors, 5);
  EXPECT_THAT(report->errors_by_code, ElementsAre(Pair("RESOURCE_EXHAUSTED", 5)));
  EXPECT_EQ(report->latency.Count(), 5);
}

TEST(RunLoad, OpenLoopDropsRequestsBeyondMaxOutstanding) {
  FakeInferenceServer server;
  server.service().HoldCalls();
  LoadOptions options = CountedRun(server.address(), 10);
  options.concurrency = 0;
  options.rate_rps = 100'000;
  options.max_outstanding = 2;
  options.deadline = absl::Seconds(2);  // the held calls end here
  const absl::StatusOr<LoadReport> report = RunLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->ok, 0);
  EXPECT_EQ(report->dropped, 8);
  EXPECT_THAT(report->errors_by_code, ElementsAre(Pair("DEADLINE_EXCEEDED", 2)));
  EXPECT_EQ(server.service().GenerateCalls(), 2);
}

TEST(RunLoad, LeavesWarmupRequestsOutOfTheReport) {
  FakeInferenceServer server;
  LoadOptions options = CountedRun(server.address(), 6);
  options.warmup = absl::Hours(1);  // every request falls inside it
  const absl::StatusOr<LoadReport> report = RunLoad(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->warmup_requests, 6);
  EXPECT_EQ(report->ok, 0);
  EXPECT_EQ(report->latency.Count(), 0);
  EXPECT_EQ(server.service().GenerateCalls(), 6);
}

TEST(RunLoad, ReportsAnUnreachableTargetAsUnavailable) {
  LoadOptions options = CountedRun("127.0.0.1:1", 1);
  options.connect_timeout = absl::Milliseconds(300);
  EXPECT_EQ(RunLoad(options).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tollgate::bench
