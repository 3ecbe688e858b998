#include "proxy/count_tokens.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "accounting/tokenizer/registry.h"

namespace tollgate {

int CountTokens(const std::string& tokenizer, const std::string& vocab_dir, bool print_ids,
                const std::string& path) {
  absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded = LoadTokenizer(tokenizer, vocab_dir);
  if (absl::IsInvalidArgument(loaded.status()) &&
      std::find(TokenizerNames().begin(), TokenizerNames().end(), tokenizer) ==
          TokenizerNames().end()) {
    std::cerr << "count-tokens: " << loaded.status().message() << "\n";
    return 2;
  }
  if (!loaded.ok()) {
    std::cerr << "count-tokens: " << loaded.status().message() << "; --vocab_dir says where\n";
    return 1;
  }
  std::string text;
  if (path.empty()) {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
      std::cerr << "count-tokens: cannot read " << path << "\n";
      return 1;
    }
    text.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  if (!print_ids) {
    std::cout << (*loaded)->Count(text) << "\n";
    return 0;
  }
  const std::vector<uint32_t> ids = (*loaded)->Encode(text);
  std::ostringstream out;
  out << ids.size() << "\n";
  for (size_t i = 0; i < ids.size(); ++i) out << (i == 0 ? "" : " ") << ids[i];
  out << "\n";
  std::cout << out.str();
  return 0;
}

}  // namespace tollgate
