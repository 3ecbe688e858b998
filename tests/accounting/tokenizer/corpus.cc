#include "tests/accounting/tokenizer/corpus.h"

#include <cstdint>
#include <cstdio>
#include <random>
#include <string_view>

namespace tollgate::testing {
namespace {

constexpr std::string_view kFragments[] = {
    // English prose.
    "The quick brown fox jumps over the lazy dog.",
    "It's not that we don't care; we've simply run out of time, and they'll know it.",
    "WE'RE LOUD, YOU'LL HEAR US. I'M SURE SHE'D AGREE, DON'T YOU THINK?",
    "In 1969, Apollo 11 landed on the Moon; 600,000,000 people watched.",
    "Mr. O'Neil's dog's bone, the boss's office, and the cats' toys.",
    "\"Quoted,\" she said -- 'single-quoted' -- and (parenthesised) [bracketed] {braced}.",
    "Ünïcödé àccents, naïve café, coöperate, façade, jalapeño, smörgåsbord, Ærøskøbing.",
    "Total: $1,234.56 (incl. 19% VAT) => 1.23e+06 ± 0.5; 3/4 cups; 10:30am–11:45pm.",
    // Source code.
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "int main(int argc, char** argv) {\n\tstd::vector<int> v{1, 2, 3};\n\treturn v.size() > 2 ? 0 "
    ": 1;\n}\n",
    "const x = await fetch(`https://api.example.com/v1/users/${id}?q=a&b=2`);\r\n",
    "SELECT u.id, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id GROUP BY 1;",
    "#!/usr/bin/env bash\nset -euo pipefail\nfor f in /usr/local/lib/*.so; do echo \"$f\"; done\n",
    "<div class=\"row\"><a href=\"/path/to/page.html#anchor\">link</a></div>\n",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
    "HTTPServerError XMLHttpRequest getHTTPResponseCode parseJSONFromURL snake_case_name",
    "    // TODO(someone): fix this!!!\n\n\n    /* block */ x += y << 2 >>= 1 &&= z;\n",
    // Chinese, Japanese, Korean.
    "我们的模型在处理中文文本时表现良好，但仍有改进空间。",
    "東京都は日本の首都です。ひらがな、カタカナ、漢字が混ざっています。ｶﾀｶﾅ",
    "한국어 텍스트도 포함되어 있습니다. 안녕하세요!",
    // Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai.
    "Съешь же ещё этих мягких французских булок, да выпей чаю. ПРИВЕТ Мир",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Ελληνικά",
    "مرحبا بالعالم! هذه جملة عربية مع أرقام ١٢٣٤٥ وعلامات التشكيل: مُحَمَّد",
    "שלום עולם, זהו טקסט בעברית.",
    "नमस्ते दुनिया, यह हिन्दी पाठ है। क्षत्रिय",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    // Emoji, ZWJ sequences, flags, skin tones, keycaps, variation selectors.
    "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs, 🇺🇸🇯🇵 flags, 1️⃣ "
    "keycap, "
    "❤️ "
    "heart, "
    "🧑‍💻 coder",
    "😀😃😄😁😆😅😂🤣☺️😊 🤷‍♀️🤦🏻‍♂️",
    // Digits and numbers in several scripts.
    "0123456789 ٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ １２３４５ ①②③ ⅠⅡⅢⅫ ²³¹ ½¼¾",
    "3.14159265358979323846 2718281828 6.022e23 -0.000001",
    // Letter categories the o200k pattern tells apart: titlecase, modifier letters, marks.
    "ǅungla ǈubav ǋeko ʰʲʷ ˈstrɛs eˈxample a\u0301e\u0300i\u0302 n\u0303 \u0301\u0302",
    "ﬁ ﬂ ﬀ ß ẞ İstanbul ǲ",
    // Contractions, including the long s that case folding matches to s.
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D 'Re 'vE it'ſ ' s '' '''",
    // Unicode whitespace and invisible characters.
    "a\u00a0b\u2003c\u3000d\u2028e\u2029f\u0085g\u200bh\u200di\ufeffj\u180ek",
};

constexpr std::string_view kSeparators[] = {
    " ",        "",    "\n",       "  ",      "\t",   "\n\n", "\r\n",
    " \n",      "\n ", "   \n\t ", "    ",    "\t\t", ", ",   ".",
    "\n\n\n\n", " \t", "\u00a0",   "\u3000 ", "/",    "!\n/", "  \r\n\r\n  ",
};

// Code point ranges assigned since Unicode 13 at the latest, so ICU and the reference agree.
constexpr std::pair<uint32_t, uint32_t> kCodePointRanges[] = {
    {0x21, 0x7E},     {0xA1, 0x17F},    {0x391, 0x3A1},   {0x3B1, 0x3C9},     {0x410, 0x44F},
    {0x5D0, 0x5EA},   {0x621, 0x64A},   {0x660, 0x669},   {0x905, 0x939},     {0x93E, 0x94D},
    {0x966, 0x96F},   {0xE01, 0xE3A},   {0x3041, 0x3096}, {0x30A1, 0x30FA},   {0x4E00, 0x9FA5},
    {0xAC00, 0xD7A3}, {0xFF10, 0xFF19}, {0xFF21, 0xFF3A}, {0x1F600, 0x1F64F}, {0x1F300, 0x1F3FA},
    {0x2160, 0x2188}, {0x2460, 0x249B}, {0x300, 0x36F},   {0x2000, 0x200A},   {0x1D400, 0x1D44F},
};

void AppendUtf8(uint32_t c, std::string& out) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

template <typename T, size_t N>
const T& Pick(const T (&items)[N], std::mt19937& rng) {
  return items[rng() % N];
}

std::string RandomCodePoints(std::mt19937& rng, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    auto [lo, hi] = Pick(kCodePointRanges, rng);
    AppendUtf8(lo + rng() % (hi - lo + 1), out);
    if (rng() % 5 == 0) out += Pick(kSeparators, rng);
  }
  return out;
}

// One character of each class the patterns tell apart, densely mixed, so that short random strings
// exercise every alternative and every backtracking path of the split patterns.
std::string TrickyMix(std::mt19937& rng, size_t count) {
  static constexpr std::string_view kAlphabet[] = {
      " ",      "  ",     "\n",      "\r",     "\r\n",   "\t",     "\u00a0", "\u3000",     "\u0085",
      "\u2028", "a",      "b",       "A",      "Z",      "\u01c5", "\u02b0", "\u0301",     "\u0903",
      "1",      "\u0661", "\u2160",  "\u00b2", "!",      ".",      "/",      "//",         "'",
      "'s",     "'S",     "'\u017f", "'t",     "'re",    "'VE",    "'ll",    "'Ll",        "'d",
      "'M",     "s",      "e",       "\u65e5", "\u00e9", "\u0416", "\u0436", "\U0001F600", "\u200d",
      "\ufe0f", "_",      "-",       "\"",
  };
  std::string out;
  for (size_t i = 0; i < count; ++i) out += Pick(kAlphabet, rng);
  return out;
}

std::string LongWord(std::mt19937& rng) {
  static constexpr std::string_view kAlphabets[] = {"abcdefghijklmnopqrstuvwxyz", "aeiou",
                                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabc", "a"};
  std::string_view alphabet = Pick(kAlphabets, rng);
  size_t length = 50 + rng() % 3000;
  std::string word;
  for (size_t i = 0; i < length; ++i) word += alphabet[rng() % alphabet.size()];
  return word;
}

// Ill-formed UTF-8 of every kind: stray continuation bytes, truncated sequences, overlong forms,
// surrogates, code points past U+10FFFF and bytes that never occur, among well-formed text.
std::string InvalidUtf8(std::mt19937& rng) {
  static constexpr std::string_view kBad[] = {
      "\x80",
      "\xBF",
      "\x80\x80\x80",
      "\xC2",
      "\xE2\x82",
      "\xF0\x9F\x98",
      "\xC0\x80",
      "\xC1\xBF",
      "\xE0\x80\x80",
      "\xE0\x9F\xBF",
      "\xED\xA0\x80",
      "\xED\xBF\xBF",
      "\xF0\x80\x80\x80",
      "\xF4\x90\x80\x80",
      "\xF5\x80",
      "\xFE",
      "\xFF\xFF",
      "\xF8\x88\x80\x80\x80",
      "\xE2\x28\xA1",
      "\xF0\x28\x8C\x28",
  };
  static constexpr std::string_view kGood[] = {"a",          " ", "\u00e9", "\u65e5",
                                               "\U0001F600", "1", "'s",     "\n"};
  std::string out;
  size_t parts = 1 + rng() % 8;
  for (size_t i = 0; i < parts; ++i) {
    out += Pick(kBad, rng);
    if (rng() % 2 == 0) out += Pick(kGood, rng);
  }
  return out;
}

}  // namespace

std::vector<std::string> GenerateCorpus(size_t min_bytes, unsigned seed, bool long_words) {
  std::mt19937 rng(seed);
  std::vector<std::string> docs;
  for (std::string_view fragment : kFragments) docs.emplace_back(fragment);
  size_t total = 0;
  for (const std::string& doc : docs) total += doc.size();
  while (total < min_bytes) {
    std::string doc;
    size_t parts = 1 + rng() % 40;
    for (size_t i = 0; i < parts; ++i) {
      switch (rng() % 11) {
        case 0:
          doc += RandomCodePoints(rng, 1 + rng() % 60);
          break;
        case 1:
          if (rng() % 4 == 0 && long_words) doc += LongWord(rng);
          break;
        case 2:
          doc += std::string(1 + rng() % 40, " \t\n"[rng() % 3]);
          break;
        case 3:
          doc += std::to_string(rng()) + std::to_string(rng() % 1000);
          break;
        case 4:
        case 5:
          doc += TrickyMix(rng, 1 + rng() % 30);
          break;
        case 10:
          doc += InvalidUtf8(rng);
          break;
        default:
          doc += Pick(kFragments, rng);
      }
      doc += Pick(kSeparators, rng);
    }
    total += doc.size();
    docs.push_back(std::move(doc));
  }
  return docs;
}

std::vector<std::string> SpecialTokenDocuments() {
  return {
      "<|endoftext|>",
      "Hello<|endoftext|>World<|endofprompt|> again",
      "<|fim_prefix|>def f(<|fim_suffix|>):\n    pass<|fim_middle|>",
      "<|endoftext|><|endoftext|>  <|endoftext|>\n",
      "a <|not_special|> <|endoftext| |endoftext|> <|endofprompt|>",
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
      "<|reserved_special_token_0|> <|reserved_special_token_247|> <|reserved_special_token_248|>",
      "<|python_tag|>x<|eom_id|><|finetune_right_pad_id|><|end_of_text|><s></s><unk>",
  };
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace tollgate::testing
