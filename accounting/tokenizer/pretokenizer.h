// The pre-tokenizer of the byte-level BPE encodings: splits text into the pieces that byte-pair
// merging then works on, exactly as each encoding's regular expression (`pat_str`) does under the
// backtracking, leftmost-first semantics of the reference's regex engine (tiktoken's, or
// JavaScript's RegExp for llama3-tokenizer-js).
//
// The patterns are hand-compiled rather than run through a regex engine: each alternative is a
// small scan over character classes, which is both faster and free of a regex dependency. Unicode
// categories come from ICU; `\s` is the Unicode White_Space property, as in Rust's regex crate,
// except for kLlama3.
// Bytes that are not valid UTF-8 count as one-byte characters outside every class (punctuation).
// The categories are those of the ICU linked in (Debian bookworm: ICU 72, Unicode 15.0); a
// character assigned in a later Unicode version than the reference's tables may be classified
// differently.
//
// Pure functions; safe to call from any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace tollgate::tokenizer_internal {

enum class SplitPattern {
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  // \s*[\r\n]+|\s+(?!\S)|\s+
  kCl100k,
  // [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...|'d)?|
  // [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...|'d)?|
  // \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kO200k,
  // kCl100k's pattern as llama3-tokenizer-js runs it, with JavaScript's RegExp (flags "gu"): the
  // contractions are spelled out as '[sS] and so on, so there is no case folding ('\u017F is no
  // contraction), and \s is JavaScript's white space, which takes U+FEFF and leaves out U+0085.
  kLlama3,
};

// The `pat_str` that an encoding's vocabulary file must carry for `pattern`; for kLlama3, the
// pattern as the JavaScript package rewrites it.
std::string_view PatternString(SplitPattern pattern);

// End (exclusive byte offset) of the piece that starts at `pos`.
// REQUIRES: pos < text.size().
size_t NextPieceEnd(SplitPattern pattern, std::string_view text, size_t pos);

// Calls fn(piece) for each piece of `text`, in order; the pieces concatenate to `text`.
template <typename Fn>
void ForEachPiece(SplitPattern pattern, std::string_view text, Fn&& fn) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = NextPieceEnd(pattern, text, pos);
    fn(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace tollgate::tokenizer_internal
