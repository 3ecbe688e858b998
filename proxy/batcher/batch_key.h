// Which calls may share one backend call: those with equal batch keys. A key names the backend,
// the model as sent to it, the operation, and every parameter the backend call carries once for
// the whole batch (for completions every sampling parameter, max_tokens included, and the batch
// pricing tier); only the inputs differ between the calls of a batch.
//
//   std::string key = CompletionBatchKey("vllm-east", request);  // request.model(): backend model
//
// Keys are opaque byte strings (length-prefixed fields: no two different calls collide). Pure
// functions; thread-safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

// An embeddings call of `request` (inputs, cache control and tags aside) on `backend`.
std::string EmbeddingBatchKey(absl::string_view backend, const v1::EmbedRequest& request);

// A prompt completion of `request` (prompt, cache control and tags aside) on `backend`.
std::string CompletionBatchKey(absl::string_view backend, const v1::GenerateRequest& request);

}  // namespace tollgate
