// The Tollgate configs the deployments ship pass the real parser (ParseConfigYaml) and the built
// binary's --check-config, which also loads the tokenizer vocabularies their models need.
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/deploy/deploy_files.h"

namespace tollgate::deploy_test {
namespace {

// The text of deploy/k8s's ConfigMap key tollgate.yaml.
absl::StatusOr<std::string> ConfigMapYaml() {
  const std::vector<K8sObject> objects = LoadK8sObjects();
  const K8sObject* config_map = FindK8sObject(objects, "ConfigMap", "tollgate-config");
  if (config_map == nullptr) {
    return absl::NotFoundError("deploy/k8s has no ConfigMap named tollgate-config");
  }
  YAML::Node data = config_map->node["data"]["tollgate.yaml"];
  if (!data.IsScalar()) {
    return absl::NotFoundError(absl::StrCat(
        config_map->file, ": ConfigMap tollgate-config has no data key tollgate.yaml"));
  }
  return data.Scalar();
}

void ExpectCheckConfigPasses(const std::string& path) {
  const std::string binary = Binary("proxy/tollgate");
  ASSERT_TRUE(FileExists(binary)) << binary << " is not built";
  const CommandResult check =
      RunCommand(absl::StrCat("'", binary, "' --check-config '", path, "'"));
  EXPECT_EQ(check.exit_code, 0) << "tollgate --check-config " << path << " failed:\n"
                                << check.output;
}

TEST(DeployConfigs, ComposeConfigPassesTheParser) {
  const std::string path = SourcePath("deploy/compose/tollgate.yaml");
  absl::StatusOr<std::shared_ptr<const Config>> config = LoadConfigFile(path);
  ASSERT_TRUE(config.ok()) << config.status().message();
  ASSERT_TRUE((*config)->redis.has_value()) << path << ": compose runs Redis; redis.address unset";
  EXPECT_EQ((*config)->redis->host, "redis") << path << ": redis.address is not the redis service";
  ExpectCheckConfigPasses(path);
}

TEST(DeployConfigs, KubernetesConfigMapPassesTheParser) {
  absl::StatusOr<std::string> yaml = ConfigMapYaml();
  ASSERT_TRUE(yaml.ok()) << yaml.status().message();
  absl::StatusOr<std::shared_ptr<const Config>> config = ParseConfigYaml(*yaml);
  ASSERT_TRUE(config.ok()) << "deploy/k8s ConfigMap tollgate-config, key tollgate.yaml: "
                           << config.status().message();
  const std::string copy = absl::StrCat(::testing::TempDir(), "/configmap-tollgate.yaml");
  std::ofstream(copy) << *yaml;
  ExpectCheckConfigPasses(copy);
}

TEST(DeployConfigs, ImageDefaultConfigPassesTheParser) {
  const std::string path = SourcePath("deploy/docker/tollgate.yaml");
  absl::StatusOr<std::shared_ptr<const Config>> config = LoadConfigFile(path);
  ASSERT_TRUE(config.ok()) << config.status().message();
  ExpectCheckConfigPasses(path);
}

}  // namespace
}  // namespace tollgate::deploy_test
