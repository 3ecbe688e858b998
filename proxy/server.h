// The running proxy: gRPC ingress, the pipeline, backends and the /metrics endpoint, built from a
// config file and reloadable from it.
//
//   TG_ASSIGN_OR_RETURN(auto server, ProxyServer::Start("tollgate.yaml"));
//   server->Reload();                                   // on SIGHUP
//   server->Shutdown(config.listeners.drain_timeout);   // on SIGTERM
//
// Thread safety: Reload and Shutdown may be called from any thread, not concurrently with each
// other. Requests keep the snapshot they started with, so a reload never disturbs them.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "accounting/budget/budget_metrics.h"
#include "accounting/budget/redis_budgets.h"
#include "accounting/ledger/ledger.h"
#include "accounting/metrics.h"
#include "cache/redis_client.h"
#include "cache/redis_tier.h"
#include "grpcpp/server.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "proxy/batcher/batch_metrics.h"
#include "proxy/http/server/http_server.h"
#include "proxy/ingress/grpc_ingress.h"
#include "proxy/ingress/http_ingress.h"
#include "proxy/kv_accounting.h"
#include "proxy/pipeline.h"
#include "proxy/tokenizers.h"

namespace tollgate {

class ProxyServer {
 public:
  static absl::StatusOr<std::unique_ptr<ProxyServer>> Start(const std::string& config_path);
  ~ProxyServer();

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  int http_port() const { return http_server_ != nullptr ? http_server_->port() : 0; }  // 0: off
  std::shared_ptr<const Config> config() const { return snapshots_.Get()->config; }

  // Re-reads the config file. On any error the running config stays in force and the error is
  // returned; prices, tenants, models and backends change atomically on success. Listener
  // addresses need a restart (a change is logged and ignored).
  absl::Status Reload();

  // Stops accepting calls, lets calls in flight finish for up to `drain`, then cancels the rest.
  void Shutdown(absl::Duration drain);

 private:
  ProxyServer() = default;
  absl::StatusOr<std::shared_ptr<const Snapshot>> BuildSnapshot(
      std::shared_ptr<const Config> config, const Snapshot* previous);

  // Opens the ledger (when configured) after reading what it already holds into *spent.
  absl::Status OpenLedger(const Config& config, std::vector<LedgerRecord>* spent);
  // Connects to the config's Redis, if any: the cache's shared tier and the shared budgets.
  void ConnectRedis(const Config& config);
  // The GPU meters of `config`'s backends with a GPU cost: a backend whose cost settings did not
  // change keeps its meter (and what is in flight on it).
  absl::StatusOr<absl::flat_hash_map<std::string, std::shared_ptr<GpuMeter>>> GpuMetersFor(
      const Config& config);
  // Every few seconds, rolls the budgets' windows so idle budgets' gauges drop at midnight, and
  // books idle GPU time.
  void RollBudgetWindows();

  std::string config_path_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ProxyMetrics> metrics_;
  std::unique_ptr<BudgetMetrics> budget_metrics_;
  std::unique_ptr<BatchMetrics> batch_metrics_;
  std::unique_ptr<KvAccounting> kv_;  // trackers carried across reloads like the GPU meters
  std::unique_ptr<Ledger> ledger_;
  std::shared_ptr<CacheGauges> cache_gauges_;
  // Redis, from the config at start (changes need a restart); all null without one. Declared
  // before the snapshots, which point at them, and the client before its users.
  std::unique_ptr<RedisMetrics> redis_metrics_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<RedisCacheTier> shared_cache_tier_;
  std::unique_ptr<SharedBudgets> shared_budgets_;
  struct MeterEntry {
    std::string fingerprint;  // the settings it was made with
    std::shared_ptr<GpuMeter> meter;
  };
  // By backend: the meters of the snapshot in force, and those of the one being built (they
  // replace the first only if it is set, so that a failed reload keeps the running meters).
  absl::flat_hash_map<std::string, MeterEntry> gpu_meters_;
  absl::flat_hash_map<std::string, MeterEntry> pending_gpu_meters_;
  std::thread budget_roller_;
  absl::Notification stopping_;
  SnapshotHolder snapshots_;
  TokenizerCache tokenizers_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpIngress> http_ingress_;
  std::unique_ptr<http::HttpServer> http_server_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace tollgate
