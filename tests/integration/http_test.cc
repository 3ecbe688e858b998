// The OpenAI-compatible HTTP ingress of a real tollgate process, in front of a real tollgate-sim,
// driven over real HTTP (and by the official openai npm SDK).
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "rapidjson/document.h"
#include "tests/http/json_test_util.h"
#include "tests/integration/harness.h"

namespace tollgate {
namespace {

using ::tollgate::http::testing::ParseJsonOrFail;
using ::tollgate::testing::Binary;
using ::tollgate::testing::ChildProcess;
using ::tollgate::testing::FieldAfter;
using ::tollgate::testing::HttpCall;
using ::tollgate::testing::HttpResponse;
using ::tollgate::testing::SseData;

constexpr char kKey[] = "key-http";

constexpr char kConfig[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0",
            http_address: "127.0.0.1:0", max_request_body_bytes: 65536}
tenants: [{name: acme, api_key_sha256: ["{KEY}"]}]
backends: [{name: remote, kind: grpc, address: "{SIM}"}]
models:
  - name: llama-3-8b
    backend: remote
    prices: {input_usd_per_mtok: 0.20, cached_input_usd_per_mtok: 0.10, output_usd_per_mtok: 0.60}
  - name: embedder
    backend: remote
    backend_model: llama-3-8b
    prices: {input_usd_per_mtok: 0.02, output_usd_per_mtok: 0.02}
)";

class HttpIngressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ASSERT_TRUE(
        sim_.Start({Binary("sim/tollgate-sim"), "--address", "127.0.0.1:0", "--time_scale", "0"},
                   dir_ + "/sim.log")
            .ok());
    absl::StatusOr<std::string> sim_line =
        sim_.WaitForLine("tollgate-sim listening on ", absl::Seconds(30));
    ASSERT_TRUE(sim_line.ok()) << sim_line.status();
    const std::string config_path = dir_ + "/tollgate.yaml";
    testing::WriteFile(
        config_path,
        absl::StrReplaceAll(
            kConfig, {{"{KEY}", ApiKeySha256Hex(kKey)},
                      {"{SIM}", sim_line->substr(sizeof("tollgate-sim listening on ") - 1)}}));
    ASSERT_TRUE(
        proxy_.Start({Binary("proxy/tollgate"), "--config", config_path}, dir_ + "/tollgate.log")
            .ok());
    absl::StatusOr<std::string> line = proxy_.WaitForLine("tollgate listening", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << line.status();
    http_ = FieldAfter(*line, "http");
    ASSERT_FALSE(http_.empty()) << *line;
  }

  HttpResponse Post(const std::string& path, const std::string& body,
                    std::map<std::string, std::string> headers = {}) {
    headers.emplace("Content-Type", "application/json");
    headers.emplace("Authorization", absl::StrCat("Bearer ", kKey));
    absl::StatusOr<HttpResponse> response = HttpCall(http_, "POST", path, headers, body);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.value_or(HttpResponse{});
  }

  static std::string ChatBody(bool stream, bool include_usage) {
    return absl::StrCat(
        R"({"model":"llama-3-8b","messages":[{"role":"user","content":"Price a token."}],)",
        R"("max_tokens":40,"temperature":0)", stream ? R"(,"stream":true)" : "",
        include_usage ? R"(,"stream_options":{"include_usage":true})" : "", "}");
  }

  std::string dir_;
  std::string http_;
  ChildProcess sim_;
  ChildProcess proxy_;
};

TEST_F(HttpIngressTest, AChatCompletionIsPricedExactlyAndCarriesTheCostHeaders) {
  const HttpResponse response = Post("/v1/chat/completions", ChatBody(false, false));
  ASSERT_EQ(response.status, 200) << response.body;
  rapidjson::Document doc = ParseJsonOrFail(response.body);
  EXPECT_STREQ(doc["object"].GetString(), "chat.completion");
  EXPECT_GT(doc["choices"][0]["message"]["content"].GetStringLength(), 0u);
  const int64_t prompt = doc["usage"]["prompt_tokens"].GetInt64();
  const int64_t completion = doc["usage"]["completion_tokens"].GetInt64();
  const int64_t nano = prompt * 200 + completion * 600;
  EXPECT_EQ(doc["x_tollgate"]["cost_nano_usd"].GetInt64(), nano);
  EXPECT_EQ(response.headers.at("x-tollgate-cost-usd"),
            absl::StrFormat("%d.%09d", nano / 1'000'000'000, nano % 1'000'000'000));
  EXPECT_EQ(response.headers.at("x-tollgate-cache"), "miss");
  EXPECT_FALSE(response.headers.at("x-request-id").empty());
}

