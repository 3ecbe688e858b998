// Every flag the Dockerfile, compose and Kubernetes give tollgate or tollgate-sim is one the built
// binary accepts (its --helpfull list), so that a renamed flag cannot leave a container that exits
// at start-up.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/deploy/deploy_files.h"
#include "tests/deploy/dockerfile.h"

namespace tollgate::deploy_test {
namespace {

// One command line run from the Tollgate image.
struct Invocation {
  std::string where;   // file and service or container
  std::string binary;  // "tollgate" or "tollgate-sim"
  std::vector<std::string> args;
};

std::string Basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// True for the image deploy/docker/Dockerfile builds: "tollgate:local", "registry/x/tollgate:1".
bool IsTollgateImage(const std::string& image) {
  const std::string last = Basename(image);
  return last.substr(0, last.find_first_of(":@")) == "tollgate";
}

// The image's entrypoint when a service or container does not set its own.
constexpr char kDefaultBinary[] = "tollgate";

std::vector<Invocation> Invocations() {
  std::vector<Invocation> out;
  const std::vector<DockerStage> stages =
      ParseDockerfile(ReadFile(SourcePath("deploy/docker/Dockerfile")));
  if (!stages.empty()) {
    const std::vector<std::string> entrypoint = ExecForm(stages.back().Last("ENTRYPOINT"));
    std::vector<std::string> args(entrypoint.begin() + (entrypoint.empty() ? 0 : 1),
                                  entrypoint.end());
    for (std::string& arg : ExecForm(stages.back().Last("CMD"))) args.push_back(std::move(arg));
    out.push_back({"deploy/docker/Dockerfile ENTRYPOINT/CMD",
                   entrypoint.empty() ? "" : Basename(entrypoint[0]), args});
  }
  absl::StatusOr<YAML::Node> compose = LoadYamlFile(SourcePath("deploy/compose.yaml"));
  if (compose.ok()) {
    for (const auto& service : (*compose)["services"]) {
      YAML::Node node = service.second;
      if (!IsTollgateImage(node["image"].as<std::string>(""))) continue;
      const std::vector<std::string> entrypoint = StringList(node["entrypoint"]);
      std::vector<std::string> args(entrypoint.begin() + (entrypoint.empty() ? 0 : 1),
                                    entrypoint.end());
      for (std::string& arg : StringList(node["command"])) args.push_back(std::move(arg));
      out.push_back({"deploy/compose.yaml service " + service.first.as<std::string>(),
                     entrypoint.empty() ? kDefaultBinary : Basename(entrypoint[0]), args});
    }
  }
  for (const K8sObject& object : LoadK8sObjects()) {
    YAML::Node node = object.node;  // non-const: a missing key gives an empty node, not a throw
    for (YAML::Node container : node["spec"]["template"]["spec"]["containers"]) {
      if (!IsTollgateImage(container["image"].as<std::string>(""))) continue;
      const std::vector<std::string> command = StringList(container["command"]);
      std::vector<std::string> args(command.begin() + (command.empty() ? 0 : 1), command.end());
      for (std::string& arg : StringList(container["args"])) args.push_back(std::move(arg));
      out.push_back(
          {absl::StrCat(object.file, " container ", container["name"].as<std::string>("")),
           command.empty() ? kDefaultBinary : Basename(command[0]), args});
    }
  }
  return out;
}

TEST(DeployFlags, EveryFlagGivenToTheBinariesIsOneTheyAccept) {
  const std::map<std::string, std::string> binaries = {
      {"tollgate", Binary("proxy/tollgate")}, {"tollgate-sim", Binary("sim/tollgate-sim")}};
  std::map<std::string, std::set<std::string>> accepted;
  for (const auto& [name, path] : binaries) {
    absl::StatusOr<std::set<std::string>> flags = AcceptedFlags(path);
    ASSERT_TRUE(flags.ok()) << flags.status().message();
    accepted[name] = *flags;
  }
  std::map<std::string, int> checked;
  for (const Invocation& invocation : Invocations()) {
    const auto flags = accepted.find(invocation.binary);
    if (flags == accepted.end()) {
      ADD_FAILURE() << invocation.where << " runs \"" << invocation.binary
                    << "\", which is neither tollgate nor tollgate-sim";
      continue;
    }
    ++checked[invocation.binary];
    for (std::string flag : FlagNames(invocation.args)) {
      // main.cc rewrites the documented --check-config to absl's --check_config.
      if (invocation.binary == "tollgate" && flag == "check-config") flag = "check_config";
      const bool negated_bool = absl::StartsWith(flag, "no") && flags->second.count(flag.substr(2));
      EXPECT_TRUE(flags->second.count(flag) || negated_bool)
          << invocation.where << " gives " << invocation.binary << " --" << flag
          << ", which it does not accept (not in " << binaries.at(invocation.binary)
          << " --helpfull): the container would exit at start-up";
    }
  }
  EXPECT_GE(checked["tollgate"], 3) << "expected tollgate run by the Dockerfile, compose and k8s";
  EXPECT_GE(checked["tollgate-sim"], 1) << "expected tollgate-sim run by compose";
}

}  // namespace
}  // namespace tollgate::deploy_test
