// Placeholder until the Llama 3 tokenizer lands.
#include "absl/status/status.h"
#include "accounting/tokenizer/registry.h"

namespace tollgate {

absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadLlama3(const std::string&) {
  return absl::UnimplementedError("the llama3 tokenizer is not built yet");
}

}  // namespace tollgate
