// Byte-level BPE of the tiktoken family: the pre-tokenizer splits the text into pieces, and each
// piece is merged pair by pair, lowest rank first (leftmost on ties), exactly as tiktoken's
// `_byte_pair_merge` does. A piece that is itself a token is looked up whole.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <fstream>
#include <limits>
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
#include "accounting/tokenizer/pretokenizer.h"
#include "accounting/tokenizer/tokenizer.h"
#include "accounting/tokenizer/utf8.h"

namespace tollgate {
namespace {

using tokenizer_internal::ForEachPiece;
using tokenizer_internal::SplitPattern;

// This Abseil's string_view is its own type, not std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();
// Pieces at least this long are merged with a heap instead of tiktoken's quadratic scan.
constexpr size_t kLongPieceBytes = 64;

// The vocabulary: token bytes by id in one buffer, and the reverse map keyed by views into it.
struct Vocabulary {
  // Every token's bytes, concatenated; on the heap so that the views in `ranks` survive moves.
  std::unique_ptr<std::string> bytes = std::make_unique<std::string>();
  std::vector<uint32_t> offsets;  // token id i is bytes[offsets[i], offsets[i + 1])
  absl::flat_hash_map<std::string_view, uint32_t> ranks;  // ordinary tokens only
  std::vector<std::pair<std::string, uint32_t>> special_tokens;
};

class TiktokenTokenizer final : public Tokenizer {
 public:
  TiktokenTokenizer(std::string name, SplitPattern pattern, Vocabulary vocab)
      : name_(std::move(name)), pattern_(pattern), vocab_(std::move(vocab)) {}

  std::string_view name() const override { return name_; }

  std::vector<uint32_t> Encode(std::string_view raw) const override {
    std::string storage;
    std::string_view text = ReplaceInvalidUtf8(raw, &storage);
    std::vector<uint32_t> ids;
    ids.reserve(text.size() / 3 + 1);
    EncodeOrdinary(text, [&ids](uint32_t id) { ids.push_back(id); });
    return ids;
  }

  size_t Count(std::string_view raw) const override {
    std::string storage;
    std::string_view text = ReplaceInvalidUtf8(raw, &storage);
    size_t count = 0;
    EncodeOrdinary(text, [&count](uint32_t) { ++count; });
    return count;
  }

  std::vector<uint32_t> EncodeWithSpecialTokens(std::string_view raw) const override {
    std::string storage;
    std::string_view text = ReplaceInvalidUtf8(raw, &storage);
    std::vector<uint32_t> ids;
    auto push = [&ids](uint32_t id) { ids.push_back(id); };
    size_t start = 0;
    while (start < text.size()) {
      size_t found = std::string_view::npos;
      const std::pair<std::string, uint32_t>* special = nullptr;
      for (const auto& candidate : vocab_.special_tokens) {
        size_t at = text.find(candidate.first, start);
        if (at < found) {
          found = at;
          special = &candidate;
        }
      }
      EncodeOrdinary(text.substr(start, found == std::string_view::npos ? found : found - start),
                     push);
      if (special == nullptr) break;
      ids.push_back(special->second);
      start = found + special->first.size();
    }
    return ids;
  }

  // A piece is final when another piece starts after it and at least kLookaheadBytes follow it:
  // the patterns decide where a piece ends by looking at most one character (cl100k's `(?!\S)`,
  // the end of a greedy run) or three ASCII bytes (o200k's optional "'re" suffix) past it, and no
  // piece takes part in another's merges. Nothing after ill-formed UTF-8, whose replacement would
  // shift offsets, is final.
  size_t CountFinal(std::string_view text, size_t* final_bytes) const override {
    constexpr size_t kLookaheadBytes = 4;
    text = text.substr(0, ValidUtf8Prefix(text));
    std::vector<std::string_view> pieces;
    ForEachPiece(pattern_, text, [&](std::string_view piece) { pieces.push_back(piece); });
    size_t count = 0, end = 0;
    for (size_t i = 0; i + 1 < pieces.size(); ++i) {
      if (text.size() - (end + pieces[i].size()) < kLookaheadBytes) break;
      EncodePiece(pieces[i], [&count](uint32_t) { ++count; });
      end += pieces[i].size();
    }
    *final_bytes = end;
    return count;
  }

