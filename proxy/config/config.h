// The validated, frozen configuration the proxy runs on.
//
//   absl::StatusOr<std::shared_ptr<const Config>> config = LoadConfigFile("tollgate.yaml");
//
// A Config is immutable once built and is shared read-only between threads; a reload builds a new
// one and swaps the pointer. The hot path reads these plain structs, never the YAML or the proto.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "accounting/budget/budget.h"
#include "accounting/gpu/gpu_cost_spec.h"
#include "accounting/gpu/shadow_pricing.h"
#include "accounting/kv/presets.h"
#include "accounting/ledger/ledger.h"
#include "accounting/pricing.h"
#include "tollgate/v1/config.pb.h"

namespace tollgate {

// Name of the embedded simulator backend that models without a `backend` use.
inline constexpr absl::string_view kEmbeddedSimBackend = "sim";

struct ListenerConfig {
  std::string grpc_address;     // host:port
  std::string metrics_address;  // host:port
  absl::Duration drain_timeout;
  std::string http_address;  // host:port; empty: no HTTP ingress
  uint64_t max_request_body_bytes = 4 << 20;
};

struct ArchitectureConfig {  // all zero when the config does not give one
  uint64_t parameters = 0;
  uint32_t layers = 0;
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t bytes_per_element = 2;
};

enum class CachePolicy { kDeterministic, kAlways, kNever };

struct ModelCacheConfig {
  CachePolicy policy = CachePolicy::kDeterministic;
  bool shared_across_tenants = false;
  double hit_cost_fraction = 0;  // in [0, 1]
};

struct ModelConfig {
  std::string name;
  std::string backend;        // never empty after loading
  std::string backend_model;  // never empty after loading
  TokenPrices prices;
  // A name from TokenizerNames() (accounting/tokenizer/registry.h), or empty: estimate.
  std::string tokenizer;
  ArchitectureConfig architecture;
  std::vector<std::string> fallback_backends;  // each a declared backend, none equal to `backend`
  uint32_t context_tokens = 0;                 // 0: unknown
  ModelCacheConfig cache;
  // Set when the model's backend or one of its fallbacks tracks the KV cache: `architecture` when
  // it gives a shape, else the preset backend_model names (FindModelPreset).
  std::optional<ModelShape> kv_shape;
};

struct SimConfig {
  std::string gpu = "a100-80gb";  // the preset's canonical (lower-case) name
  uint32_t gpu_count = 1;
  // 1 when the backend has no `sim` block. A written `sim` block keeps its time_scale as written
  // (0 = instant); ParseConfigYaml sets 1 in a written block that omits it, since proto3 cannot
  // tell an omitted double from 0.
  double time_scale = 1.0;
  double mfu = 0.5;
  uint32_t max_running_requests = 256;
};

enum class BackendKind { kSim, kGrpc, kOpenAi, kAnthropic };

struct RetryConfig {
  uint32_t max_attempts = 3;  // per backend, the first included
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
};

struct EjectionConfig {
  uint32_t consecutive_failures = 5;
  absl::Duration probe_interval = absl::Seconds(10);
};

// An HTTP base URL split into its parts: "https://api.openai.com/proxy" → https, api.openai.com,
// 443, "/proxy".
struct BaseUrl {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string path_prefix;  // "" or "/something", never a trailing slash

  bool operator==(const BaseUrl&) const = default;
};

// Dynamic batching of one backend's calls: `batching`, with the backend's own overrides applied.
struct BatchingOptions {
  bool enabled = false;
  uint32_t max_batch_size = 0;  // >= 1 when enabled
  absl::Duration max_queue_delay = absl::ZeroDuration();
  std::vector<uint32_t> preferred_batch_sizes;  // each 1 to max_batch_size
  uint32_t max_in_flight_batches = 0;           // per queue; 0 = unbounded

  bool operator==(const BatchingOptions&) const = default;
};

// KV-aware admission on one backend (backends[].kv.admission).
struct KvAdmissionConfig {
  bool enabled = false;
  double admit_ratio = 1;  // > 0
  uint32_t max_queue = 256;
  absl::Duration max_queue_wait = absl::Seconds(30);  // > 0

  bool operator==(const KvAdmissionConfig&) const = default;
};

// KV-cache accounting of one backend (backends[].kv).
struct KvConfig {
  std::string gpu;  // a GPU preset's canonical (lower-case) name
  uint32_t gpu_count = 1;
  double gpu_memory_utilization = 0.9;  // (0, 1]
  uint32_t block_tokens = 16;           // >= 1
  // kv.capacity_bytes: the backend's KV-cache size as the operator knows it; 0 = derived from the
  // GPU and the weights of its largest model.
  uint64_t capacity_bytes = 0;
  KvAdmissionConfig admission;
  // The backend's /metrics, as written and parsed (path_prefix is its path); empty: not polled.
  std::string metrics_url;
  BaseUrl metrics_endpoint;
  absl::Duration poll_interval = absl::Seconds(5);

