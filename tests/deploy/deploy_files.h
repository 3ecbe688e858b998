// Helpers for tests/deploy: the deployment files under deploy/ read from the source tree, the
// built binaries, and a shell. Each function is self-contained; call from one thread at a time.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/integration/harness.h"
#include "yaml-cpp/yaml.h"

namespace tollgate::deploy_test {

// `relative` under the source tree, e.g. SourcePath("deploy/compose.yaml"); under
// $TOLLGATE_DEPLOY_SOURCE_DIR when set, so that a broken copy of deploy/ can be checked.
std::string SourcePath(const std::string& relative);
// A built executable, e.g. Binary("proxy/tollgate"): the integration harness's.
using ::tollgate::testing::Binary;

bool FileExists(const std::string& path);
std::string ReadFile(const std::string& path);
// Regular files directly in `dir` whose names end with one of `suffixes`, sorted; none when the
// directory is missing.
std::vector<std::string> ListFiles(const std::string& dir,
                                   const std::vector<std::string>& suffixes);

// Every document of a (multi-document) YAML file; a parse error names the file, line and column.
absl::StatusOr<std::vector<YAML::Node>> LoadYamlDocuments(const std::string& path);
// The single document of a YAML file.
absl::StatusOr<YAML::Node> LoadYamlFile(const std::string& path);

// Shell commands through the integration harness: output is stdout and stderr.
using ::tollgate::testing::CommandResult;
using ::tollgate::testing::RunCommand;

// The port of "host:port", "[v6]:port" or "scheme://host:port/path"; nullopt without one.
std::optional<int> PortOf(absl::string_view address);
// The host of the same forms.
std::string HostOf(absl::string_view address);

// A Kubernetes object of deploy/k8s and the file it came from.
struct K8sObject {
  std::string file;
  YAML::Node node;
};
// Every object in deploy/k8s/*.yaml except the kustomization; files that do not parse are skipped
// (the parse test names them).
std::vector<K8sObject> LoadK8sObjects();
// The object of that kind and metadata.name; nullptr when absent.
const K8sObject* FindK8sObject(const std::vector<K8sObject>& objects, const std::string& kind,
                               const std::string& name);

// The flags an Abseil-flags binary accepts, read from its --helpfull output.
absl::StatusOr<std::set<std::string>> AcceptedFlags(const std::string& binary);

// The flag names in a command line: "--name=value" and "--name" give "name" (single-dash too);
// values and positional arguments are left out.
std::vector<std::string> FlagNames(const std::vector<std::string>& args);
// The value of --name=value (or "--name value") in `args`; nullopt when absent.
std::optional<std::string> FlagValue(const std::vector<std::string>& args, const std::string& name);

// A YAML sequence of scalars, or one scalar split at spaces (compose's string form).
std::vector<std::string> StringList(YAML::Node node);

}  // namespace tollgate::deploy_test