  std::string Decode(const std::vector<uint32_t>& ids) const override {
    std::string out;
    for (uint32_t id : ids) {
      if (id < vocabulary_size()) out.append(TokenBytes(id));
    }
    return out;
  }

  size_t vocabulary_size() const override { return vocab_.offsets.size() - 1; }

 private:
  std::string_view TokenBytes(uint32_t id) const {
    return std::string_view(*vocab_.bytes)
        .substr(vocab_.offsets[id], vocab_.offsets[id + 1] - vocab_.offsets[id]);
  }

  uint32_t Rank(std::string_view bytes) const {
    auto it = vocab_.ranks.find(bytes);
    return it == vocab_.ranks.end() ? kNoRank : it->second;
  }

  template <typename Emit>
  void EncodeOrdinary(std::string_view text, Emit&& emit) const {
    ForEachPiece(pattern_, text, [&](std::string_view piece) { EncodePiece(piece, emit); });
  }

  template <typename Emit>
  void EncodePiece(std::string_view piece, Emit&& emit) const {
    if (uint32_t rank = Rank(piece); rank != kNoRank) {
      emit(rank);
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
  const Vocabulary vocab_;
};

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

absl::StatusOr<Vocabulary> ParseVocabulary(std::string_view json, std::string_view name,
                                           SplitPattern pattern) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a JSON object: ", rapidjson::GetParseError_En(doc.GetParseError())));
  }
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
  Vocabulary vocab;
  for (const auto& m : specials->value.GetObject()) {
    if (!m.value.IsUint()) return absl::InvalidArgumentError("special token id is not a uint");
    vocab.special_tokens.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()),
                                      m.value.GetUint());
  }
  std::vector<std::pair<uint32_t, std::string>> all = tokens;
  for (const auto& [text, id] : vocab.special_tokens) all.emplace_back(id, text);
  std::sort(all.begin(), all.end());
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].first == all[i - 1].first) {
      return absl::InvalidArgumentError(absl::StrCat("two tokens have id ", all[i].first));
    }
  }
  uint32_t size = all.empty() ? 0 : all.back().first + 1;
  vocab.offsets.assign(size + 1, 0);
  size_t next = 0;
  for (uint32_t id = 0; id < size; ++id) {
    vocab.offsets[id] = static_cast<uint32_t>(vocab.bytes->size());
    if (next < all.size() && all[next].first == id) *vocab.bytes += all[next++].second;
  }
  vocab.offsets[size] = static_cast<uint32_t>(vocab.bytes->size());
  // The map's keys view `*vocab.bytes`, which no longer changes.
  vocab.ranks.reserve(tokens.size());
  for (const auto& [rank, bytes] : tokens) {
    std::string_view key(vocab.bytes->data() + vocab.offsets[rank], bytes.size());
    if (!vocab.ranks.emplace(key, rank).second) {
      return absl::InvalidArgumentError(absl::StrCat("token of rank ", rank, " is a duplicate"));
    }
  }
  for (int b = 0; b < 256; ++b) {
    char byte = static_cast<char>(b);
    if (!vocab.ranks.contains(std::string_view(&byte, 1))) {
      return absl::InvalidArgumentError(absl::StrCat("byte ", b, " has no token"));
    }
  }
  return vocab;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadTiktoken(std::string_view name,
                                                              const std::string& path) {
  absl::StatusOr<SplitPattern> pattern = PatternFor(name);
  if (!pattern.ok()) return pattern.status();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("vocabulary of ", Absl(name), " not found at ", path,
                                            " (run scripts/fetch_vocab)"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string json = std::move(buffer).str();
  absl::StatusOr<Vocabulary> vocab = ParseVocabulary(json, name, *pattern);
  if (!vocab.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", vocab.status().message()));
  }
  return std::make_shared<const TiktokenTokenizer>(std::string(name), *pattern, *std::move(vocab));
}

}  // namespace tollgate
