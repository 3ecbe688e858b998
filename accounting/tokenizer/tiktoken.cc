// Byte-level BPE (byte_level_bpe.h) and the tiktoken family's vocabulary files. The pre-tokenizer
// splits the text into pieces, and each piece is merged pair by pair, lowest rank first (leftmost
// on ties), exactly as tiktoken's `_byte_pair_merge` does, unless a PieceMerger merges it instead.
// A piece that is itself a token is looked up whole.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <queue>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "accounting/tokenizer/byte_level_bpe.h"
#include "accounting/tokenizer/pretokenizer.h"
#include "accounting/tokenizer/tokenizer.h"
#include "accounting/tokenizer/utf8.h"

namespace tollgate {
namespace {

// This Abseil's string_view is its own type, not std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

namespace tokenizer_internal {
namespace {

constexpr uint32_t kNoRank = kNoToken;
// Pieces at least this long are merged with a heap instead of tiktoken's quadratic scan.
constexpr size_t kLongPieceBytes = 64;

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  ByteLevelBpeTokenizer(std::string name, SplitPattern pattern, ByteLevelVocabulary vocab,
                        std::unique_ptr<const PieceMerger> merger)
      : name_(std::move(name)),
        pattern_(pattern),
        vocab_(std::move(vocab)),
        merger_(std::move(merger)) {
    for (uint32_t id : vocab_.special_ids) {
      std::string_view text = vocab_.TokenBytes(id);
      special_ids_.emplace(text, id);
      special_lengths_.push_back(text.size());
      if (special_first_bytes_.find(text[0]) == std::string::npos) special_first_bytes_ += text[0];
    }
    std::sort(special_lengths_.begin(), special_lengths_.end(), std::greater<>());
    special_lengths_.erase(std::unique(special_lengths_.begin(), special_lengths_.end()),
                           special_lengths_.end());
  }

  std::string_view name() const override { return name_; }

  std::vector<uint32_t> Encode(std::string_view raw) const override {
    std::string storage;
    std::string_view text = ReplaceInvalidUtf8(raw, &storage);
    std::vector<uint32_t> ids;
    ids.reserve(text.size() / 3 + 1);
    EncodeOrdinary(text, text, [&ids](uint32_t id) { ids.push_back(id); });
    return ids;
  }

  size_t Count(std::string_view raw) const override {
    std::string storage;
    std::string_view text = ReplaceInvalidUtf8(raw, &storage);
    size_t count = 0;
    EncodeOrdinary(text, text, [&count](uint32_t) { ++count; });
    return count;
  }

  std::vector<uint32_t> EncodeWithSpecialTokens(std::string_view raw) const override {
    std::string storage;
    std::string_view text = ReplaceInvalidUtf8(raw, &storage);
    std::vector<uint32_t> ids;
    auto push = [&ids](uint32_t id) { ids.push_back(id); };
    size_t start = 0;
    while (start < text.size()) {
      SpecialToken special = NextSpecialToken(text, start);
      EncodeOrdinary(text, text.substr(start, special.at - start), push);
      if (special.at == text.size()) break;
      ids.push_back(special.id);
      start = special.at + special.length;
    }
    return ids;
  }

  // A piece is final when another piece starts after it and at least kLookaheadBytes follow it:
  // the patterns decide where a piece ends by looking at most one character (cl100k's `(?!\S)`,
  // the end of a greedy run) or three ASCII bytes (o200k's optional "'re" suffix) past it, and no
  // piece takes part in another's merges. Nothing after ill-formed UTF-8, whose replacement would
  // shift offsets, is final. Llama 3's merger breaks ties with the length of the whole text, as its
  // reference package does; that only orders equal-priority merges left to right, so the pieces
  // are final there too, as in the model's own tokenizer (the stream counter test checks it on the
  // corpus).
  size_t CountFinal(std::string_view text, bool /*continuation*/,
                    size_t* final_bytes) const override {
    constexpr size_t kLookaheadBytes = 4;
    text = text.substr(0, ValidUtf8Prefix(text));
    std::vector<std::string_view> pieces;
    ForEachPiece(pattern_, text, [&](std::string_view piece) { pieces.push_back(piece); });
    size_t count = 0, end = 0;
    for (size_t i = 0; i + 1 < pieces.size(); ++i) {
      if (text.size() - (end + pieces[i].size()) < kLookaheadBytes) break;
      EncodePiece(pieces[i], text, [&count](uint32_t) { ++count; });
      end += pieces[i].size();
    }
    *final_bytes = end;
    return count;
  }

