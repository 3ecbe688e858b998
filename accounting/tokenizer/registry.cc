#include "accounting/tokenizer/registry.h"

#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tollgate {
namespace {

// This Abseil's string_view is its own type, not std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

const std::vector<std::string_view>& TokenizerNames() {
  static const auto* const kNames =
      new std::vector<std::string_view>{"cl100k_base", "o200k_base", "llama3", "llama2", "mistral"};
  return *kNames;
}

absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadTokenizer(std::string_view name,
                                                               const std::string& vocab_dir) {
  const std::string path = absl::StrCat(vocab_dir, "/", Absl(name), ".json");
  absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded;
  if (name == "cl100k_base" || name == "o200k_base") {
    loaded = LoadTiktoken(name, path);
  } else if (name == "llama3") {
    loaded = LoadLlama3(path);
  } else if (name == "llama2" || name == "mistral") {
    loaded = LoadSentencePiece(name, path);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown tokenizer \"", Absl(name), "\" (known: ",
                     absl::StrJoin(TokenizerNames(), ", ",
                                   [](std::string* out, std::string_view n) { out->append(n); }),
                     ")"));
  }
  if (!loaded.ok() && !std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("vocabulary of tokenizer ", Absl(name),
                                            " not found at ", path, " (run scripts/fetch_vocab)"));
  }
  return loaded;
}

std::string_view DefaultTokenizerFor(std::string_view model) {
  std::string name = absl::AsciiStrToLower(Absl(model));
  if (size_t slash = name.rfind('/'); slash != std::string::npos) name.erase(0, slash + 1);
  auto starts = [&](absl::string_view prefix) { return absl::StartsWith(name, prefix); };
  auto has = [&](absl::string_view part) { return absl::StrContains(name, part); };
  if (starts("gpt-4o") || starts("gpt-4.1") || starts("gpt-4.5") || starts("gpt-5") ||
      starts("o1") || starts("o3") || starts("o4")) {
    return "o200k_base";
  }
  if (starts("gpt-4") || starts("gpt-3.5") || starts("text-embedding-3") ||
      starts("text-embedding-ada-002")) {
    return "cl100k_base";
  }
  if (has("llama-3") || has("llama3")) return "llama3";
  if (has("llama-2") || has("llama2")) return "llama2";
  if (starts("mistral")) return "mistral";
  return "";
}

}  // namespace tollgate
