// backends[].kv and the model shapes KV-cache accounting needs (proxy/config/build_kv_config.cc).
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/config/config_test_yaml.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(KvConfig, DefaultsApplyAndAPresetGivesTheModelsShape) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
backends: [{name: gpu, kind: sim, kv: {gpu: A100-80GB}}, {name: plain, kind: sim}]
models:
  - {name: chat, backend: gpu, backend_model: meta-llama/Meta-Llama-3-8B-Instruct}
  - {name: untracked, backend: plain}
)");
  ASSERT_NE(config, nullptr);
  const std::optional<KvConfig>& kv = config->FindBackend("gpu")->kv;
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->gpu, "a100-80gb");
  EXPECT_EQ(kv->gpu_count, 1u);
  EXPECT_DOUBLE_EQ(kv->gpu_memory_utilization, 0.9);
  EXPECT_EQ(kv->block_tokens, 16u);
  EXPECT_FALSE(kv->admission.enabled);
  EXPECT_DOUBLE_EQ(kv->admission.admit_ratio, 1);
  EXPECT_EQ(kv->admission.max_queue, 256u);
  EXPECT_EQ(kv->admission.max_queue_wait, absl::Seconds(30));
  EXPECT_TRUE(kv->metrics_url.empty());
  EXPECT_EQ(kv->poll_interval, absl::Seconds(5));
  ASSERT_TRUE(config->FindModel("chat")->kv_shape.has_value());
  EXPECT_EQ(config->FindModel("chat")->kv_shape->KvBytesPerToken(), 131072u);
  EXPECT_FALSE(config->FindModel("untracked")->kv_shape.has_value()) << "no kv on its backend";
  EXPECT_FALSE(config->FindBackend("plain")->kv.has_value());
}

TEST(KvConfig, WrittenFieldsAndTheArchitectureWin) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
backends:
  - name: gpu
    kind: sim
    kv:
      gpu: h100-80gb
      gpu_count: 2
      gpu_memory_utilization: 0.8
      block_tokens: 32
      admission: {enabled: true, admit_ratio: 1.5, max_queue: 8, max_queue_wait_ms: 250}
      metrics_url: http://10.0.0.7:8000/metrics
      poll_interval_ms: 1000
models:
  - name: custom
    backend: gpu
    backend_model: llama-3-8b
    architecture: {parameters: 1000000000, layers: 4, kv_heads: 2, head_dim: 64}
)");
  ASSERT_NE(config, nullptr);
  const KvConfig& kv = *config->FindBackend("gpu")->kv;
  EXPECT_EQ(kv.gpu, "h100-80gb");
  EXPECT_EQ(kv.gpu_count, 2u);
  EXPECT_DOUBLE_EQ(kv.gpu_memory_utilization, 0.8);
  EXPECT_EQ(kv.block_tokens, 32u);
  EXPECT_TRUE(kv.admission.enabled);
  EXPECT_DOUBLE_EQ(kv.admission.admit_ratio, 1.5);
  EXPECT_EQ(kv.admission.max_queue, 8u);
  EXPECT_EQ(kv.admission.max_queue_wait, absl::Milliseconds(250));
  EXPECT_EQ(kv.metrics_endpoint.host, "10.0.0.7");
  EXPECT_EQ(kv.metrics_endpoint.port, 8000);
  EXPECT_EQ(kv.metrics_endpoint.path_prefix, "/metrics");
  EXPECT_EQ(kv.poll_interval, absl::Seconds(1));
  EXPECT_EQ(config->FindModel("custom")->kv_shape->KvBytesPerToken(), 2u * 4 * 2 * 64 * 2)
      << "the architecture, not the llama-3-8b preset";
}

