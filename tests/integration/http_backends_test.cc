// Tollgate's `openai` and `anthropic` backends against tollgate-sim's HTTP API, over real HTTP:
// usage and cost exact for both API shapes, cached and reasoning tokens at their own prices, a
// stream reset part-way still charged, retries after a 503 charged once, fallback when a backend
// is down, and a malformed chunk that does not kill a stream.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "accounting/tokenizer/chat.h"
#include "accounting/tokenizer/registry.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "rapidjson/document.h"
#include "tests/http/json_test_util.h"
#include "tests/integration/harness.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate {
namespace {

using ::tollgate::http::testing::ParseJsonOrFail;
using ::tollgate::testing::Binary;
using ::tollgate::testing::ChildProcess;
using ::tollgate::testing::FieldAfter;
using ::tollgate::testing::HttpCall;
using ::tollgate::testing::SseData;
using ::tollgate::testing::SumSamples;

constexpr char kKey[] = "key-backends";

// Prices in USD per Mtok: llama models 0.20 in, 0.10 cached, 0.60 out, 0.90 reasoning
// (200 / 100 / 600 / 900 nano-USD per token); claude models 3 / 0.30 / 15.
constexpr char kConfig[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0", http_address: "127.0.0.1:0"}
tenants: [{name: acme, api_key_sha256: ["{KEY}"]}]
backends:
  - {name: vllm, kind: openai, base_url: "http://{OK}"}
  - {name: vllm-cache, kind: openai, base_url: "http://{OK}",
     headers: {x-sim-cache-read: "4", x-sim-reasoning: "3"}}
  - {name: vllm-garbled, kind: openai, base_url: "http://{OK}", headers: {x-sim-fault: malformed-chunk}}
  - {name: claude, kind: anthropic, base_url: "http://{OK}"}
  - {name: claude-cache, kind: anthropic, base_url: "http://{OK}", headers: {x-sim-cache-read: "4"}}
  - {name: flaky, kind: openai, base_url: "http://{FLAKY}",
     retry: {max_attempts: 3, initial_backoff_ms: 1, max_backoff_ms: 10}}
  - {name: resetting, kind: openai, base_url: "http://{RESET}", retry: {max_attempts: 1}}
  - {name: limited, kind: openai, base_url: "http://{OK}", headers: {x-sim-fault: "429"},
     retry: {max_attempts: 1}}
  - {name: silent, kind: openai, base_url: "http://{OK}", headers: {x-sim-fault: no-usage}}
  - {name: dead, kind: openai, base_url: "http://127.0.0.1:1",
     retry: {max_attempts: 2, initial_backoff_ms: 1, max_backoff_ms: 5}}
models:
  - {name: open, backend: vllm, backend_model: llama-3-8b, prices: &llama
      {input_usd_per_mtok: 0.20, cached_input_usd_per_mtok: 0.10, output_usd_per_mtok: 0.60,
       reasoning_usd_per_mtok: 0.90}}
  - {name: open-cache, backend: vllm-cache, backend_model: llama-3-8b, prices: *llama}
  - {name: open-garbled, backend: vllm-garbled, backend_model: llama-3-8b, prices: *llama}
  - {name: flaky, backend: flaky, backend_model: llama-3-8b, prices: *llama}
  - {name: reset, backend: resetting, backend_model: llama-3-8b, prices: *llama}
  - {name: failover, backend: dead, fallback_backends: [vllm], backend_model: llama-3-8b,
     prices: *llama}
  - {name: limited, backend: limited, backend_model: llama-3-8b, prices: *llama}
  - {name: silent, backend: silent, backend_model: gpt-4o-mini, prices: *llama}
  - {name: claude, backend: claude, backend_model: llama-3-8b, prices: &claude
      {input_usd_per_mtok: 3, cached_input_usd_per_mtok: 0.30, output_usd_per_mtok: 15}}
  - {name: claude-cache, backend: claude-cache, backend_model: llama-3-8b, prices: *claude}
)";

int64_t LlamaCost(const v1::Usage& u) {
  return static_cast<int64_t>(u.input_tokens() - u.cached_input_tokens()) * 200 +
         static_cast<int64_t>(u.cached_input_tokens()) * 100 +
         static_cast<int64_t>(u.output_tokens() - u.reasoning_tokens()) * 600 +
         static_cast<int64_t>(u.reasoning_tokens()) * 900;
}

int64_t ClaudeCost(const v1::Usage& u) {
  return static_cast<int64_t>(u.input_tokens() - u.cached_input_tokens()) * 3000 +
         static_cast<int64_t>(u.cached_input_tokens()) * 300 +
         static_cast<int64_t>(u.output_tokens()) * 15000;
}

class HttpBackendsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ok_ = StartSim(sim_ok_, "ok", {});
    flaky_ = StartSim(sim_flaky_, "flaky", {"--fault_503_rate", "0.5"});
    reset_ = StartSim(sim_reset_, "reset", {"--fault_reset_after_tokens", "5"});
    ASSERT_FALSE(ok_.empty() || flaky_.empty() || reset_.empty());
    const std::string config_path = dir_ + "/tollgate.yaml";
    testing::WriteFile(config_path, absl::StrReplaceAll(kConfig, {{"{KEY}", ApiKeySha256Hex(kKey)},
                                                                  {"{OK}", ok_},
                                                                  {"{FLAKY}", flaky_},
                                                                  {"{RESET}", reset_}}));
    ASSERT_TRUE(
        proxy_.Start({Binary("proxy/tollgate"), "--config", config_path}, dir_ + "/tollgate.log")
            .ok());
    absl::StatusOr<std::string> line = proxy_.WaitForLine("tollgate listening", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << line.status()
                           << testing::RunCommand("cat " + dir_ + "/tollgate.log").output;
    metrics_ = FieldAfter(*line, "metrics");
    http_ = FieldAfter(*line, "http");
    stub_ = v1::Inference::NewStub(
        grpc::CreateChannel(FieldAfter(*line, "grpc"), grpc::InsecureChannelCredentials()));
  }