  std::string Decode(const std::vector<uint32_t>& ids) const override {
    std::string out;
    for (uint32_t id : ids) {
      if (id < vocabulary_size()) out.append(vocab_.TokenBytes(id));
    }
    return out;
  }

  size_t vocabulary_size() const override { return vocab_.offsets.size() - 1; }

 private:
  struct SpecialToken {
    size_t at;  // text.size() when there is none
    size_t length;
    uint32_t id;
  };

  // The first special token in `text` at or after `start`; of several that start at the same byte,
  // the longest.
  SpecialToken NextSpecialToken(std::string_view text, size_t start) const {
    for (size_t at = text.find_first_of(special_first_bytes_, start); at != std::string_view::npos;
         at = text.find_first_of(special_first_bytes_, at + 1)) {
      for (size_t length : special_lengths_) {
        if (length > text.size() - at) continue;
        if (auto it = special_ids_.find(text.substr(at, length)); it != special_ids_.end()) {
          return {at, length, it->second};
        }
      }
    }
    return {text.size(), 0, 0};
  }

  uint32_t Rank(std::string_view bytes) const { return vocab_.Find(bytes); }

  // Encodes `segment`, a part of `text` (the whole text being encoded).
  template <typename Emit>
  void EncodeOrdinary(std::string_view text, std::string_view segment, Emit&& emit) const {
    ForEachPiece(pattern_, segment,
                 [&](std::string_view piece) { EncodePiece(piece, text, emit); });
  }

  template <typename Emit>
  void EncodePiece(std::string_view piece, std::string_view text, Emit&& emit) const {
    if (uint32_t rank = Rank(piece); rank != kNoRank) {
      emit(rank);
    } else if (merger_ != nullptr) {
      merger_->Merge(piece, text, emit);
    } else if (piece.size() < kLongPieceBytes) {
      MergePiece(piece, emit);
    } else {
      MergeLongPiece(piece, emit);
    }
  }

  // The same merges as MergePiece, in O(n log n): a linked list of parts and a min-heap of
  // (rank, start) candidates, stale ones skipped. Ordering by start breaks rank ties leftmost, as
  // MergePiece's scan does; it pays off only for long pieces (words of hundreds of bytes).
  template <typename Emit>
  void MergeLongPiece(std::string_view piece, Emit&& emit) const {
    struct Node {     // nodes[i] is the part that starts at byte i
      uint32_t rank;  // of merging this part with the next; kNoRank when none
      uint32_t prev;
      uint32_t next;
    };
    const uint32_t n = static_cast<uint32_t>(piece.size());
    std::vector<Node> nodes(n + 1);  // nodes[n] is the end sentinel
    auto span_rank = [&](uint32_t i) {
      uint32_t next = nodes[i].next;
      if (next >= n) return kNoRank;
      return Rank(piece.substr(i, nodes[next].next - i));
    };
    for (uint32_t i = 0; i <= n; ++i) nodes[i] = {kNoRank, i - 1, i + 1};
    using Candidate = std::pair<uint32_t, uint32_t>;  // (rank, start)
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
    for (uint32_t i = 0; i + 1 < n; ++i) {
      nodes[i].rank = span_rank(i);
      if (nodes[i].rank != kNoRank) heap.emplace(nodes[i].rank, i);
    }
    std::vector<bool> merged_away(n, false);
    while (!heap.empty()) {
      auto [rank, i] = heap.top();
      heap.pop();
      if (merged_away[i] || nodes[i].rank != rank) continue;  // stale
      uint32_t gone = nodes[i].next;
      merged_away[gone] = true;
      nodes[i].next = nodes[gone].next;
      nodes[nodes[i].next].prev = i;
      nodes[i].rank = span_rank(i);
      if (nodes[i].rank != kNoRank) heap.emplace(nodes[i].rank, i);
      if (i > 0) {
        uint32_t prev = nodes[i].prev;
        nodes[prev].rank = span_rank(prev);
        if (nodes[prev].rank != kNoRank) heap.emplace(nodes[prev].rank, prev);
      }
    }
    for (uint32_t i = 0; i < n; i = nodes[i].next) {
      emit(Rank(piece.substr(i, nodes[i].next - i)));
    }
  }

