#include "proxy/batcher/batch_key.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tollgate {
namespace {

v1::GenerateRequest Prompt(const std::string& prompt) {
  v1::GenerateRequest request;
  request.set_model("upstream-m1");
  request.set_prompt(prompt);
  request.mutable_params()->set_max_tokens(16);
  request.mutable_params()->set_temperature(0.5f);
  return request;
}

TEST(BatchKey, CompletionsDifferingOnlyInTheirInputsShareAKey) {
  v1::GenerateRequest a = Prompt("one");
  v1::GenerateRequest b = Prompt("two");
  b.set_cache_control(v1::CACHE_CONTROL_BYPASS);
  (*b.mutable_tags())["team"] = "x";
  EXPECT_EQ(CompletionBatchKey("vllm", a), CompletionBatchKey("vllm", b));
}

TEST(BatchKey, EverySamplingParameterAndTheBackendAndModelSeparateCompletions) {
  const v1::GenerateRequest base = Prompt("p");
  const std::string key = CompletionBatchKey("vllm", base);
  EXPECT_NE(CompletionBatchKey("other", base), key);
  const std::vector<std::function<void(v1::GenerateRequest&)>> changes = {
      [](v1::GenerateRequest& r) { r.set_model("upstream-m2"); },
      [](v1::GenerateRequest& r) { r.mutable_params()->set_max_tokens(17); },
      [](v1::GenerateRequest& r) { r.mutable_params()->clear_temperature(); },
      [](v1::GenerateRequest& r) { r.mutable_params()->set_temperature(0.0f); },
      [](v1::GenerateRequest& r) { r.mutable_params()->set_temperature(-0.0f); },
      [](v1::GenerateRequest& r) { r.mutable_params()->set_top_p(0.5f); },
      [](v1::GenerateRequest& r) { r.mutable_params()->set_seed(0); },
      [](v1::GenerateRequest& r) { r.mutable_params()->add_stop("\n"); },
      [](v1::GenerateRequest& r) { r.set_batch(true); },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    v1::GenerateRequest changed = base;
    changes[i](changed);
    EXPECT_NE(CompletionBatchKey("vllm", changed), key) << "change " << i;
  }
}

TEST(BatchKey, StopSequencesCannotForgeEachOthersBoundaries) {
  v1::GenerateRequest a = Prompt("p"), b = Prompt("p");
  a.mutable_params()->add_stop("a;1:b");
  b.mutable_params()->add_stop("a");
  b.mutable_params()->add_stop("b");
  EXPECT_NE(CompletionBatchKey("x", a), CompletionBatchKey("x", b));
  v1::GenerateRequest c = Prompt("p"), d = Prompt("p");
  c.mutable_params()->add_stop("ab");
  d.mutable_params()->add_stop("a");
  d.mutable_params()->add_stop("b");
  EXPECT_NE(CompletionBatchKey("x", c), CompletionBatchKey("x", d));
}

TEST(BatchKey, EmbeddingsShareAKeyPerBackendAndModelOnly) {
  v1::EmbedRequest a, b;
  a.set_model("e5");
  a.add_inputs("x");
  b.set_model("e5");
  b.add_inputs("y");
  b.add_inputs("z");
  EXPECT_EQ(EmbeddingBatchKey("s", a), EmbeddingBatchKey("s", b));
  EXPECT_NE(EmbeddingBatchKey("t", a), EmbeddingBatchKey("s", a));
  b.set_model("e6");
  EXPECT_NE(EmbeddingBatchKey("s", a), EmbeddingBatchKey("s", b));
  v1::GenerateRequest g;
  g.set_model("e5");
  EXPECT_NE(EmbeddingBatchKey("s", a), CompletionBatchKey("s", g)) << "operations apart";
}

// A new field in a request that reaches the backend call must be considered here: either it is
// part of the key, or it differs per item and travels with the item.
TEST(BatchKey, KnowsEveryFieldOfTheRequests) {
  EXPECT_EQ(v1::SamplingParams::descriptor()->field_count(), 5)
      << "a new sampling parameter: add it to CompletionBatchKey";
  EXPECT_EQ(v1::GenerateRequest::descriptor()->field_count(), 7)
      << "a new request field: add it to CompletionBatchKey if the backend call carries it";
  EXPECT_EQ(v1::EmbedRequest::descriptor()->field_count(), 4)
      << "a new embeddings field: add it to EmbeddingBatchKey if the backend call carries it";
}

}  // namespace
}  // namespace tollgate
