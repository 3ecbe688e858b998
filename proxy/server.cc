#include "proxy/server.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "accounting/ledger/reader.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "proxy/common/log.h"
#include "proxy/common/status_macros.h"

namespace tollgate {

absl::StatusOr<std::shared_ptr<const Snapshot>> ProxyServer::BuildSnapshot(
    std::shared_ptr<const Config> config, const Snapshot* previous) {
  auto snapshot = std::make_shared<Snapshot>();
  TG_ASSIGN_OR_RETURN(snapshot->router,
                      Router::Build(*config, previous ? previous->router.get() : nullptr));
  std::vector<std::string> models;
  for (const ModelConfig& m : config->models) models.push_back(m.name);
  std::vector<std::string> backends;
  for (const BackendConfig& b : config->backends) backends.push_back(b.name);
  std::vector<std::string> plans;
  for (const ShadowPlan& plan : config->shadow_plans) plans.push_back(plan.name);
  snapshot->metrics = metrics_->BuildTable(config->tenant_names, models, backends, plans);
  // Queues of batchable calls: a new set per snapshot (what waits in the old ones is still sent).
  snapshot->batches = BatchRouter::Create(*config, snapshot->metrics, batch_metrics_.get());
  TG_ASSIGN_OR_RETURN(snapshot->gpu_meters, GpuMetersFor(*config));
  TG_ASSIGN_OR_RETURN(snapshot->kv, kv_->StatesFor(*config));
  TG_ASSIGN_OR_RETURN(snapshot->tokenizers, tokenizers_.ForConfig(*config));
  BudgetBookOptions budget_options;
  budget_options.metrics = budget_metrics_.get();
  absl::StatusOr<std::shared_ptr<BudgetBook>> budgets = BudgetBook::Build(
      config->budgets, std::move(budget_options), previous ? previous->budgets.get() : nullptr);
  if (!budgets.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("budgets: ", budgets.status().message()));
  }
  snapshot->budgets = *std::move(budgets);
  snapshot->shared_budgets = shared_budgets_.get();
  snapshot->ledger = ledger_.get();
  if (config->cache.enabled) {
    // The cache and its flights carry over a reload that keeps its options.
    snapshot->cache = previous != nullptr && previous->cache != nullptr &&
                              previous->cache->options() == config->cache
                          ? previous->cache
                          : CacheStage::Create(config->cache, shared_cache_tier_.get());
  }
  snapshot->config = std::move(config);
  return snapshot;
}

absl::StatusOr<std::unique_ptr<ProxyServer>> ProxyServer::Start(const std::string& config_path) {
  TG_ASSIGN_OR_RETURN(std::shared_ptr<const Config> config, LoadConfigFile(config_path));
  std::unique_ptr<ProxyServer> s(new ProxyServer);
  s->config_path_ = config_path;
  s->registry_ = std::make_shared<prometheus::Registry>();
  s->metrics_ = std::make_unique<ProxyMetrics>(*s->registry_);
  s->budget_metrics_ = std::make_unique<BudgetMetrics>(*s->registry_);
  s->batch_metrics_ = std::make_unique<BatchMetrics>(*s->registry_);
  s->kv_ = std::make_unique<KvAccounting>(*s->registry_);
  s->cache_gauges_ = std::make_shared<CacheGauges>();
  std::vector<LedgerRecord> spent;
  TG_RETURN_IF_ERROR(s->OpenLedger(*config, &spent));
  s->ConnectRedis(*config);
  TG_ASSIGN_OR_RETURN(auto snapshot, s->BuildSnapshot(config, nullptr));
  // Spend before the restart still counts: the ledger's records replayed into the budgets.
  for (const LedgerRecord& record : spent) {
    snapshot->budgets->AddSpent(record.tenant, record.key_id, record.total_nano_usd, record.time);
  }
  s->cache_gauges_->Set(snapshot->cache);
  s->snapshots_.Set(std::move(snapshot));
  s->gpu_meters_ = std::move(s->pending_gpu_meters_);
  s->kv_->Commit();
  s->budget_roller_ = std::thread([server = s.get()] { server->RollBudgetWindows(); });
  s->pipeline_ = std::make_unique<Pipeline>(&s->snapshots_);
  s->service_ = std::make_unique<InferenceService>(s->pipeline_.get());

  try {  // prometheus-cpp reports a failed bind by throwing; this is start-up, not the data path
    s->exposer_ = std::make_unique<prometheus::Exposer>(config->listeners.metrics_address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("listeners.metrics_address \"",
                                               config->listeners.metrics_address,
                                               "\": cannot listen: ", e.what()));
  }
  s->exposer_->RegisterCollectable(s->registry_);
  s->exposer_->RegisterCollectable(s->cache_gauges_);
  const std::vector<int> metrics_ports = s->exposer_->GetListeningPorts();
  s->metrics_port_ = metrics_ports.empty() ? 0 : metrics_ports.front();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config->listeners.grpc_address, grpc::InsecureServerCredentials(),
                           &s->grpc_port_);
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "listeners.grpc_address \"", config->listeners.grpc_address, "\": cannot listen"));
  }
  if (!config->listeners.http_address.empty()) {
    s->http_ingress_ = std::make_unique<HttpIngress>(s->pipeline_.get(), &s->snapshots_);
    http::ServerOptions options;
    options.address = config->listeners.http_address;
    options.max_body_bytes = config->listeners.max_request_body_bytes;
    options.error_body = &HttpIngress::ErrorBody;
    HttpIngress* ingress = s->http_ingress_.get();
    absl::StatusOr<std::unique_ptr<http::HttpServer>> http_server = http::HttpServer::Start(
        std::move(options),
        [ingress](http::Request request, std::shared_ptr<http::ResponseWriter> writer) {
          ingress->Handle(std::move(request), std::move(writer));
        });
    if (!http_server.ok()) {
      return absl::Status(http_server.status().code(),
                          absl::StrCat("listeners.http_address: ", http_server.status().message()));
    }
    s->http_server_ = *std::move(http_server);
  }
  return s;
}

