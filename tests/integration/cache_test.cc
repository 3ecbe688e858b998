// Acceptance tests of the response cache end to end: real tollgate, tollgate-sim and redis-server
// processes on loopback ports.
//
// - 50 identical requests in flight make one backend call (the simulator's own counter), and the
//   leader's cancel does not break its followers.
// - Two tollgates with one Redis share hits and enforce one budget.
// - Redis killed part-way through a load run: no request fails, and the shared tier works again
//   once Redis is back.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/common/redis_server.h"
#include "tests/integration/harness.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate {
namespace {

constexpr char kAcmeKey[] = "key-acme";

// {SIM}: the simulator's gRPC address; {REDIS}: a `redis:` section or nothing; {BUDGETS}: a
// `budgets:` section or nothing.
constexpr char kConfig[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0", http_address: "127.0.0.1:0"}
tenants: [{name: acme, api_key_sha256: ["{ACME}"]}]
backends: [{name: remote, kind: grpc, address: "{SIM}", retry: {max_attempts: 1}}]
models:
  - {name: chat, backend: remote, backend_model: llama-3-8b, tokenizer: estimate,
     prices: {input_usd_per_mtok: 1.00, output_usd_per_mtok: 4.00}}
cache: {enabled: true}
{REDIS}
{BUDGETS}
)";

struct Proxy {
  std::unique_ptr<testing::ChildProcess> process;
  std::string metrics;
  std::string http;
  std::unique_ptr<v1::Inference::Stub> stub;
};

struct Outcome {
  grpc::Status status;
  v1::GenerateResponse response;
};

class CacheIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir(); }
  void TearDown() override {
    if (!HasFailure() && !dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Starts tollgate-sim (gRPC and HTTP, the HTTP side for its /metrics) with `time_scale`.
  void StartSim(double time_scale) {
    const absl::StatusOr<testing::SimAddresses> sim =
        testing::StartSim(sim_, {absl::StrCat("--time_scale=", time_scale)}, dir_ + "/sim.log");
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_grpc_ = sim->grpc;
    sim_http_ = sim->http;
  }

  // Generate requests the simulator has admitted so far.
  double SimCalls() {
    const absl::StatusOr<std::string> body = testing::HttpGet(sim_http_, "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    return testing::SumSamples(testing::ParseMetrics(body.value_or("")),
                               "tollgate_sim_requests_total", {});
  }

  // Starts a tollgate; `redis` and `budgets` are YAML sections (or empty).
  Proxy StartProxy(const std::string& redis, const std::string& budgets) {
    const int n = ++proxies_started_;
    const std::string config = absl::StrCat(dir_, "/tollgate-", n, ".yaml");
    testing::WriteFile(config, absl::StrReplaceAll(kConfig, {{"{ACME}", ApiKeySha256Hex(kAcmeKey)},
                                                             {"{SIM}", sim_grpc_},
                                                             {"{REDIS}", redis},
                                                             {"{BUDGETS}", budgets}}));
    Proxy proxy;
    proxy.process = std::make_unique<testing::ChildProcess>();
    const std::string log = absl::StrCat(dir_, "/tollgate-", n, ".log");
    EXPECT_TRUE(
        proxy.process->Start({testing::Binary("proxy/tollgate"), "--config", config}, log).ok());
    const absl::StatusOr<std::string> line =
        proxy.process->WaitForLine("tollgate listening", absl::Seconds(30));
    EXPECT_TRUE(line.ok()) << line.status() << "\n" << testing::RunCommand("cat " + log).output;
    if (!line.ok()) return proxy;
    proxy.metrics = testing::FieldAfter(*line, "metrics");
    proxy.http = testing::FieldAfter(*line, "http");
    proxy.stub = v1::Inference::NewStub(grpc::CreateChannel(testing::FieldAfter(*line, "grpc"),
                                                            grpc::InsecureChannelCredentials()));
    return proxy;
  }

  static std::string RedisSection(const testing::RedisServer& redis) {
    return absl::StrCat("redis: {address: \"", redis.address(), "\"}");
  }

  // Waits until Redis holds `n` cached answers (the store is asynchronous).
  static void AwaitCachedAnswersInRedis(const testing::RedisServer& redis, size_t n) {
    size_t seen = 0;
    for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;
         absl::SleepFor(absl::Milliseconds(10))) {
      const absl::StatusOr<std::string> keys =
          testing::RedisCall(redis.port(), {"KEYS", "tollgate:cache:*"});
      seen = keys.ok() && !keys->empty()
                 ? std::vector<std::string>(absl::StrSplit(*keys, '\n')).size()
                 : 0;
      if (seen >= n) return;
    }
    FAIL() << "Redis holds " << seen << " cached answers, expected " << n;
  }

  static double Metric(const Proxy& proxy, const std::string& name,
                       const std::map<std::string, std::string>& labels = {}) {
    const absl::StatusOr<std::string> body = testing::HttpGet(proxy.metrics, "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    return testing::SumSamples(testing::ParseMetrics(body.value_or("")), name, labels);
  }

  // Polls until `name`{labels} equals `value`; returns the last value seen.
  static double AwaitMetric(const Proxy& proxy, const std::string& name,
                            const std::map<std::string, std::string>& labels, double value) {
    double seen = -1;
    for (absl::Time end = absl::Now() + absl::Seconds(30); absl::Now() < end;
         absl::SleepFor(absl::Milliseconds(50))) {
      seen = Metric(proxy, name, labels);
      if (seen == value) break;
    }
    return seen;
  }

  static v1::GenerateRequest Request(const std::string& prompt, uint32_t max_tokens,
                                     bool deterministic = true) {
    v1::GenerateRequest request;
    request.set_model("chat");
    request.set_prompt(prompt);
    request.mutable_params()->set_max_tokens(max_tokens);
    request.mutable_params()->set_temperature(deterministic ? 0.0f : 0.7f);
    return request;
  }

  static Outcome Unary(const Proxy& proxy, const v1::GenerateRequest& request) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kAcmeKey));
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    Outcome outcome;
    outcome.status = proxy.stub->Generate(&context, request, &outcome.response);
    return outcome;
  }

  std::string dir_;
  testing::ChildProcess sim_;
  std::string sim_grpc_, sim_http_;
  int proxies_started_ = 0;
};

