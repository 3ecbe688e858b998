// The SentencePiece BPE tokenizers of Llama 2 and Mistral, with the ids of the npm packages their
// vocabularies come from (llama-tokenizer-js 1.2.2, mistral-tokenizer-js 1.0.0).
//
// The packages hold each model's Hugging Face tokenizer.json: the pieces in id order and the merges
// in priority order. The loader turns them into a sentencepiece.ModelProto (BPE, byte fallback, no
// normalization but the "▁" dummy prefix and spaces as "▁"), which libsentencepiece encodes with.
//
// The packages merge the adjacent pair whose merge ranks first, leftmost on ties; libsentencepiece
// the pair that makes the best-scoring piece, leftmost on ties. Scoring each piece minus the rank
// of the first merge that makes it gives the same merges, because every split of an ordinary piece
// into two ordinary pieces is a merge and every character of a piece is a piece (in both
// vocabularies; tests/accounting/tokenizer/sentencepiece_test.cc checks). They could only part
// where two different merges that make the same piece overlap (symbols A B C with A+B == B+C),
// which neither the parity corpus nor fuzzing with repeated and periodic text has produced.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "accounting/tokenizer/registry.h"
#include "accounting/tokenizer/sentencepiece_bpe.h"
#include "accounting/tokenizer/utf8.h"

namespace tollgate {
namespace {

using tokenizer_internal::SentencePieceBpe;

// This Abseil's string_view is its own type, not std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr std::string_view kSpaceSymbol = "\xe2\x96\x81";  // "▁"

// sentencepiece.ModelProto.SentencePiece.Type
enum class PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };

PieceType TypeOf(std::string_view piece) {
  if (piece == "<unk>") return PieceType::kUnknown;
  if (piece == "<s>" || piece == "</s>") return PieceType::kControl;
  if (piece.size() == 6 && piece.substr(0, 3) == "<0x" && piece[5] == '>' &&
      absl::ascii_isxdigit(piece[3]) && absl::ascii_isxdigit(piece[4]) &&
      !absl::ascii_islower(piece[3]) && !absl::ascii_islower(piece[4])) {
    return PieceType::kByte;
  }
  return PieceType::kNormal;
}

// The protocol buffer wire format (protobuf.dev/programming-guides/encoding), as much of it as a
// ModelProto needs; libsentencepiece ships no ModelProto header to build one with.
class ProtoWriter {
 public:
  void Varint(int field, uint64_t value) {
    Key(field, 0);
    AppendVarint(value);
  }
  void Fixed32Float(int field, float value) {
    Key(field, 5);
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    for (int shift = 0; shift < 32; shift += 8) bytes_.push_back(static_cast<char>(bits >> shift));
  }
  void Bytes(int field, std::string_view value) {
    Key(field, 2);
    AppendVarint(value.size());
    bytes_.append(value);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  void Key(int field, int wire_type) {
    AppendVarint(static_cast<uint64_t>(field) << 3 | wire_type);
  }
  void AppendVarint(uint64_t value) {
    for (; value >= 0x80; value >>= 7) bytes_.push_back(static_cast<char>(value | 0x80));
    bytes_.push_back(static_cast<char>(value));
  }

  std::string bytes_;
};

// Field numbers of sentencepiece_model.proto.
namespace model_proto {
constexpr int kPieces = 1, kTrainerSpec = 2, kNormalizerSpec = 3;
constexpr int kPiece = 1, kScore = 2, kType = 3;   // ModelProto.SentencePiece
constexpr int kModelType = 3, kByteFallback = 35;  // TrainerSpec
constexpr int kBpe = 2;                            // TrainerSpec.ModelType
constexpr int kName = 1, kAddDummyPrefix = 3, kRemoveExtraWhitespaces = 4,
              kEscapeWhitespaces = 5;  // NormalizerSpec
}  // namespace model_proto

std::string SerializeModelProto(const std::vector<std::string_view>& pieces,
                                const std::vector<float>& scores) {
  namespace mp = model_proto;
  ProtoWriter model;
  for (size_t id = 0; id < pieces.size(); ++id) {
    ProtoWriter piece;
    piece.Bytes(mp::kPiece, pieces[id]);
    piece.Fixed32Float(mp::kScore, scores[id]);
    piece.Varint(mp::kType, static_cast<uint64_t>(TypeOf(pieces[id])));
    model.Bytes(mp::kPieces, piece.bytes());
  }
  ProtoWriter trainer;
  trainer.Varint(mp::kModelType, mp::kBpe);
  trainer.Varint(mp::kByteFallback, 1);
  model.Bytes(mp::kTrainerSpec, trainer.bytes());
  ProtoWriter normalizer;
  normalizer.Bytes(mp::kName, "identity");
  normalizer.Varint(mp::kAddDummyPrefix, 1);
  normalizer.Varint(mp::kRemoveExtraWhitespaces, 0);
  normalizer.Varint(mp::kEscapeWhitespaces, 1);
  model.Bytes(mp::kNormalizerSpec, normalizer.bytes());
  return model.bytes();
}

// What Decode needs: each id's text ("▁" as a space, a byte piece as its byte, a control piece
// empty), in one buffer.
struct DecodeTable {
  std::string text;
  std::vector<uint32_t> offsets;  // id i is text[offsets[i], offsets[i + 1])
  std::vector<bool> ordinary;     // whether id i is an ordinary piece, which may hold the prefix
};

DecodeTable BuildDecodeTable(const std::vector<std::string_view>& pieces) {
  DecodeTable table;
  for (std::string_view piece : pieces) {
    table.offsets.push_back(static_cast<uint32_t>(table.text.size()));
    PieceType type = TypeOf(piece);
    table.ordinary.push_back(type == PieceType::kNormal);
    if (type == PieceType::kByte) {
      int byte = 0;
      absl::SimpleHexAtoi(Absl(piece.substr(3, 2)), &byte);
      table.text.push_back(static_cast<char>(byte));
    } else if (type == PieceType::kUnknown) {
      table.text += " \xe2\x81\x87 ";  // " ⁇ ", libsentencepiece's surface of <unk>
    } else if (type == PieceType::kNormal) {
      for (std::string_view rest = piece; !rest.empty();) {
        if (rest.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
          table.text.push_back(' ');
          rest.remove_prefix(kSpaceSymbol.size());
        } else {
          table.text.push_back(rest.front());
          rest.remove_prefix(1);
        }
      }
    }
  }
  table.offsets.push_back(static_cast<uint32_t>(table.text.size()));
  return table;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::string name, std::unique_ptr<const SentencePieceBpe> bpe,
                         DecodeTable decode)
      : name_(std::move(name)),
        bpe_(std::move(bpe)),
        decode_(std::move(decode)),
        anchor_tokens_(Count(kAnchor)) {}

