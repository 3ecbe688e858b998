#include "accounting/tokenizer/chat.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tollgate {
namespace {

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

size_t CountOpenAi(const Tokenizer& tokenizer, const std::vector<ChatMessageText>& messages) {
  constexpr size_t kPerMessage = 3, kPerName = 1, kReplyPriming = 3;
  size_t tokens = kReplyPriming;
  for (const ChatMessageText& m : messages) {
    tokens += kPerMessage + tokenizer.Count(m.role) + tokenizer.Count(m.content);
    if (!m.name.empty()) tokens += kPerName + tokenizer.Count(m.name);
  }
  return tokens;
}

// The special tokens of the template are single ids and split the text around them, so the
// rendering's count is the specials plus each text run's count.
size_t CountLlama3(const Tokenizer& tokenizer, const std::vector<ChatMessageText>& messages) {
  constexpr size_t kBeginOfText = 1, kHeader = 2 /* start and end header */, kEndOfTurn = 1;
  size_t tokens = kBeginOfText;
  for (const ChatMessageText& m : messages) {
    std::string body = absl::StrCat("\n\n", absl::StripAsciiWhitespace(Absl(m.content)));
    tokens += kHeader + tokenizer.Count(m.role) + tokenizer.Count(body) + kEndOfTurn;
  }
  return tokens + kHeader + tokenizer.Count("assistant") + tokenizer.Count("\n\n");
}

size_t CountInstruct(const Tokenizer& tokenizer, const std::vector<ChatMessageText>& messages) {
  constexpr size_t kBos = 1, kEos = 1;
  size_t tokens = 0;
  std::string system;
  for (const ChatMessageText& m : messages) {
    if (m.role == "system") {
      absl::StrAppend(&system, "<<SYS>>\n", Absl(m.content), "\n<</SYS>>\n\n");
    } else if (m.role == "assistant") {
      tokens += tokenizer.Count(absl::StrCat(" ", Absl(m.content))) + kEos;
    } else {
      tokens +=
          kBos + tokenizer.Count(absl::StrCat("[INST] ", system, Absl(m.content), " [/INST]"));
      system.clear();
    }
  }
  if (!system.empty())
    tokens += kBos + tokenizer.Count(absl::StrCat("[INST] ", system, " [/INST]"));
  return tokens;
}

}  // namespace

size_t CountChatPromptTokens(const Tokenizer& tokenizer,
                             const std::vector<ChatMessageText>& messages) {
  const std::string_view name = tokenizer.name();
  if (name == "cl100k_base" || name == "o200k_base") return CountOpenAi(tokenizer, messages);
  if (name == "llama3") return CountLlama3(tokenizer, messages);
  if (name == "llama2" || name == "mistral") return CountInstruct(tokenizer, messages);
  size_t tokens = 0;
  for (const ChatMessageText& m : messages) {
    tokens += tokenizer.Count(m.role) + tokenizer.Count(m.content);
  }
  return tokens;
}

}  // namespace tollgate
