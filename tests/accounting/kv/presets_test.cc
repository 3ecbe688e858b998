#include "accounting/kv/presets.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

struct Expected {
  const char* name;
  uint32_t layers;
  uint32_t kv_heads;
  uint32_t head_dim;
  uint64_t parameters;
};

// The list, from each model's published config.json.
constexpr Expected kRequired[] = {
    {"Llama-2-7B", 32, 32, 128, 6'740'000'000},  {"Llama-2-13B", 40, 40, 128, 13'000'000'000},
    {"Llama-2-70B", 80, 8, 128, 68'980'000'000}, {"Llama-3-8B", 32, 8, 128, 8'030'000'000},
    {"Llama-3-70B", 80, 8, 128, 70'600'000'000}, {"Llama-3.1-405B", 126, 8, 128, 405'850'000'000},
    {"Mistral-7B", 32, 8, 128, 7'240'000'000},   {"Mixtral-8x7B", 32, 8, 128, 46'700'000'000},
    {"Qwen2.5-7B", 28, 4, 128, 7'620'000'000},
};

TEST(ModelPresets, HoldEveryRequiredModelWithItsPublishedShape) {
  for (const Expected& expected : kRequired) {
    SCOPED_TRACE(expected.name);
    const std::optional<ModelPreset> preset = FindModelPreset(expected.name);
    ASSERT_TRUE(preset.has_value());
    EXPECT_STREQ(preset->name, expected.name);
    EXPECT_EQ(preset->shape.layers, expected.layers);
    EXPECT_EQ(preset->shape.kv_heads, expected.kv_heads);
    EXPECT_EQ(preset->shape.head_dim, expected.head_dim);
    EXPECT_EQ(preset->shape.parameters, expected.parameters);
    EXPECT_EQ(preset->shape.bytes_per_element, 2u);
  }
}

TEST(ModelPresets, EveryPresetIsFoundByItsOwnName) {
  for (const ModelPreset& preset : ModelPresets()) {
    EXPECT_THAT(FindModelPreset(preset.name),
                Optional(::testing::Field(&ModelPreset::name, ::testing::StrEq(preset.name))));
  }
}

std::string Found(const std::string& model) {
  const std::optional<ModelPreset> preset = FindModelPreset(model);
  return preset.has_value() ? preset->name : "none";
}

TEST(ModelPresets, LookupIgnoresCaseOrganisationAndSuffixes) {
  EXPECT_EQ(Found("meta-llama/Llama-3-8B-Instruct"), "Llama-3-8B");
  EXPECT_EQ(Found("llama-3-8b-instruct"), "Llama-3-8B");
  EXPECT_EQ(Found("meta-llama/Meta-Llama-3-70B-Instruct"), "Llama-3-70B");
  EXPECT_EQ(Found("meta-llama/Llama-2-13b-chat-hf"), "Llama-2-13B");
  EXPECT_EQ(Found("LLAMA-3.1-405B-Instruct-FP8"), "Llama-3.1-405B");
  EXPECT_EQ(Found("mistralai/Mistral-7B-Instruct-v0.2"), "Mistral-7B");
  EXPECT_EQ(Found("mistralai/Mixtral-8x7B-Instruct-v0.1"), "Mixtral-8x7B");
  EXPECT_EQ(Found("Qwen/Qwen2.5-7B-Instruct"), "Qwen2.5-7B");
  EXPECT_EQ(Found("llama-3-8b.Q4_K_M.gguf"), "Llama-3-8B");
}

TEST(ModelPresets, LookupReadsOllamaStyleNames) {
  EXPECT_EQ(Found("llama3:8b"), "Llama-3-8B");
  EXPECT_EQ(Found("llama3.1:405b"), "Llama-3.1-405B");
  EXPECT_EQ(Found("llama2_70b"), "Llama-2-70B");
  EXPECT_EQ(Found("qwen2.5:7b-instruct"), "Qwen2.5-7B");
}

TEST(ModelPresets, TheLongestMatchingPresetWins) {
  EXPECT_EQ(Found("llama-3.1-8b-instruct"), "Llama-3.1-8B");
  EXPECT_EQ(Found("llama-3.1-70b"), "Llama-3.1-70B");
  EXPECT_EQ(Found("llama-3.3-70b-instruct"), "Llama-3.3-70B");
}

TEST(ModelPresets, APresetMatchesOnlyUpToAWordBoundary) {
  EXPECT_EQ(Found("llama-2-70b"), "Llama-2-70B");  // not Llama-2-7B
  EXPECT_EQ(Found("llama-3-8bx"), "none");
  EXPECT_EQ(Found("qwen2.5-72b-instruct"), "none");
  EXPECT_EQ(Found("mixtral-8x22b"), "none");
}

TEST(ModelPresets, UnknownModelsAreNotGivenADefault) {
  EXPECT_EQ(FindModelPreset("gpt-4o"), std::nullopt);
  EXPECT_EQ(FindModelPreset(""), std::nullopt);
  EXPECT_EQ(FindModelPreset("meta-llama/"), std::nullopt);
  EXPECT_EQ(FindModelPreset("my-llama-3-8b-finetune"), std::nullopt);
}

TEST(GpuPresets, AreFoundByNameIgnoringCase) {
  const absl::StatusOr<GpuSpec> a100 = FindGpu("A100-80GB");
  ASSERT_TRUE(a100.ok());
  EXPECT_EQ(a100->name, "a100-80gb");
  EXPECT_EQ(a100->memory_bytes, 80e9);
  EXPECT_EQ(a100->peak_bf16_flops, 312e12);
  EXPECT_EQ(a100->memory_bytes_per_s, 2039e9);
  for (const std::string& name : GpuNames()) EXPECT_TRUE(FindGpu(name).ok()) << name;
  EXPECT_EQ(FindGpu("h200-141gb")->memory_bytes, 141e9);
}

TEST(GpuPresets, UnknownGpuIsNotFoundAndListsTheKnownOnes) {
  const absl::StatusOr<GpuSpec> gpu = FindGpu("b200");
  EXPECT_EQ(gpu.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(gpu.status().message(), HasSubstr("unknown GPU preset \"b200\" (known: a10g, l4, "));
}

}  // namespace
}  // namespace tollgate
