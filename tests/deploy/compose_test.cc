// deploy/compose.yaml against the configs it mounts: the ports Tollgate and tollgate-sim listen on,
// the backends and Redis Tollgate reaches, what Prometheus scrapes and alerts to, and where Grafana
// finds its provisioning and dashboards.
#include <fnmatch.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/deploy/deploy_files.h"

namespace tollgate::deploy_test {
namespace {

constexpr char kCompose[] = "deploy/compose.yaml";

struct Mount {
  std::string source;  // relative to deploy/ as written ("./compose/x.yml"), or a volume name
  std::string target;
};

std::vector<Mount> MountsOf(YAML::Node service) {
  std::vector<Mount> mounts;
  for (YAML::Node volume : service["volumes"]) {
    if (volume.IsMap()) {
      mounts.push_back(
          {volume["source"].as<std::string>(""), volume["target"].as<std::string>("")});
      continue;
    }
    const std::vector<std::string> parts = absl::StrSplit(volume.as<std::string>(""), ':');
    if (parts.size() >= 2) mounts.push_back({parts[0], parts[1]});
  }
  return mounts;
}

bool IsBindMount(const Mount& mount) {
  return absl::StartsWith(mount.source, ".") || absl::StartsWith(mount.source, "/");
}

// "./compose/tollgate.yaml" → the source tree's deploy/compose/tollgate.yaml.
std::string SourceOfMount(const Mount& mount) {
  absl::string_view relative = mount.source;
  absl::ConsumePrefix(&relative, "./");
  return SourcePath(absl::StrCat("deploy/", relative));
}

// The container side of each `ports` entry ("8080:8080", "127.0.0.1:1:2/tcp", {target: 2}) and
// each `expose` entry.
std::set<int> ContainerPorts(YAML::Node service) {
  std::set<int> ports;
  for (YAML::Node entry : service["ports"]) {
    std::string text =
        entry.IsMap() ? entry["target"].as<std::string>("") : entry.as<std::string>("");
    text = text.substr(0, text.find('/'));
    int port = 0;
    if (absl::SimpleAtoi(text.substr(text.rfind(':') + 1), &port)) ports.insert(port);
  }
  for (YAML::Node entry : service["expose"]) {
    int port = 0;
    if (absl::SimpleAtoi(entry.as<std::string>(""), &port)) ports.insert(port);
  }
  return ports;
}

class ComposeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<YAML::Node> compose = LoadYamlFile(SourcePath(kCompose));
    ASSERT_TRUE(compose.ok()) << compose.status().message();
    services_ = (*compose)["services"];
    for (const char* name :
         {"tollgate", "tollgate-sim", "redis", "prometheus", "alertmanager", "grafana"}) {
      ASSERT_TRUE(services_[name].IsMap()) << kCompose << ": no service " << name;
    }
    sim_args_ = StringList(services_["tollgate-sim"]["command"]);
    sim_grpc_port_ = PortOf(FlagValue(sim_args_, "address").value_or("0.0.0.0:50061")).value_or(0);
    sim_http_port_ = PortOf(FlagValue(sim_args_, "http_address").value_or("")).value_or(0);
    ASSERT_NE(sim_http_port_, 0) << kCompose << ": tollgate-sim needs --http_address=HOST:PORT "
                                 << "for its /metrics and the OpenAI-compatible backend";

    const std::vector<std::string> args = StringList(services_["tollgate"]["command"]);
    const std::optional<std::string> config_path = FlagValue(args, "config");
    ASSERT_TRUE(config_path.has_value()) << kCompose << ": the tollgate service has no --config";
    for (const Mount& mount : MountsOf(services_["tollgate"])) {
      if (mount.target == *config_path) config_file_ = SourceOfMount(mount);
    }
    ASSERT_EQ(config_file_, SourcePath("deploy/compose/tollgate.yaml"))
        << kCompose << ": tollgate's --config=" << *config_path
        << " is not mounted from ./compose/tollgate.yaml";
    absl::StatusOr<std::shared_ptr<const Config>> config = LoadConfigFile(config_file_);
    ASSERT_TRUE(config.ok()) << config.status().message();
    config_ = *config;
  }

  bool IsService(const std::string& host) const { return services_[host].IsMap(); }

  // The port a service's metrics or API listen on, for the targets other files name.
  std::optional<int> ExpectedPort(const std::string& host, const std::string& what) const {
    if (host == "tollgate-sim") return what == "grpc" ? sim_grpc_port_ : sim_http_port_;
    if (host == "tollgate") {
      if (what == "grpc") return PortOf(config_->listeners.grpc_address);
      if (what == "http") return PortOf(config_->listeners.http_address);
      return PortOf(config_->listeners.metrics_address);
    }
    if (host == "redis") return 6379;
    if (host == "prometheus" || host == "localhost") return 9090;
    if (host == "alertmanager") return 9093;
    if (host == "grafana") return 3000;
    return std::nullopt;
  }

