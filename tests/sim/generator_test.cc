#include "sim/generator.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "sim/stable_hash.h"

namespace tollgate::sim {
namespace {

v1::GenerateRequest PromptRequest(const std::string& prompt, uint32_t max_tokens = 0) {
  v1::GenerateRequest request;
  request.set_model("llama-3-8b-instruct");
  request.set_prompt(prompt);
  request.mutable_params()->set_max_tokens(max_tokens);
  return request;
}

v1::GenerateRequest ChatRequest(const std::vector<std::string>& contents) {
  v1::GenerateRequest request;
  request.set_model("llama-3-8b-instruct");
  for (const std::string& content : contents) {
    v1::Message* message = request.mutable_chat()->add_messages();
    message->set_role("user");
    message->set_content(content);
  }
  return request;
}

// Recorded from one run; any process must reproduce them.
constexpr absl::string_view kGoldenFirstTokens = " rate| spend| token| limit";
constexpr size_t kGoldenLength = 455;

std::string Text(const SimOutput& output) { return absl::StrJoin(output.tokens, ""); }

TEST(StableHasher, MatchesPublishedFnv1aValues) {
  StableHasher empty;
  EXPECT_EQ(empty.Digest(), 0xcbf29ce484222325ull);
  StableHasher a;
  a.AddByte('a');
  EXPECT_EQ(a.Digest(), 0xaf63dc4c8601ec8cull);
}

TEST(Generate, EqualRequestsGiveEqualOutput) {
  const SimOutput first = Generate(ChatRequest({"hello", "how much does this cost?"}));
  const SimOutput second = Generate(ChatRequest({"hello", "how much does this cost?"}));
  EXPECT_EQ(first.tokens, second.tokens);
  EXPECT_EQ(first.finish_reason, second.finish_reason);
  EXPECT_EQ(first.prompt_tokens, second.prompt_tokens);
}

TEST(Generate, OutputIsTheSameInEveryProcess) {
  // A golden value: a per-process hash seed would change it from run to run.
  const SimOutput output = Generate(PromptRequest("golden", 1000));
  ASSERT_GE(output.tokens.size(), 4u);
  EXPECT_EQ(absl::StrJoin(output.tokens.begin(), output.tokens.begin() + 4, "|"),
            kGoldenFirstTokens);
  EXPECT_EQ(output.tokens.size(), kGoldenLength);
}

TEST(Generate, ChangingPromptSeedOrMaxTokensChangesTheOutput) {
  const v1::GenerateRequest base = PromptRequest("tell me about budgets", 1000);
  const std::string base_text = Text(Generate(base));

  EXPECT_NE(Text(Generate(PromptRequest("tell me about budgets!", 1000))), base_text);
  v1::GenerateRequest seeded = base;
  seeded.mutable_params()->set_seed(7);
  EXPECT_NE(Text(Generate(seeded)), base_text);
  EXPECT_NE(Text(Generate(PromptRequest("tell me about budgets", 999))), base_text);
  v1::GenerateRequest other_model = base;
  other_model.set_model("mistral-7b");
  EXPECT_NE(Text(Generate(other_model)), base_text);
}

TEST(Generate, MaxTokensCapsTheAnswerAndFinishesWithLength) {
  const SimOutput output = Generate(PromptRequest("a long story please", 5));
  EXPECT_EQ(output.tokens.size(), 5u);
  EXPECT_EQ(output.finish_reason, v1::FINISH_REASON_LENGTH);
}

TEST(Generate, NaturalAnswersHaveSixteenToFiveHundredElevenTokensAndFinishWithStop) {
  for (int i = 0; i < 50; ++i) {
    const SimOutput output = Generate(PromptRequest(absl::StrCat("question ", i), kMaxTokensLimit));
    EXPECT_GE(output.tokens.size(), kMinAnswerTokens);
    EXPECT_LT(output.tokens.size(), kMinAnswerTokens + kAnswerTokenSpread);
    EXPECT_EQ(output.finish_reason, v1::FINISH_REASON_STOP);
  }
}

TEST(Generate, ZeroMaxTokensMeansTheDefaultBudget) {
  int capped = 0;
  for (int i = 0; i < 50; ++i) {
    const SimOutput output = Generate(PromptRequest(absl::StrCat("question ", i), 0));
    EXPECT_LE(output.tokens.size(), kDefaultMaxTokens);
    if (output.finish_reason == v1::FINISH_REASON_LENGTH) {
      EXPECT_EQ(output.tokens.size(), kDefaultMaxTokens);
      ++capped;
    }
  }
  EXPECT_GT(capped, 0);  // about half of the natural lengths exceed 256
}

TEST(Generate, StopStringEndsTheTextJustBeforeItsFirstOccurrence) {
  // "ost" occurs only inside the word piece " cost", which the cut leaves as " c".
  int truncated = 0;
  for (int i = 0; i < 50; ++i) {
    v1::GenerateRequest request = PromptRequest(absl::StrCat("question ", i), 200);
    request.mutable_params()->add_stop("ost");
    const SimOutput output = Generate(request);
    EXPECT_EQ(Text(output).find("ost"), std::string::npos);
    if (!output.tokens.empty() && output.tokens.back() == " c") {
      EXPECT_EQ(output.finish_reason, v1::FINISH_REASON_STOP);
      ++truncated;
    }
  }
  EXPECT_GT(truncated, 25);
}

TEST(CountPromptTokens, RawPromptIsBytesOverFourRoundedUpAndAtLeastOne) {
  EXPECT_EQ(CountPromptTokens(PromptRequest("12345678")), 2u);
  EXPECT_EQ(CountPromptTokens(PromptRequest("123456789")), 3u);
  EXPECT_EQ(CountPromptTokens(PromptRequest("")), 1u);
  EXPECT_EQ(CountPromptTokens(PromptRequest("\xc3\xa9t\xc3\xa9")), 2u);  // "été": 5 utf-8 bytes
}

TEST(CountPromptTokens, ChatAddsFourPerMessageAndThreeForTheReply) {
  // ceil(5/4) + 4 + ceil(8/4) + 4 + 3.
  EXPECT_EQ(CountPromptTokens(ChatRequest({"hello", "12345678"})), 15u);
  EXPECT_EQ(Generate(ChatRequest({"hello", "12345678"})).prompt_tokens, 15u);
}

TEST(ValidateRequest, RejectsMissingModelInputOrExcessiveMaxTokens) {
  EXPECT_TRUE(ValidateRequest(PromptRequest("hi")).ok());

  v1::GenerateRequest no_model = PromptRequest("hi");
  no_model.clear_model();
  EXPECT_EQ(ValidateRequest(no_model).code(), absl::StatusCode::kInvalidArgument);

  v1::GenerateRequest no_input = PromptRequest("hi");
  no_input.clear_prompt();
  EXPECT_EQ(ValidateRequest(no_input).code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(ValidateRequest(ChatRequest({})).code(), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(ValidateRequest(PromptRequest("hi", kMaxTokensLimit)).ok());
  const absl::Status too_long = ValidateRequest(PromptRequest("hi", kMaxTokensLimit + 1));
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.message().find("max_tokens"), absl::string_view::npos);
}

TEST(ValidateEmbedRequest, RejectsMissingModelOrInputs) {
  v1::EmbedRequest request;
  request.set_model("e5");
  EXPECT_EQ(ValidateEmbedRequest(request).code(), absl::StatusCode::kInvalidArgument);
  request.add_inputs("text");
  EXPECT_TRUE(ValidateEmbedRequest(request).ok());
  request.clear_model();
  EXPECT_EQ(ValidateEmbedRequest(request).code(), absl::StatusCode::kInvalidArgument);
}

TEST(Embed, ReturnsADeterministicUnitVectorPerInput) {
  const std::vector<float> vector = Embed("e5", "the cost of tokens");
  ASSERT_EQ(vector.size(), kEmbeddingDimension);
  double norm_squared = 0;
  for (float value : vector) norm_squared += static_cast<double>(value) * value;
  EXPECT_NEAR(std::sqrt(norm_squared), 1.0, 1e-5);
  EXPECT_EQ(Embed("e5", "the cost of tokens"), vector);
  EXPECT_NE(Embed("e5", "the cost of token"), vector);
  EXPECT_NE(Embed("e6", "the cost of tokens"), vector);
}

TEST(CountEmbedTokens, IsBytesOverFourRoundedUpAndAtLeastOne) {
  EXPECT_EQ(CountEmbedTokens(""), 1u);
  EXPECT_EQ(CountEmbedTokens("12345"), 2u);
}

}  // namespace
}  // namespace tollgate::sim
