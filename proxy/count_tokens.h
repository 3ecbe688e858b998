// `tollgate count-tokens`: counts the tokens of a file or of stdin with a named tokenizer, so an
// operator can check a bill line by line.
//
//   tollgate count-tokens --tokenizer cl100k_base [--ids] [FILE]
//
// Prints the count on one line and, with --ids, the ids on the next, space-separated.
#pragma once

#include <string>

namespace tollgate {

// Returns the process exit code: 0, 1 when the input or the vocabulary cannot be read, 2 for an
// unknown tokenizer. `path` empty: read stdin.
int CountTokens(const std::string& tokenizer, const std::string& vocab_dir, bool print_ids,
                const std::string& path);

}  // namespace tollgate
