// JSON parsing for tests of the HTTP codecs and APIs: a parse failure is a test failure.
#pragma once

#include <rapidjson/document.h>

#include <string>

#include "gtest/gtest.h"

namespace tollgate::http::testing {

inline rapidjson::Document ParseJsonOrFail(const std::string& text) {
  rapidjson::Document document;
  document.Parse(text.data(), text.size());
  EXPECT_FALSE(document.HasParseError()) << "not JSON: " << text;
  return document;
}

}  // namespace tollgate::http::testing
