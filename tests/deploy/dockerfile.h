// A reader for the few Dockerfile forms deploy/docker/Dockerfile uses: stages, instructions with
// continuation lines joined, exec-form (JSON array) arguments and `apt-get install` lists.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace tollgate::deploy_test {

struct DockerStage {
  std::string base;  // FROM's image
  std::string name;  // after AS; empty when unnamed
  // (INSTRUCTION in upper case, its arguments), in order; FROM itself left out.
  std::vector<std::pair<std::string, std::string>> instructions;

  // The arguments of every instruction named `instruction`.
  std::vector<std::string> All(const std::string& instruction) const;
  // The arguments of the last such instruction; empty when none.
  std::string Last(const std::string& instruction) const;
};

std::vector<DockerStage> ParseDockerfile(const std::string& text);

// ["a", "b"] → {a, b}; a shell-form string is split at spaces.
std::vector<std::string> ExecForm(const std::string& arguments);

// The packages every `apt-get install` of the stage's RUN instructions names (options left out).
std::vector<std::string> AptInstallPackages(const DockerStage& stage);

}  // namespace tollgate::deploy_test
