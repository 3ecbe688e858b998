#include "tests/deploy/dockerfile.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tollgate::deploy_test {

std::vector<std::string> DockerStage::All(const std::string& instruction) const {
  std::vector<std::string> out;
  for (const auto& [name, arguments] : instructions) {
    if (name == instruction) out.push_back(arguments);
  }
  return out;
}

std::string DockerStage::Last(const std::string& instruction) const {
  const std::vector<std::string> all = All(instruction);
  return all.empty() ? "" : all.back();
}

std::vector<DockerStage> ParseDockerfile(const std::string& text) {
  std::vector<DockerStage> stages;
  std::string logical;
  auto finish = [&stages](std::string line) {
    line = std::string(absl::StripAsciiWhitespace(line));
    if (line.empty()) return;
    const size_t space = line.find_first_of(" \t");
    const std::string instruction = absl::AsciiStrToUpper(line.substr(0, space));
    const std::string arguments = space == std::string::npos
                                      ? ""
                                      : std::string(absl::StripAsciiWhitespace(line.substr(space)));
    if (instruction == "FROM") {
      const std::vector<std::string> words = absl::StrSplit(arguments, ' ', absl::SkipEmpty());
      DockerStage stage;
      if (!words.empty()) stage.base = words[0];
      if (words.size() >= 3 && absl::AsciiStrToUpper(words[1]) == "AS") stage.name = words[2];
      stages.push_back(std::move(stage));
    } else if (!stages.empty()) {
      stages.back().instructions.emplace_back(instruction, arguments);
    }
  };
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const absl::string_view stripped = absl::StripLeadingAsciiWhitespace(line);
    if (absl::StartsWith(stripped, "#")) continue;  // comments, also inside continued lines
    absl::string_view body = absl::StripTrailingAsciiWhitespace(line);
    if (absl::ConsumeSuffix(&body, "\\")) {
      logical.append(body.data(), body.size());
      logical.push_back(' ');
      continue;
    }
    logical.append(body.data(), body.size());
    finish(logical);
    logical.clear();
  }
  finish(logical);
  return stages;
}

std::vector<std::string> ExecForm(const std::string& arguments) {
  std::vector<std::string> out;
  absl::string_view rest = absl::StripAsciiWhitespace(arguments);
  if (!absl::ConsumePrefix(&rest, "[") || !absl::ConsumeSuffix(&rest, "]")) {
    for (absl::string_view word : absl::StrSplit(rest, ' ', absl::SkipEmpty())) {
      out.emplace_back(word);
    }
    return out;
  }
  for (absl::string_view item : absl::StrSplit(rest, ',', absl::SkipEmpty())) {
    item = absl::StripAsciiWhitespace(item);
    absl::ConsumePrefix(&item, "\"");
    absl::ConsumeSuffix(&item, "\"");
    out.emplace_back(item);
  }
  return out;
}

std::vector<std::string> AptInstallPackages(const DockerStage& stage) {
  std::vector<std::string> packages;
  for (const std::string& run : stage.All("RUN")) {
    // Each shell command of the RUN line, split at && and ;.
    for (absl::string_view command :
         absl::StrSplit(run, absl::ByAnyChar("&;"), absl::SkipEmpty())) {
      const std::vector<std::string> words = absl::StrSplit(command, ' ', absl::SkipEmpty());
      size_t i = 0;
      while (i + 1 < words.size() && !(words[i] == "apt-get" && words[i + 1] == "install")) ++i;
      if (i + 1 >= words.size()) continue;
      for (i += 2; i < words.size(); ++i) {
        if (!absl::StartsWith(words[i], "-")) packages.push_back(words[i]);
      }
    }
  }
  return packages;
}

}  // namespace tollgate::deploy_test
