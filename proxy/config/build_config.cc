// BuildConfig: validation of the proto schema and the defaults it cannot express.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "accounting/pricing.h"
#include "accounting/tokenizer/registry.h"
#include "proxy/common/status_macros.h"
#include "proxy/config/build_kv_config.h"
#include "proxy/config/config.h"
#include "sim/presets.h"

namespace tollgate {
namespace {

constexpr absl::string_view kDefaultGrpcAddress = "0.0.0.0:50051";
constexpr absl::string_view kDefaultMetricsAddress = "0.0.0.0:9464";
constexpr uint32_t kDefaultDrainTimeoutMs = 30'000;
constexpr uint32_t kDefaultBackendTimeoutMs = 600'000;
constexpr uint32_t kDefaultBytesPerElement = 2;
constexpr uint32_t kMaxShapeDimension = 65'536;        // architecture.layers, kv_heads, head_dim
constexpr absl::string_view kReservedLabel = "other";  // metrics' label for unknown values
constexpr absl::string_view kTenantNameChars = "_.-";
constexpr absl::string_view kModelNameChars = "_.:/-";  // also backend names

std::string Quote(absl::string_view text) { return absl::StrCat("\"", absl::CEscape(text), "\""); }

absl::Status FieldError(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

// A metric label value: 1..max_length ASCII letters, digits or `extra_chars`, never "other".
absl::Status CheckLabel(absl::string_view path, absl::string_view name,
                        absl::string_view extra_chars, size_t max_length) {
  if (name.empty()) return FieldError(path, "required");
  const bool valid_chars = std::all_of(name.begin(), name.end(), [&](char c) {
    return absl::ascii_isalnum(c) || extra_chars.find(c) != absl::string_view::npos;
  });
  if (!valid_chars || name.size() > max_length) {
    return FieldError(path,
                      absl::StrCat("invalid name ", Quote(name), ": must be 1 to ", max_length,
                                   " letters, digits or any of \"", extra_chars, "\""));
  }
  if (name == kReservedLabel) {
    return FieldError(path, "\"other\" is reserved for values outside the configured set");
  }
  return absl::OkStatus();
}

// host:port, where host is a name, an IPv4 address or a bracketed IPv6 address.
absl::Status CheckHostPort(absl::string_view path, absl::string_view address) {
  const auto invalid = [&] {
    return FieldError(path, absl::StrCat("expected host:port, got ", Quote(address)));
  };
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return invalid();
  const absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (host.empty() || (host.find(':') != absl::string_view::npos && !bracketed) ||
      std::any_of(host.begin(), host.end(), absl::ascii_isspace)) {
    return invalid();
  }
  uint32_t port_number = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &port_number) || port_number > 65535) {
    return FieldError(path, absl::StrCat("port must be 0 to 65535, got ", Quote(address)));
  }
  return absl::OkStatus();
}

absl::StatusOr<ListenerConfig> BuildListeners(const v1::Listeners& source) {
  ListenerConfig listeners;
  listeners.grpc_address =
      source.grpc_address().empty() ? std::string(kDefaultGrpcAddress) : source.grpc_address();
  listeners.metrics_address = source.metrics_address().empty() ? std::string(kDefaultMetricsAddress)
                                                               : source.metrics_address();
  TG_RETURN_IF_ERROR(CheckHostPort("listeners.grpc_address", listeners.grpc_address));
  TG_RETURN_IF_ERROR(CheckHostPort("listeners.metrics_address", listeners.metrics_address));
  const uint32_t drain_ms =
      source.drain_timeout_ms() == 0 ? kDefaultDrainTimeoutMs : source.drain_timeout_ms();
  listeners.drain_timeout = absl::Milliseconds(drain_ms);
  listeners.http_address = source.http_address();
  if (!listeners.http_address.empty()) {
    TG_RETURN_IF_ERROR(CheckHostPort("listeners.http_address", listeners.http_address));
  }
  if (source.max_request_body_bytes() != 0) {
    listeners.max_request_body_bytes = source.max_request_body_bytes();
  }
  return listeners;
}

absl::Status BuildTenants(const v1::Config& source, Config* config) {
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < source.tenants_size(); ++i) {
    const v1::Tenant& tenant = source.tenants(i);
    const std::string path = absl::StrCat("tenants[", i, "]");
    TG_RETURN_IF_ERROR(CheckLabel(path + ".name", tenant.name(), kTenantNameChars, 64));
    if (!names.insert(tenant.name()).second) {
      return FieldError(path + ".name", absl::StrCat("duplicate tenant ", Quote(tenant.name())));
    }
    config->tenant_names.push_back(tenant.name());
    for (int k = 0; k < tenant.api_key_sha256_size(); ++k) {
      const std::string key_path = absl::StrCat(path, ".api_key_sha256[", k, "]");
      const std::string& hex = tenant.api_key_sha256(k);
      if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), absl::ascii_isxdigit)) {
        return FieldError(
            key_path,
            absl::StrCat("expected 64 hex digits (printf %s KEY | sha256sum), got ", Quote(hex)));
      }
      const auto [it, inserted] =
          config->tenant_by_key_sha256.emplace(absl::AsciiStrToLower(hex), tenant.name());
      if (!inserted) {
        return FieldError(key_path,
                          absl::StrCat("key already belongs to tenant ", Quote(it->second)));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SimConfig> BuildSim(const v1::Backend& source, const std::string& path) {
  const v1::SimOptions& options = source.sim();
  SimConfig sim;
  if (!options.gpu().empty()) {
    absl::StatusOr<sim::GpuSpec> gpu = sim::FindGpu(options.gpu());
    if (!gpu.ok()) return FieldError(path + ".gpu", gpu.status().message());
    sim.gpu = gpu->name;
  }
  if (options.gpu_count() != 0) sim.gpu_count = options.gpu_count();
  // Written `sim` blocks keep their time_scale, so 0 (instant) is expressible; see config.h.
  if (source.has_sim()) sim.time_scale = options.time_scale();
  if (!std::isfinite(sim.time_scale) || sim.time_scale < 0) {
    return FieldError(path + ".time_scale",
                      absl::StrCat("must be a finite number >= 0, got ", sim.time_scale));
  }
  if (options.mfu() != 0) sim.mfu = options.mfu();
  if (!(sim.mfu > 0 && sim.mfu <= 1)) {
    return FieldError(path + ".mfu", absl::StrCat("must be in (0, 1], got ", sim.mfu));
  }
  if (options.max_running_requests() != 0) {
    sim.max_running_requests = options.max_running_requests();
  }
  return sim;
}

}  // namespace

