#include "accounting/tokenizer/pretokenizer.h"

#include <unicode/uchar.h>

#include <array>
#include <cstdint>

namespace tollgate::tokenizer_internal {
namespace {

// Character classes of the patterns, as bits.
enum : uint8_t {
  kLetter = 1,     // \p{L}
  kNumber = 2,     // \p{N}
  kSpace = 4,      // \s: White_Space
  kUpperish = 8,   // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
  kLowerish = 16,  // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
  kJsSpace = 32,   // \s of JavaScript: WhiteSpace and LineTerminator (ECMA-262)
};

bool IsJavaScriptSpace(UChar32 c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0xFEFF || c == 0x2028 || c == 0x2029 ||
         u_charType(c) == U_SPACE_SEPARATOR;
}

uint8_t ClassifyWithIcu(UChar32 c) {
  uint8_t bits = 0;
  switch (u_charType(c)) {
    case U_UPPERCASE_LETTER:
    case U_TITLECASE_LETTER:
      bits = kLetter | kUpperish;
      break;
    case U_LOWERCASE_LETTER:
      bits = kLetter | kLowerish;
      break;
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      bits = kLetter | kUpperish | kLowerish;
      break;
    case U_NON_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_COMBINING_SPACING_MARK:
      bits = kUpperish | kLowerish;
      break;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      bits = kNumber;
      break;
    default:
      break;
  }
  if (u_isUWhiteSpace(c)) bits |= kSpace;
  if (IsJavaScriptSpace(c)) bits |= kJsSpace;
  return bits;
}

// Classes of the Basic Multilingual Plane, computed once; other planes ask ICU.
const std::array<uint8_t, 0x10000>& BmpClasses() {
  static const auto* const table = [] {
    auto* t = new std::array<uint8_t, 0x10000>();
    for (UChar32 c = 0; c < 0x10000; ++c) (*t)[c] = ClassifyWithIcu(c);
    return t;
  }();
  return *table;
}

struct Char {
  uint32_t len;     // bytes; 1 for a byte that is not valid UTF-8
  uint8_t classes;  // 0 for invalid bytes: punctuation
};

class Scanner {
 public:
  Scanner(SplitPattern pattern, std::string_view text)
      : text_(text),
        bmp_(BmpClasses()),
        space_(pattern == SplitPattern::kLlama3 ? kJsSpace : kSpace),
        contraction_folds_case_(pattern != SplitPattern::kLlama3) {}

  size_t size() const { return text_.size(); }
  unsigned char byte(size_t pos) const { return static_cast<unsigned char>(text_[pos]); }