TEST_F(CacheIntegrationTest, FiftyIdenticalRequestsInFlightMakeOneBackendCall) {
  // At a tenth of real speed, 64 tokens of llama-3-8b take seconds: the 50 arrive while the first
  // is still generating.
  ASSERT_NO_FATAL_FAILURE(StartSim(10));
  Proxy proxy = StartProxy("", "");
  ASSERT_NE(proxy.stub, nullptr);
  const double calls_before = SimCalls();

  constexpr int kRequests = 50;
  std::vector<Outcome> outcomes(kRequests);
  std::vector<std::thread> clients;
  const v1::GenerateRequest request = Request("fifty of the same, please", 64);
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] { outcomes[i] = Unary(proxy, request); });
  }
  for (std::thread& client : clients) client.join();

  EXPECT_EQ(SimCalls() - calls_before, 1) << "one backend call for all 50";
  std::map<v1::CacheStatus, int> by_status;
  for (const Outcome& o : outcomes) {
    ASSERT_TRUE(o.status.ok()) << o.status.error_message();
    EXPECT_EQ(o.response.text(), outcomes[0].response.text());
    EXPECT_FALSE(o.response.text().empty());
    ++by_status[o.response.cache_status()];
  }
  EXPECT_EQ(by_status[v1::CACHE_STATUS_MISS], 1);
  EXPECT_GE(by_status[v1::CACHE_STATUS_COALESCED], 1);
  EXPECT_EQ(by_status[v1::CACHE_STATUS_COALESCED] + by_status[v1::CACHE_STATUS_HIT], 49);
  EXPECT_EQ(Metric(proxy, "tollgate_cache_requests_total", {{"result", "coalesced"}}),
            by_status[v1::CACHE_STATUS_COALESCED]);
  EXPECT_GT(Metric(proxy, "tollgate_cache_saved_usd_total", {{"tenant", "acme"}}), 0);
}