absl::StatusOr<BaseUrl> config_internal::ParseBaseUrl(absl::string_view path,
                                                      absl::string_view url) {
  BaseUrl parsed;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    parsed.tls = true;
    parsed.port = 443;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    parsed.port = 80;
  } else {
    return FieldError(path, absl::StrCat("expected http:// or https:// URL, got ", Quote(url)));
  }
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  if (slash != absl::string_view::npos) {
    absl::string_view prefix = rest.substr(slash);
    while (absl::ConsumeSuffix(&prefix, "/")) {
    }
    parsed.path_prefix = std::string(prefix);
  }
  const size_t colon = authority.rfind(':');
  if (colon != absl::string_view::npos && authority.back() != ']') {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(authority.substr(colon + 1), &port) || port == 0 || port > 65535) {
      return FieldError(path, absl::StrCat("bad port in ", Quote(url)));
    }
    parsed.port = static_cast<uint16_t>(port);
    authority = authority.substr(0, colon);
  }
  if (authority.empty() || std::any_of(authority.begin(), authority.end(), absl::ascii_isspace)) {
    return FieldError(path, absl::StrCat("no host in ", Quote(url)));
  }
  parsed.host = std::string(authority);
  return parsed;
}

namespace {

using config_internal::ParseBaseUrl;

absl::Status BuildHttpBackend(const v1::Backend& source, const std::string& path,
                              BackendConfig* backend) {
  if (source.base_url().empty()) return FieldError(path + ".base_url", "required for this kind");
  TG_ASSIGN_OR_RETURN(backend->base_url, ParseBaseUrl(path + ".base_url", source.base_url()));
  if (!source.api_key_env().empty()) {
    const char* key = std::getenv(source.api_key_env().c_str());
    if (key == nullptr || *key == '\0') {
      return FieldError(
          path + ".api_key_env",
          absl::StrCat("environment variable ", source.api_key_env(), " is not set or empty"));
    }
    backend->api_key = key;
  }
  if (source.max_connections() != 0) backend->max_connections = source.max_connections();
  for (const auto& [name, value] : source.headers()) {
    const std::string header_path = absl::StrCat(path, ".headers.", name);
    const bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return absl::ascii_isalnum(c) || c == '-' || c == '_';
    });
    if (!token) return FieldError(header_path, "a header name is letters, digits, - and _");
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n'; })) {
      return FieldError(header_path, "a header value cannot hold a line break");
    }
    backend->headers.emplace_back(absl::AsciiStrToLower(name), value);
  }
  std::sort(backend->headers.begin(), backend->headers.end());
  return absl::OkStatus();
}

