// Token counting with a model's own tokenizer.
//
// A Tokenizer turns text into the token ids the model server would see, counts them without
// building the id vector (the hot path for budgets, KV projections and usage that the backend did
// not report), and turns ids back into bytes. Two algorithms stand behind it: byte-level BPE of the
// tiktoken family (cl100k_base, o200k_base, llama3) and SentencePiece BPE (llama2, mistral). Every
// vocabulary comes from an npm package (`scripts/fetch_vocab`), and registry.h loads any of them by
// name:
//
//   TG_ASSIGN_OR_RETURN(std::shared_ptr<const Tokenizer> tok, LoadTokenizer("llama3", vocab_dir));
//   size_t prompt_tokens = tok->Count(prompt);
//
// Thread safety: a loaded Tokenizer is immutable; every method is const and may be called from any
// number of threads at once. Load once at start-up and share the pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tollgate {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The encoding's name, e.g. "cl100k_base".
  virtual std::string_view name() const = 0;

  // Token ids of `text`, taken as ordinary text: the text of a special token such as
  // "<|endoftext|>" is tokenized like any other text, as the hosted APIs do with user content.
  // Each maximal ill-formed UTF-8 subpart is first replaced by U+FFFD, as a model server's decoder
  // would (accounting/tokenizer/utf8.h); so Decode(Encode(x)) == x only for well-formed x.
  virtual std::vector<uint32_t> Encode(std::string_view text) const = 0;

  // Encode(text).size(), without building the vector.
  virtual size_t Count(std::string_view text) const = 0;

  // Like Encode, but the text of every special token of the encoding becomes that special token's
  // id (tiktoken's `encode(text, allowed_special="all")`).
  virtual std::vector<uint32_t> EncodeWithSpecialTokens(std::string_view text) const = 0;

  // Counts the tokens of the longest prefix of `text` that no text appended later can change, as
  // they are within the whole text, and sets *final_bytes to that prefix's length. `continuation`
  // says that `text` follows a prefix an earlier call found final. For every `more`:
  //   Count(text + more) == CountFinal(text, false, &n) + CountRest(text.substr(n) + more, true)
  // StreamCounter commits a stream's output tokens this way as chunks arrive. Nothing final (0 and
  // 0) is always correct, and the default.
  virtual size_t CountFinal(std::string_view text, bool continuation, size_t* final_bytes) const {
    (void)text;
    (void)continuation;
    *final_bytes = 0;
    return 0;
  }

  // Count(text); for a continuation (see CountFinal), the tokens `text` adds after the final prefix
  // it follows, without what a tokenizer adds only at the start of a text (SentencePiece's
  // dummy-prefix space).
  virtual size_t CountRest(std::string_view text, bool continuation) const {
    (void)continuation;
    return Count(text);
  }

  // The bytes of `ids`, concatenated. Ids the encoding does not have are skipped.
  virtual std::string Decode(const std::vector<uint32_t>& ids) const = 0;

  // Size of the id space: one past the largest id, special tokens included.
  virtual size_t vocabulary_size() const = 0;
};

// Loads a tiktoken-family encoding from the JSON file of the npm `tiktoken` package
// (`encoders/<name>.json`: {"pat_str", "special_tokens", "bpe_ranks"}). `name` is "cl100k_base" or
// "o200k_base"; the file's pre-tokenizer pattern must be the one built in for that name.
// NOT_FOUND when the file is missing, INVALID_ARGUMENT for an unknown name or a malformed file.
absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadTiktoken(std::string_view name,
                                                              const std::string& path);

}  // namespace tollgate
