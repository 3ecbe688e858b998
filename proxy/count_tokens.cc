#include "proxy/count_tokens.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "accounting/tokenizer/tokenizer.h"

namespace tollgate {

int CountTokens(const std::string& tokenizer, const std::string& vocab_dir, bool print_ids,
                const std::string& path) {
  if (tokenizer != "cl100k_base" && tokenizer != "o200k_base") {
    std::cerr << "count-tokens: unknown tokenizer \"" << tokenizer
              << "\" (known: cl100k_base, o200k_base)\n";
    return 2;
  }
  absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded =
      LoadTiktoken(tokenizer, vocab_dir + "/" + tokenizer + ".json");
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