absl::Status BuildResilience(const v1::Backend& source, const std::string& path,
                             BackendConfig* backend) {
  const v1::RetryPolicy& retry = source.retry();
  if (retry.max_attempts() != 0) backend->retry.max_attempts = retry.max_attempts();
  if (backend->retry.max_attempts > 10) {
    return FieldError(path + ".retry.max_attempts",
                      absl::StrCat("must be 1 to 10, got ", retry.max_attempts()));
  }
  if (retry.initial_backoff_ms() != 0) {
    backend->retry.initial_backoff = absl::Milliseconds(retry.initial_backoff_ms());
  }
  if (retry.max_backoff_ms() != 0) {
    backend->retry.max_backoff = absl::Milliseconds(retry.max_backoff_ms());
  }
  if (backend->retry.max_backoff < backend->retry.initial_backoff) {
    return FieldError(path + ".retry.max_backoff_ms", "must be >= initial_backoff_ms");
  }
  const v1::EjectionPolicy& ejection = source.ejection();
  if (ejection.consecutive_failures() != 0) {
    backend->ejection.consecutive_failures = ejection.consecutive_failures();
  }
  if (ejection.probe_interval_ms() != 0) {
    backend->ejection.probe_interval = absl::Milliseconds(ejection.probe_interval_ms());
  }
  return absl::OkStatus();
}

// A GpuCost block, validated; errors name its field.
absl::StatusOr<GpuCostSpec> BuildGpuCost(const v1::GpuCost& source, const std::string& path) {
  GpuCostSpec spec;
  spec.gpu_type = source.gpu_type();
  spec.gpu_count = source.gpu_count() > 0 ? source.gpu_count() : 1;
  spec.usd_per_gpu_hour = source.usd_per_gpu_hour();
  spec.watts = source.watts();
  spec.usd_per_kwh = source.usd_per_kwh();
  spec.prefill_weight = source.prefill_weight() > 0 ? source.prefill_weight() : 1;
  spec.decode_weight = source.decode_weight() > 0 ? source.decode_weight() : 1;
  if (absl::Status valid = ValidateGpuCostSpec(spec); !valid.ok()) {
    return FieldError(path, valid.message());
  }
  return spec;
}

absl::StatusOr<BackendConfig> BuildBackend(const v1::Backend& source, const std::string& path) {
  BackendConfig backend;
  TG_RETURN_IF_ERROR(CheckLabel(path + ".name", source.name(), kModelNameChars, 128));
  backend.name = source.name();
  constexpr absl::string_view kKinds = "valid kinds: sim, grpc, openai, anthropic";
  if (source.kind() == "sim") {
    backend.kind = BackendKind::kSim;
  } else if (source.kind() == "grpc") {
    backend.kind = BackendKind::kGrpc;
  } else if (source.kind() == "openai") {
    backend.kind = BackendKind::kOpenAi;
  } else if (source.kind() == "anthropic") {
    backend.kind = BackendKind::kAnthropic;
  } else {
    return FieldError(path + ".kind",
                      source.kind().empty()
                          ? absl::StrCat("required (", kKinds, ")")
                          : absl::StrCat("unknown kind ", Quote(source.kind()), " (", kKinds, ")"));
  }
  const bool http = backend.kind == BackendKind::kOpenAi || backend.kind == BackendKind::kAnthropic;
  if (backend.kind != BackendKind::kSim && source.has_sim()) {
    return FieldError(path + ".sim", "only valid for kind sim");
  }
  if (backend.kind == BackendKind::kGrpc) {
    if (source.address().empty()) return FieldError(path + ".address", "required for kind grpc");
    TG_RETURN_IF_ERROR(CheckHostPort(path + ".address", source.address()));
    backend.address = source.address();
  } else if (!source.address().empty()) {
    return FieldError(path + ".address", "only valid for kind grpc");
  }
  if (http) {
    TG_RETURN_IF_ERROR(BuildHttpBackend(source, path, &backend));
  } else {
    for (const auto& [field, set] :
         {std::pair<const char*, bool>{"base_url", !source.base_url().empty()},
          {"api_key_env", !source.api_key_env().empty()},
          {"max_connections", source.max_connections() != 0},
          {"headers", !source.headers().empty()}}) {
      if (set)
        return FieldError(absl::StrCat(path, ".", field),
                          "only valid for kinds openai and anthropic");
    }
  }
  TG_RETURN_IF_ERROR(BuildResilience(source, path, &backend));
  backend.timeout =
      absl::Milliseconds(source.timeout_ms() == 0 ? kDefaultBackendTimeoutMs : source.timeout_ms());
  TG_ASSIGN_OR_RETURN(backend.sim, BuildSim(source, path + ".sim"));
  if (source.has_gpu_cost()) {
    TG_ASSIGN_OR_RETURN(backend.gpu_cost, BuildGpuCost(source.gpu_cost(), path + ".gpu_cost"));
  }
  TG_ASSIGN_OR_RETURN(backend.kv, config_internal::BuildKv(source, path + ".kv"));
  return backend;
}

