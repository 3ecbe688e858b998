// Ill-formed UTF-8 is replaced per maximal subpart, as TextDecoder and Python do.
#include "accounting/tokenizer/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace tollgate {
namespace {

std::string Replaced(std::string_view text) {
  std::string storage;
  return std::string(ReplaceInvalidUtf8(text, &storage));
}

constexpr std::string_view kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, WellFormedTextIsReturnedWithoutACopy) {
  std::string text = "plain ascii, caf\xC3\xA9, \xE6\x97\xA5, \xF0\x9F\x98\x80, \xF4\x8F\xBF\xBF";
  std::string storage;
  std::string_view out = ReplaceInvalidUtf8(text, &storage);
  EXPECT_EQ(out.data(), text.data());
  EXPECT_EQ(ValidUtf8Prefix(text), text.size());
  EXPECT_TRUE(storage.empty());
}

TEST(Utf8Test, ValidPrefixStopsAtTheFirstIllFormedByte) {
  EXPECT_EQ(ValidUtf8Prefix("abcdefghij\x80"), 10u);
  EXPECT_EQ(ValidUtf8Prefix("\xC3\xA9\xC3"), 2u);
  EXPECT_EQ(ValidUtf8Prefix(""), 0u);
}

TEST(Utf8Test, EachMaximalSubpartBecomesOneReplacementCharacter) {
  std::string f(kFffd);
  // Stray continuation bytes: one each.
  EXPECT_EQ(Replaced("a\x80\xBF"
                     "b"),
            "a" + f + f + "b");
  // A truncated sequence is one maximal subpart.
  EXPECT_EQ(Replaced("\xE2\x82"), f);
  EXPECT_EQ(Replaced("\xF0\x9F\x98"
                     "a"),
            f + "a");
  // Overlong forms, surrogates and code points past U+10FFFF: every byte on its own.
  EXPECT_EQ(Replaced("\xC0\x80"), f + f);
  EXPECT_EQ(Replaced("\xE0\x80\x80"), f + f + f);
  EXPECT_EQ(Replaced("\xED\xA0\x80"), f + f + f);
  EXPECT_EQ(Replaced("\xF4\x90\x80\x80"), f + f + f + f);
  EXPECT_EQ(Replaced("\xF5\xFE\xFF"), f + f + f);
  // A lead byte followed by a byte that is not its continuation: the lead alone, then the rest.
  EXPECT_EQ(Replaced("\xE2\x28\xA1"), f + "(" + f);
  EXPECT_EQ(Replaced("\xC3\xA9\xC3"), "\xC3\xA9" + f);
  // The example of the Unicode Standard, table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  EXPECT_EQ(Replaced("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + f + f + f + "b" + f + "c" + f + f + "d");
}

}  // namespace
}  // namespace tollgate
