#include "proxy/tokenizers.h"

#include "absl/strings/str_cat.h"
#include "accounting/tokenizer/registry.h"

namespace tollgate {

absl::StatusOr<ModelTokenizers> TokenizerCache::ForConfig(const Config& config) {
  ModelTokenizers tokenizers;
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < config.models.size(); ++i) {
    const ModelConfig& model = config.models[i];
    if (model.tokenizer.empty()) continue;
    const std::string key = absl::StrCat(config.vocab_dir, "\n", model.tokenizer);
    auto it = loaded_.find(key);
    if (it == loaded_.end()) {
      absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded =
          LoadTokenizer(model.tokenizer, config.vocab_dir);
      if (!loaded.ok()) {
        return absl::Status(loaded.status().code(),
                            absl::StrCat("models[", i, "].tokenizer: ", loaded.status().message()));
      }
      it = loaded_.emplace(key, *std::move(loaded)).first;
    }
    tokenizers.emplace(model.name, it->second);
  }
  return tokenizers;
}

}  // namespace tollgate