absl::StatusOr<TokenPrices> BuildPrices(const v1::Prices& source, const std::string& path) {
  const auto convert = [&](absl::string_view field, double usd) -> absl::StatusOr<int64_t> {
    absl::StatusOr<int64_t> nano = UsdPerMtokToNano(usd);
    if (!nano.ok()) return FieldError(absl::StrCat(path, ".", field), nano.status().message());
    return nano;
  };
  TokenPrices prices;
  TG_ASSIGN_OR_RETURN(prices.input_nano_usd_per_mtok,
                      convert("input_usd_per_mtok", source.input_usd_per_mtok()));
  TG_ASSIGN_OR_RETURN(prices.output_nano_usd_per_mtok,
                      convert("output_usd_per_mtok", source.output_usd_per_mtok()));
  prices.cached_input_nano_usd_per_mtok = prices.input_nano_usd_per_mtok;
  if (source.has_cached_input_usd_per_mtok()) {
    TG_ASSIGN_OR_RETURN(prices.cached_input_nano_usd_per_mtok,
                        convert("cached_input_usd_per_mtok", source.cached_input_usd_per_mtok()));
  }
  prices.reasoning_nano_usd_per_mtok = prices.output_nano_usd_per_mtok;
  if (source.has_reasoning_usd_per_mtok()) {
    TG_ASSIGN_OR_RETURN(prices.reasoning_nano_usd_per_mtok,
                        convert("reasoning_usd_per_mtok", source.reasoning_usd_per_mtok()));
  }
  prices.cache_write_nano_usd_per_mtok = prices.input_nano_usd_per_mtok;
  if (source.has_cache_write_usd_per_mtok()) {
    TG_ASSIGN_OR_RETURN(prices.cache_write_nano_usd_per_mtok,
                        convert("cache_write_usd_per_mtok", source.cache_write_usd_per_mtok()));
  }
  const double discount = source.batch_discount();
  if (!(discount >= 0 && discount <= 1)) {
    return FieldError(path + ".batch_discount",
                      absl::StrCat("must be a fraction from 0 to 1, got ", discount));
  }
  prices.batch_discount_ppm = std::llround(discount * 1e6);
  if (source.has_long_context() && source.long_context().above_input_tokens() > 0) {
    const v1::LongContextPrices& long_context = source.long_context();
    v1::Prices tier_source;
    tier_source.set_input_usd_per_mtok(long_context.input_usd_per_mtok());
    tier_source.set_output_usd_per_mtok(long_context.output_usd_per_mtok());
    if (long_context.has_cached_input_usd_per_mtok()) {
      tier_source.set_cached_input_usd_per_mtok(long_context.cached_input_usd_per_mtok());
    }
    if (long_context.has_cache_write_usd_per_mtok()) {
      tier_source.set_cache_write_usd_per_mtok(long_context.cache_write_usd_per_mtok());
    }
    if (long_context.has_reasoning_usd_per_mtok()) {
      tier_source.set_reasoning_usd_per_mtok(long_context.reasoning_usd_per_mtok());
    }
    TG_ASSIGN_OR_RETURN(TokenPrices tier, BuildPrices(tier_source, path + ".long_context"));
    prices.long_context_above_input_tokens = long_context.above_input_tokens();
    prices.long_context = std::make_shared<const TokenPrices>(std::move(tier));
  }
  return prices;
}

absl::StatusOr<ShadowPlan> BuildShadowPlan(const v1::ShadowPlan& source, const std::string& path) {
  ShadowPlan plan;
  TG_RETURN_IF_ERROR(CheckLabel(path + ".name", source.name(), kModelNameChars, 128));
  plan.name = source.name();
  if (source.has_prices() == source.has_gpu()) {
    return FieldError(path, "needs exactly one of prices or gpu");
  }
  if (source.has_prices()) {
    plan.kind = ShadowPlan::kPerToken;
    TG_ASSIGN_OR_RETURN(plan.prices, BuildPrices(source.prices(), path + ".prices"));
  } else {
    plan.kind = ShadowPlan::kGpu;
    TG_ASSIGN_OR_RETURN(plan.gpu, BuildGpuCost(source.gpu(), path + ".gpu"));
    plan.prefill_tokens_per_second = source.prefill_tokens_per_second();
    plan.decode_tokens_per_second = source.decode_tokens_per_second();
  }
  if (absl::Status valid = ValidateShadowPlan(plan); !valid.ok()) {
    return FieldError(path, valid.message());
  }
  return plan;
}

