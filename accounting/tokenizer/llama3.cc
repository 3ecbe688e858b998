// Llama 3's tokenizer as the npm package llama3-tokenizer-js 1.2.0 runs it: byte-level BPE
// (byte_level_bpe.h) over the cl100k pattern as JavaScript's RegExp reads it
// (SplitPattern::kLlama3), with the package's merge, which applies the merge list of the model's
// tokenizer.json (Hugging Face's `model.merges`) in the package's own priority order.
//
// The vocabulary file, extracted from the package by scripts/fetch_vocab:
//   {"vocab_base64": base64 of the tokens in id order, joined by "\n", each in GPT-2's
//                    byte-to-unicode form;
//    "merges_binary": base64 of the merges in priority order, each a pair of token ids, the ids
//                     packed at 17 bits each, most significant bit first, zero-padded}
// The special tokens follow the ordinary ones, in the package's order.
#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "accounting/tokenizer/byte_level_bpe.h"
#include "accounting/tokenizer/registry.h"

namespace tollgate {
namespace {

using tokenizer_internal::ByteLevelVocabulary;
using tokenizer_internal::kNoToken;

constexpr int kMergeIdBits = 17;

// `llama3SpecialTokens` of the package.
std::vector<std::string> SpecialTokenTexts() {
  std::vector<std::string> texts = {"<|begin_of_text|>",
                                    "<|end_of_text|>",
                                    "<|reserved_special_token_0|>",
                                    "<|reserved_special_token_1|>",
                                    "<|finetune_right_pad_id|>",
                                    "<|reserved_special_token_2|>",
                                    "<|start_header_id|>",
                                    "<|end_header_id|>",
                                    "<|eom_id|>",
                                    "<|eot_id|>",
                                    "<|python_tag|>"};
  for (int i = 3; i <= 247; ++i) {
    texts.push_back(absl::StrCat("<|reserved_special_token_", i, "|>"));
  }
  return texts;
}

// GPT-2's byte-to-unicode map, inverted: the byte that each code point below 0x144 stands for, or
// -1. Printable Latin-1 bytes stand for themselves; the others, in order, for U+0100 onwards.
const std::array<int, 0x144>& ByteOfCodePoint() {
  static const auto* const table = [] {
    auto* t = new std::array<int, 0x144>();
    t->fill(-1);
    int next = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      (*t)[printable ? b : next++] = b;
    }
    return t;
  }();
  return *table;
}

// The bytes a token string in byte-to-unicode form stands for; false when it is not in that form.
bool TokenStringToBytes(std::string_view token, std::string* bytes) {
  const std::array<int, 0x144>& byte_of = ByteOfCodePoint();
  bytes->clear();
  for (size_t i = 0; i < token.size(); ++i) {
    uint32_t c = static_cast<unsigned char>(token[i]);
    if (c >= 0x80) {  // the form uses code points up to U+0143: two UTF-8 bytes at most
      if (c < 0xC2 || c > 0xC5 || i + 1 == token.size()) return false;
      auto trail = static_cast<unsigned char>(token[++i]);
      if ((trail & 0xC0) != 0x80) return false;
      c = ((c & 0x1Fu) << 6) | (trail & 0x3Fu);
    }
    if (c >= byte_of.size() || byte_of[c] < 0) return false;
    bytes->push_back(static_cast<char>(byte_of[c]));
  }
  return true;
}

// The package's merge (Llama3Tokenizer.encode), step for step.
//
// A piece starts as one token per byte, in a linked list; a priority queue holds each adjacent pair
// that the merge list has, ranked 2 * (its index in the list) + 1 + origPos / prompt.length, where
// origPos is the byte offset of the pair in the piece and prompt.length the UTF-16 length of the
// whole text. The lowest pair merges, and the pairs it forms with its neighbours join the queue.
// The fraction is meant to break ties leftmost, and does so while it stays under 2; past that (a
// piece of multi-byte letters that is most of the text) it puts a merge after ones later in the
// list, and the package's ids follow it, so this merge does too. Where two ranks are equal, which
// pair comes first depends on the shape of the package's binary heap; ReferenceHeap repeats it.
class MergeList final : public tokenizer_internal::PieceMerger {
 public:
  // `pairs` are the merges in list order, as (left, right) token ids, and `results` the tokens they
  // make. Where a pair repeats, its last index counts, as in the package's Map.
  // REQUIRES: ids below 2^kMergeIdBits, fewer than 2^kIndexBits pairs.
  MergeList(const std::vector<std::pair<uint32_t, uint32_t>>& pairs, std::vector<uint32_t> results,
            const ByteLevelVocabulary& vocab)
      : results_(std::move(results)) {
    indices_.reserve(pairs.size());
    for (uint32_t i = 0; i < pairs.size(); ++i) {
      const uint64_t entry = Key(pairs[i].first, pairs[i].second) << kIndexBits | i;
      if (auto [it, inserted] = indices_.insert(entry); !inserted) {
        indices_.erase(it);
        indices_.insert(entry);
      }
    }
    for (int b = 0; b < 256; ++b) {
      char byte = static_cast<char>(b);
      byte_ids_[b] = vocab.Find(std::string_view(&byte, 1));
    }
  }

