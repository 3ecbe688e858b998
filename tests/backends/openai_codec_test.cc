#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/openai/client_codec.h"
#include "rapidjson/document.h"
#include "tests/backends/recording_observer.h"

namespace tollgate::openai {
namespace {

using ::testing::HasSubstr;

rapidjson::Document Json(const std::string& text) { return testing::ParseJson(text); }

v1::GenerateRequest ChatRequest() {
  v1::GenerateRequest request;
  request.set_model("gpt-4o-mini");
  auto* system = request.mutable_chat()->add_messages();
  system->set_role("system");
  system->set_content("Be brief.");
  auto* user = request.mutable_chat()->add_messages();
  user->set_role("user");
  user->set_content("Say \"hi\"\n");
  return request;
}

TEST(OpenAiClientCodec, ChatBodyCarriesModelMessagesAndEveryParameter) {
  v1::GenerateRequest request = ChatRequest();
  request.mutable_params()->set_max_tokens(64);
  request.mutable_params()->set_temperature(0.7f);
  request.mutable_params()->set_top_p(0.9f);
  request.mutable_params()->set_seed(-42);
  request.mutable_params()->add_stop("\n\n");
  request.mutable_params()->add_stop("END");
  absl::StatusOr<std::string> body = ChatCompletionsBody(request, /*stream=*/false);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(*body, HasSubstr("\"temperature\":0.7,"));  // the float's shortest form
  const rapidjson::Document json = Json(*body);
  EXPECT_STREQ(json["model"].GetString(), "gpt-4o-mini");
  ASSERT_EQ(json["messages"].Size(), 2u);
  EXPECT_STREQ(json["messages"][0]["role"].GetString(), "system");
  EXPECT_STREQ(json["messages"][1]["content"].GetString(), "Say \"hi\"\n");
  EXPECT_EQ(json["max_tokens"].GetUint(), 64u);
  EXPECT_DOUBLE_EQ(json["top_p"].GetDouble(), 0.9);
  EXPECT_EQ(json["seed"].GetInt64(), -42);
  ASSERT_EQ(json["stop"].Size(), 2u);
  EXPECT_STREQ(json["stop"][1].GetString(), "END");
  EXPECT_FALSE(json["stream"].GetBool());
  EXPECT_FALSE(json.HasMember("stream_options"));
}

TEST(OpenAiClientCodec, ABatchRequestAsksForFlexProcessingAndNameAndItsTokensGoAlong) {
  v1::GenerateRequest request = ChatRequest();
  EXPECT_FALSE(Json(*ChatCompletionsBody(request, false)).HasMember("service_tier"));
  request.set_batch(true);
  request.mutable_chat()->mutable_messages(1)->set_name("example_user");
  const rapidjson::Document json = Json(*ChatCompletionsBody(request, false));
  EXPECT_STREQ(json["service_tier"].GetString(), "flex");
  EXPECT_STREQ(json["messages"][1]["name"].GetString(), "example_user");
  EXPECT_FALSE(json["messages"][0].HasMember("name"));
}

TEST(OpenAiClientCodec, AStreamingBodyAlwaysAsksForUsage) {
  absl::StatusOr<std::string> body = ChatCompletionsBody(ChatRequest(), /*stream=*/true);
  ASSERT_TRUE(body.ok());
  const rapidjson::Document json = Json(*body);
  EXPECT_TRUE(json["stream"].GetBool());
  EXPECT_TRUE(json["stream_options"]["include_usage"].GetBool());
}

TEST(OpenAiClientCodec, OmitsParametersTheRequestLeavesToTheBackend) {
  const rapidjson::Document json = Json(*ChatCompletionsBody(ChatRequest(), false));
  for (const char* name : {"max_tokens", "temperature", "top_p", "seed", "stop"}) {
    EXPECT_FALSE(json.HasMember(name)) << name;
  }
}

TEST(OpenAiClientCodec, APromptGoesToTheCompletionsBody) {
  v1::GenerateRequest request;
  request.set_model("gpt-3.5-turbo-instruct");
  request.set_prompt("Once upon a time");
  request.mutable_params()->set_max_tokens(7);
  const rapidjson::Document json = Json(*CompletionsBody(request, true));
  EXPECT_STREQ(json["prompt"].GetString(), "Once upon a time");
  EXPECT_EQ(json["max_tokens"].GetUint(), 7u);
  EXPECT_TRUE(json["stream_options"]["include_usage"].GetBool());
  EXPECT_EQ(ChatCompletionsBody(request, true).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CompletionsBody(ChatRequest(), true).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(OpenAiClientCodec, EmbeddingsBodyListsTheInputsAsFloats) {
  v1::EmbedRequest request;
  request.set_model("text-embedding-3-small");
  request.add_inputs("one");
  request.add_inputs("two");
  const rapidjson::Document json = Json(EmbeddingsBody(request));
  ASSERT_EQ(json["input"].Size(), 2u);
  EXPECT_STREQ(json["input"][1].GetString(), "two");
  EXPECT_STREQ(json["encoding_format"].GetString(), "float");
}

// Shaped like the chat completion object in OpenAI's API reference, with prompt caching and
// reasoning tokens.
constexpr char kChatCompletion[] = R"({
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": "o3-mini-2025-01-31",
  "choices": [{
    "index": 0,
    "message": {"role": "assistant", "content": "The answer is 42.", "refusal": null,
                "annotations": []},
    "logprobs": null,
    "finish_reason": "stop"
  }],
  "usage": {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0,
                                  "accepted_prediction_tokens": 0,
                                  "rejected_prediction_tokens": 0}
  },
  "service_tier": "default",
  "system_fingerprint": "fp_6ec83003ad"
})";

TEST(OpenAiClientCodec, NormalisesUsageWithCachedAndReasoningTokens) {
  absl::StatusOr<Completion> completion = ParseCompletion(kChatCompletion);
  ASSERT_TRUE(completion.ok()) << completion.status();
  EXPECT_EQ(completion->text, "The answer is 42.");
  EXPECT_EQ(completion->finish_reason, v1::FINISH_REASON_STOP);
  ASSERT_TRUE(completion->usage.has_value());
  EXPECT_EQ(completion->usage->input_tokens(), 2006u);  // prompt_tokens include the cached ones
  EXPECT_EQ(completion->usage->cached_input_tokens(), 1920u);
  EXPECT_EQ(completion->usage->output_tokens(), 300u);  // completion_tokens include reasoning
  EXPECT_EQ(completion->usage->reasoning_tokens(), 192u);
  EXPECT_EQ(completion->usage->cache_write_input_tokens(), 0u);
  EXPECT_EQ(completion->usage->source(), v1::USAGE_SOURCE_REPORTED);
}

TEST(OpenAiClientCodec, ParsesATextCompletionCutAtItsLength) {
  absl::StatusOr<Completion> completion = ParseCompletion(R"({
    "id": "cmpl-1", "object": "text_completion", "model": "gpt-3.5-turbo-instruct",
    "choices": [{"text": " there was", "index": 0, "logprobs": null, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}})");
  ASSERT_TRUE(completion.ok()) << completion.status();
  EXPECT_EQ(completion->text, " there was");
  EXPECT_EQ(completion->finish_reason, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(completion->usage->cached_input_tokens(), 0u);
}

TEST(OpenAiClientCodec, ANullContentIsEmptyText) {
  absl::StatusOr<Completion> completion = ParseCompletion(
      R"({"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"tool_calls"}]})");
  ASSERT_TRUE(completion.ok()) << completion.status();
  EXPECT_EQ(completion->text, "");
  EXPECT_EQ(completion->finish_reason, v1::FINISH_REASON_STOP);
  EXPECT_FALSE(completion->usage.has_value());
}