absl::StatusOr<ArchitectureConfig> BuildArchitecture(const v1::Architecture& source,
                                                     const std::string& path) {
  ArchitectureConfig architecture;
  architecture.parameters = source.parameters();
  architecture.layers = source.layers();
  architecture.kv_heads = source.kv_heads();
  architecture.head_dim = source.head_dim();
  if (architecture.layers != 0 || architecture.kv_heads != 0 || architecture.head_dim != 0) {
    const std::array<std::pair<absl::string_view, uint32_t>, 3> shape = {
        {{"layers", architecture.layers},
         {"kv_heads", architecture.kv_heads},
         {"head_dim", architecture.head_dim}}};
    for (const auto& [field, value] : shape) {
      // Bounded so that KV bytes per token (2 × layers × kv_heads × head_dim × bytes) cannot wrap.
      if (value > kMaxShapeDimension) {
        return FieldError(absl::StrCat(path, ".", field),
                          absl::StrCat("must be at most ", kMaxShapeDimension, ", got ", value));
      }
      if (value == 0) {
        return FieldError(absl::StrCat(path, ".", field),
                          "must be > 0 when any of layers, kv_heads or head_dim is set");
      }
    }
  }
  architecture.bytes_per_element =
      source.bytes_per_element() == 0 ? kDefaultBytesPerElement : source.bytes_per_element();
  const uint32_t bytes = architecture.bytes_per_element;
  if (bytes != 1 && bytes != 2 && bytes != 4) {
    return FieldError(path + ".bytes_per_element", absl::StrCat("must be 1, 2 or 4, got ", bytes));
  }
  return architecture;
}

std::string BackendNames(const Config& config) {
  std::vector<std::string> names;
  for (const BackendConfig& backend : config.backends) names.push_back(backend.name);
  return names.empty() ? "none declared" : absl::StrCat("declared: ", absl::StrJoin(names, ", "));
}

constexpr absl::string_view kEstimateTokenizer = "estimate";

// The configured tokenizer, or the one the backend model's or the model's name implies; empty for
// "estimate" or when no name implies one.
absl::StatusOr<std::string> ResolveTokenizer(const std::string& configured,
                                             const ModelConfig& model, const std::string& path) {
  if (configured == kEstimateTokenizer) return std::string();
  if (configured.empty()) {
    std::string_view implied = DefaultTokenizerFor(model.backend_model);
    if (implied.empty()) implied = DefaultTokenizerFor(model.name);
    return std::string(implied);
  }
  const std::vector<std::string_view>& names = TokenizerNames();
  if (std::find(names.begin(), names.end(), configured) == names.end()) {
    std::string known;
    for (std::string_view name : names)
      absl::StrAppend(&known, known.empty() ? "" : ", ",
                      absl::string_view(name.data(), name.size()));
    return FieldError(path + ".tokenizer",
                      absl::StrCat("unknown tokenizer ", Quote(configured), " (known: ", known,
                                   ", or ", kEstimateTokenizer, ")"));
  }
  return configured;
}

absl::StatusOr<ModelCacheConfig> BuildModelCache(const v1::ModelCache& source,
                                                 const std::string& path) {
  ModelCacheConfig cache;
  if (source.policy().empty() || source.policy() == "deterministic") {
    cache.policy = CachePolicy::kDeterministic;
  } else if (source.policy() == "always") {
    cache.policy = CachePolicy::kAlways;
  } else if (source.policy() == "never") {
    cache.policy = CachePolicy::kNever;
  } else {
    return FieldError(path + ".policy",
                      absl::StrCat("must be \"deterministic\", \"always\" or \"never\", got ",
                                   Quote(source.policy())));
  }
  cache.shared_across_tenants = source.shared_across_tenants();
  const double fraction = source.hit_cost_fraction();
  if (!(fraction >= 0 && fraction <= 1)) {
    return FieldError(path + ".hit_cost_fraction", absl::StrCat("must be 0 to 1, got ", fraction));
  }
  cache.hit_cost_fraction = fraction;
  return cache;
}

