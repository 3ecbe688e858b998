// Tokenizers by name, and the defaults that model names imply.
#include "accounting/tokenizer/registry.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

TEST(RegistryTest, WellKnownModelNamesImplyTheirTokenizer) {
  EXPECT_EQ(DefaultTokenizerFor("gpt-4o"), "o200k_base");
  EXPECT_EQ(DefaultTokenizerFor("gpt-4o-mini-2024-07-18"), "o200k_base");
  EXPECT_EQ(DefaultTokenizerFor("GPT-4.1-nano"), "o200k_base");
  EXPECT_EQ(DefaultTokenizerFor("o3-mini"), "o200k_base");
  EXPECT_EQ(DefaultTokenizerFor("gpt-4"), "cl100k_base");
  EXPECT_EQ(DefaultTokenizerFor("gpt-4-turbo"), "cl100k_base");
  EXPECT_EQ(DefaultTokenizerFor("gpt-3.5-turbo-0125"), "cl100k_base");
  EXPECT_EQ(DefaultTokenizerFor("text-embedding-3-small"), "cl100k_base");
  EXPECT_EQ(DefaultTokenizerFor("meta-llama/Meta-Llama-3-8B-Instruct"), "llama3");
  EXPECT_EQ(DefaultTokenizerFor("llama-3.1-70b"), "llama3");
  EXPECT_EQ(DefaultTokenizerFor("llama-2-7b-chat"), "llama2");
  EXPECT_EQ(DefaultTokenizerFor("meta-llama/Llama-2-13b-hf"), "llama2");
  EXPECT_EQ(DefaultTokenizerFor("mistral-7b-instruct"), "mistral");
  EXPECT_EQ(DefaultTokenizerFor("mistralai/Mistral-7B-v0.1"), "mistral");
}

TEST(RegistryTest, OtherModelNamesImplyNoTokenizer) {
  EXPECT_EQ(DefaultTokenizerFor("claude-sonnet-4"), "");
  EXPECT_EQ(DefaultTokenizerFor("qwen2.5-7b"), "");
  EXPECT_EQ(DefaultTokenizerFor(""), "");
  EXPECT_EQ(DefaultTokenizerFor("my-gpt-4o"), "");  // a prefix match, not anywhere in the name
}

TEST(RegistryTest, AnUnknownNameIsAnErrorListingTheKnownOnes) {
  absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded = LoadTokenizer("gpt2", "/nonexistent");
  ASSERT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find("cl100k_base, o200k_base, llama3, llama2, mistral"),
            absl::string_view::npos)
      << loaded.status();
}

TEST(RegistryTest, AMissingVocabularyIsNotFoundAndSaysHowToFetchIt) {
  for (std::string_view name : TokenizerNames()) {
    absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded =
        LoadTokenizer(name, "/nonexistent/vocab");
    ASSERT_EQ(loaded.status().code(), absl::StatusCode::kNotFound) << name;
    EXPECT_NE(loaded.status().message().find("/nonexistent/vocab/"), absl::string_view::npos);
    EXPECT_NE(loaded.status().message().find("scripts/fetch_vocab"), absl::string_view::npos);
  }
}

}  // namespace
}  // namespace tollgate