TEST_F(CacheIntegrationTest, TheLeadersCancelDoesNotBreakItsFollowers) {
  ASSERT_NO_FATAL_FAILURE(StartSim(10));
  Proxy proxy = StartProxy("", "");
  ASSERT_NE(proxy.stub, nullptr);
  const double calls_before = SimCalls();
  const v1::GenerateRequest request = Request("the leader leaves early", 64);

  grpc::ClientContext leader_context;
  leader_context.AddMetadata("authorization", absl::StrCat("Bearer ", kAcmeKey));
  auto leader = proxy.stub->GenerateStream(&leader_context, request);
  v1::GenerateResponse first;
  ASSERT_TRUE(leader->Read(&first)) << "the leader's first token";

  // Followers stream too: each one's first message (the chunks so far, replayed when it joins)
  // shows it has joined the flight.
  constexpr int kFollowers = 5;
  std::vector<std::string> texts(kFollowers);
  std::vector<grpc::Status> statuses(kFollowers);
  std::vector<v1::CacheStatus> cache(kFollowers);
  std::atomic<int> joined = 0;
  std::vector<std::thread> followers;
  for (int i = 0; i < kFollowers; ++i) {
    followers.emplace_back([&, i] {
      grpc::ClientContext context;
      context.AddMetadata("authorization", absl::StrCat("Bearer ", kAcmeKey));
      auto reader = proxy.stub->GenerateStream(&context, request);
      v1::GenerateResponse message;
      bool counted = false;
      while (reader->Read(&message)) {
        if (!counted) {
          counted = true;
          cache[i] = message.cache_status();
          joined.fetch_add(1);
        }
        texts[i] += message.text();
      }
      statuses[i] = reader->Finish();
    });
  }
  for (absl::Time end = absl::Now() + absl::Seconds(30); joined.load() < kFollowers;) {
    ASSERT_LT(absl::Now(), end) << "followers did not join";
    absl::SleepFor(absl::Milliseconds(5));
  }
  leader_context.TryCancel();
  EXPECT_EQ(leader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  for (std::thread& follower : followers) follower.join();

  for (int i = 0; i < kFollowers; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(cache[i], v1::CACHE_STATUS_COALESCED);
    EXPECT_EQ(texts[i], texts[0]);
  }
  EXPECT_EQ(SimCalls() - calls_before, 1);
  const Outcome repeat = Unary(proxy, request);
  ASSERT_TRUE(repeat.status.ok());
  EXPECT_EQ(repeat.response.cache_status(), v1::CACHE_STATUS_HIT) << "the whole answer was stored";
  EXPECT_EQ(repeat.response.text(), texts[0]);
}

TEST_F(CacheIntegrationTest, HttpCacheControlBypassesOrKeepsAnswersOutOfTheCache) {
  ASSERT_NO_FATAL_FAILURE(StartSim(0));
  Proxy proxy = StartProxy("", "");
  ASSERT_FALSE(proxy.http.empty());
  // The x-tollgate-cache header of a chat completion with `content` and these extra headers.
  const auto call = [&](const std::string& content, std::map<std::string, std::string> headers) {
    headers["authorization"] = absl::StrCat("Bearer ", kAcmeKey);
    headers["content-type"] = "application/json";
    const absl::StatusOr<testing::HttpResponse> response = testing::HttpCall(
        proxy.http, "POST", "/v1/chat/completions", headers,
        absl::StrCat(R"({"model":"chat","max_tokens":8,"temperature":0,"messages":[)",
                     R"({"role":"user","content":")", content, R"("}]})"));
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return std::string();
    EXPECT_EQ(response->status, 200) << response->body;
    const auto header = response->headers.find("x-tollgate-cache");
    return header != response->headers.end() ? header->second : std::string("(none)");
  };
  EXPECT_EQ(call("plain", {}), "miss");
  EXPECT_EQ(call("plain", {}), "hit");
  EXPECT_EQ(call("plain", {{"cache-control", "no-cache"}}), "bypass");
  EXPECT_EQ(call("kept out", {{"cache-control", "no-store"}}), "miss");
  EXPECT_EQ(call("kept out", {}), "miss") << "no-store stored nothing";
  EXPECT_EQ(call("kept out", {}), "hit");
  EXPECT_EQ(Metric(proxy, "tollgate_cache_requests_total", {{"result", "bypass"}}), 1);
}

TEST_F(CacheIntegrationTest, TwoTollgatesShareHitsAndOneBudgetThroughRedis) {
  absl::StatusOr<std::unique_ptr<testing::RedisServer>> redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  ASSERT_NO_FATAL_FAILURE(StartSim(0));
  // Each call reserves its prompt plus 16 output tokens at $4/Mtok: about $0.0001. The limit
  // lets a handful through across both replicas; alone, each would let as many through again.
  const std::string budgets =
      "budgets: [{name: acme-total, tenant: acme, window: total, limit_usd: 0.0005}]";
  Proxy a = StartProxy(RedisSection(**redis), budgets);
  Proxy b = StartProxy(RedisSection(**redis), budgets);
  ASSERT_NE(a.stub, nullptr);
  ASSERT_NE(b.stub, nullptr);
  EXPECT_EQ(AwaitMetric(a, "tollgate_redis_up", {}, 1), 1);
  EXPECT_EQ(AwaitMetric(b, "tollgate_redis_up", {}, 1), 1);

  // Shared hits: b serves a's answer without calling the backend.
  const double calls_before = SimCalls();
  const Outcome on_a = Unary(a, Request("shared across replicas", 16));
  ASSERT_TRUE(on_a.status.ok()) << on_a.status.error_message();
  ASSERT_NO_FATAL_FAILURE(AwaitCachedAnswersInRedis(**redis, 1));
  const Outcome on_b = Unary(b, Request("shared across replicas", 16));
  ASSERT_TRUE(on_b.status.ok());
  EXPECT_EQ(on_b.response.cache_status(), v1::CACHE_STATUS_HIT);
  EXPECT_EQ(on_b.response.text(), on_a.response.text());
  EXPECT_EQ(on_b.response.cost().total_nano_usd(), 0);
  EXPECT_EQ(SimCalls() - calls_before, 1);

  // One budget: uncacheable calls alternate between the replicas until both refuse.
  int64_t spent = on_a.response.cost().total_nano_usd();
  int accepted[2] = {0, 0}, refused[2] = {0, 0};
  for (int i = 0; i < 40 && (refused[0] < 3 || refused[1] < 3); ++i) {
    const Proxy& proxy = i % 2 == 0 ? a : b;
    const Outcome o = Unary(proxy, Request(absl::StrCat("paid call ", i), 16, false));
    if (o.status.ok()) {
      ++accepted[i % 2];
      spent += o.response.cost().total_nano_usd();
    } else {
      ASSERT_EQ(o.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << o.status.error_message();
      EXPECT_NE(o.status.error_message().find("acme-total"), std::string::npos);
      ++refused[i % 2];
    }
  }
  EXPECT_GT(accepted[0], 0);
  EXPECT_GT(accepted[1], 0);
  EXPECT_GE(refused[0], 3);
  EXPECT_GE(refused[1], 3);
  // Within the one limit, give or take what a backend's prompt count exceeds the estimate each
  // call reserved (a few tokens at $1/Mtok per call); each replica alone would spend the limit.
  EXPECT_LE(spent, 500'000 + 10 * 5'000) << "both replicas together stayed within one limit";
}

TEST_F(CacheIntegrationTest, RedisKilledMidLoadFailsNoRequestAndTheSharedTierRecovers) {
  absl::StatusOr<std::unique_ptr<testing::RedisServer>> redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  ASSERT_NO_FATAL_FAILURE(StartSim(0));
  const std::string budgets =
      "budgets: [{name: acme-daily, tenant: acme, window: daily, limit_usd: 1000}]";
  Proxy a = StartProxy(RedisSection(**redis), budgets);
  Proxy b = StartProxy(RedisSection(**redis), budgets);
  ASSERT_NE(a.stub, nullptr);
  ASSERT_NE(b.stub, nullptr);
  EXPECT_EQ(AwaitMetric(a, "tollgate_redis_up", {}, 1), 1);

  // Four clients, each on one replica, mixing repeats (cacheable) with paid calls, until stopped.
  std::atomic<bool> stop = false;
  std::atomic<int> ok = 0, failed = 0;
  std::string first_failure;
  absl::Mutex failure_mu;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      const Proxy& proxy = c % 2 == 0 ? a : b;
      for (int i = 0; !stop.load(); ++i) {
        const Outcome o = Unary(proxy, Request(absl::StrCat("load ", i % 7), 8, i % 3 != 0));
        if (o.status.ok()) {
          ok.fetch_add(1);
        } else {
          failed.fetch_add(1);
          absl::MutexLock lock(&failure_mu);
          if (first_failure.empty()) first_failure = o.status.error_message();
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE((*redis)->Kill().ok());
  EXPECT_EQ(AwaitMetric(a, "tollgate_redis_up", {}, 0), 0);
  const int ok_at_kill = ok.load();
  absl::SleepFor(absl::Milliseconds(1000));
  EXPECT_GT(ok.load(), ok_at_kill) << "requests go on without Redis";
  ASSERT_TRUE((*redis)->Restart().ok());
  EXPECT_EQ(AwaitMetric(a, "tollgate_redis_up", {}, 1), 1) << "reconnected on its own";
  EXPECT_EQ(AwaitMetric(b, "tollgate_redis_up", {}, 1), 1);
  absl::SleepFor(absl::Milliseconds(500));
  stop = true;
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(failed.load(), 0) << first_failure;
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(Metric(a, "tollgate_redis_errors_total"), 0) << "the outage was seen and counted";

  // The restarted Redis is empty; the shared tier fills and serves again.
  const Outcome fresh = Unary(a, Request("after the outage", 16));
  ASSERT_TRUE(fresh.status.ok());
  ASSERT_NO_FATAL_FAILURE(AwaitCachedAnswersInRedis(**redis, 1));
  const Outcome shared = Unary(b, Request("after the outage", 16));
  EXPECT_EQ(shared.response.cache_status(), v1::CACHE_STATUS_HIT);
  EXPECT_EQ(shared.response.text(), fresh.response.text());
}

}  // namespace
}  // namespace tollgate