// `uses_embedded_sim` is set when the model runs on an undeclared "sim" backend.
absl::StatusOr<ModelConfig> BuildModel(const v1::Model& source, const std::string& path,
                                       const Config& config, bool* uses_embedded_sim) {
  ModelConfig model;
  TG_RETURN_IF_ERROR(CheckLabel(path + ".name", source.name(), kModelNameChars, 128));
  model.name = source.name();
  model.backend = source.backend().empty() ? std::string(kEmbeddedSimBackend) : source.backend();
  if (config.FindBackend(model.backend) == nullptr) {
    if (model.backend != kEmbeddedSimBackend) {
      return FieldError(path + ".backend", absl::StrCat("unknown backend ", Quote(model.backend),
                                                        " (", BackendNames(config), ")"));
    }
    *uses_embedded_sim = true;
  }
  model.backend_model = source.backend_model().empty() ? model.name : source.backend_model();
  TG_ASSIGN_OR_RETURN(model.prices, BuildPrices(source.prices(), path + ".prices"));
  TG_ASSIGN_OR_RETURN(model.tokenizer, ResolveTokenizer(source.tokenizer(), model, path));
  TG_ASSIGN_OR_RETURN(model.architecture,
                      BuildArchitecture(source.architecture(), path + ".architecture"));
  model.context_tokens = source.context_tokens();
  TG_ASSIGN_OR_RETURN(model.cache, BuildModelCache(source.cache(), path + ".cache"));
  for (int i = 0; i < source.fallback_backends_size(); ++i) {
    const std::string& fallback = source.fallback_backends(i);
    const std::string fallback_path = absl::StrCat(path, ".fallback_backends[", i, "]");
    if (config.FindBackend(fallback) == nullptr) {
      return FieldError(fallback_path, absl::StrCat("unknown backend ", Quote(fallback), " (",
                                                    BackendNames(config), ")"));
    }
    if (fallback == model.backend ||
        std::find(model.fallback_backends.begin(), model.fallback_backends.end(), fallback) !=
            model.fallback_backends.end()) {
      return FieldError(fallback_path,
                        absl::StrCat("backend ", Quote(fallback), " is listed twice"));
    }
    model.fallback_backends.push_back(fallback);
  }
  return model;
}

absl::StatusOr<BudgetSpec> BuildBudget(const v1::Budget& source, const std::string& path,
                                       const Config& config) {
  BudgetSpec budget;
  if (source.name().empty()) return FieldError(path + ".name", "is required");
  budget.name = source.name();
  if (source.tenant().empty() == source.api_key_sha256().empty()) {
    return FieldError(path, "needs exactly one of tenant or api_key_sha256");
  }
  if (!source.tenant().empty()) {
    if (std::find(config.tenant_names.begin(), config.tenant_names.end(), source.tenant()) ==
        config.tenant_names.end()) {
      return FieldError(path + ".tenant", absl::StrCat("unknown tenant ", Quote(source.tenant())));
    }
    budget.tenant = source.tenant();
  } else {
    budget.api_key_sha256 = absl::AsciiStrToLower(source.api_key_sha256());
    auto owner = config.tenant_by_key_sha256.find(budget.api_key_sha256);
    if (owner != config.tenant_by_key_sha256.end()) budget.key_tenant = owner->second;
  }
  if (source.window() == "daily") {
    budget.window = BudgetWindow::kDaily;
  } else if (source.window() == "monthly") {
    budget.window = BudgetWindow::kMonthly;
  } else if (source.window() == "total") {
    budget.window = BudgetWindow::kTotal;
  } else {
    return FieldError(path + ".window", absl::StrCat("must be daily, monthly or total, got ",
                                                     Quote(source.window())));
  }
  // A budget in USD converts exactly like a price: nine decimals.
  absl::StatusOr<int64_t> limit = UsdPerMtokToNano(source.limit_usd());
  if (!limit.ok() || *limit <= 0) {
    return FieldError(path + ".limit_usd", "must be a number of USD > 0 (up to 1,000,000)");
  }
  budget.limit_nano_usd = *limit;
  budget.soft_nano_usd = budget.limit_nano_usd / 5 * 4;
  if (source.has_soft_limit_usd()) {
    absl::StatusOr<int64_t> soft = UsdPerMtokToNano(source.soft_limit_usd());
    if (!soft.ok() || *soft > budget.limit_nano_usd) {
      return FieldError(path + ".soft_limit_usd", "must be from 0 to limit_usd");
    }
    budget.soft_nano_usd = *soft;
  }
  return budget;
}

CacheOptions BuildCache(const v1::CacheConfig& source) {
  CacheOptions cache;
  cache.enabled = source.enabled();
  if (source.max_bytes() > 0) cache.max_bytes = source.max_bytes();
  if (source.ttl_seconds() > 0) cache.ttl = absl::Seconds(source.ttl_seconds());
  if (source.max_entry_bytes() > 0) cache.max_entry_bytes = source.max_entry_bytes();
  if (source.has_coalesce()) cache.coalesce = source.coalesce();
  return cache;
}