  // tiktoken's byte pair merge. parts[i] is (start offset, rank of the merge of parts i and i+1).
  template <typename Emit>
  void MergePiece(std::string_view piece, Emit&& emit) const {
    struct Part {
      size_t start;
      uint32_t rank;
    };
    std::vector<Part> parts;
    parts.reserve(piece.size() + 1);
    for (size_t i = 0; i + 1 < piece.size(); ++i) parts.push_back({i, Rank(piece.substr(i, 2))});
    parts.push_back({piece.size() - 1, kNoRank});
    parts.push_back({piece.size(), kNoRank});
    // The rank of merging parts i and i+1, given that parts i+1 and i+2 have just been merged.
    auto rank_after_merge = [&](size_t i) {
      if (i + 3 >= parts.size()) return kNoRank;
      return Rank(piece.substr(parts[i].start, parts[i + 3].start - parts[i].start));
    };
    while (true) {
      uint32_t min_rank = kNoRank;
      size_t min_index = 0;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        if (parts[i].rank < min_rank) {
          min_rank = parts[i].rank;
          min_index = i;
        }
      }
      if (min_rank == kNoRank) break;
      if (min_index > 0) parts[min_index - 1].rank = rank_after_merge(min_index - 1);
      parts[min_index].rank = rank_after_merge(min_index);
      parts.erase(parts.begin() + static_cast<ptrdiff_t>(min_index) + 1);
    }
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      // Every part is a byte or a merge that has a rank, so the lookup cannot miss.
      emit(Rank(piece.substr(parts[i].start, parts[i + 1].start - parts[i].start)));
    }
  }

  const std::string name_;
  const SplitPattern pattern_;
  const ByteLevelVocabulary vocab_;
  const std::unique_ptr<const PieceMerger> merger_;  // null: tiktoken's merge
  // The special tokens by their text, the lengths of those texts, longest first, and their first
  // bytes, for NextSpecialToken.
  absl::flat_hash_map<std::string_view, uint32_t> special_ids_;
  std::vector<size_t> special_lengths_;
  std::string special_first_bytes_;
};

}  // namespace

absl::StatusOr<ByteLevelVocabulary> BuildByteLevelVocabulary(
    const std::vector<std::pair<uint32_t, std::string>>& tokens,
    const std::vector<std::pair<std::string, uint32_t>>& special_tokens) {
  std::vector<std::pair<uint32_t, std::string_view>> all;
  all.reserve(tokens.size() + special_tokens.size());
  for (const auto& [id, bytes] : tokens) all.emplace_back(id, bytes);
  for (const auto& [text, id] : special_tokens) all.emplace_back(id, text);
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("token ", all[i].first, " is empty"));
    }
    if (i > 0 && all[i].first == all[i - 1].first) {
      return absl::InvalidArgumentError(absl::StrCat("two tokens have id ", all[i].first));
    }
  }
  ByteLevelVocabulary vocab;
  uint32_t size = all.empty() ? 0 : all.back().first + 1;
  vocab.offsets.assign(size + 1, 0);
  size_t next = 0;
  for (uint32_t id = 0; id < size; ++id) {
    vocab.offsets[id] = static_cast<uint32_t>(vocab.bytes->size());
    if (next < all.size() && all[next].first == id) vocab.bytes->append(all[next++].second);
  }
  vocab.offsets[size] = static_cast<uint32_t>(vocab.bytes->size());
  // The map's keys view `*vocab.bytes`, which no longer changes.
  vocab.ids.reserve(tokens.size());
  for (const auto& [id, bytes] : tokens) {
    if (!vocab.ids.emplace(vocab.TokenBytes(id), id).second) {
      return absl::InvalidArgumentError(absl::StrCat("token ", id, " is a duplicate"));
    }
  }
  for (const auto& [text, id] : special_tokens) vocab.special_ids.push_back(id);
  for (int b = 0; b < 256; ++b) {
    char byte = static_cast<char>(b);
    if (vocab.Find(std::string_view(&byte, 1)) == kNoToken) {
      return absl::InvalidArgumentError(absl::StrCat("byte ", b, " has no token"));
    }
  }
  return vocab;
}

