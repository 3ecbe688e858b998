// Dynamic batching end to end: real tollgate and tollgate-sim processes. Concurrent
// /v1/completions prompt requests to Tollgate's HTTP ingress reach the simulator (an
// OpenAI-compatible backend, in static-batch mode: one call at a time) as one call with a prompt
// array, and each caller gets its own completion and its own share of the call's cost.
//
// tollgate_sim_requests_total counts every item of a batch (each prompt the engine admits), so it
// shows that every prompt reached the simulator, not how many calls did. The calls are seen on
// the simulator's vllm:num_requests_running: in static mode it is the running call's items, so
// all the prompts running at once means one call; and on Tollgate's own tollgate_batches_total,
// whose series also pass promtool.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "rapidjson/document.h"
#include "tests/integration/harness.h"

namespace tollgate {
namespace {

using ::tollgate::testing::Binary;
using ::tollgate::testing::ChildProcess;
using ::tollgate::testing::FieldAfter;
using ::tollgate::testing::HttpCall;
using ::tollgate::testing::HttpResponse;

constexpr char kKey[] = "key-batching";
constexpr int kCallers = 6;

// {SIM}: the simulator's HTTP address. The batch goes when all the callers are in (the preferred
// size); the long delay only matters if one of them is very late on a busy machine.
constexpr char kConfig[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0", http_address: "127.0.0.1:0"}
tenants: [{name: acme, api_key_sha256: ["{KEY}"]}]
backends: [{name: vllm, kind: openai, base_url: "http://{SIM}", retry: {max_attempts: 1}}]
models:
  - {name: llama-3-8b, backend: vllm, tokenizer: estimate,
     prices: {input_usd_per_mtok: 0.20, output_usd_per_mtok: 0.60}}
batching: {enabled: true, max_batch_size: 8, preferred_batch_sizes: [6],
           max_queue_delay_us: 5000000}
)";

std::string CompletionBody(const std::string& prompt) {
  return absl::StrCat(R"({"model":"llama-3-8b","prompt":")", prompt, R"(","max_tokens":24})");
}

// "0.000011400" → 11400.
int64_t NanoUsd(const std::string& dollars) {
  const std::vector<std::string> parts = absl::StrSplit(dollars, '.');
  int64_t whole = 0, fraction = 0;
  EXPECT_EQ(parts.size(), 2u) << dollars;
  if (parts.size() != 2 || parts[1].size() != 9 || !absl::SimpleAtoi(parts[0], &whole) ||
      !absl::SimpleAtoi(parts[1], &fraction)) {
    ADD_FAILURE() << "not a dollar amount with nine decimals: " << dollars;
    return -1;
  }
  return whole * 1'000'000'000 + fraction;
}

struct Answer {
  int status = 0;
  std::string text;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  int64_t cost_nano_usd = -1;
};

Answer ParseAnswer(const HttpResponse& response) {
  Answer answer;
  answer.status = response.status;
  rapidjson::Document json;
  json.Parse(response.body.c_str());
  if (json.HasParseError() || !json.IsObject() || !json.HasMember("choices") ||
      !json["choices"].IsArray() || json["choices"].Size() != 1) {
    ADD_FAILURE() << "not one completion: " << response.body;
    return answer;
  }
  answer.text = json["choices"][0]["text"].GetString();
  if (json.HasMember("usage")) {
    answer.prompt_tokens = json["usage"]["prompt_tokens"].GetUint64();
    answer.completion_tokens = json["usage"]["completion_tokens"].GetUint64();
  }
  auto cost = response.headers.find("x-tollgate-cost-usd");
  if (cost != response.headers.end()) answer.cost_nano_usd = NanoUsd(cost->second);
  return answer;
}

class BatchingIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    // Static mode runs one call at a time; time_scale 4 makes a call last about a second.
    ASSERT_TRUE(sim_.Start({Binary("sim/tollgate-sim"), "--address=127.0.0.1:0",
                            "--http_address=127.0.0.1:0", "--batch_mode=static", "--time_scale=4"},
                           dir_ + "/sim.log")
                    .ok());
    const absl::StatusOr<std::string> http =
        sim_.WaitForLine("tollgate-sim http listening on ", absl::Seconds(30));
    ASSERT_TRUE(http.ok()) << http.status();
    sim_http_ = http->substr(http->rfind(' ') + 1);
    const std::string config = dir_ + "/tollgate.yaml";
    testing::WriteFile(config, absl::StrReplaceAll(kConfig, {{"{KEY}", ApiKeySha256Hex(kKey)},
                                                             {"{SIM}", sim_http_}}));
    ASSERT_TRUE(
        proxy_.Start({Binary("proxy/tollgate"), "--config", config}, dir_ + "/tollgate.log").ok());
    const absl::StatusOr<std::string> line =
        proxy_.WaitForLine("tollgate listening", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << line.status();
    http_ = FieldAfter(*line, "http");
    metrics_ = FieldAfter(*line, "metrics");
  }

