// Invalid UTF-8, replaced as model servers and the reference tokenizers see it.
//
// A tokenizer takes text; bytes that are not UTF-8 reach a model server only after a decoder has
// replaced them, and Python's `bytes.decode(errors="replace")`, JavaScript's TextDecoder and ICU
// all replace each maximal subpart of an ill-formed sequence with one U+FFFD (the Unicode
// Standard's recommended practice, chapter 3, "U+FFFD Substitution of Maximal Subparts"). Every
// Tollgate tokenizer applies the same replacement first, so its ids equal the reference's for any
// bytes.
//
// Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tollgate {

// Length of the longest prefix of `text` that is well-formed UTF-8.
size_t ValidUtf8Prefix(std::string_view text);

// `text` with each maximal ill-formed subpart replaced by U+FFFD. Well-formed text (the common
// case) is returned as is, without a copy; otherwise the result is built in `*storage` and views
// it.
std::string_view ReplaceInvalidUtf8(std::string_view text, std::string* storage);

}  // namespace tollgate
