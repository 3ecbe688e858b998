// Tests proxy/cached_generate.cc and proxy/cache_stage.cc: generation through the response cache,
// with a backend driven by hand.
#include "proxy/cached_generate.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/ingress/http_ingress.h"
#include "tests/proxy/pipeline_fixture.h"

namespace tollgate {
namespace {

using pipeline_test::kDefaultBackends;
using pipeline_test::PipelineTest;
using pipeline_test::RecordingSink;
using ::testing::ElementsAre;

constexpr char kCache[] = "cache: {enabled: true}";

// m1 costs $1 per million input tokens and $4 per million output tokens: an answer of 10 input and
// 20 output tokens costs 10 * 1000 + 20 * 4000 nano-USD.
constexpr int64_t kAnswerNanoUsd = 10 * 1000 + 20 * 4000;

std::vector<std::string> Texts(const std::vector<v1::GenerateResponse>& deltas) {
  std::vector<std::string> texts;
  for (const v1::GenerateResponse& d : deltas) texts.push_back(d.text());
  return texts;
}

class CacheTest : public PipelineTest {
 protected:
  void SetUp() override { Configure(kDefaultBackends, "", kCache); }

  static v1::GenerateRequest Deterministic(const std::string& prompt = "twelve bytes") {
    v1::GenerateRequest request;
    request.set_model("m1");
    request.set_prompt(prompt);
    request.mutable_params()->set_temperature(0);
    return request;
  }

  // Starts a request; the returned sink records what the client receives.
  std::unique_ptr<RecordingSink> Send(const v1::GenerateRequest& request, bool stream,
                                      std::shared_ptr<RequestHandle>* handle = nullptr,
                                      const std::string& key = "k1") {
    auto sink = std::make_unique<RecordingSink>();
    IngressInfo info;
    const std::string authorization = "Bearer " + key;
    info.authorization = authorization;
    std::shared_ptr<RequestHandle> h = pipeline_.Generate(info, request, stream, sink.get());
    if (handle != nullptr) *handle = std::move(h);
    return sink;
  }

  // The backend's answer: `chunks` streamed, then a finish with 10 input and 20 output tokens.
  void Answer(const std::vector<std::string>& chunks) {
    for (const std::string& chunk : chunks) backend_->Send(chunk);
    backend_->FinishWithUsage(10, 20);
  }

  // A request the backend answers with `chunks`; returns what the client received.
  std::unique_ptr<RecordingSink> Miss(const v1::GenerateRequest& request, bool stream,
                                      const std::vector<std::string>& chunks,
                                      const std::string& key = "k1") {
    const int calls = backend_->calls();
    auto sink = Send(request, stream, nullptr, key);
    EXPECT_EQ(backend_->WaitForCalls(calls + 1), calls + 1)
        << "the request should call the backend";
    Answer(chunks);
    EXPECT_TRUE(sink->finished.HasBeenNotified());
    return sink;
  }