TEST(KvConfig, AModelWithoutAShapeOnAKvBackendIsAnErrorNamingIt) {
  const std::string error = ParseError(R"(
backends: [{name: gpu, kind: sim, kv: {gpu: a100-80gb}}, {name: plain, kind: sim}]
models:
  - {name: fine, backend: gpu, backend_model: llama-3-8b}
  - {name: mystery, backend: plain, backend_model: my-own-model, fallback_backends: [gpu]}
)");
  EXPECT_THAT(error,
              StartsWith("models[1].architecture: model \"mystery\" runs on backend \"gpu\""));
  EXPECT_THAT(error, HasSubstr("\"my-own-model\""));
  EXPECT_THAT(ParseError(R"(
backends: [{name: gpu, kind: sim, kv: {gpu: a100-80gb}}]
models: [{name: m, backend: gpu, architecture: {layers: 2, kv_heads: 2, head_dim: 64}}]
)"),
              StartsWith("models[0].architecture.parameters: required"));
}

TEST(KvConfig, ValuesOutOfRangeNameTheirField) {
  const auto backend_error = [](const std::string& kv) {
    return ParseError("backends: [{name: gpu, kind: sim, kv: " + kv +
                      "}]\nmodels: [{name: llama-3-8b, backend: gpu}]");
  };
  EXPECT_THAT(backend_error("{gpu_count: 1}"), StartsWith("backends[0].kv.gpu: required"));
  EXPECT_THAT(backend_error("{gpu: tpu-v9}"), StartsWith("backends[0].kv.gpu: "));
  EXPECT_THAT(backend_error("{gpu: a10g, gpu_memory_utilization: 1.5}"),
              StartsWith("backends[0].kv.gpu_memory_utilization: must be in (0, 1]"));
  EXPECT_THAT(backend_error("{gpu: a10g, admission: {admit_ratio: -1}}"),
              StartsWith("backends[0].kv.admission.admit_ratio: must be"));
  EXPECT_THAT(backend_error("{gpu: a10g, metrics_url: \"ftp://x/metrics\"}"),
              StartsWith("backends[0].kv.metrics_url: expected http://"));
  EXPECT_THAT(backend_error("{gpu: a10g, poll_interval_ms: 10}"),
              StartsWith("backends[0].kv.poll_interval_ms: only valid with metrics_url"));
  // Llama-3-8B's 16 GB of bf16 weights leave no room on one 24 GB A10G at 0.5.
  EXPECT_THAT(backend_error("{gpu: a10g, gpu_memory_utilization: 0.5}"),
              StartsWith("backends[0].kv.gpu_count: the weights of model \"llama-3-8b\""));
}

TEST(KvConfig, AGivenCapacityIsKeptAndReplacesTheWeightsCheck) {
  EXPECT_EQ(ParseValid("backends: [{name: gpu, kind: sim, kv: {gpu: a10g}}]\n"
                       "models: [{name: llama-3-8b, backend: gpu}]")
                ->FindBackend("gpu")
                ->kv->capacity_bytes,
            0u)
      << "derived by default";
  // The operator read it from the server (vLLM: "# GPU blocks: 1000" × 16 × 131072 bytes), so the
  // estimate that 0.5 of an A10G leaves no room beside the weights does not stand.
  const std::shared_ptr<const Config> config = ParseValid(
      "backends: [{name: gpu, kind: sim, kv: {gpu: a10g, gpu_memory_utilization: 0.5, "
      "capacity_bytes: 2097152000}}]\nmodels: [{name: llama-3-8b, backend: gpu}]");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->FindBackend("gpu")->kv->capacity_bytes, 2'097'152'000u);
  EXPECT_THAT(ParseError("backends: [{name: gpu, kind: sim, kv: {gpu: a10g, capacity_bytes: -1}}]"),
              HasSubstr("capacity_bytes"));
}

TEST(KvConfig, ArchitectureDimensionsAreBounded) {
  EXPECT_THAT(
      ParseError("models: [{name: m, architecture: {layers: 65537, kv_heads: 1, head_dim: 1}}]"),
      StartsWith("models[0].architecture.layers: must be at most 65536, got 65537"));
  EXPECT_THAT(
      ParseError("models: [{name: m, architecture: {layers: 1, kv_heads: 1, head_dim: 70000}}]"),
      StartsWith("models[0].architecture.head_dim: must be at most 65536"));
  EXPECT_NE(ParseValid("models: [{name: m, architecture: {layers: 65536, kv_heads: 65536, "
                       "head_dim: 65536, parameters: 1}}]"),
            nullptr);
}

}  // namespace
}  // namespace tollgate
