#include "accounting/tokenizer/pretokenizer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tollgate::tokenizer_internal {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Split(SplitPattern pattern, std::string_view text) {
  std::vector<std::string> pieces;
  ForEachPiece(pattern, text, [&](std::string_view piece) { pieces.emplace_back(piece); });
  return pieces;
}

std::vector<std::string> Cl100k(std::string_view text) {
  return Split(SplitPattern::kCl100k, text);
}
std::vector<std::string> O200k(std::string_view text) { return Split(SplitPattern::kO200k, text); }

TEST(Cl100kSplit, KeepsTheSpaceBeforeAWordWithTheWord) {
  EXPECT_THAT(Cl100k("Hello world"), ElementsAre("Hello", " world"));
}

TEST(Cl100kSplit, SplitsContractionsOffCaseInsensitively) {
  EXPECT_THAT(Cl100k("I'm DON'T we'Re"), ElementsAre("I", "'m", " DON", "'T", " we", "'Re"));
}

TEST(Cl100kSplit, MatchesLongSAsAnSContraction) {
  EXPECT_THAT(Cl100k("it'\u017F"), ElementsAre("it", "'\u017F"));
}

TEST(Cl100kSplit, GroupsDigitsInThrees) {
  EXPECT_THAT(Cl100k("1234567"), ElementsAre("123", "456", "7"));
}

TEST(Cl100kSplit, LeavesOneSpaceOfARunForTheNextWord) {
  EXPECT_THAT(Cl100k("a   b"), ElementsAre("a", "  ", " b"));
  EXPECT_THAT(Cl100k("\t\tfoo"), ElementsAre("\t", "\tfoo"));
}

TEST(Cl100kSplit, EndsAWhitespaceRunAfterItsLastNewline) {
  EXPECT_THAT(Cl100k("a \n\n b"), ElementsAre("a", " \n\n", " b"));
}

TEST(Cl100kSplit, KeepsTrailingWhitespaceWhole) {
  EXPECT_THAT(Cl100k("x   "), ElementsAre("x", "   "));
}

TEST(Cl100kSplit, TakesNewlinesAfterPunctuation) {
  EXPECT_THAT(Cl100k("!!!\n\nfoo"), ElementsAre("!!!\n\n", "foo"));
  EXPECT_THAT(Cl100k(" !?"), ElementsAre(" !?"));
}

TEST(Cl100kSplit, TreatsUnicodeLettersAsLetters) {
  EXPECT_THAT(Cl100k("日本語 привет"), ElementsAre("日本語", " привет"));
}

TEST(Cl100kSplit, TreatsInvalidBytesAsPunctuation) {
  EXPECT_THAT(Cl100k("a\xff"
                     "b\xc3"),
              ElementsAre("a",
                          "\xff"
                          "b",
                          "\xc3"));
}

TEST(O200kSplit, SplitsCamelCaseAtEachCapital) {
  EXPECT_THAT(O200k("HelloWorld HTTPServer"), ElementsAre("Hello", "World", " HTTPServer"));
}

TEST(O200kSplit, KeepsContractionsWithTheirWord) {
  EXPECT_THAT(O200k("don't I'M"), ElementsAre("don't", " I'M"));
}

TEST(O200kSplit, TakesSlashesAndNewlinesAfterPunctuation) {
  EXPECT_THAT(O200k("!!\n/x"), ElementsAre("!!\n/", "x"));
  EXPECT_THAT(O200k("/usr/bin"), ElementsAre("/usr", "/bin"));
}

TEST(O200kSplit, TreatsCombiningMarksAsPartOfWords) {
  EXPECT_THAT(O200k("e\u0301t\u00e9 \u0301"), ElementsAre("e\u0301t\u00e9", " \u0301"));
}

TEST(PatternString, IsTheEncodingsOwnPattern) {
  EXPECT_THAT(std::string(PatternString(SplitPattern::kCl100k)),
              ::testing::StartsWith("(?i:'s|'t|'re|'ve|'m|'ll|'d)|"));
  EXPECT_THAT(std::string(PatternString(SplitPattern::kO200k)), ::testing::EndsWith(R"(|\s+)"));
}

}  // namespace
}  // namespace tollgate::tokenizer_internal
