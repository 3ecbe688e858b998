#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/common/status_payloads.h"
#include "proxy/openai/server_codec.h"
#include "tests/http/json_test_util.h"

namespace tollgate::openai {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

rapidjson::Document Json(const std::string& text) { return http::testing::ParseJsonOrFail(text); }

absl::Status ChatError(const std::string& body) {
  return ParseChatCompletionsRequest(body).status();
}

TEST(OpenAiServerCodec, ParsesAChatRequestAsTheSdkSendsIt) {
  absl::StatusOr<ParsedRequest> parsed = ParseChatCompletionsRequest(R"({
    "model": "gpt-4o-mini",
    "messages": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": null, "tool_calls": []}
    ],
    "max_tokens": 64, "temperature": 0, "top_p": 0.5, "seed": -7, "stop": ["\n\n"],
    "stream": true, "stream_options": {"include_usage": true}, "user": "u-1",
    "frequency_penalty": 0, "logit_bias": {}, "n": 1
  })");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::GenerateRequest& generate = parsed->generate;
  EXPECT_EQ(generate.model(), "gpt-4o-mini");
  ASSERT_EQ(generate.chat().messages_size(), 3);
  EXPECT_EQ(generate.chat().messages(0).role(), "system");
  EXPECT_EQ(generate.chat().messages(0).content(), "You are terse.");
  EXPECT_EQ(generate.chat().messages(1).content(), "Hello\nthere");
  EXPECT_EQ(generate.chat().messages(2).content(), "");
  EXPECT_EQ(generate.params().max_tokens(), 64u);
  EXPECT_TRUE(generate.params().has_temperature());
  EXPECT_EQ(generate.params().temperature(), 0.0f);
  EXPECT_EQ(generate.params().top_p(), 0.5f);
  EXPECT_EQ(generate.params().seed(), -7);
  EXPECT_THAT(generate.params().stop(), ElementsAre("\n\n"));
  EXPECT_TRUE(parsed->stream);
  EXPECT_TRUE(parsed->include_usage);
  EXPECT_EQ(parsed->user, "u-1");
}

