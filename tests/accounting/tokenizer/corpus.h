// A deterministic corpus of mixed text for the tokenizer parity and property tests: English prose,
// source code, Chinese, Japanese, Korean, Cyrillic, Arabic, Devanagari, emoji and ZWJ sequences,
// runs of spaces, tabs and newlines, digits in several scripts, contractions in every case, and
// very long words, and ill-formed UTF-8 (which every tokenizer, like the reference's TextDecoder,
// replaces by U+FFFD per maximal subpart).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tollgate::testing {

// Documents totalling at least `min_bytes`, the same on every run for a given seed. Without
// `long_words`, no words of 50 to 3,000 letters (whose merging is quadratic in tiktoken).
std::vector<std::string> GenerateCorpus(size_t min_bytes, unsigned seed, bool long_words = true);

// A few documents that embed the special tokens' text among ordinary text.
std::vector<std::string> SpecialTokenDocuments();

// `text` as a JSON string literal, one document per line for the node reference. Bytes from 0x80 up
// are copied as they are, ill-formed or not; the reference decodes the file with TextDecoder.
std::string JsonString(std::string_view text);

}  // namespace tollgate::testing
