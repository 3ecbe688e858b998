#include "sim/http_faults.h"

#include <rapidjson/document.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/delay_queue.h"
#include "tests/http/json_test_util.h"
#include "tests/sim/http_api_harness.h"

namespace tollgate::sim {
namespace {

using http::testing::ParseJsonOrFail;
using http::testing::ParseSse;
using http::testing::SseEvent;
using ::testing::ElementsAre;

TEST(RateFires, FailsEveryNthRequestForRateOneOverN) {
  std::vector<uint64_t> fired;
  for (uint64_t n = 1; n <= 8; ++n) {
    if (RateFires(0.5, n)) fired.push_back(n);
  }
  EXPECT_THAT(fired, ElementsAre(2, 4, 6, 8));
  EXPECT_FALSE(RateFires(0, 1));
  EXPECT_TRUE(RateFires(1, 1));
  int quarter = 0;
  for (uint64_t n = 1; n <= 100; ++n) quarter += RateFires(0.25, n) ? 1 : 0;
  EXPECT_EQ(quarter, 25);
}

TEST(FaultPlanner, LetsHeadersOverrideTheFlagDefaults) {
  FaultDefaults defaults;
  defaults.rate_503 = 1;
  defaults.omit_usage = true;
  FaultPlanner planner(defaults);
  http::Request plain;
  absl::StatusOr<RequestFaults> faults = planner.ForRequest(plain);
  ASSERT_TRUE(faults.ok());
  EXPECT_EQ(faults->status, 503);
  EXPECT_TRUE(faults->omit_usage);

  http::Request overridden;
  overridden.headers = {{"x-sim-fault", "reset-after=3, malformed-chunk"},
                        {"x-sim-first-byte-delay-ms", "20"},
                        {"x-sim-cache-read", "7"}};
  faults = planner.ForRequest(overridden);
  ASSERT_TRUE(faults.ok());
  EXPECT_EQ(faults->status, 0);
  EXPECT_FALSE(faults->omit_usage);
  EXPECT_EQ(faults->reset_after_tokens, 3u);
  EXPECT_TRUE(faults->malformed_chunk);
  EXPECT_EQ(faults->first_byte_delay, absl::Milliseconds(20));
  EXPECT_EQ(faults->cache_read_tokens, 7u);

  http::Request bad;
  bad.headers = {{"x-sim-fault", "explode"}};
  EXPECT_EQ(planner.ForRequest(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.headers = {{"x-sim-cache-read", "-1"}};
  EXPECT_EQ(planner.ForRequest(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DelayQueue, RunsCallbacksInDeadlineOrder) {
  DelayQueue delays;
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification done;
  delays.RunAfter(absl::Milliseconds(60), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(3);
    done.Notify();
  });
  delays.RunAfter(absl::Milliseconds(30), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(2);
  });
  delays.RunAfter(absl::ZeroDuration(), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(1);
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&mu);
  EXPECT_THAT(order, ElementsAre(1, 2, 3));
}

std::string ErrorType(const RawResponse& response, bool anthropic) {
  rapidjson::Document doc = ParseJsonOrFail(response.body);
  if (anthropic) {
    EXPECT_STREQ(doc["type"].GetString(), "error");
    return doc["error"]["type"].GetString();
  }
  return doc["error"]["type"].GetString();
}

TEST(SimHttpFaults, AnswersStatusFaultsInTheApisErrorShape) {
  HttpApiHarness harness;
  RawResponse rate_limited =
      harness.Post("/v1/chat/completions", ChatBody("x", 2, false), {{"x-sim-fault", "429"}});
  EXPECT_EQ(rate_limited.status, 429);
  EXPECT_EQ(rate_limited.Header("retry-after"), "1");
  EXPECT_EQ(ErrorType(rate_limited, false), "rate_limit_error");

  RawResponse anthropic =
      harness.Post("/v1/messages", MessagesBody("x", 2, false), {{"x-sim-fault", "429"}});
  EXPECT_EQ(anthropic.status, 429);
  EXPECT_EQ(ErrorType(anthropic, true), "rate_limit_error");

  RawResponse server_error =
      harness.Post("/v1/chat/completions", ChatBody("x", 2, true), {{"x-sim-fault", "500"}});
  EXPECT_EQ(server_error.status, 500);
  EXPECT_EQ(ErrorType(server_error, false), "server_error");

  RawResponse overloaded =
      harness.Post("/v1/embeddings", R"({"model":"e","input":"x"})", {{"x-sim-fault", "503"}});
  EXPECT_EQ(overloaded.status, 503);
  RawResponse overloaded_messages =
      harness.Post("/v1/messages", MessagesBody("x", 2, false), {{"x-sim-fault", "503"}});
  EXPECT_EQ(ErrorType(overloaded_messages, true), "overloaded_error");
}

TEST(SimHttpFaults, FailsEverySecondRequestAtRateOneHalf) {
  FaultDefaults defaults;
  defaults.rate_503 = 0.5;
  HttpApiHarness harness(0, defaults);
  std::vector<int> statuses;
  for (int i = 0; i < 4; ++i) {
    statuses.push_back(harness.Post("/v1/chat/completions", ChatBody("x", 2, false)).status);
  }
  EXPECT_THAT(statuses, ElementsAre(200, 503, 200, 503));
}

TEST(SimHttpFaults, ResetsTheConnectionAfterNTokenChunks) {
  HttpApiHarness harness;
  absl::StatusOr<RawHttpClient> client = RawHttpClient::Connect(harness.port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client
                  ->SendRequest("POST", "/v1/chat/completions", {{"x-sim-fault", "reset-after=3"}},
                                ChatBody("x", 20, true))
                  .ok());
  absl::StatusOr<RawResponse> head = client->ReadHead();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  int data_events = 0;
  while (true) {
    absl::StatusOr<std::optional<std::string>> chunk = client->ReadChunk();
    if (!chunk.ok()) break;  // the reset
    ASSERT_TRUE(chunk->has_value()) << "the stream ended properly instead of being reset";
    data_events += static_cast<int>(ParseSse(**chunk).size());
  }
  EXPECT_EQ(data_events, 3);
}

TEST(SimHttpFaults, StreamsOneMalformedChunkAndCarriesOn) {
  HttpApiHarness harness;
  RawResponse response = harness.Post("/v1/chat/completions", ChatBody("x", 4, true),
                                      {{"x-sim-fault", "malformed-chunk"}});
  std::vector<SseEvent> events = ParseSse(response.body);
  int malformed = 0;
  for (const SseEvent& event : events) {
    if (event.data == "[DONE]") continue;
    rapidjson::Document doc;
    doc.Parse(event.data.c_str());
    if (doc.HasParseError()) ++malformed;
  }
  EXPECT_EQ(malformed, 1);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().data, "[DONE]");
}

TEST(SimHttpFaults, LeavesUsageOutWhenAskedTo) {
  HttpApiHarness harness;
  RawResponse whole =
      harness.Post("/v1/chat/completions", ChatBody("x", 2, false), {{"x-sim-fault", "no-usage"}});
  EXPECT_FALSE(ParseJsonOrFail(whole.body).HasMember("usage"));
  RawResponse streamed = harness.Post("/v1/chat/completions", ChatBody("x", 2, true, true),
                                      {{"x-sim-fault", "no-usage"}});
  for (const SseEvent& event : ParseSse(streamed.body)) {
    if (event.data != "[DONE]") {
      EXPECT_FALSE(ParseJsonOrFail(event.data).HasMember("usage"));
    }
  }
}

TEST(SimHttpFaults, DelaysTheResponseHeaders) {
  HttpApiHarness harness;
  const absl::Time start = absl::Now();
  RawResponse response = harness.Post("/v1/chat/completions", ChatBody("x", 2, true),
                                      {{"x-sim-first-byte-delay-ms", "100"}});
  EXPECT_EQ(response.status, 200);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
}

// With a real-time engine: the KV cache shows in /metrics while a stream runs, and a client that
// leaves mid-stream has its engine request cancelled.
TEST(SimHttpFaults, ReportsKvCacheWhileStreamingAndCancelsWhenTheClientLeaves) {
  HttpApiHarness harness(/*time_scale=*/1.0);
  absl::StatusOr<RawHttpClient> client = RawHttpClient::Connect(harness.port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(
      client->SendRequest("POST", "/v1/chat/completions", {}, ChatBody("long", 30000, true)).ok());
  ASSERT_TRUE(client->ReadHead().ok());
  ASSERT_TRUE(client->ReadChunk().ok());  // the first token: the request is running
  RawResponse metrics = harness.Get("/metrics");
  EXPECT_THAT(metrics.body,
              ::testing::HasSubstr("vllm:num_requests_running{model_name=\"llama-3-8b\"} 1\n"));
  EXPECT_THAT(metrics.body, ::testing::Not(::testing::HasSubstr(
                                "vllm:kv_cache_usage_perc{model_name=\"llama-3-8b\"} 0\n")));
  client->Reset();
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (harness.engine().GetStats().running > 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(harness.engine().GetStats().running, 0u);
}

}  // namespace
}  // namespace tollgate::sim