absl::StatusOr<std::optional<RedisSettings>> BuildRedis(const v1::RedisConfig& source) {
  if (source.address().empty()) return std::nullopt;
  TG_RETURN_IF_ERROR(CheckHostPort("redis.address", source.address()));
  RedisSettings redis;
  const size_t colon = source.address().rfind(':');
  redis.host = source.address().substr(0, colon);
  if (redis.host.size() > 2 && redis.host.front() == '[') {
    redis.host = redis.host.substr(1, redis.host.size() - 2);
  }
  uint32_t port = 0;
  (void)absl::SimpleAtoi(absl::string_view(source.address()).substr(colon + 1), &port);
  if (port == 0) return FieldError("redis.address", "port must be 1 to 65535");
  redis.port = static_cast<uint16_t>(port);
  if (!source.password_env().empty()) {
    const char* password = std::getenv(source.password_env().c_str());
    if (password == nullptr || *password == '\0') {
      return FieldError(
          "redis.password_env",
          absl::StrCat("environment variable ", source.password_env(), " is not set or empty"));
    }
    redis.password = password;
  }
  redis.db = source.db();
  if (source.connect_timeout_ms() > 0) {
    redis.connect_timeout = absl::Milliseconds(source.connect_timeout_ms());
  }
  if (source.command_timeout_ms() > 0) {
    redis.command_timeout = absl::Milliseconds(source.command_timeout_ms());
  }
  if (!source.key_prefix().empty()) redis.key_prefix = source.key_prefix();
  if (source.has_shared_budgets()) redis.shared_budgets = source.shared_budgets();
  return redis;
}

constexpr uint64_t kMaxQueueDelayUs = 10'000'000;