  void Merge(std::string_view piece, std::string_view text,
             absl::FunctionRef<void(uint32_t)> emit) const override;

  static constexpr int kIndexBits = 64 - 2 * kMergeIdBits;

 private:
  struct PairKey {
    uint64_t key;
  };
  // The set's entries pack a pair and its index; they hash and compare by the pair alone, so that a
  // PairKey finds them.
  struct PairHash {
    using is_transparent = void;
    size_t operator()(uint64_t entry) const { return absl::Hash<uint64_t>()(entry >> kIndexBits); }
    size_t operator()(PairKey pair) const { return absl::Hash<uint64_t>()(pair.key); }
  };
  struct PairEq {
    using is_transparent = void;
    static uint64_t KeyOf(uint64_t entry) { return entry >> kIndexBits; }
    static uint64_t KeyOf(PairKey pair) { return pair.key; }
    template <typename A, typename B>
    bool operator()(A a, B b) const {
      return KeyOf(a) == KeyOf(b);
    }
  };

  static uint64_t Key(uint32_t left, uint32_t right) {
    return uint64_t{left} << kMergeIdBits | right;
  }

  // The index in the list of the merge of `left` then `right`, or kNoToken.
  uint32_t Find(uint32_t left, uint32_t right) const {
    auto it = indices_.find(PairKey{Key(left, right)});
    return it == indices_.end() ? kNoToken
                                : static_cast<uint32_t>(*it & ((uint64_t{1} << kIndexBits) - 1));
  }

  absl::flat_hash_set<uint64_t, PairHash, PairEq> indices_;
  std::vector<uint32_t> results_;  // by index in the list: the token a merge makes
  std::array<uint32_t, 256> byte_ids_;
};

// The package's PriorityQueue (a binary heap from a Stack Overflow answer) of ranked nodes, sift
// for sift, lowest rank on top.
class ReferenceHeap {
 public:
  bool empty() const { return heap_.empty(); }

  void Push(double rank, uint32_t node) {
    heap_.push_back({rank, node});
    for (size_t i = heap_.size() - 1; i > 0 && Precedes(i, Parent(i));) {
      std::swap(heap_[i], heap_[Parent(i)]);
      i = Parent(i);
    }
  }

  // REQUIRES: !empty().
  uint32_t Pop() {
    const uint32_t top = heap_[0].node;
    if (heap_.size() > 1) std::swap(heap_[0], heap_.back());
    heap_.pop_back();
    const size_t size = heap_.size();
    size_t i = 0;
    while ((Left(i) < size && Precedes(Left(i), i)) || (Right(i) < size && Precedes(Right(i), i))) {
      size_t child = Right(i) < size && Precedes(Right(i), Left(i)) ? Right(i) : Left(i);
      std::swap(heap_[i], heap_[child]);
      i = child;
    }
    return top;
  }

 private:
  struct Entry {
    double rank;
    uint32_t node;
  };

  static size_t Parent(size_t i) { return (i + 1) / 2 - 1; }
  static size_t Left(size_t i) { return 2 * i + 1; }
  static size_t Right(size_t i) { return 2 * i + 2; }
  bool Precedes(size_t i, size_t j) const { return heap_[i].rank < heap_[j].rank; }

