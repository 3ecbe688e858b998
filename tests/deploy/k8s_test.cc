// deploy/k8s: the Deployment, Service, ServiceMonitor, HorizontalPodAutoscaler and Redis agree with
// the config in the ConfigMap and with each other (ports, port names, labels, probe ports, mounts).
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/deploy/deploy_files.h"

namespace tollgate::deploy_test {
namespace {

// True when every label of `selector` is in `labels`.
bool Selects(YAML::Node selector, YAML::Node labels) {
  if (!selector.IsMap() || selector.size() == 0) return false;
  for (const auto& label : selector) {
    if (labels[label.first.as<std::string>()].as<std::string>("") != label.second.as<std::string>())
      return false;
  }
  return true;
}

class KubernetesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    objects_ = LoadK8sObjects();
    deployment_ = FindK8sObject(objects_, "Deployment", "tollgate");
    service_ = FindK8sObject(objects_, "Service", "tollgate");
    config_map_ = FindK8sObject(objects_, "ConfigMap", "tollgate-config");
    ASSERT_NE(deployment_, nullptr) << "deploy/k8s: no Deployment named tollgate";
    ASSERT_NE(service_, nullptr) << "deploy/k8s: no Service named tollgate";
    ASSERT_NE(config_map_, nullptr) << "deploy/k8s: no ConfigMap named tollgate-config";
    container_ = deployment_->node["spec"]["template"]["spec"]["containers"][0];
    ASSERT_TRUE(container_.IsMap()) << deployment_->file << ": the Deployment has no container";
    for (YAML::Node port : container_["ports"]) {
      container_ports_[port["name"].as<std::string>("")] = port["containerPort"].as<int>(0);
    }
    absl::StatusOr<std::shared_ptr<const Config>> config =
        ParseConfigYaml(config_map_->node["data"]["tollgate.yaml"].as<std::string>(""));
    ASSERT_TRUE(config.ok()) << config_map_->file << ": " << config.status().message();
    config_ = *config;
  }

