// The request pipeline: authenticate → route → call the backend → usage → pricing → metrics →
// response. Ingress adapters (gRPC now, HTTP later) translate their protocol to these calls.
//
//   std::shared_ptr<RequestHandle> h = pipeline.Generate(info, request, sink);
//   ...  // on client cancel: h->Cancel();
//
// Thread safety: Pipeline is thread-safe. A sink's methods for one request are never called
// concurrently, may run on any thread, and may run before Generate() returns.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accounting/budget/budget.h"
#include "accounting/budget/redis_budgets.h"
#include "accounting/gpu/gpu_meter.h"
#include "accounting/ledger/ledger.h"
#include "accounting/metrics.h"
#include "proxy/batch_router.h"
#include "proxy/cache_stage.h"
#include "proxy/config/config.h"
#include "proxy/kv_accounting.h"
#include "proxy/router.h"
#include "proxy/tokenizers.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

// Everything a request needs from one configuration generation. A request pins the snapshot it
// started with, so prices in force at its start are the ones it is charged at.
struct Snapshot {
  std::shared_ptr<const Config> config;
  std::shared_ptr<const Router> router;
  std::shared_ptr<const MetricsTable> metrics;
  ModelTokenizers tokenizers;           // by model name; a model without one is estimated
  std::shared_ptr<BudgetBook> budgets;  // null: no budgets
  // The server's budgets shared through Redis, outliving every snapshot; null: local only.
  SharedBudgets* shared_budgets = nullptr;
  Ledger* ledger = nullptr;  // the server's, outliving every snapshot; null: none
  // By backend name: the GPU meters of backends with a GPU cost (carried across reloads).
  absl::flat_hash_map<std::string, std::shared_ptr<GpuMeter>> gpu_meters;
  std::shared_ptr<const CacheStage> cache;  // null: no response cache
  std::shared_ptr<BatchRouter> batches;     // null: no backend batches calls
  KvStates
      kv;  // by backend name: KV-cache accounting of backends with `kv` (carried across reloads)
};

// Holds the current snapshot; swapped atomically on reload. Thread-safe.
class SnapshotHolder {
 public:
  std::shared_ptr<const Snapshot> Get() const ABSL_LOCKS_EXCLUDED(mu_);
  void Set(std::shared_ptr<const Snapshot> snapshot) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const Snapshot> current_ ABSL_GUARDED_BY(mu_);
};

// What the ingress knows about a call before the pipeline sees its body.
struct IngressInfo {
  absl::string_view authorization;  // the raw `authorization` header value
  absl::string_view request_id;     // client-supplied `x-request-id`, or empty
  absl::Time received = absl::Now();
  absl::Time deadline = absl::InfiniteFuture();
};

class GenerateSink {
 public:
  virtual ~GenerateSink() = default;
  // Streams only: a text delta to forward to the client, in order.
  virtual void OnDelta(v1::GenerateResponse delta) = 0;
  // Exactly once, last. `final` carries usage, cost, finish reason, backend and request id even
  // when `status` is an error (a cut-off stream is still charged); for unary calls it also has the
  // text.
  virtual void OnFinish(const absl::Status& status, v1::GenerateResponse final) = 0;
};

using EmbedDone = std::function<void(const absl::Status&, v1::EmbedResponse)>;

class RequestHandle {
 public:
  virtual ~RequestHandle() = default;
  // Thread-safe, idempotent. The sink's OnFinish follows.
  virtual void Cancel() = 0;
};

class Pipeline {
 public:
  explicit Pipeline(const SnapshotHolder* snapshots) : snapshots_(snapshots) {}

  // The sink must stay valid until its OnFinish has returned.
  std::shared_ptr<RequestHandle> Generate(const IngressInfo& info,
                                          const v1::GenerateRequest& request, bool stream,
                                          GenerateSink* sink);

  // `done` runs exactly once, possibly before Embed returns.
  void Embed(const IngressInfo& info, const v1::EmbedRequest& request, EmbedDone done);

 private:
  const SnapshotHolder* const snapshots_;
};

// Who sent a request: the tenant its API key belongs to, and the key's hex SHA-256.
struct Caller {
  std::string tenant;
  std::string key_sha256;
};

// The caller of an `authorization: Bearer <key>` value; UNAUTHENTICATED otherwise.
absl::StatusOr<Caller> AuthenticateCaller(const Config& config, absl::string_view authorization);

// Tenant name for an `authorization: Bearer <key>` value; UNAUTHENTICATED otherwise.
absl::StatusOr<std::string> Authenticate(const Config& config, absl::string_view authorization);

// INVALID_ARGUMENT for a request no backend could serve (no model, no input, empty chat).
absl::Status ValidateGenerateRequest(const v1::GenerateRequest& request);

// About 4 bytes per token, at least 1 for non-empty text: the estimate used when nothing better is
// known.
uint64_t EstimateTokens(uint64_t bytes);

}  // namespace tollgate
