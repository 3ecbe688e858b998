#include "sim/http_api.h"

#include <rapidjson/document.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/generator.h"
#include "tests/http/json_test_util.h"
#include "tests/sim/fake_clock.h"
#include "tests/sim/http_api_harness.h"

namespace tollgate::sim {
namespace {

using http::testing::ParseJsonOrFail;
using http::testing::ParseSse;
using http::testing::SseEvent;
using ::testing::HasSubstr;

// The chat stream's data payloads, checking that [DONE] comes last and only there.
std::vector<rapidjson::Document> ChatChunks(const RawResponse& response) {
  std::vector<SseEvent> events = ParseSse(response.body);
  EXPECT_FALSE(events.empty());
  std::vector<rapidjson::Document> chunks;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i + 1 == events.size()) {
      EXPECT_EQ(events[i].data, "[DONE]");
      break;
    }
    chunks.push_back(ParseJsonOrFail(events[i].data));
  }
  return chunks;
}

std::string JoinedDeltas(const std::vector<rapidjson::Document>& chunks) {
  std::string text;
  for (const rapidjson::Document& chunk : chunks) {
    if (chunk["choices"].Empty()) continue;
    const rapidjson::Value& delta = chunk["choices"][0]["delta"];
    if (delta.HasMember("content")) text += delta["content"].GetString();
  }
  return text;
}

TEST(SimHttpApi, AnswersAChatCompletionWithUsage) {
  HttpApiHarness harness;
  RawResponse response = harness.Post("/v1/chat/completions", ChatBody("Hello there", 5, false));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("content-type"), "application/json");
  rapidjson::Document doc = ParseJsonOrFail(response.body);
  EXPECT_STREQ(doc["object"].GetString(), "chat.completion");
  EXPECT_STREQ(doc["model"].GetString(), "llama-3-8b");
  EXPECT_STREQ(doc["choices"][0]["finish_reason"].GetString(), "length");
  // One message of 11 bytes: ceil(11/4) + 4, plus 3 for the reply primer.
  EXPECT_EQ(doc["usage"]["prompt_tokens"].GetInt(), 10);
  EXPECT_EQ(doc["usage"]["completion_tokens"].GetInt(), 5);
  EXPECT_EQ(doc["usage"]["prompt_tokens_details"]["cached_tokens"].GetInt(), 0);
}

TEST(SimHttpApi, StreamsAChatCompletionWhoseDeltasMatchTheWholeAnswer) {
  HttpApiHarness harness;
  const std::string whole =
      ParseJsonOrFail(harness.Post("/v1/chat/completions", ChatBody("Tell me", 8, false))
                          .body)["choices"][0]["message"]["content"]
          .GetString();
  RawResponse response = harness.Post("/v1/chat/completions", ChatBody("Tell me", 8, true));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("content-type"), "text/event-stream");
  std::vector<rapidjson::Document> chunks = ChatChunks(response);
  ASSERT_EQ(chunks.size(), 9u);  // 8 tokens and the finish chunk
  EXPECT_STREQ(chunks[0]["choices"][0]["delta"]["role"].GetString(), "assistant");
  EXPECT_EQ(JoinedDeltas(chunks), whole);
  EXPECT_STREQ(chunks.back()["choices"][0]["finish_reason"].GetString(), "length");
  for (const rapidjson::Document& chunk : chunks) EXPECT_FALSE(chunk.HasMember("usage"));
}

