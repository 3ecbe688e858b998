// The prompt tokens of a chat request: the messages' text plus the tokens of the chat format that
// wraps them, as the model server renders it before tokenizing.
//
// OpenAI chat format (cl100k_base, o200k_base), as OpenAI bills prompt_tokens:
//   every message costs 3 tokens (<|start|>, the role/content separator, <|end|>) plus the tokens
//   of its role and its content; a message with a name costs the name's tokens plus 1 more; and
//   the reply is primed with <|start|>assistant<|message|>, 3 tokens. The figures are checked in
//   tests/accounting/tokenizer/chat_test.cc against prompt_tokens that the API reported.
// Llama 3 (llama3), the instruct models' chat template:
//   <|begin_of_text|> then per message
//   <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> (content trimmed), then
//   <|start_header_id|>assistant<|end_header_id|>\n\n. Counted exactly as that rendering tokenizes.
// Llama 2 and Mistral (llama2, mistral), the [INST] template:
//   each user turn, with a preceding system message folded into the first one as
//   "<<SYS>>\nSYSTEM\n<</SYS>>\n\n", is <s>[INST] USER [/INST], and each assistant reply is
//   " REPLY</s>". Counted as that rendering tokenizes.
// For other tokenizers the messages' role and content tokens are summed, with no overhead.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "accounting/tokenizer/tokenizer.h"

namespace tollgate {

struct ChatMessageText {
  std::string_view role;
  std::string_view content;
  std::string_view name;  // optional participant name; empty for none
};

size_t CountChatPromptTokens(const Tokenizer& tokenizer,
                             const std::vector<ChatMessageText>& messages);

}  // namespace tollgate
