// The vocabularies the tokenizer tests need, loaded once per test binary.
//
// They come from `scripts/fetch_vocab` ($TOLLGATE_VOCAB_DIR, default <repo>/.cache/tokenizer).
// Missing locally, the tests that need them skip with a printed reason; with the CI environment
// variable set, they fail instead, so CI cannot pass without them.
#pragma once

#include <memory>
#include <string>

#include "accounting/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace tollgate::testing {

// The loaded encoding, or null with *why set to the reason it could not be loaded.
std::shared_ptr<const Tokenizer> TestTokenizer(const std::string& name, std::string* why);

// Whether the CI environment variable is set (a missing dependency is then a failure).
bool InCi();

std::string SourceDir();

}  // namespace tollgate::testing

// In a test body or SetUp: loads `name` into `var`, or skips (fails in CI) saying why not.
#define TG_LOAD_TOKENIZER_OR_SKIP(var, name)                  \
  do {                                                        \
    std::string tg_why_;                                      \
    var = ::tollgate::testing::TestTokenizer(name, &tg_why_); \
    if (var == nullptr) {                                     \
      if (::tollgate::testing::InCi()) FAIL() << tg_why_;     \
      GTEST_SKIP() << tg_why_;                                \
    }                                                         \
  } while (0)
