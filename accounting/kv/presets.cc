#include "accounting/kv/presets.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace tollgate {
namespace {

struct GpuRow {
  const char* name;
  double memory_gb;
  double bf16_tflops;
  double bandwidth_gb_per_s;
};

constexpr std::array<GpuRow, 7> kGpus = {{
    {"a10g", 24, 70, 600},
    {"l4", 24, 121, 300},
    {"a100-40gb", 40, 312, 1555},
    {"a100-80gb", 80, 312, 2039},
    {"l40s", 48, 362, 864},
    {"h100-80gb", 80, 989, 3350},
    {"h200-141gb", 141, 989, 4800},
}};

// parameters, layers, kv_heads, head_dim, bytes per element (bf16).
constexpr std::array<ModelPreset, 12> kModels = {{
    {"Llama-2-7B", {6'740'000'000, 32, 32, 128, 2}},
    {"Llama-2-13B", {13'000'000'000, 40, 40, 128, 2}},
    {"Llama-2-70B", {68'980'000'000, 80, 8, 128, 2}},
    {"Llama-3-8B", {8'030'000'000, 32, 8, 128, 2}},
    {"Llama-3-70B", {70'600'000'000, 80, 8, 128, 2}},
    {"Llama-3.1-8B", {8'030'000'000, 32, 8, 128, 2}},
    {"Llama-3.1-70B", {70'600'000'000, 80, 8, 128, 2}},
    {"Llama-3.1-405B", {405'850'000'000, 126, 8, 128, 2}},
    {"Llama-3.3-70B", {70'600'000'000, 80, 8, 128, 2}},
    {"Mistral-7B", {7'240'000'000, 32, 8, 128, 2}},
    {"Mixtral-8x7B", {46'700'000'000, 32, 8, 128, 2}},
    {"Qwen2.5-7B", {7'620'000'000, 28, 4, 128, 2}},
}};

// The lookup rule's normal form of a model name (see presets.h).
std::string NormalModelName(absl::string_view model) {
  if (const size_t slash = model.rfind('/'); slash != absl::string_view::npos) {
    model.remove_prefix(slash + 1);
  }
  std::string name = absl::AsciiStrToLower(model);
  for (char& c : name) {
    if (c == '_' || c == ':' || c == ' ') c = '-';
  }
  absl::string_view rest = name;
  absl::ConsumePrefix(&rest, "meta-");
  constexpr absl::string_view kLlama = "llama";
  if (absl::StartsWith(rest, kLlama) && rest.size() > kLlama.size() &&
      absl::ascii_isdigit(static_cast<unsigned char>(rest[kLlama.size()]))) {
    return absl::StrCat(kLlama, "-", rest.substr(kLlama.size()));
  }
  return std::string(rest);
}

// Whether `key` (a preset name) is a prefix of `name` that ends at a word boundary.
bool NamesPreset(absl::string_view name, absl::string_view key) {
  if (!absl::StartsWithIgnoreCase(name, key)) return false;
  return name.size() == key.size() ||
         !absl::ascii_isalnum(static_cast<unsigned char>(name[key.size()]));
}

}  // namespace

absl::StatusOr<GpuSpec> FindGpu(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (const GpuRow& row : kGpus) {
    if (lower == row.name) {
      return GpuSpec{row.name, row.memory_gb * 1e9, row.bf16_tflops * 1e12,
                     row.bandwidth_gb_per_s * 1e9};
    }
  }
  return absl::NotFoundError(absl::StrCat("unknown GPU preset \"", name,
                                          "\" (known: ", absl::StrJoin(GpuNames(), ", "), ")"));
}

std::vector<std::string> GpuNames() {
  std::vector<std::string> names;
  names.reserve(kGpus.size());
  for (const GpuRow& row : kGpus) names.emplace_back(row.name);
  return names;
}

absl::Span<const ModelPreset> ModelPresets() { return kModels; }

std::optional<ModelPreset> FindModelPreset(absl::string_view model) {
  const std::string name = NormalModelName(model);
  const ModelPreset* best = nullptr;
  for (const ModelPreset& preset : kModels) {
    if (NamesPreset(name, preset.name) &&
        (best == nullptr ||
         absl::string_view(preset.name).size() > absl::string_view(best->name).size())) {
      best = &preset;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

}  // namespace tollgate
