// deploy/docker/Dockerfile: the runtime stage installs a Debian package for every shared library
// the built binaries load (ldd, then dpkg -S), each package it names exists (apt-cache show), and
// its ports, config path, user and vocabularies match the image's default config and the build.
#include "tests/deploy/dockerfile.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/deploy/deploy_files.h"

namespace tollgate::deploy_test {
namespace {

constexpr char kDockerfile[] = "deploy/docker/Dockerfile";

// The path after "=> " on each line of `listing` that has one ("libfoo.so.1 => /usr/lib/libfoo.so.1
// (0x...)", as ldd and ldconfig -p print).
std::vector<std::string> ResolvedPaths(const std::string& listing) {
  std::vector<std::string> paths;
  for (absl::string_view line : absl::StrSplit(listing, '\n')) {
    const size_t arrow = line.find("=> /");
    if (arrow == absl::string_view::npos) continue;
    absl::string_view path = line.substr(arrow + 3);
    paths.emplace_back(path.substr(0, path.find(' ')));
  }
  return paths;
}

// The shared libraries `binary` loads, by path: those `ldd` resolves, and those it names to open at
// run time (dlopen: a "libfoo.so.N" string in the binary, which ldd does not see — the
// SentencePiece tokenizers open libsentencepiece.so.0 so), as the dynamic loader's cache resolves
// them in the directories of ldd's libraries (the cache lists other architectures' too, /lib32).
std::vector<std::string> SharedLibraries(const std::string& binary) {
  std::vector<std::string> libraries = ResolvedPaths(RunCommand("ldd '" + binary + "'").output);
  std::set<std::string> directories;
  for (const std::string& library : libraries) {
    directories.insert(library.substr(0, library.rfind('/')));
  }
  const std::string named =
      RunCommand("strings -a '" + binary + "' | grep -E '^lib[A-Za-z0-9_+-]+[.]so([.][0-9]+)*$'")
          .output;
  const std::string cache = RunCommand("ldconfig -p").output;
  for (absl::string_view soname : absl::StrSplit(named, '\n', absl::SkipEmpty())) {
    std::string entries;
    for (absl::string_view line : absl::StrSplit(cache, '\n')) {
      if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), absl::StrCat(soname, " ("))) {
        absl::StrAppend(&entries, line, "\n");
      }
    }
    for (std::string& path : ResolvedPaths(entries)) {
      if (!directories.count(path.substr(0, path.rfind('/')))) continue;
      if (std::find(libraries.begin(), libraries.end(), path) == libraries.end()) {
        libraries.push_back(std::move(path));
      }
    }
  }
  return libraries;
}

// The Debian package that installed each of `paths` (trying the merged-/usr spellings too), by
// path; a path no package installed is left out. One dpkg -S call: each reads the whole database.
std::map<std::string, std::string> PackagesOfFiles(const std::set<std::string>& paths) {
  std::map<std::string, std::vector<std::string>> candidates;
  std::string arguments;
  for (const std::string& path : paths) {
    std::string resolved = RunCommand("readlink -f '" + path + "'").output;
    absl::StripTrailingAsciiWhitespace(&resolved);
    std::vector<std::string>& spellings = candidates[path];
    spellings = {path, resolved};
    if (absl::StartsWith(path, "/lib/")) spellings.push_back("/usr" + path);
    if (absl::StartsWith(resolved, "/usr/lib/")) spellings.push_back(resolved.substr(4));
    for (const std::string& spelling : spellings) absl::StrAppend(&arguments, " '", spelling, "'");
  }
  // "libfoo1:amd64: /usr/lib/x/libfoo.so.1", or "a, b: /path" for a diverted file.
  std::map<std::string, std::string> owner;
  for (absl::string_view line : absl::StrSplit(RunCommand("dpkg -S" + arguments).output, '\n')) {
    const size_t separator = line.find(": /");
    if (separator == absl::string_view::npos) continue;
    absl::string_view package = line.substr(0, line.find_first_of(", :"));
    owner[std::string(line.substr(separator + 2))] = std::string(package);
  }
  std::map<std::string, std::string> packages;
  for (const auto& [path, spellings] : candidates) {
    for (const std::string& spelling : spellings) {
      const auto it = owner.find(spelling);
      if (it != owner.end()) {
        packages[path] = it->second;
        break;
      }
    }
  }
  return packages;
}

class DockerfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = SourcePath(kDockerfile);
    ASSERT_TRUE(FileExists(path)) << path << " does not exist";
    stages_ = ParseDockerfile(ReadFile(path));
    ASSERT_GE(stages_.size(), 2u) << kDockerfile << ": expected a build and a runtime stage";
    runtime_ = &stages_.back();
  }

  std::vector<DockerStage> stages_;
  const DockerStage* runtime_ = nullptr;
};

TEST_F(DockerfileTest, StagesAreDebianBookworm) {
  EXPECT_EQ(stages_.front().base, "debian:bookworm") << kDockerfile << ": the build stage";
  EXPECT_EQ(runtime_->base, "debian:bookworm-slim") << kDockerfile << ": the runtime stage";
}

TEST_F(DockerfileTest, RuntimePackagesCoverEverySharedLibraryOfTheBinaries) {
  const std::vector<std::string> listed = AptInstallPackages(*runtime_);
  ASSERT_FALSE(listed.empty()) << kDockerfile << ": the runtime stage installs no packages";
  const std::set<std::string> installed(listed.begin(), listed.end());
  // Virtual packages the listed ones provide count as installed, looked up only when needed.
  std::set<std::string> provided;
  bool provides_read = false;
  for (const char* relative : {"proxy/tollgate", "sim/tollgate-sim"}) {
    const std::string binary = Binary(relative);
    ASSERT_TRUE(FileExists(binary)) << binary << " is not built";
    const std::vector<std::string> libraries = SharedLibraries(binary);
    ASSERT_FALSE(libraries.empty()) << "ldd " << binary << " listed no libraries";
    const std::map<std::string, std::string> packages =
        PackagesOfFiles(std::set<std::string>(libraries.begin(), libraries.end()));
    for (const std::string& library : libraries) {
      const auto owner = packages.find(library);
      const std::string package = owner == packages.end() ? "" : owner->second;
      if (package.empty()) {
        ADD_FAILURE() << relative << " loads " << library
                      << ", which no Debian package installed (dpkg -S): the image cannot have it";
        continue;
      }
      if (installed.count(package)) continue;
      if (!provides_read) {  // one apt-cache call: each loads the whole cache
        provides_read = true;
        std::string arguments;
        for (const std::string& name : listed) absl::StrAppend(&arguments, " '", name, "'");
        const CommandResult show = RunCommand("apt-cache show --no-all-versions" + arguments);
        for (absl::string_view line : absl::StrSplit(show.output, '\n')) {
          if (!absl::ConsumePrefix(&line, "Provides:")) continue;
          for (absl::string_view item : absl::StrSplit(line, ',')) {
            item = absl::StripAsciiWhitespace(item);
            provided.insert(std::string(item.substr(0, item.find(' '))));
          }
        }
      }
      EXPECT_TRUE(provided.count(package))
          << kDockerfile << ": " << relative << " loads " << library << " from the package "
          << package << ", which the runtime stage's apt-get install does not list ("
          << absl::StrJoin(listed, " ") << ")";
    }
  }
}

TEST_F(DockerfileTest, EveryNamedPackageExistsInTheArchive) {
  std::set<std::string> named;
  for (const DockerStage& stage : stages_) {
    for (const std::string& package : AptInstallPackages(stage)) named.insert(package);
  }
  // One apt-cache call (each loads the whole cache): it shows the packages it knows and names the
  // others.
  std::string arguments;
  for (const std::string& package : named) absl::StrAppend(&arguments, " '", package, "'");
  const CommandResult show = RunCommand("apt-cache show --no-all-versions" + arguments);
  std::set<std::string> known;
  for (absl::string_view line : absl::StrSplit(show.output, '\n')) {
    if (absl::ConsumePrefix(&line, "Package: ")) known.insert(std::string(line));
  }
  for (const std::string& package : named) {
    EXPECT_TRUE(known.count(package))
        << kDockerfile << " installs " << package << ", which apt-cache show does not know";
  }
}