TEST(SimHttpApi, EndsAChatStreamWithAUsageChunkWhenAskedTo) {
  HttpApiHarness harness;
  RawResponse response =
      harness.Post("/v1/chat/completions", ChatBody("Tell me", 4, true, /*include_usage=*/true),
                   {{"x-sim-reasoning", "3"}, {"x-sim-cache-read", "2"}});
  std::vector<rapidjson::Document> chunks = ChatChunks(response);
  ASSERT_EQ(chunks.size(), 6u);  // 4 tokens, the finish chunk, the usage chunk
  const rapidjson::Document& usage = chunks.back();
  EXPECT_TRUE(usage["choices"].Empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"].GetInt(), 4);
  EXPECT_EQ(usage["usage"]["completion_tokens_details"]["reasoning_tokens"].GetInt(), 3);
  EXPECT_EQ(usage["usage"]["prompt_tokens_details"]["cached_tokens"].GetInt(), 2);
}

TEST(SimHttpApi, AnswersTextCompletionsWholeAndStreamed) {
  HttpApiHarness harness;
  const std::string body = R"({"model":"llama-3-8b","prompt":"Once upon","max_tokens":6)";
  RawResponse whole = harness.Post("/v1/completions", body + "}");
  rapidjson::Document doc = ParseJsonOrFail(whole.body);
  EXPECT_STREQ(doc["object"].GetString(), "text_completion");
  EXPECT_EQ(doc["usage"]["completion_tokens"].GetInt(), 6);

  RawResponse streamed = harness.Post("/v1/completions", body + R"(,"stream":true})");
  std::string text;
  for (const rapidjson::Document& chunk : ChatChunks(streamed)) {
    EXPECT_STREQ(chunk["object"].GetString(), "text_completion");
    text += chunk["choices"][0]["text"].GetString();
  }
  EXPECT_EQ(text, doc["choices"][0]["text"].GetString());
}

TEST(SimHttpApi, AnswersEmbeddingsWithOneVectorPerInput) {
  HttpApiHarness harness;
  RawResponse response =
      harness.Post("/v1/embeddings", R"({"model":"e5-small","input":["one","two words"]})");
  EXPECT_EQ(response.status, 200);
  rapidjson::Document doc = ParseJsonOrFail(response.body);
  ASSERT_EQ(doc["data"].Size(), 2u);
  EXPECT_EQ(doc["data"][1]["index"].GetInt(), 1);
  EXPECT_EQ(doc["data"][0]["embedding"].Size(), kEmbeddingDimension);
  EXPECT_EQ(doc["usage"]["prompt_tokens"].GetInt(), 1 + 3);
}

TEST(SimHttpApi, AnswersAnthropicMessagesWithInputTokensExcludingCacheReads) {
  HttpApiHarness harness;
  RawResponse response =
      harness.Post("/v1/messages", MessagesBody("Hello", 4, false), {{"x-sim-cache-read", "5"}});
  EXPECT_EQ(response.status, 200);
  rapidjson::Document doc = ParseJsonOrFail(response.body);
  EXPECT_STREQ(doc["type"].GetString(), "message");
  EXPECT_STREQ(doc["stop_reason"].GetString(), "max_tokens");
  // System "Be brief." (9 bytes) and "Hello" (5 bytes): (3 + 4) + (2 + 4) + 3 = 16 prompt tokens.
  EXPECT_EQ(doc["usage"]["input_tokens"].GetInt(), 16 - 5);
  EXPECT_EQ(doc["usage"]["cache_read_input_tokens"].GetInt(), 5);
  EXPECT_EQ(doc["usage"]["cache_creation_input_tokens"].GetInt(), 0);
  EXPECT_EQ(doc["usage"]["output_tokens"].GetInt(), 4);
}

TEST(SimHttpApi, StreamsAnthropicMessagesAsTheirEventSequence) {
  HttpApiHarness harness;
  const std::string whole =
      ParseJsonOrFail(
          harness.Post("/v1/messages", MessagesBody("Hi", 3, false)).body)["content"][0]["text"]
          .GetString();
  RawResponse response = harness.Post("/v1/messages", MessagesBody("Hi", 3, true));
  std::vector<SseEvent> events = ParseSse(response.body);
  std::vector<std::string> types;
  std::string text;
  for (const SseEvent& event : events) {
    types.push_back(event.event);
    rapidjson::Document data = ParseJsonOrFail(event.data);
    EXPECT_EQ(event.event, data["type"].GetString());
    if (event.event == "content_block_delta") text += data["delta"]["text"].GetString();
    if (event.event == "message_delta") {
      EXPECT_STREQ(data["delta"]["stop_reason"].GetString(), "max_tokens");
      EXPECT_EQ(data["usage"]["output_tokens"].GetInt(), 3);
    }
    if (event.event == "message_start") {
      EXPECT_EQ(data["message"]["usage"]["input_tokens"].GetInt(), 3 + 4 + 1 + 4 + 3);
    }
  }
  EXPECT_THAT(types, ::testing::ElementsAre("message_start", "content_block_start", "ping",
                                            "content_block_delta", "content_block_delta",
                                            "content_block_delta", "content_block_stop",
                                            "message_delta", "message_stop"));
  EXPECT_EQ(text, whole);
}

TEST(SimHttpApi, ListsTheServedModel) {
  HttpApiHarness harness;
  rapidjson::Document doc = ParseJsonOrFail(harness.Get("/v1/models").body);
  ASSERT_EQ(doc["data"].Size(), 1u);
  EXPECT_STREQ(doc["data"][0]["id"].GetString(), "llama-3-8b");
}

TEST(SimHttpApi, AnswersMalformedJsonWith400InTheApisErrorShape) {
  HttpApiHarness harness;
  RawResponse openai = harness.Post("/v1/chat/completions", R"({"model":)");
  EXPECT_EQ(openai.status, 400);
  rapidjson::Document openai_doc = ParseJsonOrFail(openai.body);
  EXPECT_STREQ(openai_doc["error"]["type"].GetString(), "invalid_request_error");
  EXPECT_THAT(openai_doc["error"]["message"].GetString(), HasSubstr("invalid JSON"));

  RawResponse anthropic = harness.Post("/v1/messages", R"({"model":"c","messages":[]})");
  EXPECT_EQ(anthropic.status, 400);
  rapidjson::Document anthropic_doc = ParseJsonOrFail(anthropic.body);
  EXPECT_STREQ(anthropic_doc["type"].GetString(), "error");
  EXPECT_STREQ(anthropic_doc["error"]["type"].GetString(), "invalid_request_error");
  EXPECT_STREQ(anthropic_doc["error"]["message"].GetString(), "max_tokens: required");

  EXPECT_EQ(harness.Post("/v1/chat/completions", ChatBody("x", 40000, false)).status, 400);
  EXPECT_EQ(harness.Get("/v1/nowhere").status, 404);
  EXPECT_EQ(harness.Get("/v1/chat/completions").status, 405);
}

TEST(SimHttpApi, ToleratesAnyContentType) {
  HttpApiHarness harness;
  absl::StatusOr<RawResponse> response =
      http::testing::Fetch(harness.port(), "POST", "/v1/chat/completions",
                           {{"Content-Type", "text/plain"}}, ChatBody("x", 2, false));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
}

TEST(SimHttpApi, ExportsVllmMetricsInPrometheusTextFormat) {
  HttpApiHarness harness;
  harness.Post("/v1/chat/completions", ChatBody("Hello there", 5, false));
  RawResponse response = harness.Get("/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.Header("content-type"), HasSubstr("text/plain"));
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(response.body, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 2u) << line;
    double value = 0;
    ASSERT_TRUE(absl::SimpleAtod(parts[1], &value)) << line;
    EXPECT_TRUE(absl::EndsWith(parts[0], "{model_name=\"llama-3-8b\"}")) << line;
    samples[std::string(parts[0].substr(0, parts[0].find('{')))] = value;
  }
  EXPECT_EQ(samples.at("vllm:num_requests_running"), 0);
  EXPECT_EQ(samples.at("vllm:num_requests_waiting"), 0);
  EXPECT_EQ(samples.at("vllm:kv_cache_usage_perc"), 0);
  EXPECT_EQ(samples.at("vllm:prompt_tokens_total"), 10);
  EXPECT_EQ(samples.at("vllm:generation_tokens_total"), 5);
  EXPECT_EQ(samples.at("tollgate_sim_requests_total"), 1);
  EXPECT_EQ(samples.at("vllm:num_preemptions_total"), 0);
  EXPECT_THAT(response.body, HasSubstr("# TYPE vllm:prompt_tokens_total counter\n"));
  EXPECT_THAT(response.body, HasSubstr("# TYPE vllm:kv_cache_usage_perc gauge\n"));
  EXPECT_THAT(response.body, HasSubstr("# TYPE vllm:num_preemptions_total counter\n"));
}

std::string CompletionsBody(const std::string& prompt_json, int max_tokens,
                            const std::string& extra = "") {
  return absl::StrCat(R"({"model":"llama-3-8b","prompt":)", prompt_json, R"(,"max_tokens":)",
                      max_tokens, extra, "}");
}

// The text of the single-prompt completion of `prompt`.
std::string SingleCompletionText(HttpApiHarness& harness, const std::string& prompt,
                                 int max_tokens) {
  RawResponse response = harness.Post(
      "/v1/completions", CompletionsBody(absl::StrCat("\"", prompt, "\""), max_tokens));
  EXPECT_EQ(response.status, 200) << response.body;
  return ParseJsonOrFail(response.body)["choices"][0]["text"].GetString();
}

// `harness`'s answer to three prompts: one choice each, in order, and one summed usage.
void ExpectThreeChoicesAndSummedUsage(HttpApiHarness& harness) {
  RawResponse response =
      harness.Post("/v1/completions", CompletionsBody(R"(["Once upon","a time, there","was"])", 6));
  ASSERT_EQ(response.status, 200) << response.body;
  rapidjson::Document doc = ParseJsonOrFail(response.body);
  EXPECT_STREQ(doc["object"].GetString(), "text_completion");
  ASSERT_EQ(doc["choices"].Size(), 3u);
  HttpApiHarness single;
  const std::vector<std::string> prompts = {"Once upon", "a time, there", "was"};
  for (rapidjson::SizeType i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(doc["choices"][i]["index"].GetInt(), static_cast<int>(i));
    EXPECT_EQ(doc["choices"][i]["text"].GetString(), SingleCompletionText(single, prompts[i], 6));
    EXPECT_STREQ(doc["choices"][i]["finish_reason"].GetString(), "length");
  }
  // ceil(9/4) + ceil(13/4) + ceil(3/4) prompt tokens, 3 x 6 completion tokens.
  EXPECT_EQ(doc["usage"]["prompt_tokens"].GetInt(), 3 + 4 + 1);
  EXPECT_EQ(doc["usage"]["completion_tokens"].GetInt(), 18);
  EXPECT_EQ(doc["usage"]["total_tokens"].GetInt(), 26);
}

TEST(SimHttpApi, AnswersAPromptArrayWithOneChoicePerPromptAndOneSummedUsage) {
  HttpApiHarness harness;
  ExpectThreeChoicesAndSummedUsage(harness);
  const std::string metrics = harness.Get("/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("tollgate_sim_requests_total{model_name=\"llama-3-8b\"} 3\n"));
}

TEST(SimHttpApi, AnswersAPromptArrayAsOneStaticCall) {
  FakeClock clock;
  clock.SetAutoAdvance();
  EngineOptions options = HttpApiHarness::DefaultEngineOptions(/*time_scale=*/1.0);
  options.batch_mode = BatchMode::kStatic;
  options.clock = &clock;
  HttpApiHarness harness(options, {});
  ExpectThreeChoicesAndSummedUsage(harness);
}

TEST(SimHttpApi, AppliesUsageKnobsToTheSummedUsageOfAPromptArray) {
  HttpApiHarness harness;
  RawResponse response = harness.Post("/v1/completions", CompletionsBody(R"(["a","b"])", 4),
                                      {{"x-sim-cache-read", "1"}, {"x-sim-reasoning", "5"}});
  rapidjson::Document doc = ParseJsonOrFail(response.body);
  EXPECT_EQ(doc["usage"]["completion_tokens"].GetInt(), 8);
  EXPECT_EQ(doc["usage"]["prompt_tokens_details"]["cached_tokens"].GetInt(), 1);
  EXPECT_EQ(doc["usage"]["completion_tokens_details"]["reasoning_tokens"].GetInt(), 5);
  RawResponse no_usage = harness.Post("/v1/completions", CompletionsBody(R"(["a","b"])", 4),
                                      {{"x-sim-fault", "no-usage"}});
  EXPECT_FALSE(ParseJsonOrFail(no_usage.body).HasMember("usage"));
}

// The OpenAI-shaped error message of a 400 answer.
std::string BadRequestMessage(const RawResponse& response) {
  EXPECT_EQ(response.status, 400) << response.body;
  rapidjson::Document doc = ParseJsonOrFail(response.body);
  EXPECT_STREQ(doc["error"]["type"].GetString(), "invalid_request_error");
  return doc["error"]["message"].GetString();
}

TEST(SimHttpApi, RefusesMalformedPromptArraysWith400) {
  HttpApiHarness harness;
  auto post = [&](const std::string& prompt_json, const std::string& extra = "") {
    return BadRequestMessage(
        harness.Post("/v1/completions", CompletionsBody(prompt_json, 4, extra)));
  };
  EXPECT_EQ(post(R"(["a",2])"), "prompt[1]: expected a string");
  EXPECT_EQ(post(R"([["a"],["b"]])"), "prompt[0]: expected a string");
  EXPECT_EQ(post(R"([1,2,3])"), "prompt: token-id prompts are not supported");
  EXPECT_EQ(post("[]"), "prompt: must not be empty");
  EXPECT_THAT(post(R"(["a","b"])", R"(,"stream":true)"), HasSubstr("\"stream\": false"));
  EXPECT_THAT(
      BadRequestMessage(harness.Post("/v1/completions", CompletionsBody(R"(["a","b"])", 40000))),
      HasSubstr("max_tokens"));
  // One prompt in an array still streams.
  EXPECT_EQ(
      harness.Post("/v1/completions", CompletionsBody(R"(["a"])", 2, R"(,"stream":true)")).status,
      200);
}

TEST(SimHttpApi, RefusesStaticBatchesLargerThanTheLimitWith400) {
  EngineOptions options = HttpApiHarness::DefaultEngineOptions(/*time_scale=*/0);
  options.batch_mode = BatchMode::kStatic;
  options.max_static_batch = 2;
  HttpApiHarness harness(options, {});
  EXPECT_THAT(
      BadRequestMessage(harness.Post("/v1/completions", CompletionsBody(R"(["a","b","c"])", 4))),
      HasSubstr("static batch limit of 2"));
  EXPECT_THAT(BadRequestMessage(harness.Post(
                  "/v1/embeddings", R"({"model":"e5-small","input":["one","two","three"]})")),
              HasSubstr("static batch limit of 2"));
  EXPECT_EQ(harness.Post("/v1/completions", CompletionsBody(R"(["a","b"])", 4)).status, 200);
  RawResponse embeddings =
      harness.Post("/v1/embeddings", R"({"model":"e5-small","input":["one","two"]})");
  EXPECT_EQ(embeddings.status, 200);
  EXPECT_EQ(ParseJsonOrFail(embeddings.body)["data"].Size(), 2u);
}

// An A100 engine on `clock` whose KV cache holds 8 blocks of Llama-3-8B (16 MiB).
EngineOptions EightBlockEngine(FakeClock* clock) {
  EngineOptions options = HttpApiHarness::DefaultEngineOptions(/*time_scale=*/1.0);
  options.clock = clock;
  options.kv_capacity_bytes = 8 * SimEngine::kKvBlockTokens * 131072;
  return options;
}

TEST(SimHttpApi, CountsPreemptionsAndAnswersPreemptedPromptsUnchanged) {
  FakeClock clock;
  clock.SetAutoAdvance();
  HttpApiHarness harness(EightBlockEngine(&clock), {});
  // Two prompts of 60 tokens and 16 answer tokens each: both fit at first, not to their end.
  const std::string a(240, 'a');
  const std::string b(240, 'b');
  RawResponse response = harness.Post(
      "/v1/completions", CompletionsBody(absl::StrCat("[\"", a, "\",\"", b, "\"]"), 16));
  ASSERT_EQ(response.status, 200) << response.body;
  rapidjson::Document doc = ParseJsonOrFail(response.body);
  HttpApiHarness unbounded;
  EXPECT_EQ(doc["choices"][0]["text"].GetString(), SingleCompletionText(unbounded, a, 16));
  EXPECT_EQ(doc["choices"][1]["text"].GetString(), SingleCompletionText(unbounded, b, 16));
  EXPECT_EQ(doc["usage"]["prompt_tokens"].GetInt(), 120);
  EXPECT_EQ(doc["usage"]["completion_tokens"].GetInt(), 32);
  EXPECT_THAT(harness.Get("/metrics").body,
              HasSubstr("vllm:num_preemptions_total{model_name=\"llama-3-8b\"} 1\n"));
}

TEST(SimHttpApi, KvCacheUsageIsTheEnginesKvBytesOverItsCapacity) {
  FakeClock clock;
  HttpApiHarness harness(EightBlockEngine(&clock), {});
  std::thread client([&] {
    EXPECT_EQ(
        harness
            .Post("/v1/completions", CompletionsBody(R"(")" + std::string(240, 'a') + R"(")", 16))
            .status,
        200);
  });
  clock.AwaitSleeper();  // its first step: 60 prompt tokens in 4 of the 8 blocks
  const std::string metrics = harness.Get("/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("vllm:kv_cache_usage_perc{model_name=\"llama-3-8b\"} 0.5\n"));
  EXPECT_THAT(metrics, HasSubstr("vllm:num_requests_running{model_name=\"llama-3-8b\"} 1\n"));
  clock.SetAutoAdvance();
  client.join();
}

}  // namespace
}  // namespace tollgate::sim