  HttpResponse Post(const std::string& address, const std::string& body) {
    absl::StatusOr<HttpResponse> response = HttpCall(
        address, "POST", "/v1/completions",
        {{"Content-Type", "application/json"}, {"Authorization", absl::StrCat("Bearer ", kKey)}},
        body);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.value_or(HttpResponse{});
  }

  static double Sample(const std::string& address, const std::string& name) {
    const absl::StatusOr<std::string> body = testing::HttpGet(address, "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    return testing::SumSamples(testing::ParseMetrics(body.value_or("")), name, {});
  }

  std::string dir_;
  std::string sim_http_;
  std::string http_;
  std::string metrics_;
  ChildProcess sim_;
  ChildProcess proxy_;
};

TEST_F(BatchingIntegrationTest, ConcurrentPromptRequestsReachTheSimulatorAsOneCall) {
  std::vector<std::string> prompts;
  prompts.reserve(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    prompts.push_back(absl::StrCat("Caller ", i, " asks a question of ", 5 * i + 3, " words"));
  }
  std::vector<HttpResponse> responses(kCallers);
  std::atomic<int> done{0};
  std::vector<std::thread> callers;
  callers.reserve(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      responses[i] = Post(http_, CompletionBody(prompts[i]));
      ++done;
    });
  }
  // The simulator runs one call at a time: every prompt running at once is one call.
  double most_running = 0;
  while (done < kCallers) {
    most_running = std::max(most_running, Sample(sim_http_, "vllm:num_requests_running"));
    absl::SleepFor(absl::Milliseconds(20));
  }
  for (std::thread& caller : callers) caller.join();

  EXPECT_EQ(most_running, kCallers) << "the prompts ran as one static call";
  EXPECT_EQ(Sample(sim_http_, "tollgate_sim_requests_total"), kCallers) << "one item per prompt";
  EXPECT_EQ(Sample(metrics_, "tollgate_batches_total"), 1);
  EXPECT_EQ(Sample(metrics_, "tollgate_batch_size_sum"), kCallers);
  EXPECT_EQ(Sample(metrics_, "tollgate_batch_queue_delay_seconds_count"), kCallers);

  // Each caller's share: the parts add up to what the simulator counted for the call, and the
  // costs to that usage at the model's prices.
  const double sim_prompt = Sample(sim_http_, "vllm:prompt_tokens_total");
  const double sim_output = Sample(sim_http_, "vllm:generation_tokens_total");
  uint64_t prompt_sum = 0, output_sum = 0;
  int64_t cost_sum = 0;
  std::vector<Answer> answers;
  for (int i = 0; i < kCallers; ++i) {
    answers.push_back(ParseAnswer(responses[i]));
    ASSERT_EQ(answers[i].status, 200) << responses[i].body;
    EXPECT_GT(answers[i].prompt_tokens, 0u) << i;
    prompt_sum += answers[i].prompt_tokens;
    output_sum += answers[i].completion_tokens;
    cost_sum += answers[i].cost_nano_usd;
    EXPECT_EQ(answers[i].cost_nano_usd, static_cast<int64_t>(answers[i].prompt_tokens * 200 +
                                                             answers[i].completion_tokens * 600))
        << i;
  }
  EXPECT_EQ(prompt_sum, sim_prompt);
  EXPECT_EQ(output_sum, sim_output);
  EXPECT_EQ(cost_sum, static_cast<int64_t>(sim_prompt * 200 + sim_output * 600));
  EXPECT_EQ(Sample(metrics_, "tollgate_tokens_total"), sim_prompt + sim_output);

  // Each caller got the completion of its own prompt: what the simulator answers it alone.
  for (int i = 0; i < kCallers; ++i) {
    const HttpResponse alone = Post(sim_http_, CompletionBody(prompts[i]));
    ASSERT_EQ(alone.status, 200) << alone.body;
    EXPECT_EQ(answers[i].text, ParseAnswer(alone).text) << "caller " << i;
  }

  // The batch series are well-formed.
  if (testing::RunCommand("command -v promtool").exit_code != 0) {
    if (getenv("CI") != nullptr) FAIL() << "promtool is missing in CI (scripts/setup installs it)";
    GTEST_SKIP() << "promtool not installed; scripts/setup installs it";
  }
  const std::string path = dir_ + "/metrics.txt";
  testing::WriteFile(path, testing::HttpGet(metrics_, "/metrics").value_or(""));
  const testing::CommandResult result = testing::RunCommand("promtool check metrics < " + path);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "") << "promtool reported problems";
}

}  // namespace
}  // namespace tollgate