  std::vector<Entry> heap_;
};

// The prompt.length to rank the merges of `piece` with, or a stand-in that ranks them the same. A
// piece of at most 2/3 of the text's bytes is at most twice its UTF-16 length (a UTF-16 unit takes
// at most 3 bytes), so the fractions stay under 2 and only order merges of one index leftmost, as
// any length of at least the piece's does: the byte length then saves counting. (Exact below 2^32
// bytes, where these doubles keep distinct positions apart.)
double RankDenominator(std::string_view piece, std::string_view text) {
  if (3 * piece.size() <= 2 * text.size()) return static_cast<double>(text.size());
  size_t units = 0;
  for (char c : text) {
    auto b = static_cast<unsigned char>(c);
    units += (b & 0xC0) != 0x80;  // a code point's first byte
    units += b >= 0xF0;           // beyond the BMP: a surrogate pair
  }
  return static_cast<double>(units);
}

void MergeList::Merge(std::string_view piece, std::string_view text,
                      absl::FunctionRef<void(uint32_t)> emit) const {
  constexpr uint32_t kNone = kNoToken;
  struct Node {
    uint32_t start;  // origPos
    uint32_t token;
    uint32_t prev = kNone;
    uint32_t next = kNone;
    bool deleted = false;
    uint32_t merged = 0;  // the token that merging with next makes, once queued
  };
  std::vector<Node> nodes;
  nodes.reserve(3 * piece.size());  // the bytes, then at most two more a merge
  const double denominator = RankDenominator(piece, text);
  ReferenceHeap queue;
  auto enqueue = [&](uint32_t left) {
    const uint32_t index = Find(nodes[left].token, nodes[nodes[left].next].token);
    if (index == kNoToken) return;
    nodes[left].merged = results_[index];
    queue.Push((2.0 * index + 1) + nodes[left].start / denominator, left);
  };
  for (uint32_t i = 0; i < piece.size(); ++i) {
    nodes.push_back({i, byte_ids_[static_cast<unsigned char>(piece[i])]});
    if (i > 0) {
      nodes[i].prev = i - 1;
      nodes[i - 1].next = i;
      enqueue(i - 1);
    }
  }
  uint32_t first = 0;
  while (!queue.empty()) {
    const uint32_t left = queue.Pop();
    const uint32_t right = nodes[left].next;
    if (nodes[left].deleted || right == kNone || nodes[right].deleted) continue;  // stale
    nodes[left].deleted = nodes[right].deleted = true;
    // The package replaces the left neighbour by a copy, so that its queued pair goes stale.
    if (const uint32_t old_prev = nodes[left].prev; old_prev != kNone) {
      nodes[old_prev].deleted = true;
      const auto new_prev = static_cast<uint32_t>(nodes.size());
      nodes.push_back({nodes[old_prev].start, nodes[old_prev].token, nodes[old_prev].prev, left});
      nodes[left].prev = new_prev;
      if (nodes[new_prev].prev != kNone) {
        nodes[nodes[new_prev].prev].next = new_prev;
      } else {
        first = new_prev;
      }
    }
    const auto merged = static_cast<uint32_t>(nodes.size());
    nodes.push_back({nodes[left].start, nodes[left].merged, nodes[left].prev, nodes[right].next});
    if (const uint32_t prev = nodes[merged].prev; prev != kNone) {
      nodes[prev].next = merged;
      enqueue(prev);
    } else {
      first = merged;
    }
    if (const uint32_t next = nodes[merged].next; next != kNone) {
      nodes[next].prev = merged;
      enqueue(merged);
    }
  }
  for (uint32_t i = first; i != kNone; i = nodes[i].next) emit(nodes[i].token);
}

// The ids that merges_binary packs, 17 bits each; the bits after the last whole id are padding.
std::vector<uint32_t> UnpackMergeIds(std::string_view packed) {
  std::vector<uint32_t> ids(packed.size() * 8 / kMergeIdBits);
  for (size_t i = 0; i < ids.size(); ++i) {
    size_t bit = i * kMergeIdBits;
    uint32_t window = 0;  // the 24 bits from the id's first byte
    for (size_t k = 0; k < 3; ++k) {
      size_t at = bit / 8 + k;
      window = (window << 8) | (at < packed.size() ? static_cast<unsigned char>(packed[at]) : 0u);
    }
    ids[i] = (window >> (24 - kMergeIdBits - bit % 8)) & ((1u << kMergeIdBits) - 1);
  }
  return ids;
}

// The merge list of `merges_binary`, checked against the vocabulary.
absl::StatusOr<std::unique_ptr<const MergeList>> ParseMerges(std::string_view packed,
                                                             uint32_t num_tokens,
                                                             const ByteLevelVocabulary& vocab) {
  std::vector<uint32_t> ids = UnpackMergeIds(packed);
  if (ids.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("merges_binary holds ", packed.size() * 8, " bits, an odd number (",
                     ids.size(), ") of 17-bit token ids where merges are pairs of them"));
  }
  std::vector<std::pair<uint32_t, uint32_t>> pairs;
  std::vector<uint32_t> results;
  pairs.reserve(ids.size() / 2);
  results.reserve(ids.size() / 2);
  std::string joined;
  for (size_t i = 0; i < ids.size(); i += 2) {
    const uint32_t left = ids[i], right = ids[i + 1];
    if (left >= num_tokens || right >= num_tokens) {
      return absl::InvalidArgumentError(absl::StrCat("merge ", i / 2, " names token ",
                                                     std::max(left, right), ", past the ",
                                                     num_tokens, " ordinary tokens"));
    }
    joined.assign(vocab.TokenBytes(left));
    joined.append(vocab.TokenBytes(right));
    const uint32_t result = vocab.Find(joined);
    if (result == kNoToken) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", i / 2, " of tokens ", left, " and ", right, " makes no token"));
    }
    pairs.emplace_back(left, right);
    results.push_back(result);
  }
  if (pairs.size() >= (uint64_t{1} << MergeList::kIndexBits)) {
    return absl::InvalidArgumentError(
        absl::StrCat("merges_binary holds ", pairs.size(), " merges, too many"));
  }
  return std::make_unique<const MergeList>(pairs, std::move(results), vocab);
}