  std::string_view name() const override { return name_; }

  std::vector<uint32_t> Encode(std::string_view raw) const override {
    std::vector<int> ids = EncodeInts(raw);
    return std::vector<uint32_t>(ids.begin(), ids.end());
  }

  size_t Count(std::string_view raw) const override { return EncodeInts(raw).size(); }

  // No piece holds "▁" after its first character unless it is all "▁" (a test checks both
  // vocabularies), so no token spans the start of a space run that follows other text: the text
  // before the last such space is final.
  size_t CountFinal(std::string_view text, bool continuation, size_t* final_bytes) const override {
    size_t boundary = text.size();
    while (boundary > 1 && !(text[boundary - 1] == ' ' && text[boundary - 2] != ' ')) --boundary;
    *final_bytes = boundary > 1 ? boundary - 1 : 0;
    return *final_bytes == 0 ? 0 : CountRest(text.substr(0, *final_bytes), continuation);
  }

  // A continuation starts with the space of its boundary, which the text before it turned into a
  // "▁" of its own: counted after an anchor word, whose tokens are then taken away.
  size_t CountRest(std::string_view text, bool continuation) const override {
    if (!continuation || text.empty()) return Count(text);
    return Count(std::string(kAnchor) + std::string(text)) - anchor_tokens_;
  }

  // The npm packages parse no special tokens in text: "<s>" is three ordinary characters.
  std::vector<uint32_t> EncodeWithSpecialTokens(std::string_view raw) const override {
    return Encode(raw);
  }

  // As libsentencepiece decodes: pieces' "▁" become spaces, and the space that the first visible
  // piece starts with is the dummy prefix, removed. Byte pieces are their bytes, even where they
  // do not form UTF-8.
  std::string Decode(const std::vector<uint32_t>& ids) const override {
    std::string out;
    bool at_start = true;
    for (uint32_t id : ids) {
      if (id >= vocabulary_size()) continue;
      std::string_view text =
          std::string_view(decode_.text)
              .substr(decode_.offsets[id], decode_.offsets[id + 1] - decode_.offsets[id]);
      if (at_start && !text.empty()) {
        if (decode_.ordinary[id] && text.front() == ' ') text.remove_prefix(1);
        at_start = false;
      }
      out.append(text);
    }
    return out;
  }

  size_t vocabulary_size() const override { return decode_.offsets.size() - 1; }

 private:
  std::vector<int> EncodeInts(std::string_view raw) const {
    std::string storage;
    std::string_view text = ReplaceInvalidUtf8(raw, &storage);
    std::vector<int> ids;
    bpe_->Encode(text, &ids);
    return ids;
  }

  static constexpr std::string_view kAnchor = "a";