void ProxyServer::ConnectRedis(const Config& config) {
  if (!config.redis.has_value()) return;
  const RedisSettings& settings = *config.redis;
  redis_metrics_ = std::make_unique<RedisMetrics>(*registry_, "redis");
  RedisOptions options;
  options.host = settings.host;
  options.port = settings.port;
  options.password = settings.password;
  options.db = static_cast<int>(settings.db);
  options.connect_timeout = settings.connect_timeout;
  options.command_timeout = settings.command_timeout;
  redis_ = NewRedisClient(std::move(options), redis_metrics_.get());
  shared_cache_tier_ =
      NewRedisCacheTier(redis_.get(), {.key_prefix = settings.key_prefix + "cache:",
                                       .ttl = config.cache.ttl,
                                       .max_entry_bytes = config.cache.max_entry_bytes,
                                       .metrics = redis_metrics_.get()});
  if (settings.shared_budgets) {
    shared_budgets_ =
        NewSharedBudgets(redis_.get(), {.key_prefix = settings.key_prefix + "budget:"});
  }
  // Not waiting long: a Redis that is down must not stop Tollgate from serving.
  if (!redis_->WaitUntilUp(absl::Seconds(1))) {
    Log("redis ", settings.host, ":", settings.port,
        " is not answering; serving with the in-memory cache and local budgets until it does");
  }
}

absl::Status ProxyServer::OpenLedger(const Config& config, std::vector<LedgerRecord>* spent) {
  if (config.ledger.directory.empty()) return absl::OkStatus();
  LedgerOptions options = config.ledger;
  prometheus::Counter& write_errors = prometheus::BuildCounter()
                                          .Name("tollgate_ledger_write_errors_total")
                                          .Help("Failed ledger writes (the records stay buffered).")
                                          .Register(*registry_)
                                          .Add({});
  prometheus::Counter& dropped = prometheus::BuildCounter()
                                     .Name("tollgate_ledger_dropped_records_total")
                                     .Help("Ledger records dropped: the buffer was full.")
                                     .Register(*registry_)
                                     .Add({});
  options.on_write_error = [&write_errors] { write_errors.Increment(); };
  options.on_dropped_record = [&dropped] { dropped.Increment(); };
  // Read before opening: a line the new ledger is writing would look torn.
  absl::StatusOr<std::vector<std::string>> files =
      ListLedgerFiles(options.directory, options.file_prefix);
  if (files.ok()) {
    ReadStats stats;
    TG_RETURN_IF_ERROR(ReadLedgerFiles(
        *files, [spent](const LedgerRecord& record) { spent->push_back(record); }, &stats));
    Log("ledger: replayed ", stats.records, " records from ", stats.files, " files in ",
        options.directory);
  } else if (!absl::IsNotFound(files.status())) {
    return absl::Status(files.status().code(),
                        absl::StrCat("ledger.directory: ", files.status().message()));
  }
  absl::StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(std::move(options));
  if (!ledger.ok()) {
    return absl::Status(ledger.status().code(),
                        absl::StrCat("ledger.directory: ", ledger.status().message()));
  }
  ledger_ = *std::move(ledger);
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_map<std::string, std::shared_ptr<GpuMeter>>>
ProxyServer::GpuMetersFor(const Config& config) {
  absl::flat_hash_map<std::string, std::shared_ptr<GpuMeter>> meters;
  absl::flat_hash_map<std::string, MeterEntry> kept;
  for (const BackendConfig& backend : config.backends) {
    if (!backend.gpu_cost.has_value()) continue;
    const GpuCostSpec& spec = *backend.gpu_cost;
    const std::string fingerprint = absl::StrCat(
        spec.gpu_type, "|", spec.gpu_count, "|", spec.usd_per_gpu_hour, "|", spec.watts, "|",
        spec.usd_per_kwh, "|", spec.prefill_weight, "|", spec.decode_weight);
    auto it = gpu_meters_.find(backend.name);
    if (it != gpu_meters_.end() && it->second.fingerprint == fingerprint) {
      kept[backend.name] = it->second;
    } else {
      const ProxyMetrics::GpuSeries series = metrics_->GpuCounters(backend.name);
      absl::StatusOr<std::unique_ptr<GpuMeter>> meter =
          NewGpuMeter(spec, absl::Now, {series.idle_cost_usd, series.energy_joules});
      if (!meter.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("backend ", backend.name, ": gpu_cost: ", meter.status().message()));
      }
      kept[backend.name] = {fingerprint, *std::move(meter)};
    }
    meters[backend.name] = kept[backend.name].meter;
  }
  pending_gpu_meters_ = std::move(kept);  // in force once the snapshot is
  return meters;
}

