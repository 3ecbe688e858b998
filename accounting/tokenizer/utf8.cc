#include "accounting/tokenizer/utf8.h"

#include <cstdint>

namespace tollgate {
namespace {

// The sequence at text[i]: its length when well-formed (*valid set), else the length of its maximal
// ill-formed subpart, at least 1 (*valid cleared). Table 3-7 of the Unicode Standard.
size_t SequenceAt(std::string_view text, size_t i, bool* valid) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = byte(i);
  *valid = true;
  if (lead < 0x80) return 1;
  size_t need = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    *valid = false;
    return 1;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= text.size() || byte(i + k) < lo || byte(i + k) > hi) {
      *valid = false;
      return k;
    }
    lo = 0x80;
    hi = 0xBF;
  }
  return need + 1;
}

}  // namespace

size_t ValidUtf8Prefix(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    // Runs of ASCII, the bulk of most prompts, eight bytes at a time.
    while (i + 8 <= text.size()) {
      uint64_t word = 0;
      for (size_t k = 0; k < 8; ++k)
        word |= static_cast<uint64_t>(static_cast<uint8_t>(text[i + k])) << (8 * k);
      if (word & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= text.size()) break;
    bool valid = false;
    size_t length = SequenceAt(text, i, &valid);
    if (!valid) return i;
    i += length;
  }
  return text.size();
}

std::string_view ReplaceInvalidUtf8(std::string_view text, std::string* storage) {
  size_t i = ValidUtf8Prefix(text);
  if (i == text.size()) return text;
  storage->assign(text.substr(0, i));
  storage->reserve(text.size() + 8);
  while (i < text.size()) {
    bool valid = false;
    size_t length = SequenceAt(text, i, &valid);
    if (valid) {
      storage->append(text.substr(i, length));
    } else {
      storage->append("\xEF\xBF\xBD");
    }
    i += length;
  }
  return *storage;
}

}  // namespace tollgate
