// Chat prompt tokens against prompt_tokens figures that OpenAI's API reported for known requests:
// the OpenAI Cookbook's "How to count tokens with tiktoken" example (129 for gpt-3.5-turbo-0613 and
// gpt-4-0613), the API reference's one-message example (9), and single-message requests recorded
// with gpt-35-turbo/gpt-4 (cl100k_base) and gpt-4o (o200k_base) by the openai-messages-token-helper
// project's tests.
#include "accounting/tokenizer/chat.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/accounting/tokenizer/test_vocab.h"

namespace tollgate {
namespace {

class ChatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_LOAD_TOKENIZER_OR_SKIP(cl100k_, "cl100k_base");
    TG_LOAD_TOKENIZER_OR_SKIP(o200k_, "o200k_base");
  }
  std::shared_ptr<const Tokenizer> cl100k_, o200k_;
};

TEST_F(ChatTest, CountsTheCookbookExampleAsTheApiBilledIt) {
  const std::vector<ChatMessageText> messages = {
      {"system",
       "You are a helpful, pattern-following assistant that translates corporate jargon into "
       "plain English."},
      {"system", "New synergies will help drive top-line growth.", "example_user"},
      {"system", "Things working well together will increase revenue.", "example_assistant"},
      {"system",
       "Let's circle back when we have more bandwidth to touch base on opportunities for "
       "increased leverage.",
       "example_user"},
      {"system", "Let's talk later when we're less busy about how to do better.",
       "example_assistant"},
      {"user",
       "This late pivot means we don't have time to boil the ocean for the client "
       "deliverable."},
  };
  EXPECT_EQ(CountChatPromptTokens(*cl100k_, messages), 129u);
}

TEST_F(ChatTest, CountsOneUserMessageAsTheApiReferenceShows) {
  EXPECT_EQ(CountChatPromptTokens(*cl100k_, {{"user", "Hello!"}}), 9u);
  EXPECT_EQ(CountChatPromptTokens(*o200k_, {{"user", "Hello!"}}), 9u);
}

TEST_F(ChatTest, CountsSingleMessagesAsRecordedFromTheApi) {
  struct Case {
    ChatMessageText message;
    size_t cl100k;
    size_t o200k;
  };
  const Case cases[] = {
      {{"system", "You are a bot."}, 12, 12},
      {{"system",
        "You are a helpful, pattern-following assistant that translates corporate jargon into "
        "plain English."},
       25,
       24},
      {{"system",
        "Assistant helps the company employees with their healthcare plan questions, and "
        "questions about the employee handbook. Be brief in your answers."},
       31,
       31},
      {{"system", "\xC3\xA1"}, 8, 8},
      {{"system", "New synergies will help drive top-line growth.", "example_user"}, 20, 20},
      {{"user", "Hello, how are you?"}, 13, 13},
      {{"user", "What happens in a performance review?"}, 14, 14},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CountChatPromptTokens(*cl100k_, {c.message}), c.cl100k) << c.message.content;
    EXPECT_EQ(CountChatPromptTokens(*o200k_, {c.message}), c.o200k) << c.message.content;
  }
}

TEST_F(ChatTest, AnEmptyConversationCostsOnlyTheReplyPriming) {
  EXPECT_EQ(CountChatPromptTokens(*cl100k_, {}), 3u);
}

}  // namespace
}  // namespace tollgate