  // Starts a simulator with an HTTP API; returns its HTTP host:port ("" on failure).
  std::string StartSim(ChildProcess& process, const std::string& name,
                       std::vector<std::string> flags) {
    std::vector<std::string> argv = {Binary("sim/tollgate-sim"),
                                     "--address",
                                     "127.0.0.1:0",
                                     "--http_address",
                                     "127.0.0.1:0",
                                     "--time_scale",
                                     "0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    if (!process.Start(argv, dir_ + "/sim-" + name + ".log").ok()) return "";
    absl::StatusOr<std::string> line =
        process.WaitForLine("tollgate-sim http listening on ", absl::Seconds(30));
    return line.ok() ? line->substr(sizeof("tollgate-sim http listening on ") - 1) : "";
  }

  static v1::GenerateRequest Chat(const std::string& model, const std::string& content) {
    v1::GenerateRequest request;
    request.set_model(model);
    v1::Message* m = request.mutable_chat()->add_messages();
    m->set_role("user");
    m->set_content(content);
    request.mutable_params()->set_max_tokens(48);
    request.mutable_params()->set_temperature(0);
    return request;
  }

  grpc::Status Generate(const v1::GenerateRequest& request, v1::GenerateResponse* response) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
    return stub_->Generate(&context, request, response);
  }

