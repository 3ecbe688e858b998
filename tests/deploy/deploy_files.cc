#include "tests/deploy/deploy_files.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tollgate::deploy_test {

std::string SourcePath(const std::string& relative) {
  const char* copy = std::getenv("TOLLGATE_DEPLOY_SOURCE_DIR");
  return absl::StrCat(copy != nullptr ? copy : TOLLGATE_SOURCE_DIR, "/", relative);
}

bool FileExists(const std::string& path) { return std::filesystem::is_regular_file(path); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> ListFiles(const std::string& dir,
                                   const std::vector<std::string>& suffixes) {
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (!entry.is_regular_file()) continue;
    const std::string path = entry.path().string();
    for (const std::string& suffix : suffixes) {
      if (absl::EndsWith(path, suffix)) {
        files.push_back(path);
        break;
      }
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

absl::StatusOr<std::vector<YAML::Node>> LoadYamlDocuments(const std::string& path) {
  if (!FileExists(path)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  try {
    return YAML::LoadAllFromFile(path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid YAML: ", e.what()));
  }
}

absl::StatusOr<YAML::Node> LoadYamlFile(const std::string& path) {
  absl::StatusOr<std::vector<YAML::Node>> documents = LoadYamlDocuments(path);
  if (!documents.ok()) return documents.status();
  if (documents->size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected one YAML document, found ", documents->size()));
  }
  return documents->front();
}

namespace {

// "scheme://host:port/path" → "host:port".
absl::string_view Authority(absl::string_view address) {
  if (const size_t scheme = address.find("://"); scheme != absl::string_view::npos) {
    address.remove_prefix(scheme + 3);
  }
  return address.substr(0, address.find('/'));
}

}  // namespace

std::optional<int> PortOf(absl::string_view address) {
  const absl::string_view authority = Authority(address);
  const size_t colon = authority.rfind(':');
  if (colon == absl::string_view::npos || authority.find(']', colon) != absl::string_view::npos) {
    return std::nullopt;
  }
  int port = 0;
  if (!absl::SimpleAtoi(authority.substr(colon + 1), &port)) return std::nullopt;
  return port;
}

std::string HostOf(absl::string_view address) {
  absl::string_view authority = Authority(address);
  if (PortOf(address).has_value()) authority = authority.substr(0, authority.rfind(':'));
  return std::string(authority);
}

std::vector<K8sObject> LoadK8sObjects() {
  std::vector<K8sObject> objects;
  for (const std::string& file : ListFiles(SourcePath("deploy/k8s"), {".yaml", ".yml"})) {
    if (absl::EndsWith(file, "/kustomization.yaml")) continue;
    absl::StatusOr<std::vector<YAML::Node>> documents = LoadYamlDocuments(file);
    if (!documents.ok()) continue;
    for (YAML::Node document : *documents) {
      if (document.IsMap()) objects.push_back({file, document});
    }
  }
  return objects;
}

const K8sObject* FindK8sObject(const std::vector<K8sObject>& objects, const std::string& kind,
                               const std::string& name) {
  for (const K8sObject& object : objects) {
    if (object.node["kind"].as<std::string>("") == kind &&
        object.node["metadata"]["name"].as<std::string>("") == name) {
      return &object;
    }
  }
  return nullptr;
}

absl::StatusOr<std::set<std::string>> AcceptedFlags(const std::string& binary) {
  if (!FileExists(binary)) return absl::NotFoundError(absl::StrCat(binary, " is not built"));
  // --helpfull exits 1 after printing; every flag line reads "    --name (help); default: ...".
  const CommandResult help = RunCommand(absl::StrCat("'", binary, "' --helpfull"));
  std::set<std::string> flags;
  for (absl::string_view line : absl::StrSplit(help.output, '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "--")) continue;
    const size_t end = line.find_first_of(" =");
    flags.insert(std::string(line.substr(0, end)));
  }
  if (flags.empty()) {
    return absl::InternalError(absl::StrCat(binary, " --helpfull listed no flags: ", help.output));
  }
  return flags;
}

std::vector<std::string> FlagNames(const std::vector<std::string>& args) {
  std::vector<std::string> names;
  for (absl::string_view arg : args) {
    if (!absl::ConsumePrefix(&arg, "-")) continue;
    absl::ConsumePrefix(&arg, "-");
    if (arg.empty()) continue;
    names.emplace_back(arg.substr(0, arg.find('=')));
  }
  return names;
}

std::optional<std::string> FlagValue(const std::vector<std::string>& args,
                                     const std::string& name) {
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    if (absl::ConsumePrefix(&arg, name)) {
      if (absl::ConsumePrefix(&arg, "=")) return std::string(arg);
      if (arg.empty() && i + 1 < args.size()) return args[i + 1];
    }
  }
  return std::nullopt;
}

std::vector<std::string> StringList(YAML::Node node) {
  std::vector<std::string> out;
  if (!node.IsDefined()) return out;
  if (node.IsScalar()) {
    for (absl::string_view part : absl::StrSplit(node.Scalar(), ' ', absl::SkipEmpty())) {
      out.emplace_back(part);
    }
  } else if (node.IsSequence()) {
    for (YAML::Node item : node) out.push_back(item.as<std::string>(""));
  }
  return out;
}

}  // namespace tollgate::deploy_test