TEST(OpenAiServerCodec, FlexServiceTierIsABatchRequestAndMessageNamesAreKept) {
  absl::StatusOr<ParsedRequest> parsed = ParseChatCompletionsRequest(
      R"({"model":"m","service_tier":"flex",)"
      R"("messages":[{"role":"user","name":"example_user","content":"x"}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->generate.batch());
  EXPECT_EQ(parsed->generate.chat().messages(0).name(), "example_user");
  parsed = ParseChatCompletionsRequest(
      R"({"model":"m","service_tier":"auto","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->generate.batch());
  EXPECT_THAT(
      ChatError(R"({"model":"m","service_tier":5,"messages":[{"role":"user","content":"x"}]})")
          .message(),
      HasSubstr("service_tier"));
  EXPECT_THAT(
      ChatError(R"({"model":"m","messages":[{"role":"user","name":7,"content":"x"}]})").message(),
      HasSubstr("name"));
}

TEST(OpenAiServerCodec, PrefersMaxCompletionTokensAndLeavesAbsentParamsUnset) {
  absl::StatusOr<ParsedRequest> parsed = ParseChatCompletionsRequest(
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5,)"
      R"("max_completion_tokens":9,"stop":"END"})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->generate.params().max_tokens(), 9u);
  EXPECT_FALSE(parsed->generate.params().has_temperature());
  EXPECT_FALSE(parsed->generate.params().has_seed());
  EXPECT_THAT(parsed->generate.params().stop(), ElementsAre("END"));
  EXPECT_FALSE(parsed->stream);
  EXPECT_FALSE(parsed->include_usage);
}

TEST(OpenAiServerCodec, RejectsMalformedChatRequestsNamingTheField) {
  EXPECT_THAT(ChatError(R"({"model":"m","messages":[{"role":"user","content":"hi"})").message(),
              HasSubstr("invalid JSON"));
  EXPECT_THAT(ChatError("[]").message(), HasSubstr("JSON object"));
  EXPECT_EQ(ChatError(R"({"messages":[{"role":"user","content":"x"}]})").message(),
            "model: required");
  EXPECT_EQ(ChatError(R"({"model":"m"})").message(), "messages: required");
  EXPECT_EQ(ChatError(R"({"model":"m","messages":[]})").message(), "messages: must not be empty");
  EXPECT_EQ(ChatError(R"({"model":7,"messages":[{"role":"user","content":"x"}]})").message(),
            "model: expected a string");
  EXPECT_EQ(
      ChatError(
          R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":5}]})")
          .message(),
      "messages[1].content: expected a string or an array of text parts");
  EXPECT_EQ(
      ChatError(R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})")
          .message(),
      "messages[0].content[0].type: only \"text\" parts are supported, got \"image_url\"");
  EXPECT_EQ(ChatError(R"({"model":"m","messages":[{"content":"x"}]})").message(),
            "messages[0].role: required");
  EXPECT_EQ(ChatError(R"({"model":"m","messages":["x"]})").message(),
            "messages[0]: expected an object");
  EXPECT_EQ(
      ChatError(R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":2})").message(),
      "n: only 1 is supported");
  EXPECT_EQ(ChatError(R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"})")
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(OpenAiServerCodec, RejectsNumbersThatDoNotFit) {
  const std::string prefix = R"({"model":"m","messages":[{"role":"user","content":"x"}],)";
  EXPECT_EQ(ChatError(prefix + R"("max_tokens":99999999999999999999})").message(),
            "max_tokens: expected a non-negative integer below 2^32");
  EXPECT_EQ(ChatError(prefix + R"("max_tokens":-1})").message(),
            "max_tokens: expected a non-negative integer below 2^32");
  EXPECT_EQ(ChatError(prefix + R"("max_tokens":1.5})").message(),
            "max_tokens: expected a non-negative integer below 2^32");
  EXPECT_THAT(ChatError(prefix + R"("temperature":1e999})").message(), HasSubstr("invalid JSON"));
  EXPECT_EQ(ChatError(prefix + R"("temperature":"hot"})").message(),
            "temperature: expected a number");
}

TEST(OpenAiServerCodec, PassesNonUtf8ContentThrough) {
  const std::string body =
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"caf\xe9\"}]}";
  absl::StatusOr<ParsedRequest> parsed = ParseChatCompletionsRequest(body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->generate.chat().messages(0).content(), "caf\xe9");
}

TEST(OpenAiServerCodec, ParsesCompletionsWithAStringOrOnePrompt) {
  absl::StatusOr<ParsedRequest> parsed = ParseCompletionsRequest(
      R"({"model":"davinci-002","prompt":"Say this","max_tokens":7,"stream":true})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->generate.prompt(), "Say this");
  EXPECT_EQ(parsed->generate.params().max_tokens(), 7u);
  EXPECT_TRUE(parsed->stream);
  parsed = ParseCompletionsRequest(R"({"model":"m","prompt":["only one"]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->generate.prompt(), "only one");

  EXPECT_EQ(ParseCompletionsRequest(R"({"model":"m","prompt":["a","b"]})").status().message(),
            "batched prompts are not supported yet");
  EXPECT_EQ(ParseCompletionsRequest(R"({"model":"m","prompt":[1,2,3]})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCompletionsRequest(R"({"model":"m"})").status().message(), "prompt: required");
  EXPECT_EQ(ParseCompletionsRequest(R"({"model":"m","prompt":["a",2]})").status().message(),
            "prompt[1]: expected a string");
}

absl::Status BatchError(const std::string& body) {
  return ParseBatchCompletionsRequest(body).status();
}

TEST(OpenAiServerCodec, ParsesBatchedPromptsInOrderForServersThatAnswerThem) {
  absl::StatusOr<ParsedRequest> parsed = ParseBatchCompletionsRequest(
      R"({"model":"m","prompt":["first","","third"],"max_tokens":4,"temperature":0})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->prompts, ElementsAre("first", "", "third"));
  EXPECT_EQ(parsed->generate.prompt(), "first");
  EXPECT_EQ(parsed->generate.params().max_tokens(), 4u);
  EXPECT_TRUE(parsed->generate.params().has_temperature());
  parsed = ParseBatchCompletionsRequest(R"({"model":"m","prompt":"one","stream":true})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->prompts, ElementsAre("one"));
  EXPECT_TRUE(parsed->stream);
  // The single-prompt parser fills `prompts` too.
  EXPECT_THAT(ParseCompletionsRequest(R"({"model":"m","prompt":["x"]})")->prompts,
              ElementsAre("x"));
}

TEST(OpenAiServerCodec, RejectsMalformedBatchedPromptsNamingTheItem) {
  EXPECT_EQ(BatchError(R"({"model":"m","prompt":[]})").message(), "prompt: must not be empty");
  EXPECT_EQ(BatchError(R"({"model":"m","prompt":["a",2]})").message(),
            "prompt[1]: expected a string");
  EXPECT_EQ(BatchError(R"({"model":"m","prompt":["a",null]})").message(),
            "prompt[1]: expected a string");
  EXPECT_EQ(BatchError(R"({"model":"m","prompt":[["a"],["b"]]})").message(),
            "prompt[0]: expected a string");
  EXPECT_EQ(BatchError(R"({"model":"m","prompt":[[1,2],[3]]})").message(),
            "prompt[0]: expected a string");
  EXPECT_EQ(BatchError(R"({"model":"m","prompt":[1,2,3]})").message(),
            "prompt: token-id prompts are not supported");
  EXPECT_EQ(BatchError(R"({"model":"m","prompt":{"a":1}})").message(),
            "prompt: expected a string or an array of strings");
  EXPECT_EQ(BatchError(R"({"model":"m","prompt":["a","b"],"n":2})").message(),
            "n: only 1 is supported");
  EXPECT_THAT(BatchError(R"({"model":"m","prompt":["a",)").message(), HasSubstr("invalid JSON"));
}

TEST(OpenAiServerCodec, ParsesEmbeddingsInputsAndEncodingFormat) {
  absl::StatusOr<ParsedRequest> parsed = ParseEmbeddingsRequest(
      R"({"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"base64"})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->embed.model(), "text-embedding-3-small");
  EXPECT_THAT(parsed->embed.inputs(), ElementsAre("a", "b"));
  EXPECT_TRUE(parsed->base64_embeddings);
  parsed = ParseEmbeddingsRequest(R"({"model":"m","input":"one"})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->embed.inputs(), ElementsAre("one"));
  EXPECT_FALSE(parsed->base64_embeddings);

  EXPECT_EQ(ParseEmbeddingsRequest(R"({"model":"m","input":[]})").status().message(),
            "input: must not be empty");
  EXPECT_EQ(ParseEmbeddingsRequest(R"({"model":"m","input":["a",3]})").status().message(),
            "input[1]: expected a string");
  EXPECT_EQ(ParseEmbeddingsRequest(R"({"model":"m","input":"a","encoding_format":"hex"})")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

v1::GenerateResponse Answer() {
  v1::GenerateResponse response;
  response.set_text("Hello \"world\"");
  response.set_finish_reason(v1::FINISH_REASON_LENGTH);
  v1::Usage* usage = response.mutable_usage();
  usage->set_input_tokens(20);
  usage->set_cached_input_tokens(8);
  usage->set_output_tokens(10);
  usage->set_reasoning_tokens(4);
  return response;
}

TEST(OpenAiServerCodec, EncodesAChatCompletionWithUsageAndCost) {
  v1::Cost cost;
  cost.set_total_nano_usd(1500);
  rapidjson::Document doc =
      Json(ChatCompletionJson(Answer(), "chatcmpl-1", "gpt-4o-mini", 1700000000, &cost));
  EXPECT_STREQ(doc["id"].GetString(), "chatcmpl-1");
  EXPECT_STREQ(doc["object"].GetString(), "chat.completion");
  EXPECT_EQ(doc["created"].GetInt64(), 1700000000);
  EXPECT_STREQ(doc["model"].GetString(), "gpt-4o-mini");
  const rapidjson::Value& choice = doc["choices"][0];
  EXPECT_EQ(choice["index"].GetInt(), 0);
  EXPECT_STREQ(choice["message"]["role"].GetString(), "assistant");
  EXPECT_STREQ(choice["message"]["content"].GetString(), "Hello \"world\"");
  EXPECT_STREQ(choice["finish_reason"].GetString(), "length");
  const rapidjson::Value& usage = doc["usage"];
  EXPECT_EQ(usage["prompt_tokens"].GetInt(), 20);
  EXPECT_EQ(usage["completion_tokens"].GetInt(), 10);
  EXPECT_EQ(usage["total_tokens"].GetInt(), 30);
  EXPECT_EQ(usage["prompt_tokens_details"]["cached_tokens"].GetInt(), 8);
  EXPECT_EQ(usage["completion_tokens_details"]["reasoning_tokens"].GetInt(), 4);
  EXPECT_DOUBLE_EQ(doc["x_tollgate"]["cost_usd"].GetDouble(), 1.5e-6);
  EXPECT_EQ(doc["x_tollgate"]["cost_nano_usd"].GetInt64(), 1500);
}

TEST(OpenAiServerCodec, LeavesOutUsageAndCostWhenThereAreNone) {
  v1::GenerateResponse response = Answer();
  response.clear_usage();
  rapidjson::Document doc = Json(ChatCompletionJson(response, "c", "m", 1, nullptr));
  EXPECT_FALSE(doc.HasMember("usage"));
  EXPECT_FALSE(doc.HasMember("x_tollgate"));
}

TEST(OpenAiServerCodec, EncodesStreamChunksLikeOpenAi) {
  rapidjson::Document first =
      Json(ChatCompletionChunkJson("Hi", v1::FINISH_REASON_UNSPECIFIED, "c", "m", 5, true));
  EXPECT_STREQ(first["object"].GetString(), "chat.completion.chunk");
  EXPECT_STREQ(first["choices"][0]["delta"]["role"].GetString(), "assistant");
  EXPECT_STREQ(first["choices"][0]["delta"]["content"].GetString(), "Hi");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].IsNull());

  rapidjson::Document last =
      Json(ChatCompletionChunkJson("", v1::FINISH_REASON_STOP, "c", "m", 5, false));
  EXPECT_TRUE(last["choices"][0]["delta"].ObjectEmpty());
  EXPECT_STREQ(last["choices"][0]["finish_reason"].GetString(), "stop");

  rapidjson::Document usage = Json(UsageChunkJson(Answer().usage(), "c", "m", 5, nullptr));
  EXPECT_TRUE(usage["choices"].IsArray());
  EXPECT_TRUE(usage["choices"].Empty());
  EXPECT_EQ(usage["usage"]["total_tokens"].GetInt(), 30);

  EXPECT_EQ(SseEvent("{}"), "data: {}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
}

TEST(OpenAiServerCodec, EncodesTextCompletionShapes) {
  rapidjson::Document doc = Json(CompletionJson(Answer(), "cmpl-1", "m", 3, nullptr));
  EXPECT_STREQ(doc["object"].GetString(), "text_completion");
  EXPECT_STREQ(doc["choices"][0]["text"].GetString(), "Hello \"world\"");
  EXPECT_STREQ(doc["choices"][0]["finish_reason"].GetString(), "length");
  EXPECT_EQ(doc["usage"]["prompt_tokens"].GetInt(), 20);
  rapidjson::Document chunk =
      Json(CompletionChunkJson("x", v1::FINISH_REASON_UNSPECIFIED, "cmpl-1", "m", 3));
  EXPECT_STREQ(chunk["choices"][0]["text"].GetString(), "x");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].IsNull());
  rapidjson::Document usage =
      Json(CompletionUsageChunkJson(Answer().usage(), "cmpl-1", "m", 3, nullptr));
  EXPECT_STREQ(usage["object"].GetString(), "text_completion");
  EXPECT_TRUE(usage["choices"].Empty());
}

TEST(OpenAiServerCodec, EncodesABatchedCompletionWithOneChoicePerPromptAndOneUsage) {
  v1::GenerateResponse first = Answer();
  v1::GenerateResponse second;
  second.set_text("second");
  second.set_finish_reason(v1::FINISH_REASON_STOP);
  const std::vector<v1::GenerateResponse> choices = {first, second};
  v1::Usage usage;
  usage.set_input_tokens(30);
  usage.set_output_tokens(12);
  rapidjson::Document doc = Json(BatchCompletionJson(choices, &usage, "cmpl-2", "m", 3, nullptr));
  EXPECT_STREQ(doc["object"].GetString(), "text_completion");
  ASSERT_EQ(doc["choices"].Size(), 2u);
  EXPECT_EQ(doc["choices"][0]["index"].GetInt(), 0);
  EXPECT_STREQ(doc["choices"][0]["text"].GetString(), "Hello \"world\"");
  EXPECT_STREQ(doc["choices"][0]["finish_reason"].GetString(), "length");
  EXPECT_EQ(doc["choices"][1]["index"].GetInt(), 1);
  EXPECT_STREQ(doc["choices"][1]["text"].GetString(), "second");
  EXPECT_STREQ(doc["choices"][1]["finish_reason"].GetString(), "stop");
  EXPECT_EQ(doc["usage"]["prompt_tokens"].GetInt(), 30);
  EXPECT_EQ(doc["usage"]["completion_tokens"].GetInt(), 12);
  EXPECT_EQ(doc["usage"]["total_tokens"].GetInt(), 42);
  EXPECT_FALSE(
      Json(BatchCompletionJson(choices, nullptr, "c", "m", 3, nullptr)).HasMember("usage"));
}

TEST(OpenAiServerCodec, EncodesEmbeddingsAsFloatsOrBase64) {
  v1::EmbedResponse response;
  response.add_embeddings()->add_values(0.5f);
  response.mutable_embeddings(0)->add_values(-1.0f);
  response.mutable_usage()->set_input_tokens(3);
  rapidjson::Document doc = Json(EmbeddingsJson(response, "e5", nullptr));
  EXPECT_STREQ(doc["object"].GetString(), "list");
  EXPECT_STREQ(doc["data"][0]["object"].GetString(), "embedding");
  EXPECT_EQ(doc["data"][0]["index"].GetInt(), 0);
  EXPECT_DOUBLE_EQ(doc["data"][0]["embedding"][1].GetDouble(), -1.0);
  EXPECT_EQ(doc["usage"]["prompt_tokens"].GetInt(), 3);
  EXPECT_EQ(doc["usage"]["total_tokens"].GetInt(), 3);
  // 0.5f = 00 00 00 3f, -1.0f = 00 00 80 bf (little-endian).
  rapidjson::Document b64 = Json(EmbeddingsJson(response, "e5", nullptr, /*base64=*/true));
  EXPECT_STREQ(b64["data"][0]["embedding"].GetString(), "AAAAPwAAgL8=");
}

TEST(OpenAiServerCodec, EncodesModelsAndErrors) {
  rapidjson::Document models = Json(ModelsJson({"a", "b"}, 9));
  EXPECT_EQ(models["data"].Size(), 2u);
  EXPECT_STREQ(models["data"][1]["id"].GetString(), "b");
  EXPECT_STREQ(models["data"][1]["object"].GetString(), "model");

  rapidjson::Document error = Json(ErrorJson(absl::InvalidArgumentError("model: required")));
  EXPECT_STREQ(error["error"]["message"].GetString(), "model: required");
  EXPECT_STREQ(error["error"]["type"].GetString(), "invalid_request_error");
  EXPECT_TRUE(error["error"]["param"].IsNull());
  EXPECT_TRUE(error["error"]["code"].IsString());
  EXPECT_STREQ(
      Json(ErrorJson(absl::ResourceExhaustedError("slow down")))["error"]["code"].GetString(),
      "rate_limit_exceeded");
  // A refusal by one of Tollgate's budgets is OpenAI's over-quota error, not a rate limit.
  absl::Status budget = absl::ResourceExhaustedError("budget \"b\" is exhausted");
  budget.SetPayload(kBudgetPayload, absl::Cord("budget"));
  rapidjson::Document quota = Json(ErrorJson(budget));
  EXPECT_STREQ(quota["error"]["type"].GetString(), "insufficient_quota");
  EXPECT_STREQ(quota["error"]["code"].GetString(), "insufficient_quota");
  EXPECT_STREQ(quota["error"]["message"].GetString(), "budget \"b\" is exhausted");
}

TEST(OpenAiServerCodec, MapsStatusCodesToHttpStatuses) {
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kCancelled), 499);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDataLoss), 500);
}

}  // namespace
}  // namespace tollgate::openai