  YAML::Node services_;
  std::vector<std::string> sim_args_;
  int sim_grpc_port_ = 0;
  int sim_http_port_ = 0;
  std::string config_file_;
  std::shared_ptr<const Config> config_;
};

TEST_F(ComposeTest, TollgatePublishesItsConfigsListenersOnly) {
  const std::map<std::string, std::optional<int>> listeners = {
      {"listeners.grpc_address", PortOf(config_->listeners.grpc_address)},
      {"listeners.http_address", PortOf(config_->listeners.http_address)},
      {"listeners.metrics_address", PortOf(config_->listeners.metrics_address)}};
  std::set<int> listening;
  for (const auto& [field, port] : listeners) {
    ASSERT_TRUE(port.has_value()) << config_file_ << ": " << field << " has no port";
    listening.insert(*port);
  }
  const std::set<int> published = ContainerPorts(services_["tollgate"]);
  for (int port : published) {
    EXPECT_TRUE(listening.count(port)) << kCompose << ": service tollgate publishes container port "
                                       << port << ", on which nothing listens; " << config_file_
                                       << " listens on " << absl::StrJoin(listening, ", ");
  }
  for (const auto& [field, port] : listeners) {
    EXPECT_TRUE(published.count(*port))
        << kCompose << ": service tollgate does not publish " << field << "'s port " << *port;
  }
}

TEST_F(ComposeTest, SimPublishesItsFlagsPorts) {
  for (int port : ContainerPorts(services_["tollgate-sim"])) {
    EXPECT_TRUE(port == sim_grpc_port_ || port == sim_http_port_)
        << kCompose << ": service tollgate-sim publishes container port " << port
        << " but listens on " << sim_grpc_port_ << " (--address) and " << sim_http_port_
        << " (--http_address)";
  }
}

TEST_F(ComposeTest, BackendsAndRedisAreServicesOnTheirPorts) {
  for (const BackendConfig& backend : config_->backends) {
    std::vector<std::pair<std::string, std::string>> targets;  // (address, what)
    if (backend.kind == BackendKind::kGrpc) targets.emplace_back(backend.address, "grpc");
    if (backend.kind == BackendKind::kOpenAi || backend.kind == BackendKind::kAnthropic) {
      targets.emplace_back(absl::StrCat(backend.base_url.host, ":", backend.base_url.port), "http");
    }
    if (backend.kv.has_value() && !backend.kv->metrics_url.empty()) {
      targets.emplace_back(backend.kv->metrics_url, "metrics");
    }
    for (const auto& [address, what] : targets) {
      const std::string host = HostOf(address);
      EXPECT_TRUE(IsService(host)) << config_file_ << ": backend " << backend.name << " reaches "
                                   << address << ", but " << host << " is not a compose service";
      const std::optional<int> expected = ExpectedPort(host, what);
      if (expected.has_value()) {
        EXPECT_EQ(PortOf(address), expected)
            << config_file_ << ": backend " << backend.name << " reaches " << address << " but "
            << host << " serves " << what << " on port " << *expected << " (" << kCompose << ")";
      }
    }
  }
  ASSERT_TRUE(config_->redis.has_value()) << config_file_ << ": no redis.address";
  EXPECT_TRUE(IsService(config_->redis->host))
      << config_file_ << ": redis.address host " << config_->redis->host << " is not a service";
  EXPECT_EQ(config_->redis->port, 6379) << config_file_ << ": redis.address is not port 6379";
}

