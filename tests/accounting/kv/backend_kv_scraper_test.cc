#include "accounting/kv/backend_kv_scraper.h"

#include <atomic>
#include <map>
#include <optional>
#include <string>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace tollgate {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// As vLLM 0.8 serves it (trimmed).
constexpr absl::string_view kVllmMetrics =
    R"(# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.4375
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 123456.0
)";

absl::StatusOr<double> Parse(absl::string_view text) { return ParseBackendKvUsage(text); }

TEST(BackendKvScraper, ReadsVllmKvCacheUsage) { EXPECT_EQ(*Parse(kVllmMetrics), 0.4375); }

TEST(BackendKvScraper, TakesTheLargestOfSeveralSeries) {
  EXPECT_EQ(*Parse("vllm:kv_cache_usage_perc{engine=\"0\"} 0.25\n"
                   "vllm:kv_cache_usage_perc{engine=\"1\"} 0.875\n"
                   "vllm:kv_cache_usage_perc{engine=\"2\"} 0.5\n"),
            0.875);
}

TEST(BackendKvScraper, FallsBackToTheOlderGpuCacheUsageName) {
  EXPECT_EQ(*Parse("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.125\n"), 0.125);
  EXPECT_EQ(*Parse("vllm:gpu_cache_usage_perc 0.75\nvllm:kv_cache_usage_perc 0.5\n"), 0.5);
}

TEST(BackendKvScraper, AMissingMetricIsNotFound) {
  EXPECT_EQ(Parse("").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Parse("# HELP vllm:kv_cache_usage_perc KV-cache usage.\n"
                  "# TYPE vllm:kv_cache_usage_perc gauge\n")
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  const absl::Status status = Parse("vllm:num_requests_running 3\n").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("vllm:kv_cache_usage_perc"));
}

TEST(BackendKvScraper, GarbageIsNotFound) {
  EXPECT_EQ(Parse("<html><body>502 Bad Gateway</body></html>").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Parse(std::string("\0\xff\xfe{}\n\n  \t\n", 10)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(BackendKvScraper, OnlyTheExactMetricNameCounts) {
  EXPECT_EQ(Parse("vllm:kv_cache_usage_perc_total 0.9\nvllm:kv_cache_usage 0.9\n").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*Parse("other{label=\"vllm:kv_cache_usage_perc 0.9\"} 1\n"
                   "vllm:kv_cache_usage_perc 0.1\n"),
            0.1);
}

TEST(BackendKvScraper, TruncatedSamplesAreInvalidAndNamed) {
  const absl::Status no_value = Parse("vllm:kv_cache_usage_perc{model_name=\"m\"}").status();
  EXPECT_EQ(no_value.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_value.message(), AllOf(HasSubstr("line 1"), HasSubstr("vllm:kv_cache_usage_perc"),
                                        HasSubstr("no value")));
  const absl::Status cut_label = Parse("# ok\nvllm:kv_cache_usage_perc{model_name=\"m").status();
  EXPECT_EQ(cut_label.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cut_label.message(), AllOf(HasSubstr("line 2"), HasSubstr("malformed labels")));
  EXPECT_EQ(Parse("vllm:kv_cache_usage_perc 0.").status().code(), absl::StatusCode::kOk);
  EXPECT_EQ(Parse("vllm:kv_cache_usage_perc 0.5abc\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("vllm:kv_cache_usage_perc 0.5 12x\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("vllm:kv_cache_usage_perc{=\"m\"} 0.5\n").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BackendKvScraper, ABadSampleDoesNotHideAGoodOne) {
  EXPECT_EQ(*Parse("vllm:kv_cache_usage_perc{engine=\"0\"} garbage\n"
                   "vllm:kv_cache_usage_perc{engine=\"1\"} 0.3\n"),
            0.3);
}

TEST(BackendKvScraper, NaNAndInfinitiesAreSkipped) {
  const absl::Status nan = Parse("vllm:kv_cache_usage_perc NaN\n").status();
  EXPECT_EQ(nan.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.message(), HasSubstr("not finite"));
  EXPECT_EQ(Parse("vllm:kv_cache_usage_perc +Inf\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*Parse("vllm:kv_cache_usage_perc{e=\"0\"} NaN\n"
                   "vllm:kv_cache_usage_perc{e=\"1\"} 0.2\n"),
            0.2);
}

TEST(BackendKvScraper, ValuesAboveOneCountAsOneAndNegativeOnesAreSkipped) {
  EXPECT_EQ(*Parse("vllm:kv_cache_usage_perc 1.02\n"), 1.0);
  EXPECT_THAT(Parse("vllm:kv_cache_usage_perc -0.1\n").status().message(), HasSubstr("negative"));
}

TEST(BackendKvScraper, LabelValuesMayHoldEscapedQuotesBracesAndCommas) {
  EXPECT_EQ(
      *Parse(R"(vllm:kv_cache_usage_perc{model_name="a \"quoted\" } name, really\\",x="y"} 0.625)"
             "\n"),
      0.625);
  EXPECT_EQ(*Parse("vllm:kv_cache_usage_perc{ a = \"1\" , b=\"2\", } 0.5\n"), 0.5);
}

TEST(BackendKvScraper, AcceptsTimestampsCarriageReturnsAndExponents) {
  EXPECT_EQ(*Parse("vllm:kv_cache_usage_perc{m=\"x\"} 6.25e-02 1700000000000\r\n"), 0.0625);
  EXPECT_EQ(*Parse("  vllm:kv_cache_usage_perc\t0.5\n# EOF\n"), 0.5);
}

// Whether registry holds the series `name`{backend}, and its value.
std::optional<double> Series(prometheus::Registry& registry, const std::string& name,
                             const std::string& backend) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        if (label.name == "backend" && label.value == backend) return metric.gauge.value;
      }
    }
  }
  return std::nullopt;
}

