// The tokenizers Tollgate knows, by the name that the config's `models[].tokenizer` and
// `tollgate count-tokens --tokenizer` use, and the default a model's name implies.
//
//   name          vocabulary file (in the vocabulary directory)   algorithm
//   cl100k_base   cl100k_base.json  (npm tiktoken)                 tiktoken byte-level BPE
//   o200k_base    o200k_base.json   (npm tiktoken)                 tiktoken byte-level BPE
//   llama3        llama3.json       (npm llama3-tokenizer-js)      tiktoken byte-level BPE
//   llama2        llama2.json       (npm llama-tokenizer-js)       SentencePiece BPE
//   mistral       mistral.json      (npm mistral-tokenizer-js)     SentencePiece BPE
//
// `scripts/fetch_vocab` writes the files, checked against pinned sha256 sums. The vocabulary
// directory is $TOLLGATE_VOCAB_DIR, default <repo>/.cache/tokenizer (flag --vocab_dir).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "accounting/tokenizer/tokenizer.h"

namespace tollgate {

// Every tokenizer name, in the order above.
const std::vector<std::string_view>& TokenizerNames();

// Loads tokenizer `name` from `vocab_dir`. INVALID_ARGUMENT for an unknown name (the message lists
// the known ones), NOT_FOUND for a missing vocabulary file (the message names the file and says to
// run scripts/fetch_vocab), INVALID_ARGUMENT for a malformed one.
absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadTokenizer(std::string_view name,
                                                               const std::string& vocab_dir);

// The tokenizer a model name implies, or "" when it implies none (its usage is then estimated at
// about 4 bytes per token). Matched case-insensitively on the name's last path segment, so that
// "meta-llama/Meta-Llama-3-8B-Instruct" is llama3:
//   gpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, o1*, o3*, o4*            o200k_base
//   gpt-4*, gpt-3.5*, text-embedding-3*, text-embedding-ada-002   cl100k_base
//   *llama-3*, *llama3*                                           llama3
//   *llama-2*, *llama2*                                           llama2
//   mistral*                                                      mistral
std::string_view DefaultTokenizerFor(std::string_view model);

// Loaded by LoadTokenizer; defined next to each algorithm.
// `path` is the JSON file that fetch_vocab extracts from llama3-tokenizer-js ({"vocab_base64": ...,
// "merges_binary": ...}; see llama3.cc).
absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadLlama3(const std::string& path);
// `name` is "llama2" or "mistral"; `path` is the JSON file that fetch_vocab extracts from the npm
// package: {"vocab_base64": ..., "merges_binary": ...}.
absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadSentencePiece(std::string_view name,
                                                                   const std::string& path);

}  // namespace tollgate
