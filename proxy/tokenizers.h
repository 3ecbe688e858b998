// The tokenizers a config's models use, loaded once and shared by every config generation.
//
//   TokenizerCache cache;
//   TG_ASSIGN_OR_RETURN(ModelTokenizers tokenizers, cache.ForConfig(*config));
//
// A vocabulary is a few megabytes and takes tens of milliseconds to load, so a reload that keeps a
// model's tokenizer reuses the loaded one. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "accounting/tokenizer/tokenizer.h"
#include "proxy/config/config.h"

namespace tollgate {

// Model name → its tokenizer; models that are estimated have no entry.
using ModelTokenizers = absl::flat_hash_map<std::string, std::shared_ptr<const Tokenizer>>;

class TokenizerCache {
 public:
  // Every model's tokenizer, from config.vocab_dir. A vocabulary that is missing or malformed is an
  // error naming the model, e.g. `models[0].tokenizer: vocabulary of tokenizer llama3 not found at
  // .cache/tokenizer/llama3.json (run scripts/fetch_vocab)`.
  absl::StatusOr<ModelTokenizers> ForConfig(const Config& config) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  // Keyed by vocabulary directory and tokenizer name.
  absl::flat_hash_map<std::string, std::shared_ptr<const Tokenizer>> loaded_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tollgate