  grpc::Status Stream(const v1::GenerateRequest& request, std::string* text,
                      v1::GenerateResponse* last) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
    auto reader = stub_->GenerateStream(&context, request);
    v1::GenerateResponse message;
    while (reader->Read(&message)) {
      text->append(message.text());
      *last = message;
    }
    return reader->Finish();
  }

  std::map<std::string, double> Scrape() {
    return testing::ParseMetrics(testing::HttpGet(metrics_, "/metrics").value_or(""));
  }

  std::string dir_, ok_, flaky_, reset_, metrics_, http_;
  ChildProcess sim_ok_, sim_flaky_, sim_reset_, proxy_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TEST_F(HttpBackendsTest, OpenAiShapeUsageAndCostEqualTheSimulatorsReportExactly) {
  const std::string content = "What does a token cost?";
  absl::StatusOr<testing::HttpResponse> direct =
      HttpCall(ok_, "POST", "/v1/chat/completions", {{"Content-Type", "application/json"}},
               absl::StrCat(R"({"model":"llama-3-8b","max_tokens":48,"temperature":0,)",
                            R"("messages":[{"role":"user","content":")", content, R"("}]})"));
  ASSERT_TRUE(direct.ok() && direct->status == 200) << direct.status();
  rapidjson::Document doc = ParseJsonOrFail(direct->body);

  v1::GenerateResponse unary;
  ASSERT_TRUE(Generate(Chat("open", content), &unary).ok());
  EXPECT_EQ(unary.text(), doc["choices"][0]["message"]["content"].GetString());
  EXPECT_EQ(unary.usage().input_tokens(), doc["usage"]["prompt_tokens"].GetUint64());
  EXPECT_EQ(unary.usage().output_tokens(), doc["usage"]["completion_tokens"].GetUint64());
  EXPECT_EQ(unary.usage().source(), v1::USAGE_SOURCE_REPORTED);
  EXPECT_EQ(unary.cost().total_nano_usd(), LlamaCost(unary.usage()));
  EXPECT_EQ(unary.backend(), "vllm");

  std::string text;
  v1::GenerateResponse last;
  ASSERT_TRUE(Stream(Chat("open", content), &text, &last).ok());
  EXPECT_EQ(text, unary.text());
  EXPECT_EQ(last.usage().SerializeAsString(), unary.usage().SerializeAsString());
  EXPECT_EQ(last.cost().total_nano_usd(), unary.cost().total_nano_usd());
}

TEST_F(HttpBackendsTest, AnthropicShapeUsageAndCostEqualTheSimulatorsReportExactly) {
  const std::string content = "What does a Claude token cost?";
  absl::StatusOr<testing::HttpResponse> direct =
      HttpCall(ok_, "POST", "/v1/messages", {{"Content-Type", "application/json"}},
               absl::StrCat(R"({"model":"llama-3-8b","max_tokens":48,"temperature":0,)",
                            R"("messages":[{"role":"user","content":")", content, R"("}]})"));
  ASSERT_TRUE(direct.ok() && direct->status == 200) << direct.status();
  rapidjson::Document doc = ParseJsonOrFail(direct->body);

  v1::GenerateResponse unary;
  ASSERT_TRUE(Generate(Chat("claude", content), &unary).ok());
  EXPECT_EQ(unary.text(), doc["content"][0]["text"].GetString());
  EXPECT_EQ(unary.usage().input_tokens(), doc["usage"]["input_tokens"].GetUint64());
  EXPECT_EQ(unary.usage().output_tokens(), doc["usage"]["output_tokens"].GetUint64());
  EXPECT_EQ(unary.cost().total_nano_usd(), ClaudeCost(unary.usage()));

  std::string text;
  v1::GenerateResponse last;
  ASSERT_TRUE(Stream(Chat("claude", content), &text, &last).ok());
  EXPECT_EQ(text, unary.text());
  EXPECT_EQ(last.usage().SerializeAsString(), unary.usage().SerializeAsString());
}

TEST_F(HttpBackendsTest, CachedAndReasoningTokensArePricedAtTheirOwnPrices) {
  for (bool stream : {false, true}) {
    v1::GenerateResponse response;
    std::string text;
    ASSERT_TRUE((stream ? Stream(Chat("open-cache", "cache me"), &text, &response)
                        : Generate(Chat("open-cache", "cache me"), &response))
                    .ok());
    EXPECT_EQ(response.usage().cached_input_tokens(), 4u) << stream;
    EXPECT_EQ(response.usage().reasoning_tokens(), 3u) << stream;
    EXPECT_EQ(response.cost().cached_input_nano_usd(), 4 * 100) << stream;
    EXPECT_EQ(response.cost().reasoning_nano_usd(), 3 * 900) << stream;
    EXPECT_EQ(response.cost().total_nano_usd(), LlamaCost(response.usage())) << stream;
  }
  // Anthropic reports cache reads outside input_tokens; Tollgate counts them inside.
  absl::StatusOr<testing::HttpResponse> direct =
      HttpCall(ok_, "POST", "/v1/messages",
               {{"Content-Type", "application/json"}, {"x-sim-cache-read", "4"}},
               R"({"model":"llama-3-8b","max_tokens":48,"temperature":0,)"
               R"("messages":[{"role":"user","content":"cache me"}]})");
  ASSERT_TRUE(direct.ok() && direct->status == 200);
  rapidjson::Document doc = ParseJsonOrFail(direct->body);
  v1::GenerateResponse claude;
  ASSERT_TRUE(Generate(Chat("claude-cache", "cache me"), &claude).ok());
  EXPECT_EQ(doc["usage"]["cache_read_input_tokens"].GetUint64(), 4u);
  EXPECT_EQ(claude.usage().input_tokens(), doc["usage"]["input_tokens"].GetUint64() + 4);
  EXPECT_EQ(claude.usage().cached_input_tokens(), 4u);
  EXPECT_EQ(claude.cost().cached_input_nano_usd(), 4 * 300);
  EXPECT_EQ(claude.cost().total_nano_usd(), ClaudeCost(claude.usage()));
}