absl::StatusOr<rapidjson::Document> ReadVocabularyJson(std::string_view name,
                                                       const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("vocabulary of ", Absl(name), " not found at ", path,
                                            " (run scripts/fetch_vocab)"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string json = std::move(buffer).str();
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a JSON object: ", rapidjson::GetParseError_En(doc.GetParseError())));
  }
  return doc;
}

std::shared_ptr<const Tokenizer> NewByteLevelBpeTokenizer(
    std::string name, SplitPattern pattern, ByteLevelVocabulary vocab,
    std::unique_ptr<const PieceMerger> merger) {
  return std::make_shared<const ByteLevelBpeTokenizer>(std::move(name), pattern, std::move(vocab),
                                                       std::move(merger));
}

}  // namespace tokenizer_internal

namespace {

using tokenizer_internal::ByteLevelVocabulary;
using tokenizer_internal::SplitPattern;

absl::StatusOr<SplitPattern> PatternFor(std::string_view name) {
  if (name == "cl100k_base") return SplitPattern::kCl100k;
  if (name == "o200k_base") return SplitPattern::kO200k;
  return absl::InvalidArgumentError(absl::StrCat("unknown tiktoken encoding \"", Absl(name),
                                                 "\" (known: cl100k_base, o200k_base)"));
}

// "bpe_ranks" of the npm package: lines of "<anything> <first rank> <base64 token>...", the tokens
// of a line having consecutive ranks.
absl::Status ParseRanks(absl::string_view text,
                        std::vector<std::pair<uint32_t, std::string>>& out) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint32_t rank = 0;
    if (fields.size() < 2 || !absl::SimpleAtoi(fields[1], &rank)) {
      return absl::InvalidArgumentError("bpe_ranks: a line does not start with a rank");
    }
    for (size_t i = 2; i < fields.size(); ++i, ++rank) {
      std::string bytes;
      if (!absl::Base64Unescape(fields[i], &bytes) || bytes.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("bpe_ranks: bad token for rank ", rank));
      }
      out.emplace_back(rank, std::move(bytes));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ByteLevelVocabulary> ParseVocabulary(const rapidjson::Document& doc,
                                                    std::string_view name, SplitPattern pattern) {
  auto pat = doc.FindMember("pat_str");
  auto specials = doc.FindMember("special_tokens");
  auto ranks = doc.FindMember("bpe_ranks");
  if (pat == doc.MemberEnd() || !pat->value.IsString() || specials == doc.MemberEnd() ||
      !specials->value.IsObject() || ranks == doc.MemberEnd() || !ranks->value.IsString()) {
    return absl::InvalidArgumentError(
        "expected string pat_str, object special_tokens, string "
        "bpe_ranks");
  }
  std::string_view pat_str(pat->value.GetString(), pat->value.GetStringLength());
  if (pat_str != tokenizer_internal::PatternString(pattern)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pat_str is not the pattern built in for ", Absl(name), ": ", Absl(pat_str)));
  }
  std::vector<std::pair<uint32_t, std::string>> tokens;
  if (absl::Status s =
          ParseRanks({ranks->value.GetString(), ranks->value.GetStringLength()}, tokens);
      !s.ok()) {
    return s;
  }
  std::vector<std::pair<std::string, uint32_t>> special_tokens;
  for (const auto& m : specials->value.GetObject()) {
    if (!m.value.IsUint()) return absl::InvalidArgumentError("special token id is not a uint");
    special_tokens.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()),
                                m.value.GetUint());
  }
  return tokenizer_internal::BuildByteLevelVocabulary(tokens, special_tokens);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadTiktoken(std::string_view name,
                                                              const std::string& path) {
  absl::StatusOr<SplitPattern> pattern = PatternFor(name);
  if (!pattern.ok()) return pattern.status();
  absl::StatusOr<rapidjson::Document> doc = tokenizer_internal::ReadVocabularyJson(name, path);
  if (!doc.ok()) return doc.status();
  absl::StatusOr<ByteLevelVocabulary> vocab = ParseVocabulary(*doc, name, *pattern);
  if (!vocab.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", vocab.status().message()));
  }
  return tokenizer_internal::NewByteLevelBpeTokenizer(std::string(name), *pattern,
                                                      *std::move(vocab), nullptr);
}

}  // namespace tollgate
