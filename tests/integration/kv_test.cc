// Acceptance test of KV-cache accounting end to end: a real tollgate in front of a real
// tollgate-sim (continuous batching, real time) on the same GPU preset. Under a steady load of
// overlapping streams, Tollgate's own figure, tollgate_kv_cache_bytes{backend}, agrees with the
// bytes the simulator's running requests hold (tollgate_sim_kv_cache_bytes).
//
// Why they can agree exactly, and where they cannot:
// - Both hold (prompt + generated) tokens rounded up to 16-token blocks × 131072 bytes per token
//   (Llama-3-8B, bf16), and both size the cache as 80 GB × 0.9 less the weights.
// - Prompt tokens: the simulator counts ceil(bytes / 4); the prompts here are " the" repeated,
// which
//   llama3 (Tollgate's tokenizer for the model) counts one token each — checked below.
// - Generated tokens: the simulator streams words of its own vocabulary, one token each; Tollgate
//   counts what arrived with llama3, which has every one of those words as one token, but merges a
//   few neighbours (".\n", ".,", "\n\n" are single llama3 tokens), so it counts a little less. The
//   test first checks the pairing on one answer (llama3's count within 3% of the simulator's).
// - Timing: Tollgate sees a token a moment after the simulator emits it (and StreamCounter holds a
//   trailing partial token back), and a request ends in Tollgate a moment after the simulator
//   drops it. So at a given instant a few requests may be a block apart, and a request just
//   finished may still count on one side. Hence the tolerance: a sample agrees within 5% of the
//   simulator's figure (16 requests of ~10-30 blocks each: one block off is under 1%, one whole
//   request off is ~6%), and at least 80% of the samples must agree. A sample is kept only when two
//   reads of Tollgate bracketing the simulator's read agree with each other (a steady moment), and
//   when the simulator holds at least half its usual load (start-up and near-empty moments
//   skipped).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "accounting/tokenizer/registry.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/integration/harness.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate {
namespace {

constexpr char kKey[] = "key-kv";
constexpr int kClients = 16;
constexpr uint32_t kMaxTokens = 200;

constexpr char kConfig[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0"}
tenants: [{name: acme, api_key_sha256: ["{KEY}"]}]
vocab_dir: "{VOCAB}"
backends:
  - {name: remote, kind: grpc, address: "{SIM}", retry: {max_attempts: 1},
     kv: {gpu: a100-80gb, admission: {ADMISSION}, metrics_url: "http://{SIM_HTTP}/metrics",
          poll_interval_ms: 200}}
models:
  - {name: llama-3-8b, backend: remote, tokenizer: llama3}
)";

std::string ThePrompt(int words) {
  std::string prompt;
  for (int i = 0; i < words; ++i) prompt += " the";
  return prompt;
}

class KvIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    const char* vocab = std::getenv("TOLLGATE_VOCAB_DIR");
    vocab_dir_ = vocab != nullptr ? vocab : TOLLGATE_SOURCE_DIR "/.cache/tokenizer";
  }
  void TearDown() override {
    if (!HasFailure() && !dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartSim() {
    const absl::StatusOr<testing::SimAddresses> sim = testing::StartSim(
        sim_, {"--gpu=a100-80gb", "--time_scale=1", "--batch_mode=continuous"}, dir_ + "/sim.log");
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_grpc_ = sim->grpc;
    sim_http_ = sim->http;
  }

  // `admission`: backends[].kv.admission as a YAML flow map.
  void StartProxy(const std::string& admission = "{enabled: false}") {
    const std::string config = dir_ + "/tollgate.yaml";
    testing::WriteFile(config, absl::StrReplaceAll(kConfig, {{"{KEY}", ApiKeySha256Hex(kKey)},
                                                             {"{SIM}", sim_grpc_},
                                                             {"{SIM_HTTP}", sim_http_},
                                                             {"{VOCAB}", vocab_dir_},
                                                             {"{ADMISSION}", admission}}));
    const std::string log = dir_ + "/tollgate.log";
    ASSERT_TRUE(proxy_.Start({testing::Binary("proxy/tollgate"), "--config", config}, log).ok());
    const absl::StatusOr<std::string> line =
        proxy_.WaitForLine("tollgate listening", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << testing::RunCommand("cat " + log).output;
    metrics_ = testing::FieldAfter(*line, "metrics");
    stub_ = v1::Inference::NewStub(grpc::CreateChannel(testing::FieldAfter(*line, "grpc"),
                                                       grpc::InsecureChannelCredentials()));
  }

  static v1::GenerateRequest Request(int words, int variant) {
    v1::GenerateRequest request;
    request.set_model("llama-3-8b");
    request.set_prompt(ThePrompt(words));
    request.mutable_params()->set_max_tokens(kMaxTokens);
    request.mutable_params()->set_seed(variant);  // a different answer per request
    request.mutable_params()->set_temperature(0.7f);
    return request;
  }

  double Sample(const std::string& address, const std::string& name,
                const std::map<std::string, std::string>& labels) {
    const absl::StatusOr<std::string> body = testing::HttpGet(address, "/metrics");
    if (!body.ok()) return -1;
    return testing::SumSamples(testing::ParseMetrics(*body), name, labels);
  }
  double TollgateKvBytes() {
    return Sample(metrics_, "tollgate_kv_cache_bytes", {{"backend", "remote"}});
  }
  double SimKvBytes() { return Sample(sim_http_, "tollgate_sim_kv_cache_bytes", {}); }

  std::string dir_, vocab_dir_;
  testing::ChildProcess sim_, proxy_;
  std::string sim_grpc_, sim_http_, metrics_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TEST_F(KvIntegrationTest, TollgatesKvBytesAgreeWithTheSimulatorsUnderLoad) {
  absl::StatusOr<std::shared_ptr<const Tokenizer>> llama3 = LoadTokenizer("llama3", vocab_dir_);
  if (!llama3.ok()) GTEST_SKIP() << "llama3 vocabulary not found: " << llama3.status();
  ASSERT_EQ((*llama3)->Count(ThePrompt(100)), 100u) << "prompt counts differ between the two";
  ASSERT_NO_FATAL_FAILURE(StartSim());
  ASSERT_NO_FATAL_FAILURE(StartProxy());

  EXPECT_EQ(Sample(metrics_, "tollgate_kv_cache_capacity_bytes", {{"backend", "remote"}}),
            80e9 * 0.9 - 8.03e9 * 2)
      << "the simulator's capacity for Llama-3-8B on one A100-80GB";
  EXPECT_EQ(Sample(metrics_, "tollgate_kv_cache_bytes_per_token", {{"model", "llama-3-8b"}}),
            131072);

  {  // The pairing: llama3 counts the simulator's answer as the simulator does.
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
    v1::GenerateResponse response;
    ASSERT_TRUE(stub_->Generate(&context, Request(64, 0), &response).ok());
    ASSERT_EQ(response.usage().input_tokens(), 64u);
    const double counted = static_cast<double>((*llama3)->Count(response.text()));
    const double reported = response.usage().output_tokens();
    std::cout << "llama3 counts " << counted << " tokens in an answer the simulator reports as "
              << reported << "\n";
    ASSERT_NEAR(counted, reported, 0.03 * reported)
        << "llama3 does not count the simulator's vocabulary about one token a word: "
        << response.text();
  }

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int k = 0; !stop.load(); ++k) {
        grpc::ClientContext context;
        context.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
        auto reader = stub_->GenerateStream(
            &context, Request(40 + (c * 37 + k * 11) % 300, c * 1000 + k + 1));
        v1::GenerateResponse chunk;
        while (reader->Read(&chunk)) {
        }
        if (!reader->Finish().ok()) failures.fetch_add(1);
      }
    });
  }

  // Steady state: every client has a stream running.
  absl::SleepFor(absl::Seconds(3));
  struct Moment {
    double sim, tollgate;
  };
  std::vector<Moment> moments;  // steady ones
  std::vector<double> sim_values;
  size_t samples = 0;
  double backend_usage_max = 0;  // the simulator's own ratio, as Tollgate's poller reads it
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (absl::Now() < end) {
    const double before = TollgateKvBytes();
    const double sim = SimKvBytes();
    const double after = TollgateKvBytes();
    absl::SleepFor(absl::Milliseconds(50));
    if (before < 0 || sim <= 0 || after < 0) continue;
    ++samples;
    sim_values.push_back(sim);
    backend_usage_max = std::max(
        backend_usage_max,
        Sample(metrics_, "tollgate_backend_kv_cache_usage_ratio", {{"backend", "remote"}}));
    if (std::abs(before - after) > 0.02 * sim) continue;  // moving: not a steady moment
    moments.push_back({sim, (before + after) / 2});
  }
  stop.store(true);
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(failures.load(), 0);
  // kv.metrics_url: the poller read the simulator's vllm:kv_cache_usage_perc under load.
  EXPECT_GT(backend_usage_max, 0);

  ASSERT_FALSE(sim_values.empty());
  std::sort(sim_values.begin(), sim_values.end());
  const double median_sim = sim_values[sim_values.size() / 2];
  std::vector<double> relative_errors;
  for (const Moment& moment : moments) {
    if (moment.sim < 0.5 * median_sim) continue;  // near-empty: a lull between streams
    relative_errors.push_back(std::abs(moment.tollgate - moment.sim) / moment.sim);
  }
  std::sort(relative_errors.begin(), relative_errors.end());
  ASSERT_GE(relative_errors.size(), 20u) << "too few steady samples";
  const size_t within = static_cast<size_t>(std::count_if(
      relative_errors.begin(), relative_errors.end(), [](double e) { return e <= 0.05; }));
  const double median_error = relative_errors[relative_errors.size() / 2];
  std::cout << "KV agreement: " << within << "/" << relative_errors.size() << " steady samples (of "
            << samples << ") within 5%; median error " << median_error * 100 << "%; p90 error "
            << relative_errors[relative_errors.size() * 9 / 10] * 100 << "%; median simulator KV "
            << median_sim / 1e9 << " GB\n";
  EXPECT_GE(within * 5, relative_errors.size() * 4) << "fewer than 80% of samples within 5%";
  EXPECT_LE(median_error, 0.05);

  // Idle: every footprint was released.
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(TollgateKvBytes(), 0);
}