TEST_F(HttpBackendsTest, AStreamResetPartWayIsChargedForWhatArrivedNeverZero) {
  std::string text;
  v1::GenerateResponse last;
  const grpc::Status status = Stream(Chat("reset", "tell me a long story"), &text, &last);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_FALSE(text.empty());
  // The backend reported nothing before the reset, so what arrived is counted with the model's
  // tokenizer (llama3, implied by backend_model llama-3-8b), the chat template included.
  absl::StatusOr<std::shared_ptr<const Tokenizer>> llama3 =
      LoadTokenizer("llama3", std::getenv("TOLLGATE_VOCAB_DIR") != nullptr
                                  ? std::getenv("TOLLGATE_VOCAB_DIR")
                                  : TOLLGATE_SOURCE_DIR "/.cache/tokenizer");
  ASSERT_TRUE(llama3.ok()) << llama3.status();
  EXPECT_EQ(last.usage().source(), v1::USAGE_SOURCE_COUNTED);
  EXPECT_EQ(last.usage().output_tokens(), (*llama3)->Count(text));
  EXPECT_EQ(last.usage().input_tokens(),
            CountChatPromptTokens(**llama3, {{"user", "tell me a long story"}}));
  EXPECT_GT(last.usage().output_tokens(), 0u);
  EXPECT_EQ(last.cost().total_nano_usd(), LlamaCost(last.usage()));
  const auto samples = Scrape();
  EXPECT_GT(SumSamples(samples, "tollgate_tokens_total", {{"model", "reset"}, {"type", "output"}}),
            0);
  EXPECT_GT(SumSamples(samples, "tollgate_cost_usd_total", {{"model", "reset"}}), 0);
}

// A server that reports no usage: Tollgate counts the prompt and the answer with the model's
// tokenizer (o200k_base, implied by gpt-4o-mini), unary and streamed, exactly.
TEST_F(HttpBackendsTest, AnswersOfAServerThatReportsNoUsageAreCountedWithTheTokenizer) {
  absl::StatusOr<std::shared_ptr<const Tokenizer>> o200k =
      LoadTokenizer("o200k_base", std::getenv("TOLLGATE_VOCAB_DIR") != nullptr
                                      ? std::getenv("TOLLGATE_VOCAB_DIR")
                                      : TOLLGATE_SOURCE_DIR "/.cache/tokenizer");
  ASSERT_TRUE(o200k.ok()) << o200k.status();
  const uint64_t prompt = CountChatPromptTokens(**o200k, {{"user", "count me, please"}});
  v1::GenerateResponse unary;
  ASSERT_TRUE(Generate(Chat("silent", "count me, please"), &unary).ok());
  EXPECT_EQ(unary.usage().source(), v1::USAGE_SOURCE_COUNTED);
  EXPECT_EQ(unary.usage().input_tokens(), prompt);
  EXPECT_EQ(unary.usage().output_tokens(), (*o200k)->Count(unary.text()));
  EXPECT_GT(unary.usage().output_tokens(), 0u);
  EXPECT_EQ(unary.cost().total_nano_usd(), LlamaCost(unary.usage()));

  std::string text;
  v1::GenerateResponse last;
  ASSERT_TRUE(Stream(Chat("silent", "count me, please"), &text, &last).ok());
  EXPECT_EQ(last.usage().source(), v1::USAGE_SOURCE_COUNTED);
  EXPECT_EQ(last.usage().input_tokens(), prompt);
  EXPECT_EQ(last.usage().output_tokens(), (*o200k)->Count(text));
  EXPECT_EQ(
      SumSamples(Scrape(), "tollgate_tokens_total", {{"model", "silent"}, {"type", "output"}}),
      static_cast<double>(unary.usage().output_tokens() + last.usage().output_tokens()));
}