  // A port given by number or by a container port's name; nullopt when the name is unknown.
  std::optional<int> ContainerPort(YAML::Node port) const {
    int number = 0;
    if (YAML::convert<int>::decode(port, number)) return number;
    const auto it = container_ports_.find(port.as<std::string>(""));
    if (it == container_ports_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<K8sObject> objects_;
  const K8sObject* deployment_ = nullptr;
  const K8sObject* service_ = nullptr;
  const K8sObject* config_map_ = nullptr;
  YAML::Node container_;
  std::map<std::string, int> container_ports_;  // by name
  std::shared_ptr<const Config> config_;
};

TEST_F(KubernetesTest, ContainerPortsAreTheConfigMapsListeners) {
  const std::map<std::string, std::string> listeners = {
      {"grpc", config_->listeners.grpc_address},
      {"http", config_->listeners.http_address},
      {"metrics", config_->listeners.metrics_address}};
  for (const auto& [name, address] : listeners) {
    const auto it = container_ports_.find(name);
    ASSERT_NE(it, container_ports_.end())
        << deployment_->file << ": the tollgate container has no port named " << name;
    EXPECT_EQ(it->second, PortOf(address))
        << deployment_->file << ": container port " << name << " is " << it->second
        << ", but the ConfigMap's listeners." << name << "_address is " << address;
  }
  EXPECT_EQ(container_ports_.size(), listeners.size())
      << deployment_->file << ": the container declares ports Tollgate does not listen on";
}

TEST_F(KubernetesTest, ProbesAskTheGrpcHealthServiceOnTheGrpcPort) {
  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    YAML::Node grpc = container_[probe]["grpc"];
    ASSERT_TRUE(grpc.IsMap()) << deployment_->file << ": " << probe
                              << " is not a grpc probe (Tollgate serves grpc.health.v1)";
    EXPECT_EQ(ContainerPort(grpc["port"]), PortOf(config_->listeners.grpc_address))
        << deployment_->file << ": " << probe << " probes port " << grpc["port"].as<std::string>("")
        << ", not listeners.grpc_address " << config_->listeners.grpc_address;
  }
}

TEST_F(KubernetesTest, ContainerHasResourcesAndRunsTheMountedConfig) {
  for (const char* kind : {"requests", "limits"}) {
    for (const char* resource : {"cpu", "memory"}) {
      EXPECT_TRUE(container_["resources"][kind][resource].IsScalar())
          << deployment_->file << ": resources." << kind << "." << resource << " is not set";
    }
  }
  const std::vector<std::string> args = StringList(container_["args"]);
  const std::optional<std::string> config_path = FlagValue(args, "config");
  ASSERT_TRUE(config_path.has_value()) << deployment_->file << ": args have no --config";
  YAML::Node pod = deployment_->node["spec"]["template"]["spec"];
  bool mounted = false;
  for (YAML::Node mount : container_["volumeMounts"]) {
    for (YAML::Node volume : pod["volumes"]) {
      if (volume["name"].as<std::string>("") != mount["name"].as<std::string>("") ||
          volume["configMap"]["name"].as<std::string>("") != "tollgate-config") {
        continue;
      }
      for (YAML::Node item : volume["configMap"]["items"]) {
        const std::string path = absl::StrCat(mount["mountPath"].as<std::string>(""), "/",
                                              item["path"].as<std::string>(""));
        mounted |= path == *config_path && item["key"].as<std::string>("") == "tollgate.yaml";
      }
    }
  }
  EXPECT_TRUE(mounted) << deployment_->file << ": --config=" << *config_path
                       << " is not the ConfigMap tollgate-config's key tollgate.yaml";
}

TEST_F(KubernetesTest, ServiceSelectsThePodsAndTargetsTheirPorts) {
  EXPECT_TRUE(Selects(service_->node["spec"]["selector"],
                      deployment_->node["spec"]["template"]["metadata"]["labels"]))
      << service_->file << ": the Service's selector does not match the Deployment's pod labels";
  std::map<std::string, int> targets;
  for (YAML::Node port : service_->node["spec"]["ports"]) {
    const std::string name = port["name"].as<std::string>("");
    const std::optional<int> target = ContainerPort(port["targetPort"]);
    EXPECT_TRUE(target.has_value() && container_ports_.count(name) &&
                *target == container_ports_[name])
        << service_->file << ": Service port " << name << " targets "
        << port["targetPort"].as<std::string>("") << ", not the container port named " << name;
    if (target.has_value()) targets[name] = *target;
  }
  for (const char* name : {"grpc", "http", "metrics"}) {
    EXPECT_TRUE(targets.count(name)) << service_->file << ": no Service port named " << name;
  }
}

TEST_F(KubernetesTest, ServiceMonitorScrapesTheMetricsPortAtSlashMetrics) {
  const K8sObject* monitor = FindK8sObject(objects_, "ServiceMonitor", "tollgate");
  ASSERT_NE(monitor, nullptr) << "deploy/k8s: no ServiceMonitor named tollgate";
  EXPECT_EQ(monitor->node["apiVersion"].as<std::string>(""), "monitoring.coreos.com/v1");
  EXPECT_TRUE(Selects(monitor->node["spec"]["selector"]["matchLabels"],
                      service_->node["metadata"]["labels"]))
      << monitor->file << ": the ServiceMonitor's selector does not match the tollgate Service";
  ASSERT_GT(monitor->node["spec"]["endpoints"].size(), 0u) << monitor->file << ": no endpoints";
  for (YAML::Node endpoint : monitor->node["spec"]["endpoints"]) {
    const std::string port = endpoint["port"].as<std::string>("");
    std::optional<int> target;
    for (YAML::Node service_port : service_->node["spec"]["ports"]) {
      if (service_port["name"].as<std::string>("") == port)
        target = ContainerPort(service_port["targetPort"]);
    }
    EXPECT_TRUE(target.has_value()) << monitor->file << ": endpoint port " << port
                                    << " is not a port name of the tollgate Service";
    EXPECT_EQ(target, PortOf(config_->listeners.metrics_address))
        << monitor->file << ": endpoint port " << port
        << " does not reach listeners.metrics_address " << config_->listeners.metrics_address;
    EXPECT_EQ(endpoint["path"].as<std::string>("/metrics"), "/metrics")
        << monitor->file << ": Tollgate serves /metrics";
  }
}

TEST_F(KubernetesTest, AutoscalerScalesTheDeploymentOnCpu) {
  const K8sObject* hpa = FindK8sObject(objects_, "HorizontalPodAutoscaler", "tollgate");
  ASSERT_NE(hpa, nullptr) << "deploy/k8s: no HorizontalPodAutoscaler named tollgate";
  EXPECT_EQ(hpa->node["apiVersion"].as<std::string>(""), "autoscaling/v2");
  YAML::Node target = hpa->node["spec"]["scaleTargetRef"];
  EXPECT_EQ(target["kind"].as<std::string>(""), "Deployment") << hpa->file;
  EXPECT_EQ(target["name"].as<std::string>(""), "tollgate") << hpa->file;
  bool cpu = false;
  for (YAML::Node metric : hpa->node["spec"]["metrics"]) {
    cpu |= metric["resource"]["name"].as<std::string>("") == "cpu";
  }
  EXPECT_TRUE(cpu) << hpa->file << ": no CPU metric";
  EXPECT_TRUE(container_["resources"]["requests"]["cpu"].IsScalar())
      << deployment_->file << ": CPU utilization needs resources.requests.cpu";
  // A count in the Deployment would be applied again on every `kubectl apply`, undoing the
  // autoscaler's.
  EXPECT_FALSE(deployment_->node["spec"]["replicas"].IsDefined())
      << deployment_->file << ": spec.replicas fights the HorizontalPodAutoscaler; leave it out";
}

TEST_F(KubernetesTest, RedisServiceIsTheConfigsRedisAddress) {
  ASSERT_TRUE(config_->redis.has_value()) << config_map_->file << ": no redis.address";
  const K8sObject* service = FindK8sObject(objects_, "Service", config_->redis->host);
  ASSERT_NE(service, nullptr) << config_map_->file << ": redis.address host "
                              << config_->redis->host << " is not a Service in deploy/k8s";
  const K8sObject* redis = FindK8sObject(objects_, "Deployment", config_->redis->host);
  ASSERT_NE(redis, nullptr) << "deploy/k8s: no Deployment named " << config_->redis->host;
  EXPECT_TRUE(Selects(service->node["spec"]["selector"],
                      redis->node["spec"]["template"]["metadata"]["labels"]))
      << service->file << ": the redis Service does not select the redis pods";
  bool port_found = false;
  for (YAML::Node port : service->node["spec"]["ports"]) {
    port_found |= port["port"].as<int>(0) == config_->redis->port;
  }
  EXPECT_TRUE(port_found) << service->file << ": the redis Service has no port "
                          << config_->redis->port;
}

}  // namespace
}  // namespace tollgate::deploy_test
