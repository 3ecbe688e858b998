// Every YAML file of the compose and Kubernetes deployments parses, and the Kubernetes manifests
// are objects that kubectl can apply.
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/deploy/deploy_files.h"

namespace tollgate::deploy_test {
namespace {

std::vector<std::string> DeployYamlFiles() {
  std::vector<std::string> files = {SourcePath("deploy/compose.yaml")};
  for (const char* dir : {"deploy/compose", "deploy/k8s", "deploy/docker"}) {
    for (std::string& file : ListFiles(SourcePath(dir), {".yaml", ".yml"})) {
      files.push_back(std::move(file));
    }
  }
  return files;
}

TEST(DeployYaml, EveryComposeKubernetesAndImageFileParses) {
  const std::vector<std::string> files = DeployYamlFiles();
  ASSERT_GE(files.size(), 4u) << "expected deploy/compose.yaml, deploy/compose/*, deploy/k8s/*";
  for (const std::string& file : files) {
    absl::StatusOr<std::vector<YAML::Node>> documents = LoadYamlDocuments(file);
    EXPECT_TRUE(documents.ok()) << documents.status().message();
    if (!documents.ok()) continue;
    EXPECT_FALSE(documents->empty()) << file << ": no YAML document";
    for (size_t i = 0; i < documents->size(); ++i) {
      EXPECT_TRUE((*documents)[i].IsMap()) << file << ": document " << i << " is not a mapping";
    }
  }
}

// Both Alertmanager configs (the production example and the one compose mounts) load in the real
// Alertmanager's checker.
TEST(DeployYaml, AlertmanagerConfigsPassAmtool) {
  if (RunCommand("command -v amtool").exit_code != 0) {
    if (std::getenv("CI") != nullptr)
      FAIL() << "amtool is missing in CI (scripts/setup installs it)";
    GTEST_SKIP() << "amtool not installed; scripts/setup installs prometheus-alertmanager";
  }
  for (const char* file :
       {"deploy/alertmanager/alertmanager.yml", "deploy/compose/alertmanager.yml"}) {
    const CommandResult result = RunCommand("amtool check-config " + SourcePath(file));
    EXPECT_EQ(result.exit_code, 0) << file << ":\n" << result.output;
  }
}

TEST(DeployYaml, KubernetesObjectsHaveApiVersionKindAndName) {
  const std::vector<K8sObject> objects = LoadK8sObjects();
  ASSERT_FALSE(objects.empty()) << "no objects in deploy/k8s";
  for (const K8sObject& object : objects) {
    EXPECT_FALSE(object.node["apiVersion"].as<std::string>("").empty())
        << object.file << ": an object without apiVersion";
    EXPECT_FALSE(object.node["kind"].as<std::string>("").empty())
        << object.file << ": an object without kind";
    EXPECT_FALSE(object.node["metadata"]["name"].as<std::string>("").empty())
        << object.file << ": a " << object.node["kind"].as<std::string>("") << " without a name";
  }
}

TEST(DeployYaml, KustomizationListsEveryManifest) {
  absl::StatusOr<YAML::Node> kustomization =
      LoadYamlFile(SourcePath("deploy/k8s/kustomization.yaml"));
  ASSERT_TRUE(kustomization.ok()) << kustomization.status().message();
  std::set<std::string> listed;
  for (const std::string& resource : StringList((*kustomization)["resources"])) {
    listed.insert(resource);
    EXPECT_TRUE(FileExists(SourcePath("deploy/k8s/" + resource)))
        << "deploy/k8s/kustomization.yaml lists " << resource << ", which does not exist";
  }
  for (const std::string& file : ListFiles(SourcePath("deploy/k8s"), {".yaml", ".yml"})) {
    const std::string name = file.substr(file.rfind('/') + 1);
    if (name == "kustomization.yaml") continue;
    EXPECT_TRUE(listed.count(name)) << "deploy/k8s/" << name << " is not in kustomization.yaml";
  }
}

}  // namespace
}  // namespace tollgate::deploy_test
