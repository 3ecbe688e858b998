#include "tests/accounting/tokenizer/test_vocab.h"

#include <cstdlib>
#include <map>
#include <mutex>

#include "accounting/tokenizer/registry.h"

namespace tollgate::testing {

std::string SourceDir() { return TOLLGATE_SOURCE_DIR; }

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0';
}

std::shared_ptr<const Tokenizer> TestTokenizer(const std::string& name, std::string* why) {
  static std::mutex mu;
  static auto* loaded = new std::map<std::string, absl::StatusOr<std::shared_ptr<const Tokenizer>>>;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded->find(name);
  if (it == loaded->end()) {
    const char* env = std::getenv("TOLLGATE_VOCAB_DIR");
    std::string dir = env != nullptr && *env != '\0' ? env : SourceDir() + "/.cache/tokenizer";
    it = loaded->emplace(name, LoadTokenizer(name, dir)).first;
  }
  if (!it->second.ok()) {
    *why = std::string(it->second.status().message());
    return nullptr;
  }
  return *it->second;
}

}  // namespace tollgate::testing