absl::StatusOr<std::shared_ptr<const Tokenizer>> ParseLlama3(const rapidjson::Document& doc) {
  auto vocab_field = doc.FindMember("vocab_base64");
  auto merges_field = doc.FindMember("merges_binary");
  if (vocab_field == doc.MemberEnd() || !vocab_field->value.IsString() ||
      merges_field == doc.MemberEnd() || !merges_field->value.IsString()) {
    return absl::InvalidArgumentError("expected string vocab_base64 and string merges_binary");
  }
  std::string vocab_text, packed_merges;
  if (!absl::Base64Unescape(
          absl::string_view(vocab_field->value.GetString(), vocab_field->value.GetStringLength()),
          &vocab_text)) {
    return absl::InvalidArgumentError("vocab_base64 is not valid base64");
  }
  if (!absl::Base64Unescape(
          absl::string_view(merges_field->value.GetString(), merges_field->value.GetStringLength()),
          &packed_merges)) {
    return absl::InvalidArgumentError("merges_binary is not valid base64");
  }
  std::vector<std::pair<uint32_t, std::string>> tokens;
  for (absl::string_view token : absl::StrSplit(vocab_text, '\n')) {
    const auto id = static_cast<uint32_t>(tokens.size());
    std::string& bytes = tokens.emplace_back(id, std::string()).second;
    if (!TokenStringToBytes(std::string_view(token.data(), token.size()), &bytes)) {
      return absl::InvalidArgumentError(
          absl::StrCat("token ", id, " is not in GPT-2's byte-to-unicode form"));
    }
  }
  const auto num_tokens = static_cast<uint32_t>(tokens.size());
  std::vector<std::pair<std::string, uint32_t>> special_tokens;
  for (std::string& text : SpecialTokenTexts()) {
    special_tokens.emplace_back(std::move(text),
                                num_tokens + static_cast<uint32_t>(special_tokens.size()));
  }
  absl::StatusOr<ByteLevelVocabulary> vocab =
      tokenizer_internal::BuildByteLevelVocabulary(tokens, special_tokens);
  if (!vocab.ok()) return vocab.status();
  tokens = {};  // the vocabulary holds the bytes now
  absl::StatusOr<std::unique_ptr<const MergeList>> merges =
      ParseMerges(packed_merges, num_tokens, *vocab);
  if (!merges.ok()) return merges.status();
  return tokenizer_internal::NewByteLevelBpeTokenizer(
      "llama3", tokenizer_internal::SplitPattern::kLlama3, *std::move(vocab), *std::move(merges));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadLlama3(const std::string& path) {
  absl::StatusOr<rapidjson::Document> doc = tokenizer_internal::ReadVocabularyJson("llama3", path);
  if (!doc.ok()) return doc.status();
  absl::StatusOr<std::shared_ptr<const Tokenizer>> tokenizer = ParseLlama3(*doc);
  if (!tokenizer.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

}  // namespace tollgate