// KV-aware admission in the pipeline: a request whose projection (prompt + max_tokens,
// block-rounded) exceeds the limit is refused at once; a smaller one is admitted.
TEST_F(KvIntegrationTest, AdmissionRefusesARequestThatCanNeverFitAndAdmitsOneThatDoes) {
  ASSERT_NO_FATAL_FAILURE(StartSim());
  // Limit 0.001 × 55.94 GB = 55.9 MB: 64 + 200 tokens (17 blocks, 35.7 MB) fit; 64 + 4000 tokens
  // (254 blocks, 533 MB) never can.
  ASSERT_NO_FATAL_FAILURE(StartProxy("{enabled: true, admit_ratio: 0.001}"));
  grpc::ClientContext refused_context;
  refused_context.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
  v1::GenerateResponse response;
  v1::GenerateRequest large = Request(64, 1);
  large.mutable_params()->set_max_tokens(4000);
  const grpc::Status refused = stub_->Generate(&refused_context, large, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("remote"), std::string::npos) << refused.error_message();

  grpc::ClientContext admitted_context;
  admitted_context.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
  const grpc::Status admitted = stub_->Generate(&admitted_context, Request(64, 2), &response);
  EXPECT_TRUE(admitted.ok()) << admitted.error_message();
  EXPECT_EQ(TollgateKvBytes(), 0) << "the admitted request's hold and footprint were released";
}

}  // namespace
}  // namespace tollgate
