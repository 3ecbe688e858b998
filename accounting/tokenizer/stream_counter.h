// Counts a stream's output tokens as its chunks arrive.
//
// Chunk boundaries fall anywhere in the text, so counting each chunk on its own would over-count
// the tokens that span them. StreamCounter instead commits only the tokens that no later text can
// change (Tokenizer::CountFinal) and keeps the rest pending; Total() counts the pending text
// too, so that when the stream ends, however it ends, the total is exactly Count(all text).
//
//   StreamCounter counter(tokenizer);
//   for each chunk: live_metric.Increment(counter.Append(chunk.text));
//   at the end:     usage.output_tokens = counter.Total();
//
// Thread safety: none; one stream's chunks arrive in order on one thread at a time.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "accounting/tokenizer/tokenizer.h"

namespace tollgate {

class StreamCounter {
 public:
  // `tokenizer` must outlive the counter.
  explicit StreamCounter(const Tokenizer* tokenizer) : tokenizer_(tokenizer) {}

  // Adds the next chunk; returns how many tokens became final with it (often 0 or 1).
  size_t Append(std::string_view chunk);

  // Tokens committed so far: a lower bound of Total() that only grows.
  size_t committed() const { return committed_; }

  // The exact count of everything appended: committed plus the pending text's tokens.
  size_t Total() const;

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;        // text whose tokens are not final yet
  bool continuation_ = false;  // whether pending_ follows a final prefix
  size_t committed_ = 0;
};

}  // namespace tollgate