constexpr char kUsageSeries[] = "tollgate_backend_kv_cache_usage_ratio";

TEST(BackendKvPoller, SetsTheGaugeFromEachPoll) {
  prometheus::Registry registry;
  KvMetrics metrics(registry);
  std::string body = "vllm:kv_cache_usage_perc 0.25\n";
  BackendKvPoller poller([&]() -> absl::StatusOr<std::string> { return body; },
                         {.backend = "gpu-a", .metrics = &metrics});
  EXPECT_EQ(poller.usage(), std::nullopt);
  EXPECT_EQ(Series(registry, kUsageSeries, "gpu-a"), std::nullopt);
  EXPECT_TRUE(poller.PollOnce().ok());
  EXPECT_EQ(poller.usage(), 0.25);
  EXPECT_EQ(Series(registry, kUsageSeries, "gpu-a"), 0.25);
  body = "vllm:kv_cache_usage_perc 0.5\n";
  EXPECT_TRUE(poller.PollOnce().ok());
  EXPECT_EQ(Series(registry, kUsageSeries, "gpu-a"), 0.5);
}

TEST(BackendKvPoller, AFailedPollRemovesTheSeriesUntilTheBackendAnswersAgain) {
  prometheus::Registry registry;
  KvMetrics metrics(registry);
  absl::StatusOr<std::string> answer = std::string("vllm:kv_cache_usage_perc 0.25\n");
  BackendKvPoller poller([&] { return answer; }, {.backend = "gpu-a", .metrics = &metrics});
  ASSERT_TRUE(poller.PollOnce().ok());
  ASSERT_EQ(Series(registry, kUsageSeries, "gpu-a"), 0.25);

  answer = absl::UnavailableError("connection refused");
  const absl::Status failed = poller.PollOnce();
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(failed.message(),
              AllOf(HasSubstr("backend \"gpu-a\""), HasSubstr("connection refused")));
  EXPECT_EQ(poller.last_status(), failed);
  EXPECT_EQ(poller.usage(), std::nullopt);
  EXPECT_EQ(Series(registry, kUsageSeries, "gpu-a"), std::nullopt);

  answer = std::string("not metrics at all");
  EXPECT_EQ(poller.PollOnce().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Series(registry, kUsageSeries, "gpu-a"), std::nullopt);

  answer = std::string("vllm:kv_cache_usage_perc 0.75\n");
  EXPECT_TRUE(poller.PollOnce().ok());
  EXPECT_EQ(Series(registry, kUsageSeries, "gpu-a"), 0.75);
}

TEST(BackendKvPoller, PollsOnItsOwnThreadUntilStoppedAndThenRemovesTheSeries) {
  prometheus::Registry registry;
  KvMetrics metrics(registry);
  std::atomic<int> fetches{0};
  absl::Notification third;
  auto poller = std::make_unique<BackendKvPoller>(
      [&]() -> absl::StatusOr<std::string> {
        if (fetches.fetch_add(1) + 1 == 3) third.Notify();
        return std::string("vllm:kv_cache_usage_perc 0.5\n");
      },
      BackendKvPollerOptions{
          .backend = "gpu-a", .interval = absl::Milliseconds(1), .metrics = &metrics});
  poller->Start();
  third.WaitForNotification();
  poller->Stop();
  const int after_stop = fetches.load();
  EXPECT_GE(after_stop, 3);
  EXPECT_EQ(Series(registry, kUsageSeries, "gpu-a"), 0.5);
  poller.reset();
  EXPECT_EQ(fetches.load(), after_stop);
  EXPECT_EQ(Series(registry, kUsageSeries, "gpu-a"), std::nullopt);
}

TEST(BackendKvPoller, StopsPromptlyDuringALongInterval) {
  std::atomic<int> fetches{0};
  absl::Notification first;
  BackendKvPoller poller(
      [&]() -> absl::StatusOr<std::string> {
        if (fetches.fetch_add(1) == 0) first.Notify();
        return absl::UnavailableError("down");
      },
      {.backend = "gpu-a", .interval = absl::Hours(1)});
  poller.Start();
  first.WaitForNotification();
  poller.Stop();  // would hang for an hour if the wait were not woken
  EXPECT_EQ(fetches.load(), 1);
  EXPECT_EQ(poller.last_status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tollgate