TEST_F(HttpBackendsTest, RequestsRetriedAfterA503AreChargedOnce) {
  int64_t charged = 0;
  for (int i = 0; i < 4; ++i) {
    v1::GenerateResponse response;
    ASSERT_TRUE(Generate(Chat("flaky", absl::StrCat("retry me ", i)), &response).ok()) << i;
    EXPECT_EQ(response.cost().total_nano_usd(), LlamaCost(response.usage())) << i;
    charged += response.cost().total_nano_usd();
  }
  const auto samples = Scrape();
  EXPECT_GE(SumSamples(samples, "tollgate_backend_attempts_total",
                       {{"backend", "flaky"}, {"result", "retried"}}),
            1);
  EXPECT_EQ(SumSamples(samples, "tollgate_requests_total", {{"model", "flaky"}, {"status", "ok"}}),
            4);
  EXPECT_NEAR(SumSamples(samples, "tollgate_cost_usd_total", {{"model", "flaky"}}), charged * 1e-9,
              1e-12);
}

TEST_F(HttpBackendsTest, AFallbackServesWhenThePrimaryIsDown) {
  v1::GenerateResponse response;
  ASSERT_TRUE(Generate(Chat("failover", "anyone there?"), &response).ok());
  EXPECT_EQ(response.backend(), "vllm");
  EXPECT_EQ(response.cost().total_nano_usd(), LlamaCost(response.usage()));
  EXPECT_GE(SumSamples(Scrape(), "tollgate_backend_attempts_total",
                       {{"backend", "dead"}, {"result", "retried"}}),
            1);
}

TEST_F(HttpBackendsTest, ABackends429ReachesTheClientWithItsRetryAfter) {
  absl::StatusOr<testing::HttpResponse> response = HttpCall(
      http_, "POST", "/v1/chat/completions",
      {{"Content-Type", "application/json"}, {"Authorization", absl::StrCat("Bearer ", kKey)}},
      R"({"model":"limited","messages":[{"role":"user","content":"too fast"}]})");
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 429) << response->body;
  EXPECT_EQ(response->headers["retry-after"], "1");
  rapidjson::Document doc = ParseJsonOrFail(response->body);
  EXPECT_TRUE(doc.HasMember("error"));
  EXPECT_EQ(response->headers["x-tollgate-cost-usd"], "0.000000000");

  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kKey));
  v1::GenerateResponse unary;
  EXPECT_EQ(stub_->Generate(&context, Chat("limited", "too fast"), &unary).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find("retry-after");
  ASSERT_NE(it, trailers.end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "1");
}

TEST_F(HttpBackendsTest, AMalformedChunkDoesNotKillAGoodStream) {
  std::string text;
  v1::GenerateResponse last;
  ASSERT_TRUE(Stream(Chat("open-garbled", "garble"), &text, &last).ok());
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(last.usage().source(), v1::USAGE_SOURCE_REPORTED);
}

TEST_F(HttpBackendsTest, InjectedIncludeUsageIsInvisibleToAnHttpClientThatDidNotAsk) {
  absl::StatusOr<testing::HttpResponse> response = HttpCall(
      http_, "POST", "/v1/chat/completions",
      {{"Content-Type", "application/json"}, {"Authorization", absl::StrCat("Bearer ", kKey)}},
      R"({"model":"open","stream":true,"max_tokens":16,)"
      R"("messages":[{"role":"user","content":"no usage for me"}]})");
  ASSERT_TRUE(response.ok() && response->status == 200) << response.status();
  for (const std::string& event : SseData(response->body)) {
    if (event == "[DONE]") continue;
    rapidjson::Document chunk = ParseJsonOrFail(event);
    EXPECT_TRUE(!chunk.HasMember("usage") || chunk["usage"].IsNull()) << event;
  }
  // ... yet Tollgate got the usage from the backend and charged it as reported.
  const auto samples = Scrape();
  EXPECT_GT(SumSamples(samples, "tollgate_tokens_total", {{"model", "open"}, {"type", "output"}}),
            0);
}

}  // namespace
}  // namespace tollgate
