#include "accounting/tokenizer/stream_counter.h"

namespace tollgate {

size_t StreamCounter::Append(std::string_view chunk) {
  pending_.append(chunk);
  size_t final_bytes = 0;
  const size_t tokens = tokenizer_->CountFinal(pending_, continuation_, &final_bytes);
  if (final_bytes == 0) return tokens;
  pending_.erase(0, final_bytes);
  continuation_ = true;
  committed_ += tokens;
  return tokens;
}

size_t StreamCounter::Total() const {
  return committed_ + tokenizer_->CountRest(pending_, continuation_);
}

}  // namespace tollgate