// The batching in effect for one backend: `global` with the backend's overrides (`path` names
// them; empty for a backend the config does not declare).
absl::StatusOr<BatchingOptions> BuildBatching(const v1::BatchingConfig& global,
                                              const v1::BackendBatching& own,
                                              const std::string& path) {
  BatchingOptions options;
  options.enabled = own.has_enabled() ? own.enabled() : global.enabled();
  options.max_batch_size =
      own.max_batch_size() > 0 ? own.max_batch_size() : global.max_batch_size();
  const uint64_t delay_us =
      own.has_max_queue_delay_us() ? own.max_queue_delay_us() : global.max_queue_delay_us();
  const bool own_preferred = own.preferred_batch_sizes_size() > 0;
  const auto& preferred =
      own_preferred ? own.preferred_batch_sizes() : global.preferred_batch_sizes();
  options.preferred_batch_sizes.assign(preferred.begin(), preferred.end());
  options.max_in_flight_batches = own.has_max_in_flight_batches() ? own.max_in_flight_batches()
                                                                  : global.max_in_flight_batches();
  if (!options.enabled) return options;
  // Errors name the field the value came from.
  const std::string here = path.empty() ? "batching" : path + ".batching";
  const std::string size_from =
      own.max_batch_size() > 0 ? here + ".max_batch_size" : "batching.max_batch_size";
  if (options.max_batch_size == 0) {
    return FieldError(size_from, "must be >= 1 when batching is enabled");
  }
  if (delay_us > kMaxQueueDelayUs) {
    return FieldError(
        own.has_max_queue_delay_us() ? here + ".max_queue_delay_us" : "batching.max_queue_delay_us",
        absl::StrCat("must be at most ", kMaxQueueDelayUs, " (10 s), got ", delay_us));
  }
  options.max_queue_delay = absl::Microseconds(static_cast<int64_t>(delay_us));
  const std::string preferred_from =
      own_preferred ? here + ".preferred_batch_sizes" : "batching.preferred_batch_sizes";
  for (size_t i = 0; i < options.preferred_batch_sizes.size(); ++i) {
    const uint32_t size = options.preferred_batch_sizes[i];
    if (size > options.max_batch_size && !own_preferred && own.max_batch_size() > 0) {
      return FieldError(size_from, absl::StrCat("must be at least the preferred batch sizes it "
                                                "inherits (batching.preferred_batch_sizes[",
                                                i, "] = ", size, "); set them here too"));
    }
    if (size == 0 || size > options.max_batch_size) {
      return FieldError(
          absl::StrCat(preferred_from, "[", i, "]"),
          absl::StrCat("must be 1 to max_batch_size (", options.max_batch_size, "), got ", size));
    }
  }
  return options;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Config>> BuildConfig(const v1::Config& source) {
  auto config = std::make_shared<Config>();
  config->source = source;
  TG_ASSIGN_OR_RETURN(config->listeners, BuildListeners(source.listeners()));
  TG_RETURN_IF_ERROR(BuildTenants(source, config.get()));

  for (int i = 0; i < source.backends_size(); ++i) {
    const std::string path = absl::StrCat("backends[", i, "]");
    TG_ASSIGN_OR_RETURN(BackendConfig backend, BuildBackend(source.backends(i), path));
    if (!config->backend_index_.emplace(backend.name, config->backends.size()).second) {
      return FieldError(path + ".name", absl::StrCat("duplicate backend ", Quote(backend.name)));
    }
    config->backends.push_back(std::move(backend));
  }

  bool uses_embedded_sim = false;
  for (int i = 0; i < source.models_size(); ++i) {
    const std::string path = absl::StrCat("models[", i, "]");
    TG_ASSIGN_OR_RETURN(ModelConfig model,
                        BuildModel(source.models(i), path, *config, &uses_embedded_sim));
    if (!config->model_index_.emplace(model.name, config->models.size()).second) {
      return FieldError(path + ".name", absl::StrCat("duplicate model ", Quote(model.name)));
    }
    config->models.push_back(std::move(model));
  }
  if (uses_embedded_sim) {
    BackendConfig sim;
    sim.name = std::string(kEmbeddedSimBackend);
    sim.kind = BackendKind::kSim;
    sim.timeout = absl::Milliseconds(kDefaultBackendTimeoutMs);
    config->backend_index_.emplace(sim.name, config->backends.size());
    config->backends.push_back(std::move(sim));
  }
  TG_RETURN_IF_ERROR(config_internal::ResolveKvShapes(*config));

  TG_RETURN_IF_ERROR(
      BuildBatching(source.batching(), v1::BackendBatching(), "").status());  // the top level
  for (size_t i = 0; i < config->backends.size(); ++i) {
    const bool declared = i < static_cast<size_t>(source.backends_size());
    TG_ASSIGN_OR_RETURN(
        config->backends[i].batching,
        BuildBatching(source.batching(),
                      declared ? source.backends(i).batching() : v1::BackendBatching(),
                      declared ? absl::StrCat("backends[", i, "]") : ""));
  }
  config->cache = BuildCache(source.cache());
  TG_ASSIGN_OR_RETURN(config->redis, BuildRedis(source.redis()));
  for (int i = 0; i < source.budgets_size(); ++i) {
    TG_ASSIGN_OR_RETURN(BudgetSpec budget,
                        BuildBudget(source.budgets(i), absl::StrCat("budgets[", i, "]"), *config));
    for (const BudgetSpec& other : config->budgets) {
      if (other.name == budget.name) {
        return FieldError(absl::StrCat("budgets[", i, "].name"),
                          absl::StrCat("duplicate budget ", Quote(budget.name)));
      }
    }
    config->budgets.push_back(std::move(budget));
  }
  if (source.default_max_tokens() > 0) config->default_max_tokens = source.default_max_tokens();
  for (int i = 0; i < source.shadow_plans_size(); ++i) {
    const std::string path = absl::StrCat("shadow_plans[", i, "]");
    TG_ASSIGN_OR_RETURN(ShadowPlan plan, BuildShadowPlan(source.shadow_plans(i), path));
    for (const ShadowPlan& other : config->shadow_plans) {
      if (other.name == plan.name) {
        return FieldError(path + ".name", absl::StrCat("duplicate plan ", Quote(plan.name)));
      }
    }
    config->shadow_plans.push_back(std::move(plan));
  }
  const v1::LedgerConfig& ledger = source.ledger();
  config->ledger.directory = ledger.directory();
  if (ledger.has_fsync_interval_ms()) {
    config->ledger.fsync_interval = absl::Milliseconds(ledger.fsync_interval_ms());
  }
  if (ledger.max_file_bytes() > 0) config->ledger.max_file_bytes = ledger.max_file_bytes();
  if (ledger.rotate_interval_s() > 0) {
    config->ledger.rotate_interval = absl::Seconds(ledger.rotate_interval_s());
  }
  if (ledger.max_buffered_records() > 0) {
    config->ledger.max_buffered_records = ledger.max_buffered_records();
  }
  config->vocab_dir = source.vocab_dir();
  if (config->vocab_dir.empty()) {
    const char* env = std::getenv("TOLLGATE_VOCAB_DIR");
    config->vocab_dir = env != nullptr && *env != '\0' ? env : ".cache/tokenizer";
  }
  return std::shared_ptr<const Config>(std::move(config));
}

}  // namespace tollgate
