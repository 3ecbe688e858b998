#include "proxy/batcher/batch_key.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tollgate {
namespace {

// Length-prefixed, so that field boundaries cannot be forged by the values.
void AddField(std::string& key, absl::string_view value) {
  absl::StrAppend(&key, value.size(), ":", value, ";");
}

template <typename T>
void AddOptional(std::string& key, bool present, T value) {
  if (!present) {
    AddField(key, "-");
    return;
  }
  std::string bytes(sizeof(T), '\0');  // bit pattern: -0.0 and 0.0 stay apart, NaN compares
  std::memcpy(bytes.data(), &value, sizeof(T));
  AddField(key, bytes);
}

std::string Head(absl::string_view operation, absl::string_view backend, absl::string_view model) {
  std::string key;
  AddField(key, operation);
  AddField(key, backend);
  AddField(key, model);
  return key;
}

}  // namespace

std::string EmbeddingBatchKey(absl::string_view backend, const v1::EmbedRequest& request) {
  return Head("embed", backend, request.model());
}

std::string CompletionBatchKey(absl::string_view backend, const v1::GenerateRequest& request) {
  std::string key = Head("complete", backend, request.model());
  const v1::SamplingParams& params = request.params();
  AddField(key, absl::StrCat(params.max_tokens()));
  AddOptional(key, params.has_temperature(), params.temperature());
  AddOptional(key, params.has_top_p(), params.top_p());
  AddOptional(key, params.has_seed(), params.seed());
  AddField(key, absl::StrCat(params.stop_size()));
  for (const std::string& stop : params.stop()) AddField(key, stop);
  AddField(key, request.batch() ? "batch" : "");
  return key;
}

}  // namespace tollgate