TEST_F(HttpIngressTest, AStreamedChatMatchesTheUnaryAnswerAndCarriesItsCostInTheUsageChunk) {
  rapidjson::Document unary =
      ParseJsonOrFail(Post("/v1/chat/completions", ChatBody(false, false)).body);
  const HttpResponse response = Post("/v1/chat/completions", ChatBody(true, true));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.headers.at("content-type"), "text/event-stream");
  const std::vector<std::string> events = SseData(response.body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    rapidjson::Document chunk = ParseJsonOrFail(events[i]);
    EXPECT_STREQ(chunk["object"].GetString(), "chat.completion.chunk");
    const auto& delta = chunk["choices"][0]["delta"];
    if (delta.HasMember("content")) text += delta["content"].GetString();
  }
  EXPECT_EQ(text, unary["choices"][0]["message"]["content"].GetString());
  rapidjson::Document usage = ParseJsonOrFail(events[events.size() - 2]);
  EXPECT_EQ(usage["choices"].Size(), 0u);
  EXPECT_EQ(usage["usage"]["completion_tokens"].GetInt64(),
            unary["usage"]["completion_tokens"].GetInt64());
  EXPECT_EQ(usage["x_tollgate"]["cost_nano_usd"].GetInt64(),
            unary["x_tollgate"]["cost_nano_usd"].GetInt64());
}

TEST_F(HttpIngressTest, AStreamThatDidNotAskForUsageGetsNoUsageChunk) {
  const HttpResponse response = Post("/v1/chat/completions", ChatBody(true, false));
  ASSERT_EQ(response.status, 200);
  for (const std::string& event : SseData(response.body)) {
    if (event == "[DONE]") continue;
    rapidjson::Document chunk = ParseJsonOrFail(event);
    EXPECT_TRUE(!chunk.HasMember("usage") || chunk["usage"].IsNull()) << event;
    EXPECT_GT(chunk["choices"].Size(), 0u) << event;
  }
}

TEST_F(HttpIngressTest, CompletionsAndEmbeddingsAreServedAndPriced) {
  const HttpResponse completion = Post(
      "/v1/completions", R"({"model":"llama-3-8b","prompt":"Once upon a time","max_tokens":8})");
  ASSERT_EQ(completion.status, 200) << completion.body;
  rapidjson::Document doc = ParseJsonOrFail(completion.body);
  EXPECT_STREQ(doc["object"].GetString(), "text_completion");
  EXPECT_GT(doc["choices"][0]["text"].GetStringLength(), 0u);

  const HttpResponse embeddings =
      Post("/v1/embeddings", R"({"model":"embedder","input":["first","second text"]})");
  ASSERT_EQ(embeddings.status, 200) << embeddings.body;
  rapidjson::Document emb = ParseJsonOrFail(embeddings.body);
  EXPECT_EQ(emb["data"].Size(), 2u);
  EXPECT_GT(emb["data"][0]["embedding"].Size(), 0u);
  EXPECT_EQ(emb["x_tollgate"]["cost_nano_usd"].GetInt64(),
            emb["usage"]["prompt_tokens"].GetInt64() * 20);
}

TEST_F(HttpIngressTest, ModelsListsTheConfiguredModelsToAuthenticatedClients) {
  absl::StatusOr<HttpResponse> models =
      HttpCall(http_, "GET", "/v1/models", {{"Authorization", absl::StrCat("Bearer ", kKey)}}, "");
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->status, 200);
  rapidjson::Document doc = ParseJsonOrFail(models->body);
  ASSERT_EQ(doc["data"].Size(), 2u);
  EXPECT_STREQ(doc["data"][0]["id"].GetString(), "llama-3-8b");
  absl::StatusOr<HttpResponse> anonymous = HttpCall(http_, "GET", "/v1/models", {}, "");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
}