TEST(OpenAiClientCodec, ParsesTheChunksOfAStream) {
  absl::StatusOr<CompletionChunk> role = ParseCompletionChunk(
      R"({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null})");
  ASSERT_TRUE(role.ok()) << role.status();
  EXPECT_EQ(role->text, "");
  EXPECT_EQ(role->finish_reason, v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_FALSE(role->usage.has_value());

  absl::StatusOr<CompletionChunk> delta = ParseCompletionChunk(
      R"({"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]})");
  ASSERT_TRUE(delta.ok());
  EXPECT_EQ(delta->text, "Hel");

  absl::StatusOr<CompletionChunk> end =
      ParseCompletionChunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})");
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->finish_reason, v1::FINISH_REASON_STOP);
}

TEST(OpenAiClientCodec, TheUsageOnlyChunkCarriesUsageAndNoText) {
  absl::StatusOr<CompletionChunk> chunk = ParseCompletionChunk(
      R"({"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":5,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}})");
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_EQ(chunk->text, "");
  ASSERT_TRUE(chunk->usage.has_value());
  EXPECT_EQ(chunk->usage->input_tokens(), 11u);
  EXPECT_EQ(chunk->usage->output_tokens(), 5u);
}

TEST(OpenAiClientCodec, AnErrorInsideAStreamIsUnavailable) {
  absl::StatusOr<CompletionChunk> chunk = ParseCompletionChunk(
      R"({"error":{"message":"The server had an error","type":"server_error"}})");
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(chunk->error.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(chunk->error.message(), HasSubstr("The server had an error"));
}

TEST(OpenAiClientCodec, MalformedAnswersAreInternalErrors) {
  for (const char* bad : {"", "not json", "[1,2]", R"({"choices":[{"message":{"content":7}}]})",
                          R"({"choices":{"0":1}})", R"({"choices":[42]})",
                          R"({"choices":[{"text":"x"}],"usage":{"prompt_tokens":"12"}})",
                          R"({"choices":[{"text":"x"}],"usage":{"prompt_tokens":-1}})",
                          R"({"choices":[{"text":"x"}],"usage":{"prompt_tokens":1.5}})",
                          R"({"choices":[{"text":"x"}],"usage":{"prompt_tokens_details":[]}})",
                          R"({"choices":[{"text":"x","finish_reason":3}]})", R"({"choices":[]})"}) {
    absl::StatusOr<Completion> completion = ParseCompletion(bad);
    EXPECT_EQ(completion.status().code(), absl::StatusCode::kInternal) << bad;
    EXPECT_THAT(completion.status().message(), HasSubstr("backend sent malformed JSON")) << bad;
  }
}

TEST(OpenAiClientCodec, NeverCrashesOnATruncatedAnswer) {
  const std::string whole = kChatCompletion;
  for (size_t n = 0; n < whole.size(); ++n) {
    absl::StatusOr<Completion> completion = ParseCompletion(whole.substr(0, n));
    EXPECT_EQ(completion.status().code(), absl::StatusCode::kInternal) << n;
    absl::StatusOr<CompletionChunk> chunk = ParseCompletionChunk(whole.substr(0, n));
    EXPECT_FALSE(chunk.ok()) << n;
  }
}

TEST(OpenAiClientCodec, ABatchBodyCarriesThePromptsAsAnArrayAndEveryParameter) {
  v1::GenerateRequest request;
  request.set_model("llama");
  request.set_prompt("ignored: the batch's prompts are given apart");
  request.mutable_params()->set_max_tokens(8);
  request.mutable_params()->set_temperature(0.25f);
  request.mutable_params()->add_stop("\n");
  request.set_batch(true);
  absl::StatusOr<std::string> body = CompletionsBatchBody(request, {"one", "two \"2\"", ""});
  ASSERT_TRUE(body.ok()) << body.status();
  const rapidjson::Document json = Json(*body);
  EXPECT_STREQ(json["model"].GetString(), "llama");
  ASSERT_TRUE(json["prompt"].IsArray());
  ASSERT_EQ(json["prompt"].Size(), 3u);
  EXPECT_STREQ(json["prompt"][1].GetString(), "two \"2\"");
  EXPECT_STREQ(json["prompt"][2].GetString(), "");
  EXPECT_EQ(json["max_tokens"].GetUint(), 8u);
  EXPECT_DOUBLE_EQ(json["temperature"].GetDouble(), 0.25);
  EXPECT_STREQ(json["stop"][0].GetString(), "\n");
  EXPECT_STREQ(json["service_tier"].GetString(), "flex");
  EXPECT_FALSE(json["stream"].GetBool());
  EXPECT_EQ(CompletionsBatchBody(request, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OpenAiClientCodec, ParsesABatchAnswerByChoiceIndexWithTheCallsUsage) {
  absl::StatusOr<BatchCompletion> batch = ParseBatchCompletion(R"({
    "id": "cmpl-1", "object": "text_completion", "model": "llama",
    "choices": [{"text": " two", "index": 1, "logprobs": null, "finish_reason": "length"},
                {"text": " one", "index": 0, "logprobs": null, "finish_reason": "stop"},
                {"text": "", "index": 2, "finish_reason": null}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}})",
                                                               3);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->choices.size(), 3u);
  for (const BatchCompletionChoice& choice : batch->choices) EXPECT_TRUE(choice.status.ok());
  EXPECT_EQ(batch->choices[0].text, " one");
  EXPECT_EQ(batch->choices[0].finish_reason, v1::FINISH_REASON_STOP);
  EXPECT_EQ(batch->choices[1].text, " two");
  EXPECT_EQ(batch->choices[1].finish_reason, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(batch->choices[2].finish_reason, v1::FINISH_REASON_STOP) << "a whole answer ended";
  ASSERT_TRUE(batch->usage.has_value());
  EXPECT_EQ(batch->usage->input_tokens(), 9u);
  EXPECT_EQ(batch->usage->output_tokens(), 5u);
  EXPECT_EQ(batch->usage->source(), v1::USAGE_SOURCE_REPORTED);
}

TEST(OpenAiClientCodec, BatchChoicesWithoutAnIndexAreTakenInOrderAndUsageIsOptional) {
  absl::StatusOr<BatchCompletion> batch =
      ParseBatchCompletion(R"({"choices":[{"text":"a"},{"text":"b"}]})", 2);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->choices[0].text, "a");
  EXPECT_EQ(batch->choices[1].text, "b");
  EXPECT_FALSE(batch->usage.has_value());
}