  bool operator==(const KvConfig&) const = default;
};

struct BackendConfig {
  std::string name;
  BackendKind kind = BackendKind::kSim;
  std::string address;  // kGrpc only
  absl::Duration timeout;
  SimConfig sim;     // kSim only
  BaseUrl base_url;  // kOpenAi and kAnthropic
  // The value of the environment variable named by api_key_env, read when the config is loaded;
  // empty when none is named.
  std::string api_key;
  uint32_t max_connections = 64;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, sorted
  RetryConfig retry;
  EjectionConfig ejection;
  // Self-hosted GPUs whose cost is split among the requests in flight; unset: none.
  std::optional<GpuCostSpec> gpu_cost;
  BatchingOptions batching;    // in effect for this backend
  std::optional<KvConfig> kv;  // unset: no KV-cache accounting
};

// The response cache (`cache`); disabled unless `enabled`.
struct CacheOptions {
  bool enabled = false;
  uint64_t max_bytes = uint64_t{256} << 20;
  absl::Duration ttl = absl::Hours(1);
  uint64_t max_entry_bytes = uint64_t{1} << 20;
  bool coalesce = true;

  bool operator==(const CacheOptions&) const = default;
};

// A Redis shared by the replicas (`redis`).
struct RedisSettings {
  std::string host;
  uint16_t port = 6379;
  std::string password;  // read from password_env when the config is loaded
  uint32_t db = 0;
  absl::Duration connect_timeout = absl::Milliseconds(100);
  absl::Duration command_timeout = absl::Milliseconds(20);
  std::string key_prefix = "tollgate:";
  bool shared_budgets = true;

  bool operator==(const RedisSettings&) const = default;
};

struct Config {
  ListenerConfig listeners;
  std::vector<std::string> tenant_names;  // config order
  // Lower-case hex SHA-256 of an API key → tenant name.
  absl::flat_hash_map<std::string, std::string> tenant_by_key_sha256;
  std::vector<ModelConfig> models;  // config order
  // Config order; includes the embedded "sim" backend when a model uses it without declaring it.
  std::vector<BackendConfig> backends;
  std::string vocab_dir;            // never empty after loading
  std::vector<BudgetSpec> budgets;  // validated again (keys, names) when a BudgetBook is built
  uint32_t default_max_tokens = 4096;
  LedgerOptions ledger;  // directory empty: no ledger
  std::vector<ShadowPlan> shadow_plans;
  CacheOptions cache;
  std::optional<RedisSettings> redis;  // unset: no Redis
  v1::Config source;                   // the validated proto, defaults not applied

  const ModelConfig* FindModel(absl::string_view name) const;
  const BackendConfig* FindBackend(absl::string_view name) const;

 private:
  friend absl::StatusOr<std::shared_ptr<const Config>> BuildConfig(const v1::Config& source);
  absl::flat_hash_map<std::string, size_t> model_index_;
  absl::flat_hash_map<std::string, size_t> backend_index_;
};

// Validates `source` and applies defaults. Errors are INVALID_ARGUMENT and start with the field
// path, e.g. "models[1].backend: unknown backend \"gpu-2\"".
//
// Numeric fields that are 0 (proto3's "unset") take their documented default. A model whose
// backend is empty or "sim" runs on the embedded simulator when no backend named "sim" is declared;
// one is then appended to `backends` with kind sim and a default SimConfig.
absl::StatusOr<std::shared_ptr<const Config>> BuildConfig(const v1::Config& source);

// Parses YAML into the proto schema, rejecting unknown fields and values of the wrong type with
// the field path, then calls BuildConfig.
// `base_dir` resolves relative price_files; empty: as given.
absl::StatusOr<std::shared_ptr<const Config>> ParseConfigYaml(absl::string_view yaml,
                                                              const std::string& base_dir = "");

// Reads and parses a file. A missing or unreadable file is NOT_FOUND / INVALID_ARGUMENT naming it;
// parse and validation errors are prefixed with the path ("tollgate.yaml: models[1].backend: ...").
absl::StatusOr<std::shared_ptr<const Config>> LoadConfigFile(const std::string& path);

// Lower-case hex SHA-256 of `api_key`, as tenants[].api_key_sha256 holds it.
std::string ApiKeySha256Hex(absl::string_view api_key);

}  // namespace tollgate