  const std::string name_;
  const std::unique_ptr<const SentencePieceBpe> bpe_;
  const DecodeTable decode_;
  const size_t anchor_tokens_;  // Count(kAnchor)
};

// The file's pieces and merges, decoded and checked.
struct Vocabulary {
  std::string pieces_text;                            // the pieces, joined by '\n'
  std::vector<std::string_view> pieces;               // by id, viewing pieces_text
  std::vector<std::pair<uint16_t, uint16_t>> merges;  // in priority order
};

// The string field `name` of the file's JSON object, base64-decoded into *out.
absl::Status DecodeBase64Field(const rapidjson::Document& doc, const char* name, std::string* out) {
  auto field = doc.FindMember(name);
  if (field == doc.MemberEnd() || !field->value.IsString()) {
    return absl::InvalidArgumentError(absl::StrCat("no string ", name));
  }
  if (!absl::Base64Unescape({field->value.GetString(), field->value.GetStringLength()}, out)) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is not base64"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Vocabulary> ParseVocabulary(std::string_view json) {
  rapidjson::Document doc;
  if (doc.Parse(json.data(), json.size()).HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not JSON: ", rapidjson::GetParseError_En(doc.GetParseError()), " at byte ",
                     doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return absl::InvalidArgumentError("not a JSON object");
  Vocabulary out;
  std::string merge_bytes;
  if (absl::Status s = DecodeBase64Field(doc, "vocab_base64", &out.pieces_text); !s.ok()) return s;
  if (absl::Status s = DecodeBase64Field(doc, "merges_binary", &merge_bytes); !s.ok()) return s;
  for (absl::string_view piece : absl::StrSplit(out.pieces_text, '\n')) {
    out.pieces.emplace_back(piece.data(), piece.size());
  }
  if (merge_bytes.size() % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("merges_binary holds ", merge_bytes.size(),
                                                   " bytes, not pairs of 16-bit ids"));
  }
  for (size_t at = 0; at < merge_bytes.size(); at += 4) {
    auto id_at = [&](size_t i) {
      return static_cast<uint16_t>(static_cast<uint8_t>(merge_bytes[i]) |
                                   static_cast<uint8_t>(merge_bytes[i + 1]) << 8);
    };
    uint16_t left = id_at(at), right = id_at(at + 2);
    if (left >= out.pieces.size() || right >= out.pieces.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", at / 4, " names id ", std::max(left, right), ", past the ",
                       out.pieces.size(), " pieces of the vocabulary"));
    }
    out.merges.emplace_back(left, right);
  }
  return out;
}

// Each piece's score: minus the rank of the first merge that makes it, so that libsentencepiece,
// which merges the best-scoring pair first, follows the merge list. Pieces that no merge makes
// (single characters, special and byte pieces) score below every merge.
absl::StatusOr<std::vector<float>> ScoresFromMerges(const Vocabulary& vocab) {
  absl::flat_hash_map<std::string_view, uint32_t> ids;
  ids.reserve(vocab.pieces.size());
  for (uint32_t id = 0; id < vocab.pieces.size(); ++id) {
    if (!ids.emplace(vocab.pieces[id], id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("piece ", id, " \"", Absl(vocab.pieces[id]), "\" is a duplicate"));
    }
  }
  std::vector<float> scores(vocab.pieces.size(), -static_cast<float>(vocab.merges.size()));
  std::vector<bool> made(vocab.pieces.size(), false);
  std::string merged;
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    auto [left, right] = vocab.merges[rank];
    merged.assign(vocab.pieces[left]).append(vocab.pieces[right]);
    auto it = ids.find(merged);
    if (it == ids.end() || TypeOf(merged) != PieceType::kNormal) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", rank, " makes \"", merged, "\", which is not an ordinary piece"));
    }
    if (!made[it->second]) scores[it->second] = -static_cast<float>(rank);
    made[it->second] = true;
  }
  return scores;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadSentencePiece(std::string_view name,
                                                                   const std::string& path) {
  if (name != "llama2" && name != "mistral") {
    return absl::InvalidArgumentError(absl::StrCat("unknown SentencePiece tokenizer \"", Absl(name),
                                                   "\" (known: llama2, mistral)"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("vocabulary of ", Absl(name), " not found at ", path,
                                            " (run scripts/fetch_vocab)"));
  }
  if (std::string error = SentencePieceBpe::LibraryError(); !error.empty()) {
    return absl::FailedPreconditionError(error);
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto invalid = [&path](const absl::Status& status) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", status.message()));
  };
  absl::StatusOr<Vocabulary> vocab = ParseVocabulary(std::move(buffer).str());
  if (!vocab.ok()) return invalid(vocab.status());
  absl::StatusOr<std::vector<float>> scores = ScoresFromMerges(*vocab);
  if (!scores.ok()) return invalid(scores.status());
  std::string error;
  std::unique_ptr<const SentencePieceBpe> bpe =
      SentencePieceBpe::Load(SerializeModelProto(vocab->pieces, *scores), &error);
  if (bpe == nullptr) {
    return invalid(absl::InvalidArgumentError(absl::StrCat("libsentencepiece: ", error)));
  }
  return std::make_shared<const SentencePieceTokenizer>(std::string(name), std::move(bpe),
                                                        BuildDecodeTable(vocab->pieces));
}

}  // namespace tollgate