void ProxyServer::RollBudgetWindows() {
  while (!stopping_.WaitForNotificationWithTimeout(absl::Seconds(5))) {
    const std::shared_ptr<const Snapshot> snapshot = snapshots_.Get();
    snapshot->budgets->RollWindows(absl::Now());
    // Spend settled while Redis was unreachable reaches the shared budgets once it is back.
    if (shared_budgets_ != nullptr) shared_budgets_->FlushQueued();
    // Books idle GPU time, so that the idle-cost series moves while nothing runs.
    for (const auto& [name, meter] : snapshot->gpu_meters) meter->Snapshot();
  }
}

ProxyServer::~ProxyServer() {
  if (http_server_ != nullptr) http_server_->Shutdown(absl::ZeroDuration());
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (budget_roller_.joinable()) budget_roller_.join();
  if (ledger_ != nullptr) ledger_->Close().IgnoreError();  // logged by the ledger
}

absl::Status ProxyServer::Reload() {
  absl::StatusOr<std::shared_ptr<const Config>> config = LoadConfigFile(config_path_);
  absl::StatusOr<std::shared_ptr<const Snapshot>> snapshot =
      config.ok() ? BuildSnapshot(*config, snapshots_.Get().get()) : config.status();
  metrics_->RecordConfigReload(snapshot.ok());
  if (!snapshot.ok()) {
    Log("config reload failed, keeping the running config: ", snapshot.status().message());
    return snapshot.status();
  }
  if ((*snapshot)->config->redis != snapshots_.Get()->config->redis) {
    Log("config reload: redis settings changed; they take effect at the next restart");
  }
  const ListenerConfig& running = snapshots_.Get()->config->listeners;
  const ListenerConfig& loaded = (*snapshot)->config->listeners;
  if (running.grpc_address != loaded.grpc_address ||
      running.metrics_address != loaded.metrics_address) {
    Log("config reload: listener addresses changed; they take effect at the next restart");
  }
  cache_gauges_->Set((*snapshot)->cache);
  snapshots_.Set(*std::move(snapshot));
  gpu_meters_ = std::move(pending_gpu_meters_);
  kv_->Commit();
  Log("config reloaded from ", config_path_);
  return absl::OkStatus();
}

void ProxyServer::Shutdown(absl::Duration drain) {
  if (http_server_ != nullptr) http_server_->Shutdown(drain);
  if (server_ == nullptr) return;
  server_->GetHealthCheckService()->Shutdown();  // NOT_SERVING, so load balancers move away
  server_->Shutdown(absl::ToChronoTime(absl::Now() + drain));
  server_->Wait();
  server_.reset();
  // Every request has ended and recorded itself: nothing appended is lost.
  if (ledger_ != nullptr) {
    if (absl::Status closed = ledger_->Close(); !closed.ok()) {
      Log("ledger: closing: ", closed.message());
    }
  }
}

}  // namespace tollgate