TEST(OpenAiClientCodec, AMissingOrMalformedChoiceFailsOnlyItsPrompt) {
  absl::StatusOr<BatchCompletion> batch = ParseBatchCompletion(
      R"({"choices":[{"index":0,"text":"fine"},{"index":2,"text":7},
                     {"index":3,"text":"x","finish_reason":["stop"]}]})",
      4);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_TRUE(batch->choices[0].status.ok());
  EXPECT_EQ(batch->choices[0].text, "fine");
  for (size_t i : {1, 2, 3}) {
    EXPECT_EQ(batch->choices[i].status.code(), absl::StatusCode::kInternal) << i;
    EXPECT_THAT(batch->choices[i].status.message(), HasSubstr("backend sent malformed JSON"));
  }
  EXPECT_THAT(batch->choices[1].status.message(), HasSubstr("none for prompt 1 of 4"));
  EXPECT_THAT(batch->choices[2].status.message(), HasSubstr("choices[index 2]"));
}

TEST(OpenAiClientCodec, MalformedBatchAnswersAreInternalErrors) {
  for (const char* bad :
       {"", "not json", "[1,2]", R"({})", R"({"choices":null})", R"({"choices":{"0":1}})",
        R"({"choices":[42]})", R"({"choices":[{"index":2,"text":"x"}]})",
        R"({"choices":[{"index":0,"text":"x"},{"index":0,"text":"y"}]})",
        R"({"choices":[{"index":-1,"text":"x"}]})", R"({"choices":[{"index":"0","text":"x"}]})",
        R"({"choices":[{"index":0.5,"text":"x"}]})",
        R"({"choices":[{"text":"x"},{"text":"y"},{"text":"z"}]})",
        R"({"choices":[{"text":"x"}],"usage":{"prompt_tokens":"12"}})",
        R"({"choices":[{"text":"x"}],"usage":[]})"}) {
    absl::StatusOr<BatchCompletion> batch = ParseBatchCompletion(bad, 2);
    EXPECT_EQ(batch.status().code(), absl::StatusCode::kInternal) << bad;
    EXPECT_THAT(batch.status().message(), HasSubstr("backend sent malformed JSON")) << bad;
  }
}