TEST_F(DockerfileTest, ExposesTheDefaultConfigsListenersAndRunsIt) {
  // COPY deploy/docker/tollgate.yaml DEST, and CMD --config=DEST.
  std::string default_config;
  for (const std::string& copy : runtime_->All("COPY")) {
    const std::vector<std::string> words = absl::StrSplit(copy, ' ', absl::SkipEmpty());
    if (words.size() == 2 && words[0] == "deploy/docker/tollgate.yaml") default_config = words[1];
  }
  ASSERT_FALSE(default_config.empty()) << kDockerfile << ": deploy/docker/tollgate.yaml is not "
                                       << "copied into the runtime stage";
  const std::vector<std::string> cmd = ExecForm(runtime_->Last("CMD"));
  EXPECT_EQ(FlagValue(cmd, "config").value_or(""), default_config)
      << kDockerfile << ": CMD does not run --config=" << default_config;

  absl::StatusOr<std::shared_ptr<const Config>> config =
      LoadConfigFile(SourcePath("deploy/docker/tollgate.yaml"));
  ASSERT_TRUE(config.ok()) << config.status().message();
  std::set<int> listening;
  for (const std::string& address :
       {(*config)->listeners.grpc_address, (*config)->listeners.http_address,
        (*config)->listeners.metrics_address}) {
    if (PortOf(address).has_value()) listening.insert(*PortOf(address));
  }
  std::set<int> exposed;
  for (const std::string& expose : runtime_->All("EXPOSE")) {
    for (absl::string_view word : absl::StrSplit(expose, ' ', absl::SkipEmpty())) {
      int port = 0;
      EXPECT_TRUE(absl::SimpleAtoi(word.substr(0, word.find('/')), &port))
          << kDockerfile << ": EXPOSE " << word;
      exposed.insert(port);
    }
  }
  EXPECT_EQ(exposed, listening) << kDockerfile << ": EXPOSE " << absl::StrJoin(exposed, " ")
                                << ", but deploy/docker/tollgate.yaml listens on "
                                << absl::StrJoin(listening, " ");
}

TEST_F(DockerfileTest, RunsAsNonRootWithBothBinariesAndTheVocabularies) {
  const std::string user = runtime_->Last("USER");
  EXPECT_FALSE(user.empty() || user == "root" || user == "0")
      << kDockerfile << ": the runtime stage runs as root";
  std::string vocab_dir;
  for (const std::string& env : runtime_->All("ENV")) {
    if (absl::StartsWith(env, "TOLLGATE_VOCAB_DIR=")) vocab_dir = env.substr(19);
  }
  ASSERT_FALSE(vocab_dir.empty()) << kDockerfile << ": no ENV TOLLGATE_VOCAB_DIR=...";
  std::string copied;
  for (const std::string& copy : runtime_->All("COPY")) copied += copy + "\n";
  EXPECT_TRUE(absl::StrContains(copied, "proxy/tollgate "))
      << kDockerfile << ": tollgate not copied";
  EXPECT_TRUE(absl::StrContains(copied, "sim/tollgate-sim")) << kDockerfile << ": tollgate-sim";
  EXPECT_TRUE(absl::StrContains(copied, " " + vocab_dir + "\n"))
      << kDockerfile << ": nothing is copied to TOLLGATE_VOCAB_DIR " << vocab_dir;
  std::string runs;
  for (const std::string& run : stages_.front().All("RUN")) runs += run + "\n";
  EXPECT_TRUE(absl::StrContains(runs, "scripts/fetch_vocab"))
      << kDockerfile << ": the build stage does not fetch the vocabularies";
  EXPECT_TRUE(absl::StrContains(runs, "--target tollgate tollgate-sim"))
      << kDockerfile << ": the build stage does not build tollgate and tollgate-sim";
}

// `COPY . .` sends the whole context: without these exclusions a developer's build trees (GBs),
// .git and node_modules go to the daemon, and a stale CMakeCache.txt could enter the image build.
TEST_F(DockerfileTest, TheBuildContextLeavesOutBuildTreesAndCaches) {
  std::ifstream file(SourcePath(".dockerignore"));
  ASSERT_TRUE(file.good()) << ".dockerignore is missing beside " << kDockerfile << "'s COPY . .";
  std::set<std::string> patterns;
  for (std::string line; std::getline(file, line);) {
    if (!line.empty() && line[0] != '#') patterns.insert(line);
  }
  for (const char* wanted : {"build*/", ".cache/", "**/node_modules/", ".git/"}) {
    EXPECT_TRUE(patterns.count(wanted)) << ".dockerignore: no line " << wanted;
  }
}

}  // namespace
}  // namespace tollgate::deploy_test