  // REQUIRES: pos < size().
  Char At(size_t pos) const {
    unsigned char b0 = byte(pos);
    if (b0 < 0x80) return {1, bmp_[b0]};
    size_t avail = text_.size() - pos;
    auto cont = [&](size_t i) { return i < avail && (byte(pos + i) & 0xC0) == 0x80; };
    if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) {
      return {2, bmp_[((b0 & 0x1Fu) << 6) | (byte(pos + 1) & 0x3Fu)]};
    }
    if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
      uint32_t c = ((b0 & 0x0Fu) << 12) | ((byte(pos + 1) & 0x3Fu) << 6) | (byte(pos + 2) & 0x3Fu);
      if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) return {3, bmp_[c]};
      return {1, 0};
    }
    if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
      uint32_t c = ((b0 & 0x07u) << 18) | ((byte(pos + 1) & 0x3Fu) << 12) |
                   ((byte(pos + 2) & 0x3Fu) << 6) | (byte(pos + 3) & 0x3Fu);
      if (c >= 0x10000 && c <= 0x10FFFF) return {4, ClassifyWithIcu(static_cast<UChar32>(c))};
    }
    return {1, 0};
  }

  bool IsCrLf(size_t pos) const { return byte(pos) == '\r' || byte(pos) == '\n'; }

  // End of the run of characters having any of `classes`, starting at pos.
  size_t RunEnd(size_t pos, uint8_t classes) const {
    while (pos < size()) {
      Char c = At(pos);
      if ((c.classes & classes) == 0) break;
      pos += c.len;
    }
    return pos;
  }

  // (?i:'s|'t|'re|'ve|'m|'ll|'d) at pos: its end, or pos when absent. Under Unicode case folding
  // 's' also matches U+017F (long s); JavaScript's spelled-out [sS] does not.
  size_t Contraction(size_t pos) const {
    if (pos >= size() || byte(pos) != '\'') return pos;
    size_t p = pos + 1;
    if (p >= size()) return pos;
    auto lower = [&](size_t i) { return static_cast<unsigned char>(byte(i) | 0x20); };
    unsigned char c = lower(p);
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return p + 1;
    if (contraction_folds_case_ && byte(p) == 0xC5 && p + 1 < size() && byte(p + 1) == 0xBF) {
      return p + 2;
    }
    if (p + 1 < size()) {
      unsigned char c2 = lower(p + 1);
      if ((c == 'r' && c2 == 'e') || (c == 'v' && c2 == 'e') || (c == 'l' && c2 == 'l')) {
        return p + 2;
      }
    }
    return pos;
  }

  // [^\r\n\p{L}\p{N}] at pos: the end of that character, or pos.
  size_t OptionalPrefix(size_t pos) const {
    if (IsCrLf(pos)) return pos;
    Char c = At(pos);
    return (c.classes & (kLetter | kNumber)) ? pos : pos + c.len;
  }

  // \s+(?!\S) | \s* [\r\n]+ | \s+ for the whitespace run starting at pos (REQUIRES: it is one).
  size_t Whitespace(size_t pos) const {
    size_t end = pos;
    size_t last_crlf_end = 0;  // \s*[\r\n]+ ends after the run's last CR or LF
    size_t last_char_start = pos;
    while (end < size()) {
      Char c = At(end);
      if ((c.classes & space_) == 0) break;
      if (IsCrLf(end)) last_crlf_end = end + 1;
      last_char_start = end;
      end += c.len;
    }
    if (last_crlf_end != 0) return last_crlf_end;
    if (end == size()) return end;                      // \s+(?!\S) at the end of the text
    if (last_char_start > pos) return last_char_start;  // leave one space for the next word
    return end > pos ? end : pos + 1;                   // \s+
  }

  // ` ?[^\s\p{L}\p{N}]+` followed by a run of `trailing` bytes; pos when it does not match.
  size_t Punctuation(size_t pos, std::string_view trailing) const {
    const uint8_t not_punct = space_ | kLetter | kNumber;
    size_t p = pos;
    if (byte(p) == ' ' && p + 1 < size() && (At(p + 1).classes & not_punct) == 0) ++p;
    if ((At(p).classes & not_punct) != 0) return pos;
    while (p < size()) {
      Char c = At(p);
      if ((c.classes & not_punct) != 0) break;
      p += c.len;
    }
    while (p < size() && trailing.find(static_cast<char>(byte(p))) != std::string_view::npos) ++p;
    return p;
  }

  // \p{N}{1,3} at pos, or pos.
  size_t Digits(size_t pos) const {
    size_t p = pos;
    for (int i = 0; i < 3 && p < size(); ++i) {
      Char c = At(p);
      if ((c.classes & kNumber) == 0) break;
      p += c.len;
    }
    return p;
  }

  // o200k: [Upperish]*[Lowerish]+ at pos with backtracking; its end, or pos.
  size_t UpperStarLowerPlus(size_t pos) const {
    size_t upper_end = pos;
    size_t last_lowerish_end = pos;  // end of the last character in the run that is also Lowerish
    while (upper_end < size()) {
      Char c = At(upper_end);
      if ((c.classes & kUpperish) == 0) break;
      upper_end += c.len;
      if (c.classes & kLowerish) last_lowerish_end = upper_end;
    }
    if (upper_end < size() && (At(upper_end).classes & kLowerish)) {
      return RunEnd(upper_end, kLowerish);
    }
    // Backtrack into the run: the last Lowerish character in it is the whole [Lowerish]+.
    return last_lowerish_end;
  }

  // o200k: [Upperish]+[Lowerish]* at pos; its end, or pos.
  size_t UpperPlusLowerStar(size_t pos) const {
    size_t upper_end = RunEnd(pos, kUpperish);
    if (upper_end == pos) return pos;
    return RunEnd(upper_end, kLowerish);
  }

 private:
  std::string_view text_;
  const std::array<uint8_t, 0x10000>& bmp_;
  const uint8_t space_;  // the class that is \s
  const bool contraction_folds_case_;
};

size_t Cl100kPieceEnd(const Scanner& s, size_t pos) {
  if (size_t end = s.Contraction(pos); end != pos) return end;
  Char c = s.At(pos);
  if (c.classes & kLetter) return s.RunEnd(pos, kLetter);
  size_t after_prefix = s.OptionalPrefix(pos);
  if (after_prefix != pos && after_prefix < s.size() && (s.At(after_prefix).classes & kLetter)) {
    return s.RunEnd(after_prefix, kLetter);
  }
  if (size_t end = s.Digits(pos); end != pos) return end;
  if (size_t end = s.Punctuation(pos, "\r\n"); end != pos) return end;
  return s.Whitespace(pos);
}

size_t O200kPieceEnd(const Scanner& s, size_t pos) {
  // Each letter alternative is tried with the optional prefix character first, then without.
  size_t starts[2];
  int num_starts = 0;
  if (size_t after_prefix = s.OptionalPrefix(pos); after_prefix != pos && after_prefix < s.size()) {
    starts[num_starts++] = after_prefix;
  }
  starts[num_starts++] = pos;
  for (auto alternative : {&Scanner::UpperStarLowerPlus, &Scanner::UpperPlusLowerStar}) {
    for (int i = 0; i < num_starts; ++i) {
      size_t end = (s.*alternative)(starts[i]);
      if (end != starts[i]) return s.Contraction(end);
    }
  }
  if (size_t end = s.Digits(pos); end != pos) return end;
  if (size_t end = s.Punctuation(pos, "\r\n/"); end != pos) return end;
  return s.Whitespace(pos);
}

}  // namespace

std::string_view PatternString(SplitPattern pattern) {
  switch (pattern) {
    case SplitPattern::kCl100k:
      return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    case SplitPattern::kLlama3:
      return R"((?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    case SplitPattern::kO200k:
      return R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  }
  return {};
}

size_t NextPieceEnd(SplitPattern pattern, std::string_view text, size_t pos) {
  Scanner scanner(pattern, text);
  return pattern == SplitPattern::kO200k ? O200kPieceEnd(scanner, pos)
                                         : Cl100kPieceEnd(scanner, pos);
}

}  // namespace tollgate::tokenizer_internal