TEST(OpenAiClientCodec, NeverCrashesOnATruncatedBatchAnswer) {
  const std::string whole =
      R"({"choices":[{"text":"a","index":0,"finish_reason":"stop"},{"text":"b","index":1}],)"
      R"("usage":{"prompt_tokens":4,"completion_tokens":2}})";
  ASSERT_TRUE(ParseBatchCompletion(whole, 2).ok());
  for (size_t n = 0; n < whole.size(); ++n) {
    EXPECT_EQ(ParseBatchCompletion(whole.substr(0, n), 2).status().code(),
              absl::StatusCode::kInternal)
        << n;
  }
}

TEST(OpenAiClientCodec, OrdersEmbeddingsByTheirIndex) {
  absl::StatusOr<v1::EmbedResponse> response = ParseEmbeddings(R"({
    "object": "list",
    "data": [{"object": "embedding", "index": 1, "embedding": [0.5, -1]},
             {"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8}})");
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->embeddings_size(), 2);
  EXPECT_FLOAT_EQ(response->embeddings(0).values(0), 0.0023064255f);
  EXPECT_FLOAT_EQ(response->embeddings(1).values(1), -1.0f);
  EXPECT_EQ(response->usage().input_tokens(), 8u);
  EXPECT_EQ(response->usage().source(), v1::USAGE_SOURCE_REPORTED);
}

TEST(OpenAiClientCodec, RejectsEmbeddingsWithRepeatedOrMissingIndices) {
  EXPECT_EQ(ParseEmbeddings(R"({"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]})")
                .status()
                .code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(ParseEmbeddings(R"({"data":[{"index":5,"embedding":[1]}]})").status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(ParseEmbeddings(R"({"data":[{"index":0,"embedding":["x"]}]})").status().code(),
            absl::StatusCode::kInternal);
}

TEST(OpenAiClientCodec, ReadsTheMessageOfAnErrorAnswer) {
  EXPECT_EQ(ErrorMessage(R"({"error":{"message":"Incorrect API key provided: sk-abc.",
      "type":"invalid_request_error","param":null,"code":"invalid_api_key"}})"),
            "Incorrect API key provided: sk-abc.");
  EXPECT_EQ(ErrorMessage(R"({"detail":"Not Found"})"), "Not Found");
  EXPECT_EQ(ErrorMessage("<html>502 Bad Gateway</html>"), "");
}

}  // namespace
}  // namespace tollgate::openai
