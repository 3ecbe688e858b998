// Internal to accounting/tokenizer: the byte-level BPE tokenizer that the tiktoken encodings and
// llama3 share (defined in tiktoken.cc), for the loaders of their vocabulary files.
//
// Text becomes ids in four steps: ill-formed UTF-8 is replaced (utf8.h); the text of special tokens
// is cut out (EncodeWithSpecialTokens only); the pre-tokenizer splits the rest into pieces
// (pretokenizer.h); and a piece that is a token becomes that token, any other is merged from its
// bytes. The merge is tiktoken's (the lowest-ranked concatenation of two neighbouring parts first,
// leftmost on ties) unless the tokenizer is given a PieceMerger.
//
//   TG_ASSIGN_OR_RETURN(ByteLevelVocabulary vocab, BuildByteLevelVocabulary(tokens, specials));
//   std::shared_ptr<const Tokenizer> tok =
//       NewByteLevelBpeTokenizer("llama3", SplitPattern::kLlama3, std::move(vocab), merger);
//
// A built vocabulary is immutable, as is the tokenizer; both are safe to share between threads.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "accounting/tokenizer/pretokenizer.h"
#include "accounting/tokenizer/tokenizer.h"

namespace tollgate::tokenizer_internal {

inline constexpr uint32_t kNoToken = std::numeric_limits<uint32_t>::max();

// The tokens of a vocabulary: their bytes by id in one buffer, and the reverse map of the ordinary
// (not special) tokens keyed by views into it.
struct ByteLevelVocabulary {
  // Every token's bytes, concatenated; on the heap so that the views in `ids` survive moves.
  std::unique_ptr<std::string> bytes = std::make_unique<std::string>();
  std::vector<uint32_t> offsets;  // token id i is bytes[offsets[i], offsets[i + 1])
  absl::flat_hash_map<std::string_view, uint32_t> ids;  // ordinary tokens only
  std::vector<uint32_t> special_ids;

  // The id of the ordinary token whose bytes are `token`, or kNoToken.
  uint32_t Find(std::string_view token) const {
    auto it = ids.find(token);
    return it == ids.end() ? kNoToken : it->second;
  }

  // REQUIRES: id < offsets.size() - 1.
  std::string_view TokenBytes(uint32_t id) const {
    return std::string_view(*bytes).substr(offsets[id], offsets[id + 1] - offsets[id]);
  }
};

// `tokens` are the ordinary tokens as (id, bytes), `special_tokens` the special ones as (text, id).
// Ids need not be dense. INVALID_ARGUMENT when a token is empty, two tokens have one id, two
// ordinary tokens have the same bytes, or a byte has no token of its own.
absl::StatusOr<ByteLevelVocabulary> BuildByteLevelVocabulary(
    const std::vector<std::pair<uint32_t, std::string>>& tokens,
    const std::vector<std::pair<std::string, uint32_t>>& special_tokens);

// The JSON object in the vocabulary file of tokenizer `name` at `path`. NOT_FOUND, naming
// scripts/fetch_vocab, when the file cannot be read; INVALID_ARGUMENT, naming the file, when it
// holds no JSON object.
absl::StatusOr<rapidjson::Document> ReadVocabularyJson(std::string_view name,
                                                       const std::string& path);

// The merge of a reference other than tiktoken.
class PieceMerger {
 public:
  virtual ~PieceMerger() = default;

  // Calls emit(id) for the tokens of `piece`, a piece of `text` (the whole text being encoded) that
  // is not itself a token.
  virtual void Merge(std::string_view piece, std::string_view text,
                     absl::FunctionRef<void(uint32_t)> emit) const = 0;
};

// A tokenizer named `name`. With `merger` null, pieces merge as in tiktoken; with a merger, whose
// result may depend on the whole text, nothing is final before the text ends (CountFinal).
std::shared_ptr<const Tokenizer> NewByteLevelBpeTokenizer(
    std::string name, SplitPattern pattern, ByteLevelVocabulary vocab,
    std::unique_ptr<const PieceMerger> merger);

}  // namespace tollgate::tokenizer_internal
