// libsentencepiece's encoder (SentencePieceProcessor), behind a header of standard types only.
//
// libsentencepiece 0.1.97's <sentencepiece_processor.h> declares `namespace absl { using
// std::string_view; }`, which is ambiguous with Abseil 20220623's own absl::string_view class: no
// file that includes Abseil may include it, so sentencepiece_bpe.cc is the only one that does. It
// also opens the library at run time rather than linking it; sentencepiece_bpe.cc says why.
//
//   std::string error;
//   std::unique_ptr<const SentencePieceBpe> bpe = SentencePieceBpe::Load(model_proto, &error);
//   std::vector<int> ids;
//   bpe->Encode("Hello world", &ids);
//
// Thread safety: a loaded SentencePieceBpe is immutable and Encode may be called from any number
// of threads at once: SentencePieceProcessor::Encode is const and keeps its working state (the
// normalized text, the merge agenda, the output proto) on the caller's stack, and its author
// confirms it thread-safe (google/sentencepiece issues 207 and 657).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace tollgate::tokenizer_internal {

class SentencePieceBpe {
 public:
  // Why libsentencepiece cannot be used (it is not installed, say), or "" when it can.
  static std::string LibraryError();

  // Loads a serialized sentencepiece.ModelProto. Null, with *error set to libsentencepiece's
  // message, when the library rejects it.
  static std::unique_ptr<const SentencePieceBpe> Load(const std::string& serialized_model_proto,
                                                      std::string* error);

  ~SentencePieceBpe();

  // Sets *ids to those of `text`, normalized and merged as the model says, characters that are no
  // piece as their bytes' pieces.
  // REQUIRES: `text` is well-formed UTF-8 (libsentencepiece would replace each ill-formed byte
  // on its own, not each maximal subpart).
  void Encode(std::string_view text, std::vector<int>* ids) const;

 private:
  explicit SentencePieceBpe(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor);

  const std::unique_ptr<const sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace tollgate::tokenizer_internal
