// Shorthands for the config tests: parse a YAML config and get either the Config or its error.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"

namespace tollgate {

// The config `yaml` describes, or null (with a test failure) when it is rejected.
inline std::shared_ptr<const Config> ParseValid(absl::string_view yaml) {
  absl::StatusOr<std::shared_ptr<const Config>> config = ParseConfigYaml(yaml);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : nullptr;
}

// The INVALID_ARGUMENT message `yaml` is rejected with ("" with a test failure when accepted).
inline std::string ParseError(absl::string_view yaml) {
  absl::StatusOr<std::shared_ptr<const Config>> config = ParseConfigYaml(yaml);
  EXPECT_FALSE(config.ok()) << "accepted:\n" << yaml;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << config.status();
  return std::string(config.status().message());
}

}  // namespace tollgate
