#include "accounting/tokenizer/stream_counter.h"

namespace tollgate {

size_t StreamCounter::Append(std::string_view chunk) {
  pending_.append(chunk);
  size_t final_bytes = 0;
  const size_t tokens = tokenizer_->CountFinal(pending_, &final_bytes);
  pending_.erase(0, final_bytes);
  committed_ += tokens;
  return tokens;
}

size_t StreamCounter::Total() const { return committed_ + tokenizer_->Count(pending_); }

}  // namespace tollgate