  double CacheRequests(const std::string& result) {
    return Series("tollgate_cache_requests_total", "result", result);
  }
  double Saved() { return Series("tollgate_cache_saved_usd_total", "model", "m1"); }
};

TEST_F(CacheTest, ARepeatIsServedFromTheCacheWithoutABackendCallAndChargedNothing) {
  auto first = Miss(Deterministic(), false, {"Hello", " world"});
  ASSERT_TRUE(first->status.ok()) << first->status;
  EXPECT_EQ(first->final.text(), "Hello world");
  EXPECT_EQ(first->final.cache_status(), v1::CACHE_STATUS_MISS);
  EXPECT_EQ(first->final.cost().total_nano_usd(), kAnswerNanoUsd);
  const double output_tokens = Tokens("output");

  auto second = Send(Deterministic(), false);
  ASSERT_TRUE(second->finished.HasBeenNotified()) << "a hit answers at once";
  EXPECT_EQ(backend_->calls(), 1);
  ASSERT_TRUE(second->status.ok()) << second->status;
  EXPECT_EQ(second->final.text(), "Hello world");
  EXPECT_EQ(second->final.cache_status(), v1::CACHE_STATUS_HIT);
  EXPECT_EQ(second->final.cost().total_nano_usd(), 0);
  EXPECT_EQ(second->final.usage().output_tokens(), 20u) << "the answer's usage, as it was";
  EXPECT_EQ(second->final.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(second->final.backend(), "cache");
  EXPECT_NE(second->final.request_id(), first->final.request_id());

  EXPECT_EQ(CacheRequests("miss"), 1);
  EXPECT_EQ(CacheRequests("hit"), 1);
  EXPECT_DOUBLE_EQ(Saved(), kAnswerNanoUsd * 1e-9);
  EXPECT_EQ(Tokens("output"), output_tokens) << "a hit's tokens were not paid for";
}

TEST_F(CacheTest, AStreamedAnswerReplaysWithItsChunkBoundariesToStreamsAndWholeToUnaryCalls) {
  auto first = Miss(Deterministic(), true, {"Hel", "lo", " wor", "ld"});
  EXPECT_THAT(Texts(first->deltas), ElementsAre("Hel", "lo", " wor", "ld"));

  auto stream_hit = Send(Deterministic(), true);
  ASSERT_TRUE(stream_hit->finished.HasBeenNotified());
  EXPECT_THAT(Texts(stream_hit->deltas), ElementsAre("Hel", "lo", " wor", "ld"));
  EXPECT_EQ(stream_hit->deltas.front().cache_status(), v1::CACHE_STATUS_HIT);
  EXPECT_FALSE(stream_hit->deltas.front().request_id().empty());
  EXPECT_EQ(stream_hit->final.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(stream_hit->final.usage().output_tokens(), 20u);

  auto unary_hit = Send(Deterministic(), false);
  ASSERT_TRUE(unary_hit->finished.HasBeenNotified());
  EXPECT_EQ(unary_hit->final.text(), "Hello world");
  EXPECT_EQ(backend_->calls(), 1);
}

TEST_F(CacheTest, AUnaryAnswerServesALaterStreamAsOneChunk) {
  // The leader's call streams from the backend whatever its client asked.
  auto first = Miss(Deterministic(), false, {"one", " two"});
  EXPECT_TRUE(backend_->last_call.client_streams);
  EXPECT_TRUE(first->deltas.empty()) << "a unary client gets no deltas";
  auto hit = Send(Deterministic(), true);
  ASSERT_TRUE(hit->finished.HasBeenNotified());
  EXPECT_THAT(Texts(hit->deltas), ElementsAre("one", " two"));
}

TEST_F(CacheTest, OnlyDeterministicRequestsAreCachedUnlessTheModelSaysAlways) {
  v1::GenerateRequest warm = Deterministic();
  warm.mutable_params()->set_temperature(0.7f);
  Miss(warm, false, {"a"});
  Miss(warm, false, {"b"});
  EXPECT_EQ(CacheRequests("miss"), 0) << "not cacheable: the cache never saw them";

  v1::GenerateRequest seeded = warm;
  seeded.mutable_params()->set_seed(42);
  Miss(seeded, false, {"c"});
  auto hit = Send(seeded, false);
  EXPECT_EQ(hit->final.cache_status(), v1::CACHE_STATUS_HIT) << "a fixed seed is deterministic";

  Configure(kDefaultBackends, ", cache: {policy: always}", kCache);
  Miss(warm, false, {"d"});
  EXPECT_EQ(Send(warm, false)->final.text(), "d");

  Configure(kDefaultBackends, ", cache: {policy: never}", kCache);
  Miss(Deterministic(), false, {"e"});
  Miss(Deterministic(), false, {"f"});
}

TEST_F(CacheTest, NoCacheBypassesTheCacheAndRefreshesIt) {
  Miss(Deterministic(), false, {"old"});
  v1::GenerateRequest bypass = Deterministic();
  bypass.set_cache_control(v1::CACHE_CONTROL_BYPASS);
  auto refreshed = Miss(bypass, false, {"new"});
  EXPECT_EQ(refreshed->final.text(), "new");
  EXPECT_EQ(refreshed->final.cache_status(), v1::CACHE_STATUS_BYPASS);
  EXPECT_EQ(refreshed->final.cost().total_nano_usd(), kAnswerNanoUsd);
  EXPECT_EQ(Send(Deterministic(), false)->final.text(), "new");
  EXPECT_EQ(CacheRequests("bypass"), 1);
}

TEST_F(CacheTest, NoStoreKeepsTheAnswerOutOfTheCacheButMayReadIt) {
  v1::GenerateRequest no_store = Deterministic();
  no_store.set_cache_control(v1::CACHE_CONTROL_NO_STORE);
  Miss(no_store, false, {"private"});
  Miss(Deterministic(), false, {"stored"});  // a miss: nothing was stored
  EXPECT_EQ(Send(no_store, false)->final.text(), "stored");

  v1::GenerateRequest neither = Deterministic("other prompt");
  neither.set_cache_control(v1::CACHE_CONTROL_BYPASS_NO_STORE);
  Miss(neither, false, {"x"});
  Miss(Deterministic("other prompt"), false, {"y"});
}

TEST_F(CacheTest, ErrorsAndCutStreamsAreNeverCached) {
  auto failed = Send(Deterministic(), true);
  ASSERT_EQ(backend_->WaitForCalls(1), 1);
  backend_->Send("partial");
  backend_->Done(absl::UnavailableError("backend went away"));
  ASSERT_TRUE(failed->finished.HasBeenNotified());
  EXPECT_FALSE(failed->status.ok());

  auto truncated = Send(Deterministic(), true);
  ASSERT_EQ(backend_->WaitForCalls(2), 2);
  backend_->Send("no finish reason");
  backend_->Done(absl::OkStatus());
  EXPECT_EQ(truncated->status.code(), absl::StatusCode::kInternal);

  Miss(Deterministic(), true, {"complete"});
  EXPECT_EQ(backend_->calls(), 3);
  EXPECT_EQ(Send(Deterministic(), false)->final.text(), "complete");
}

TEST_F(CacheTest, AnotherTenantNeverGetsTheAnswerUnlessTheModelSharesItsCache) {
  Miss(Deterministic(), false, {"acme's answer"}, "k1");
  auto beta = Miss(Deterministic(), false, {"beta's answer"}, "k2");
  EXPECT_EQ(beta->final.text(), "beta's answer");
  EXPECT_EQ(Send(Deterministic(), false, nullptr, "k2")->final.text(), "beta's answer");
  EXPECT_EQ(Send(Deterministic(), false, nullptr, "k1")->final.text(), "acme's answer");

  Configure(kDefaultBackends, ", cache: {shared_across_tenants: true}", kCache);
  Miss(Deterministic(), false, {"everyone's answer"}, "k1");
  auto shared = Send(Deterministic(), false, nullptr, "k2");
  EXPECT_EQ(shared->final.cache_status(), v1::CACHE_STATUS_HIT);
  EXPECT_EQ(shared->final.text(), "everyone's answer");
}

TEST_F(CacheTest, IdenticalRequestsInFlightShareOneBackendCall) {
  auto leader = Send(Deterministic(), true);
  ASSERT_EQ(backend_->WaitForCalls(1), 1);
  backend_->Send("first ");
  auto late_stream = Send(Deterministic(), true);  // joins mid-stream
  auto late_unary = Send(Deterministic(), false);
  EXPECT_EQ(backend_->calls(), 1);
  EXPECT_THAT(Texts(late_stream->deltas), ElementsAre("first ")) << "the chunks so far, at once";
  Answer({"second"});

  for (RecordingSink* sink : {leader.get(), late_stream.get(), late_unary.get()}) {
    ASSERT_TRUE(sink->finished.HasBeenNotified());
    ASSERT_TRUE(sink->status.ok()) << sink->status;
    EXPECT_EQ(sink->final.usage().output_tokens(), 20u);
  }
  EXPECT_THAT(Texts(leader->deltas), ElementsAre("first ", "second"));
  EXPECT_THAT(Texts(late_stream->deltas), ElementsAre("first ", "second"));
  EXPECT_EQ(late_unary->final.text(), "first second");
  EXPECT_EQ(leader->final.cache_status(), v1::CACHE_STATUS_MISS);
  EXPECT_EQ(leader->final.cost().total_nano_usd(), kAnswerNanoUsd);
  EXPECT_EQ(late_stream->deltas.front().cache_status(), v1::CACHE_STATUS_COALESCED);
  for (RecordingSink* follower : {late_stream.get(), late_unary.get()}) {
    EXPECT_EQ(follower->final.cache_status(), v1::CACHE_STATUS_COALESCED);
    EXPECT_EQ(follower->final.cost().total_nano_usd(), 0);
    EXPECT_NE(follower->final.request_id(), leader->final.request_id());
  }
  EXPECT_EQ(CacheRequests("coalesced"), 2);
  EXPECT_DOUBLE_EQ(Saved(), 2 * kAnswerNanoUsd * 1e-9);
  EXPECT_EQ(Tokens("output"), 20) << "one call paid for";
}

TEST_F(CacheTest, TheLeadersCancelLeavesTheCallToItsFollowers) {
  std::shared_ptr<RequestHandle> leader_handle, follower_handle;
  auto leader = Send(Deterministic(), true, &leader_handle);
  ASSERT_EQ(backend_->WaitForCalls(1), 1);
  auto follower = Send(Deterministic(), true, &follower_handle);
  backend_->Send("kept ");
  leader_handle->Cancel();
  ASSERT_TRUE(leader->finished.HasBeenNotified());
  EXPECT_EQ(leader->status.code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(backend_->call_->cancelled) << "a follower still wants the answer";
  Answer({"going"});
  ASSERT_TRUE(follower->finished.HasBeenNotified());
  EXPECT_TRUE(follower->status.ok()) << follower->status;
  EXPECT_THAT(Texts(follower->deltas), ElementsAre("kept ", "going"));
  EXPECT_EQ(leader->finishes, 1);
  EXPECT_EQ(Send(Deterministic(), false)->final.text(), "kept going") << "and it was stored";
}

TEST_F(CacheTest, TheCallIsCancelledWhenItsLastPartyLeaves) {
  std::shared_ptr<RequestHandle> leader_handle, follower_handle;
  auto leader = Send(Deterministic(), true, &leader_handle);
  ASSERT_EQ(backend_->WaitForCalls(1), 1);
  auto follower = Send(Deterministic(), false, &follower_handle);
  follower_handle->Cancel();
  EXPECT_FALSE(backend_->call_->cancelled);
  EXPECT_EQ(follower->status.code(), absl::StatusCode::kCancelled);
  leader_handle->Cancel();
  EXPECT_TRUE(backend_->call_->cancelled);
  backend_->Done(absl::CancelledError("cancelled"));
  EXPECT_EQ(leader->finishes, 1);
  EXPECT_EQ(follower->finishes, 1);
  EXPECT_EQ(RequestsWithStatus("cancelled"), 2);
}

TEST_F(CacheTest, AHitCostFractionChargesHitsAndFollowersThatShareOfTheAnswer) {
  Configure(kDefaultBackends, ", cache: {hit_cost_fraction: 0.25}", kCache);
  Miss(Deterministic(), false, {"answer"});
  auto hit = Send(Deterministic(), false);
  EXPECT_EQ(hit->final.cost().total_nano_usd(), kAnswerNanoUsd / 4);
  EXPECT_EQ(hit->final.cost().output_nano_usd(), 20 * 4000 / 4);
  EXPECT_DOUBLE_EQ(Saved(), kAnswerNanoUsd * 3 / 4 * 1e-9);
}

TEST(HitCost, ScalesEveryComponentAndSumsThem) {
  v1::Cost paid;
  paid.set_input_nano_usd(3);
  paid.set_output_nano_usd(5);
  paid.set_gpu_nano_usd(7);
  paid.set_total_nano_usd(15);
  const v1::Cost half = pipeline_internal::HitCost(paid, 0.5);
  EXPECT_EQ(half.input_nano_usd(), 2);
  EXPECT_EQ(half.output_nano_usd(), 3);
  EXPECT_EQ(half.gpu_nano_usd(), 4);
  EXPECT_EQ(half.total_nano_usd(), 9);
  EXPECT_EQ(pipeline_internal::HitCost(paid, 0).total_nano_usd(), 0);
}

TEST(CacheControlFromHeader, ReadsNoCacheAndNoStoreAmongOtherDirectives) {
  EXPECT_EQ(CacheControlFromHeader(""), v1::CACHE_CONTROL_DEFAULT);
  EXPECT_EQ(CacheControlFromHeader("no-cache"), v1::CACHE_CONTROL_BYPASS);
  EXPECT_EQ(CacheControlFromHeader("No-Store"), v1::CACHE_CONTROL_NO_STORE);
  EXPECT_EQ(CacheControlFromHeader("max-age=0, no-store ,NO-CACHE"),
            v1::CACHE_CONTROL_BYPASS_NO_STORE);
  EXPECT_EQ(CacheControlFromHeader("no-cache=\"set-cookie\""), v1::CACHE_CONTROL_BYPASS);
  // Malformed or unknown text is ignored, never an error.
  EXPECT_EQ(CacheControlFromHeader(",,;;\x01 no-cachex, nostore"), v1::CACHE_CONTROL_DEFAULT);
}

TEST(CacheGauges, ReportBytesEntriesAndEvictionsAndKeepEvictionsAcrossStages) {
  CacheOptions options;
  options.enabled = true;
  options.max_bytes = 16 * 2048;  // 2 KiB per shard
  CacheGauges gauges;
  auto stage = CacheStage::Create(options, nullptr);
  gauges.Set(stage);
  auto answer = std::make_shared<CachedResponse>();
  answer->chunks = {std::string(1500, 'x')};
  answer->finish_reason = v1::FINISH_REASON_STOP;
  for (int i = 0; i < 200; ++i) stage->Store(absl::StrCat("key-", i), answer);
  auto value = [&](const std::string& name) {
    for (const auto& family : gauges.Collect()) {
      if (family.name == name) {
        return family.type == prometheus::MetricType::Gauge ? family.metric[0].gauge.value
                                                            : family.metric[0].counter.value;
      }
    }
    return -1.0;
  };
  const ResponseCacheStats stats = stage->memory().Stats();
  EXPECT_EQ(value("tollgate_cache_entries"), stats.entries);
  EXPECT_EQ(value("tollgate_cache_bytes"), stats.bytes);
  EXPECT_GT(stats.evictions_size, 0u);
  EXPECT_EQ(value("tollgate_cache_evictions_total"), stats.evictions_size);  // reason="size"
  gauges.Set(CacheStage::Create(options, nullptr));
  EXPECT_EQ(value("tollgate_cache_entries"), 0);
  EXPECT_EQ(value("tollgate_cache_evictions_total"), stats.evictions_size) << "never goes down";
}

}  // namespace
}  // namespace tollgate
