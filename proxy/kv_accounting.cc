#include "proxy/kv_accounting.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "accounting/kv/backend_kv_scraper.h"
#include "proxy/common/log.h"
#include "proxy/http/client/http_client.h"

namespace tollgate {
namespace {

// A /metrics body read whole; the poller's thread waits for it (BackendKvPoller's contract).
class MetricsBody final : public http::ResponseHandler {
 public:
  bool OnHeaders(int status, const http::Headers& /*headers*/) override {
    status_ = status;
    return true;
  }
  bool OnBody(absl::string_view bytes) override {
    body_.append(bytes.data(), bytes.size());
    return true;
  }
  void OnComplete(absl::Status status) override {
    status_or_ = std::move(status);
    done_.Notify();
  }

  absl::StatusOr<std::string> Wait() {
    done_.WaitForNotification();
    if (!status_or_.ok()) return status_or_;
    if (status_ != 200) return absl::UnavailableError(absl::StrCat("/metrics answered ", status_));
    return std::move(body_);
  }

 private:
  // Written on the client's strand before done_ is notified, read after.
  int status_ = 0;
  std::string body_;
  absl::Status status_or_;
  absl::Notification done_;
};

bool RunsOn(const ModelConfig& model, const std::string& backend) {
  return model.backend == backend ||
         std::find(model.fallback_backends.begin(), model.fallback_backends.end(), backend) !=
             model.fallback_backends.end();
}

// Everything a state is built from, so that an unchanged backend keeps its state.
std::string Fingerprint(const BackendConfig& backend, const Config& config) {
  const KvConfig& kv = *backend.kv;
  std::string fingerprint = absl::StrCat(
      kv.gpu, "|", kv.gpu_count, "|", kv.gpu_memory_utilization, "|", kv.block_tokens, "|",
      kv.capacity_bytes, "|", kv.admission.enabled, "|", kv.admission.admit_ratio, "|",
      kv.admission.max_queue, "|", absl::FormatDuration(kv.admission.max_queue_wait));
  for (const ModelConfig& model : config.models) {
    if (!RunsOn(model, backend.name) || !model.kv_shape) continue;
    const ModelShape& shape = *model.kv_shape;
    absl::StrAppend(&fingerprint, "|", model.name, ":", shape.parameters, ",", shape.layers, ",",
                    shape.kv_heads, ",", shape.head_dim, ",", shape.bytes_per_element);
  }
  return fingerprint;
}

}  // namespace

struct KvAccounting::Poller {
  std::string fingerprint;  // URL and interval
  std::unique_ptr<http::HttpClient> client;
  std::unique_ptr<BackendKvPoller> poller;  // declared after the client it fetches with
};

KvBackendState::~KvBackendState() {
  admission.reset();  // its waiters fail before the tracker it holds goes
}

const KvCacheModel* KvBackendState::Model(const std::string& model) const {
  auto it = models.find(model);
  return it == models.end() ? nullptr : &it->second;
}

KvAccounting::KvAccounting(prometheus::Registry& registry, Scheduler& scheduler)
    : metrics_(registry), scheduler_(scheduler) {}

KvAccounting::~KvAccounting() {
  pollers_.clear();  // before the series they set
}

absl::StatusOr<KvStates> KvAccounting::StatesFor(const Config& config) {
  KvStates states;
  for (const BackendConfig& backend : config.backends) {
    if (!backend.kv) continue;
    const std::string fingerprint = Fingerprint(backend, config);
    auto running = running_.find(backend.name);
    if (running != running_.end() && running->second->fingerprint == fingerprint) {
      states[backend.name] = running->second;
      continue;
    }
    const KvConfig& kv = *backend.kv;
    absl::StatusOr<GpuSpec> gpu = FindGpu(kv.gpu);
    if (!gpu.ok()) {  // validated with the config
      return absl::InvalidArgumentError(
          absl::StrCat("backend ", backend.name, ": kv.gpu: ", gpu.status().message()));
    }
    auto state = std::make_shared<KvBackendState>();
    state->fingerprint = fingerprint;
    const KvCacheOptions options{.block_tokens = kv.block_tokens,
                                 .gpu_memory_utilization = kv.gpu_memory_utilization};
    uint64_t capacity_bytes = 0;
    bool first = true;
    for (const ModelConfig& model : config.models) {
      if (!RunsOn(model, backend.name) || !model.kv_shape) continue;
      KvCacheModel cache_model(*model.kv_shape, *gpu, kv.gpu_count, options);
      // The largest model leaves the least room: the backend's capacity is the smallest.
      capacity_bytes = first ? cache_model.capacity_bytes()
                             : std::min(capacity_bytes, cache_model.capacity_bytes());
      first = false;
      metrics_.AddModel(model.name, cache_model.bytes_per_token());
      state->models.emplace(model.name, cache_model);
    }
    // What the operator knows the backend to hold wins over what its GPU should leave.
    if (kv.capacity_bytes != 0) capacity_bytes = kv.capacity_bytes;
    const KvBackendSeries series = metrics_.AddBackend(backend.name);
    state->tracker = std::make_unique<KvTracker>(
        capacity_bytes, KvTrackerOptions{.block_tokens = kv.block_tokens, .series = series});
    if (kv.admission.enabled) {
      KvAdmissionOptions admission{.backend = backend.name,
                                   .admit_ratio = kv.admission.admit_ratio,
                                   .max_queue = kv.admission.max_queue,
                                   .max_queue_wait = kv.admission.max_queue_wait,
                                   .queue_depth = series.admission_queue_depth};
      state->admission =
          std::make_unique<KvAdmission>(*state->tracker, scheduler_, std::move(admission));
    }
    states[backend.name] = std::move(state);
  }
  pending_polls_.clear();
  for (const BackendConfig& backend : config.backends) {
    if (backend.kv && !backend.kv->metrics_url.empty()) {
      pending_polls_.emplace_back(backend.name, *backend.kv);
    }
  }
  pending_ = states;
  return states;
}

void KvAccounting::Commit() {
  running_ = std::move(pending_);
  absl::flat_hash_map<std::string, std::unique_ptr<Poller>> kept;
  for (const auto& [backend, kv] : pending_polls_) {
    const std::string fingerprint =
        absl::StrCat(kv.metrics_url, "|", absl::FormatDuration(kv.poll_interval));
    auto it = pollers_.find(backend);
    if (it != pollers_.end() && it->second->fingerprint == fingerprint) {
      kept[backend] = std::move(it->second);
      pollers_.erase(it);
    }
  }
  pollers_.clear();  // stops the replaced and dropped ones, removing their series
  for (const auto& [backend, kv] : pending_polls_) {
    if (kept.contains(backend)) continue;
    auto entry = std::make_unique<Poller>();
    entry->fingerprint = absl::StrCat(kv.metrics_url, "|", absl::FormatDuration(kv.poll_interval));
    const BaseUrl& url = kv.metrics_endpoint;
    http::HttpClientOptions options;
    options.max_connections = 1;  // one poll at a time
    absl::StatusOr<std::unique_ptr<http::HttpClient>> client =
        http::HttpClient::Create({.tls = url.tls, .host = url.host, .port = url.port}, options);
    if (!client.ok()) {
      Log("backend ", backend, ": kv.metrics_url: ", client.status().message());
      continue;
    }
    entry->client = *std::move(client);
    http::HttpClient* http_client = entry->client.get();
    // A poll answers within the interval (at most 5 s), so Stop never waits long.
    const absl::Duration timeout = std::min(kv.poll_interval, absl::Seconds(5));
    auto fetch = [http_client, path = url.path_prefix, timeout]() {
      auto body = std::make_shared<MetricsBody>();
      http::ClientRequest request;
      request.method = "GET";
      request.target = path;
      request.deadline = absl::Now() + timeout;
      http_client->Send(std::move(request), body);
      return body->Wait();
    };
    entry->poller = std::make_unique<BackendKvPoller>(
        std::move(fetch),
        BackendKvPollerOptions{
            .backend = backend, .interval = kv.poll_interval, .metrics = &metrics_});
    entry->poller->Start();
    kept[backend] = std::move(entry);
  }
  pollers_ = std::move(kept);
}

}  // namespace tollgate