TEST_F(HttpIngressTest, BadRequestsGetOpenAiErrorsWithTheMatchingStatus) {
  struct Case {
    const char* name;
    HttpResponse response;
    int status;
  };
  std::vector<Case> cases = {
      {"bad key",
       Post("/v1/chat/completions", ChatBody(false, false), {{"Authorization", "Bearer nope"}}),
       401},
      {"unknown model",
       Post("/v1/chat/completions",
            R"({"model":"gpt-17","messages":[{"role":"user","content":"x"}]})"),
       404},
      {"truncated JSON", Post("/v1/chat/completions", R"({"model":"llama-3-8b","messages":[{"ro)"),
       400},
      {"wrong type", Post("/v1/chat/completions", R"({"model":"llama-3-8b","messages":"hi"})"),
       400},
      {"wrong content type",
       Post("/v1/chat/completions", ChatBody(false, false), {{"Content-Type", "text/plain"}}), 415},
      {"body over the limit",
       Post("/v1/chat/completions",
            absl::StrCat(R"({"model":"llama-3-8b","messages":[{"role":"user","content":")",
                         std::string(100'000, 'x'), R"("}]})")),
       413},
      {"unknown path", Post("/v1/nothing", "{}"), 404},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.response.status, c.status) << c.name << ": " << c.response.body;
    rapidjson::Document doc = ParseJsonOrFail(c.response.body);
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("error")) << c.name << ": " << c.response.body;
    EXPECT_TRUE(doc["error"]["message"].IsString()) << c.name;
  }
  // Still serving after all of that.
  EXPECT_EQ(Post("/v1/chat/completions", ChatBody(false, false)).status, 200);
}

TEST_F(HttpIngressTest, TheOfficialOpenAiSdkCompletesChatStreamsAndEmbeddings) {
  const std::string sdk_dir = absl::StrCat(TOLLGATE_SOURCE_DIR, "/tests/integration/openai_sdk");
  if (testing::RunCommand("command -v node").exit_code != 0 ||
      testing::RunCommand("test -d " + sdk_dir + "/node_modules/openai").exit_code != 0) {
    if (getenv("CI") != nullptr) FAIL() << "node or the openai SDK is missing (scripts/setup)";
    GTEST_SKIP() << "node or the openai npm SDK is not installed; scripts/setup installs them";
  }
  const testing::CommandResult run =
      testing::RunCommand(absl::StrCat("cd ", sdk_dir, " && timeout 120 node drive.mjs http://",
                                       http_, "/v1 ", kKey, " llama-3-8b embedder"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  rapidjson::Document out = ParseJsonOrFail(run.output);
  ASSERT_TRUE(out.IsObject()) << run.output;
  const auto& chat = out["chat"];
  EXPECT_GT(chat["content"].GetStringLength(), 0u);
  EXPECT_GT(chat["usage"]["completion_tokens"].GetInt(), 0);
  EXPECT_STREQ(chat["cache_header"].GetString(), "miss");
  EXPECT_TRUE(chat["cost_header"].IsString());
  const auto& streamed = out["stream_with_usage"];
  EXPECT_STREQ(streamed["text"].GetString(), chat["content"].GetString());
  ASSERT_TRUE(streamed["usage"].IsObject()) << run.output;
  EXPECT_EQ(streamed["usage"]["total_tokens"].GetInt(), chat["usage"]["total_tokens"].GetInt());
  EXPECT_GT(streamed["cost"]["cost_nano_usd"].GetInt64(), 0);
  const auto& plain = out["stream_without_usage"];
  EXPECT_STREQ(plain["text"].GetString(), chat["content"].GetString());
  EXPECT_TRUE(plain["usage"].IsNull()) << "include_usage leaked to a client that did not ask";
  EXPECT_EQ(out["embeddings"]["count"].GetInt(), 2);
  EXPECT_GT(out["embeddings"]["dimensions"].GetInt(), 0);
  EXPECT_EQ(out["bad_key"]["status"].GetInt(), 401);
}

}  // namespace
}  // namespace tollgate