TEST_F(ComposeTest, PrometheusScrapesTheMetricsPortsAtSlashMetrics) {
  YAML::Node prometheus = services_["prometheus"];
  const std::string config_target = FlagValue(StringList(prometheus["command"]), "config.file")
                                        .value_or("/etc/prometheus/prometheus.yml");
  std::string config_source;
  std::vector<std::string> rule_targets;
  for (const Mount& mount : MountsOf(prometheus)) {
    if (mount.target == config_target) config_source = SourceOfMount(mount);
    if (absl::StrContains(mount.source, "prometheus/") &&
        absl::EndsWith(mount.source, "rules.yml")) {
      rule_targets.push_back(mount.target);
    }
  }
  ASSERT_EQ(config_source, SourcePath("deploy/compose/prometheus.yml"))
      << kCompose << ": Prometheus's --config.file=" << config_target
      << " is not mounted from ./compose/prometheus.yml";
  absl::StatusOr<YAML::Node> config = LoadYamlFile(config_source);
  ASSERT_TRUE(config.ok()) << config.status().message();

  ASSERT_FALSE(rule_targets.empty()) << kCompose << ": deploy/prometheus/tollgate-rules.yml is "
                                     << "not mounted into Prometheus";
  const std::vector<std::string> rule_files = StringList((*config)["rule_files"]);
  for (const std::string& target : rule_targets) {
    bool matched = false;
    for (const std::string& pattern : rule_files) {
      matched |= fnmatch(pattern.c_str(), target.c_str(), 0) == 0;
    }
    EXPECT_TRUE(matched) << "deploy/compose/prometheus.yml: rule_files ("
                         << absl::StrJoin(rule_files, ", ") << ") do not include " << target;
  }

  std::set<std::string> scraped;
  for (YAML::Node job : (*config)["scrape_configs"]) {
    const std::string name = job["job_name"].as<std::string>("");
    const std::string path = job["metrics_path"].as<std::string>("/metrics");
    for (YAML::Node static_config : job["static_configs"]) {
      for (const std::string& target : StringList(static_config["targets"])) {
        const std::string host = HostOf(target);
        EXPECT_TRUE(host == "localhost" || IsService(host))
            << "deploy/compose/prometheus.yml: job " << name << " scrapes " << target << ", but "
            << host << " is not a compose service";
        const std::optional<int> expected = ExpectedPort(host, "metrics");
        if (expected.has_value()) {
          EXPECT_EQ(PortOf(target), expected)
              << "deploy/compose/prometheus.yml: job " << name << " scrapes " << target << ", but "
              << host << " serves /metrics on port " << *expected;
        }
        if (host == "tollgate" || host == "tollgate-sim") {
          EXPECT_EQ(path, "/metrics")
              << "deploy/compose/prometheus.yml: job " << name << " has metrics_path " << path
              << "; Tollgate serves /metrics";
        }
        scraped.insert(host);
      }
    }
  }
  EXPECT_TRUE(scraped.count("tollgate"))
      << "deploy/compose/prometheus.yml: no job scrapes tollgate";
  EXPECT_TRUE(scraped.count("tollgate-sim"))
      << "deploy/compose/prometheus.yml: no job scrapes tollgate-sim";

  bool alerts_to_alertmanager = false;
  for (YAML::Node manager : (*config)["alerting"]["alertmanagers"]) {
    for (YAML::Node static_config : manager["static_configs"]) {
      for (const std::string& target : StringList(static_config["targets"])) {
        EXPECT_EQ(PortOf(target), ExpectedPort(HostOf(target), "api"))
            << "deploy/compose/prometheus.yml: alertmanager target " << target;
        alerts_to_alertmanager |= HostOf(target) == "alertmanager";
      }
    }
  }
  EXPECT_TRUE(alerts_to_alertmanager) << "deploy/compose/prometheus.yml: alerts go nowhere";
}

TEST_F(ComposeTest, GrafanaGetsProvisioningAndDashboardsWhereItsProviderLooks) {
  std::set<std::string> dashboard_targets;
  bool provisioning = false;
  for (const Mount& mount : MountsOf(services_["grafana"])) {
    provisioning |= mount.target == "/etc/grafana/provisioning" &&
                    SourceOfMount(mount) == SourcePath("deploy/grafana/provisioning");
    if (absl::EndsWith(mount.source, ".json")) dashboard_targets.insert(mount.target);
  }
  EXPECT_TRUE(provisioning) << kCompose << ": ./grafana/provisioning is not mounted at "
                            << "/etc/grafana/provisioning";
  const std::string provider_file =
      SourcePath("deploy/grafana/provisioning/dashboards/tollgate.yml");
  absl::StatusOr<YAML::Node> provider = LoadYamlFile(provider_file);
  ASSERT_TRUE(provider.ok()) << provider.status().message();
  const std::string path = (*provider)["providers"][0]["options"]["path"].as<std::string>("");
  for (const std::string& json : ListFiles(SourcePath("deploy/grafana"), {".json"})) {
    const std::string name = json.substr(json.rfind('/') + 1);
    EXPECT_TRUE(dashboard_targets.count(path + "/" + name))
        << kCompose << ": dashboard deploy/grafana/" << name << " is not mounted at " << path << "/"
        << name << ", where " << provider_file << " has Grafana look";
  }
  const std::string datasource_file =
      SourcePath("deploy/grafana/provisioning/datasources/prometheus.yml");
  absl::StatusOr<YAML::Node> datasources = LoadYamlFile(datasource_file);
  ASSERT_TRUE(datasources.ok()) << datasources.status().message();
  const std::string url = (*datasources)["datasources"][0]["url"].as<std::string>("");
  EXPECT_TRUE(IsService(HostOf(url))) << datasource_file << ": " << url << " is not a service";
  EXPECT_EQ(PortOf(url), ExpectedPort(HostOf(url), "api")) << datasource_file << ": " << url;
}

TEST_F(ComposeTest, EveryMountedFileExists) {
  for (const auto& service : services_) {
    for (const Mount& mount : MountsOf(service.second)) {
      if (!IsBindMount(mount)) continue;
      const std::string source = SourceOfMount(mount);
      const bool exists = FileExists(source) || std::filesystem::is_directory(source);
      EXPECT_TRUE(exists) << kCompose << ": service " << service.first.as<std::string>()
                          << " mounts " << mount.source << ", which does not exist (" << source
                          << ")";
    }
  }
}

}  // namespace
}  // namespace tollgate::deploy_test
