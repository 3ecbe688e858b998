// KV-cache accounting of the backends that declare `kv`: per backend one KvTracker (the bytes its
// requests in flight hold) and its optional KvAdmission, and per model on it a KvCacheModel; the
// series in KvMetrics. Backends with kv.metrics_url also have a BackendKvPoller reading the
// backend's own usage (tollgate_backend_kv_cache_usage_ratio{backend}).
//
//   KvAccounting kv(registry);
//   TG_ASSIGN_OR_RETURN(snapshot->kv, kv.StatesFor(*config));  // pending until Commit
//   ... snapshot in force: kv.Commit();
//   const KvBackendState* state = FindKvState(*snapshot, "gpu-a");
//
// Capacity. A backend's tracker is sized for the largest model that may run on it (its models and
// those naming it as a fallback): GPU memory × gpu_count × gpu_memory_utilization less that model's
// bf16 weights, since one server holds one model's weights at a time and the largest leaves the
// least room.
//
// Reloads. A backend whose kv settings and models' shapes did not change keeps its state (and the
// footprints in flight on it); any change builds a new one, which requests started afterwards use.
// A state lives while a snapshot or a request still holds it. Series of a backend that drops `kv`
// keep their last values until restart (removing them under requests in flight is not safe).
// Pollers are not part of a state: Commit replaces those whose URL or interval changed, stopping
// the old one first (its series goes with it), on the reloading thread.
//
// Thread safety: StatesFor and Commit are called by the server, one at a time (start-up, reload).
// The states are immutable after building; their tracker and admission are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "accounting/kv/kv_admission.h"
#include "accounting/kv/kv_metrics.h"
#include "accounting/kv/kv_model.h"
#include "accounting/kv/kv_tracker.h"
#include "prometheus/registry.h"
#include "proxy/common/scheduler.h"
#include "proxy/config/config.h"

namespace tollgate {

// One backend's KV-cache accounting, as the pipeline reads it.
struct KvBackendState {
  std::string fingerprint;  // the settings it was built from
  std::unique_ptr<KvTracker> tracker;
  std::unique_ptr<KvAdmission> admission;  // null: admission off; ends before the tracker
  absl::flat_hash_map<std::string, KvCacheModel> models;  // by model name (models[].name)

  ~KvBackendState();
  // The model `model` on this backend, or null when it has no shape here.
  const KvCacheModel* Model(const std::string& model) const;
};

// By backend name: the states of backends with `kv`.
using KvStates = absl::flat_hash_map<std::string, std::shared_ptr<const KvBackendState>>;

class KvAccounting {
 public:
  // `scheduler` times out admission waits; a fake in tests. REQUIRES: it outlives the states.
  explicit KvAccounting(prometheus::Registry& registry, Scheduler& scheduler = RealScheduler());
  ~KvAccounting();

  // The states for `config`: kept where nothing changed, else new. In force after Commit.
  absl::StatusOr<KvStates> StatesFor(const Config& config);
  // The states last built become the running ones (their predecessors end with their last user),
  // and the pollers follow the config they were built for.
  void Commit();

 private:
  struct Poller;
  KvMetrics metrics_;
  Scheduler& scheduler_;
  KvStates running_;
  KvStates pending_;
  std::vector<std::pair<std::string, KvConfig>> pending_polls_;  // backend, kv; with metrics_url
  absl::flat_hash_map<std::string, std::unique_ptr<Poller>> pollers_;  // by backend
};

}  // namespace tollgate
