// Placeholder until the SentencePiece tokenizers land.
#include "absl/status/status.h"
#include "accounting/tokenizer/registry.h"

namespace tollgate {

absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadSentencePiece(std::string_view,
                                                                   const std::string&) {
  return absl::UnimplementedError("the SentencePiece tokenizers are not built yet");
}

}  // namespace tollgate
