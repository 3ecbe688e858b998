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
std::vector<std::string> Llama3(std::string_view text) {
  return Split(SplitPattern::kLlama3, text);
}

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

TEST(Llama3Split, SplitsAsCl100kDoesOrdinaryText) {
  for (std::string_view text : {"Hello world", "I'm DON'T we'Re", "a   b", "a \n\n b", "!!!\n\nfoo",
                                "1234567", "\u65e5\u672c\u8a9e \u043f\u0440\u0438"}) {
    EXPECT_EQ(Llama3(text), Cl100k(text)) << text;
  }
}

TEST(Llama3Split, HasNoCaseFoldingInContractions) {
  EXPECT_THAT(Llama3("it'\u017Ft it'St"), ElementsAre("it", "'\u017Ft", " it", "'S", "t"));
  EXPECT_THAT(Cl100k("it'\u017Ft"), ElementsAre("it", "'\u017F", "t"));
}

TEST(Llama3Split, TakesJavaScriptsWhiteSpace) {
  // U+0085 is punctuation to JavaScript, white space to Rust; U+FEFF the other way round.
  EXPECT_THAT(Llama3("!!\u0085"), ElementsAre("!!\u0085"));
  EXPECT_THAT(Cl100k("!!\u0085"), ElementsAre("!!", "\u0085"));
  EXPECT_THAT(Llama3("!!\uFEFF"), ElementsAre("!!", "\uFEFF"));
  EXPECT_THAT(Cl100k("!!\uFEFF"), ElementsAre("!!\uFEFF"));
  EXPECT_THAT(Llama3("  \u0085"), ElementsAre(" ", " \u0085"));
}

TEST(PatternString, IsTheEncodingsOwnPattern) {
  EXPECT_THAT(std::string(PatternString(SplitPattern::kCl100k)),
              ::testing::StartsWith("(?i:'s|'t|'re|'ve|'m|'ll|'d)|"));
  EXPECT_THAT(std::string(PatternString(SplitPattern::kO200k)), ::testing::EndsWith(R"(|\s+)"));
  EXPECT_THAT(std::string(PatternString(SplitPattern::kLlama3)),
              ::testing::StartsWith("(?:'([sS]|[tT]|"));
}

}  // namespace
}  // namespace tollgate::tokenizer_internal
