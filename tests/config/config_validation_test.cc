// Every semantic rule of BuildConfig, and the field path each error starts with.
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/config/config_test_yaml.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ConfigValidation, ListenerAddressesMustBeHostAndPort) {
  EXPECT_THAT(ParseError("listeners: {grpc_address: localhost}"),
              StartsWith("listeners.grpc_address: expected host:port, got \"localhost\""));
  EXPECT_THAT(ParseError("listeners: {grpc_address: \":50051\"}"),
              StartsWith("listeners.grpc_address: expected host:port"));
  EXPECT_THAT(ParseError("listeners: {grpc_address: \"::1:50051\"}"),
              StartsWith("listeners.grpc_address: expected host:port"));
  EXPECT_THAT(ParseError("listeners: {metrics_address: \"0.0.0.0:65536\"}"),
              StartsWith("listeners.metrics_address: port must be 0 to 65535"));
  EXPECT_THAT(ParseError("listeners: {metrics_address: \"0.0.0.0:http\"}"),
              StartsWith("listeners.metrics_address: port must be 0 to 65535"));
  EXPECT_NE(ParseValid("listeners: {grpc_address: \"[::1]:0\", metrics_address: \"h:65535\"}"),
            nullptr);
}

TEST(ConfigValidation, TenantNamesMustBeLabelSafeUniqueAndNotOther) {
  EXPECT_THAT(ParseError("tenants: [{name: acme corp}]"),
              StartsWith("tenants[0].name: invalid name \"acme corp\""));
  EXPECT_THAT(ParseError("tenants: [{name: " + std::string(65, 'x') + "}]"),
              StartsWith("tenants[0].name: invalid name"));
  EXPECT_NE(ParseValid("tenants: [{name: " + std::string(64, 'x') + "}]"), nullptr);
  EXPECT_THAT(ParseError("tenants: [{api_key_sha256: []}]"),
              StartsWith("tenants[0].name: required"));
  EXPECT_THAT(ParseError("tenants: [{name: other}]"),
              StartsWith("tenants[0].name: \"other\" is reserved"));
  EXPECT_THAT(ParseError("tenants: [{name: a/b}]"), StartsWith("tenants[0].name: invalid name"));
  EXPECT_THAT(ParseError("tenants: [{name: acme}, {name: acme}]"),
              StartsWith("tenants[1].name: duplicate tenant \"acme\""));
}

TEST(ConfigValidation, TenantKeyHashesMustBe64HexDigits) {
  const std::string key_a(64, 'a');
  EXPECT_THAT(ParseError("tenants: [{name: a, api_key_sha256: [" + key_a + ", abc]}]"),
              StartsWith("tenants[0].api_key_sha256[1]: expected 64 hex digits"));
  EXPECT_THAT(ParseError("tenants: [{name: a, api_key_sha256: [" + std::string(64, 'g') + "]}]"),
              StartsWith("tenants[0].api_key_sha256[0]: expected 64 hex digits"));
}

TEST(ConfigValidation, TenantKeyHashesMustBeUniqueAcrossTenants) {
  const std::string key_a(64, 'a');
  const std::string key_b(64, 'b');
  const std::string upper_a(64, 'A');
  EXPECT_THAT(ParseError("tenants:\n  - {name: acme, api_key_sha256: [" + key_a + ", " + key_b +
                         "]}\n  - {name: globex, api_key_sha256: [" + upper_a + "]}\n"),
              StartsWith("tenants[1].api_key_sha256[0]: key already belongs to tenant \"acme\""));
}

TEST(ConfigValidation, ModelNamesMustBeLabelSafeUniqueAndNotOther) {
  EXPECT_NE(ParseValid("models: [{name: \"meta-llama/Llama-3.1:8b_v2\"}]"), nullptr);
  EXPECT_THAT(ParseError("models: [{name: llama 3}]"),
              StartsWith("models[0].name: invalid name \"llama 3\""));
  EXPECT_THAT(ParseError("models: [{name: " + std::string(129, 'm') + "}]"),
              StartsWith("models[0].name: invalid name"));
  EXPECT_THAT(ParseError("models: [{backend: sim}]"), StartsWith("models[0].name: required"));
  EXPECT_THAT(ParseError("models: [{name: a}, {name: other}]"),
              StartsWith("models[1].name: \"other\" is reserved"));
  EXPECT_THAT(ParseError("models: [{name: a}, {name: b}, {name: a}]"),
              StartsWith("models[2].name: duplicate model \"a\""));
}

TEST(ConfigValidation, ModelBackendMustBeDeclared) {
  EXPECT_THAT(ParseError("models: [{name: a}, {name: b, backend: x}]"),
              StartsWith("models[1].backend: unknown backend \"x\""));
}

TEST(ConfigValidation, AModelsTokenizerMustBeAKnownOne) {
  EXPECT_THAT(ParseError("models: [{name: m, tokenizer: gpt2}]"),
              HasSubstr("models[0].tokenizer: unknown tokenizer \"gpt2\" (known: cl100k_base, "
                        "o200k_base, llama3, llama2, mistral, or estimate)"));
}

TEST(ConfigValidation, BatchDiscountIsAFractionAndPriceFilesMustExistAndParse) {
  EXPECT_THAT(ParseError("models: [{name: m, prices: {batch_discount: 1.5}}]"),
              StartsWith("models[0].prices.batch_discount: must be a fraction from 0 to 1"));
  EXPECT_THAT(ParseError("models: [{name: m, prices: {long_context: {above_input_tokens: 5, "
                         "input_usd_per_mtok: -1}}}]"),
              StartsWith("models[0].prices.long_context.input_usd_per_mtok:"));
  EXPECT_THAT(ParseError("price_files: [/nonexistent/prices.yaml]"),
              StartsWith("price_files[0]: price file /nonexistent/prices.yaml:"));
  const std::string bad =
      ::testing::TempDir() + "/bad_prices_" + std::to_string(getpid()) + ".yaml";
  std::ofstream(bad) << "models: [{name: x, prices: {input_usd_per_mtok: cheap}}]\n";
  EXPECT_THAT(ParseError("price_files: [" + bad + "]"), StartsWith("price_files[0]: " + bad));
}

TEST(ConfigValidation, GpuCostsShadowPlansAndBudgetsNameTheirBadField) {
  EXPECT_THAT(ParseError("backends: [{name: b, kind: sim, gpu_cost: {usd_per_gpu_hour: -1}}]"),
              StartsWith("backends[0].gpu_cost:"));
  EXPECT_THAT(ParseError("shadow_plans: [{name: p}]"),
              StartsWith("shadow_plans[0]: needs exactly one of prices or gpu"));
  EXPECT_THAT(ParseError("shadow_plans: [{name: p, gpu: {gpu_count: 1, usd_per_gpu_hour: 2}}]"),
              StartsWith("shadow_plans[0]:"));  // no throughput given
  EXPECT_THAT(ParseError("shadow_plans: [{name: p, prices: {}}, {name: p, prices: {}}]"),
              StartsWith("shadow_plans[1].name: duplicate plan"));
  EXPECT_THAT(ParseError("budgets: [{name: b, tenant: nobody, window: daily, limit_usd: 1}]"),
              StartsWith("budgets[0].tenant: unknown tenant \"nobody\""));
  EXPECT_THAT(ParseError("budgets: [{name: b, window: daily, limit_usd: 1}]"),
              StartsWith("budgets[0]: needs exactly one of tenant or api_key_sha256"));
  EXPECT_THAT(ParseError("tenants: [{name: t}]\nbudgets: [{name: b, tenant: t, window: weekly, "
                         "limit_usd: 1}]"),
              StartsWith("budgets[0].window: must be daily, monthly or total"));
  EXPECT_THAT(ParseError("tenants: [{name: t}]\nbudgets: [{name: b, tenant: t, window: daily}]"),
              StartsWith("budgets[0].limit_usd:"));
  EXPECT_THAT(ParseError("tenants: [{name: t}]\nbudgets: [{name: b, tenant: t, window: daily, "
                         "limit_usd: 1, soft_limit_usd: 2}]"),
              StartsWith("budgets[0].soft_limit_usd: must be from 0 to limit_usd"));
}

TEST(ConfigValidation, PriceErrorsNameThePriceField) {
  EXPECT_THAT(ParseError("models: [{name: a, prices: {input_usd_per_mtok: -1}}]"),
              StartsWith("models[0].prices.input_usd_per_mtok: price must be"));
  EXPECT_THAT(ParseError("models: [{name: a, prices: {output_usd_per_mtok: .inf}}]"),
              StartsWith("models[0].prices.output_usd_per_mtok: price must be"));
  EXPECT_THAT(ParseError("models: [{name: a, prices: {cached_input_usd_per_mtok: .nan}}]"),
              StartsWith("models[0].prices.cached_input_usd_per_mtok: price must be"));
  EXPECT_THAT(ParseError("models: [{name: a, prices: {reasoning_usd_per_mtok: 2000000}}]"),
              StartsWith("models[0].prices.reasoning_usd_per_mtok: price above"));
}

TEST(ConfigValidation, ArchitectureNeedsLayersKvHeadsAndHeadDimTogether) {
  EXPECT_THAT(ParseError("models: [{name: a, architecture: {layers: 32, head_dim: 128}}]"),
              StartsWith("models[0].architecture.kv_heads: must be > 0"));
  EXPECT_THAT(ParseError("models: [{name: a, architecture: {head_dim: 128}}]"),
              StartsWith("models[0].architecture.layers: must be > 0"));
  EXPECT_NE(ParseValid("models: [{name: a, architecture: {parameters: 7000000000}}]"), nullptr);
}

TEST(ConfigValidation, BytesPerElementMustBeOneTwoOrFour) {
  EXPECT_THAT(ParseError("models: [{name: a, architecture: {bytes_per_element: 3}}]"),
              StartsWith("models[0].architecture.bytes_per_element: must be 1, 2 or 4, got 3"));
  EXPECT_NE(ParseValid("models: [{name: a, architecture: {bytes_per_element: 1}}]"), nullptr);
}

TEST(ConfigValidation, BackendNamesMustBeLabelSafeUniqueAndNotOther) {
  EXPECT_THAT(ParseError("backends: [{name: \"gpu pool\", kind: sim}]"),
              StartsWith("backends[0].name: invalid name"));
  EXPECT_THAT(ParseError("backends: [{name: other, kind: sim}]"),
              StartsWith("backends[0].name: \"other\" is reserved"));
  EXPECT_THAT(ParseError("backends: [{kind: sim}]"), StartsWith("backends[0].name: required"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim}, {name: a, kind: sim}]"),
              StartsWith("backends[1].name: duplicate backend \"a\""));
}

TEST(ConfigValidation, BackendKindMustBeAKnownKind) {
  EXPECT_EQ(ParseError("backends: [{name: a, kind: http}]"),
            "backends[0].kind: unknown kind \"http\" (valid kinds: sim, grpc, openai, anthropic)");
  EXPECT_EQ(ParseError("backends: [{name: a}]"),
            "backends[0].kind: required (valid kinds: sim, grpc, openai, anthropic)");
}

TEST(ConfigValidation, HttpBackendsNeedAnHttpBaseUrl) {
  EXPECT_THAT(ParseError("backends: [{name: a, kind: openai}]"),
              StartsWith("backends[0].base_url: required"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: openai, base_url: \"ftp://x\"}]"),
              StartsWith("backends[0].base_url: expected http:// or https://"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: anthropic, base_url: \"https://:99\"}]"),
              StartsWith("backends[0].base_url: no host"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: openai, base_url: \"http://h:99999\"}]"),
              StartsWith("backends[0].base_url: bad port"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, base_url: \"http://h\"}]"),
              StartsWith("backends[0].base_url: only valid for kinds openai and anthropic"));
}

TEST(ConfigValidation, ParsesBaseUrlsIntoSchemeHostPortAndPrefix) {
  absl::StatusOr<std::shared_ptr<const Config>> config = ParseConfigYaml(R"(
backends:
  - {name: a, kind: openai, base_url: "https://api.openai.com"}
  - {name: b, kind: openai, base_url: "http://10.0.0.5:8000/proxy/"}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const BaseUrl& a = (*config)->FindBackend("a")->base_url;
  EXPECT_TRUE(a.tls);
  EXPECT_EQ(a.host, "api.openai.com");
  EXPECT_EQ(a.port, 443);
  EXPECT_EQ(a.path_prefix, "");
  const BaseUrl& b = (*config)->FindBackend("b")->base_url;
  EXPECT_FALSE(b.tls);
  EXPECT_EQ(b.host, "10.0.0.5");
  EXPECT_EQ(b.port, 8000);
  EXPECT_EQ(b.path_prefix, "/proxy");
  EXPECT_EQ((*config)->FindBackend("b")->max_connections, 64u);
  EXPECT_EQ((*config)->FindBackend("b")->retry.max_attempts, 3u);
  EXPECT_EQ((*config)->FindBackend("b")->ejection.consecutive_failures, 5u);
}

TEST(ConfigValidation, ApiKeyEnvMustNameASetVariable) {
  EXPECT_THAT(ParseError("backends: [{name: a, kind: openai, base_url: \"http://h\", "
                         "api_key_env: TOLLGATE_TEST_SURELY_UNSET_VARIABLE}]"),
              StartsWith("backends[0].api_key_env: environment variable "
                         "TOLLGATE_TEST_SURELY_UNSET_VARIABLE is not set"));
  setenv("TOLLGATE_TEST_KEY", "sk-test", 1);
  absl::StatusOr<std::shared_ptr<const Config>> config = ParseConfigYaml(
      "backends: [{name: a, kind: openai, base_url: \"http://h\", api_key_env: "
      "TOLLGATE_TEST_KEY}]");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->FindBackend("a")->api_key, "sk-test");
}

TEST(ConfigValidation, BackendHeadersAreCheckedAndLowerCased) {
  absl::StatusOr<std::shared_ptr<const Config>> config = ParseConfigYaml(
      "backends: [{name: a, kind: openai, base_url: \"http://h\", "
      "headers: {OpenAI-Organization: org-1, x-b: \"2\"}}]");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& headers = (*config)->FindBackend("a")->headers;
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers[0].first, "openai-organization");
  EXPECT_EQ(headers[0].second, "org-1");
  EXPECT_THAT(ParseError("backends: [{name: a, kind: openai, base_url: \"http://h\", "
                         "headers: {\"bad header\": x}}]"),
              StartsWith("backends[0].headers.bad header: a header name is"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: openai, base_url: \"http://h\", "
                         "headers: {x-a: \"line\\nbreak\"}}]"),
              StartsWith("backends[0].headers.x-a: a header value cannot hold a line break"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, headers: {x-a: b}}]"),
              StartsWith("backends[0].headers: only valid for kinds openai and anthropic"));
}

TEST(ConfigValidation, RetryAndEjectionSettingsAreChecked) {
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, retry: {max_attempts: 11}}]"),
              StartsWith("backends[0].retry.max_attempts: must be 1 to 10"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, retry: {initial_backoff_ms: 500, "
                         "max_backoff_ms: 100}}]"),
              StartsWith("backends[0].retry.max_backoff_ms: must be >= initial_backoff_ms"));
}

TEST(ConfigValidation, FallbackBackendsMustExistAndNotRepeat) {
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim}]\n"
                         "models: [{name: m, backend: a, fallback_backends: [b]}]"),
              StartsWith("models[0].fallback_backends[0]: unknown backend \"b\""));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim}, {name: b, kind: sim}]\n"
                         "models: [{name: m, backend: a, fallback_backends: [b, a]}]"),
              StartsWith("models[0].fallback_backends[1]: backend \"a\" is listed twice"));
}

TEST(ConfigValidation, HttpListenerIsOptionalAndCheckedWhenSet) {
  EXPECT_THAT(ParseError("listeners: {http_address: nowhere}"),
              StartsWith("listeners.http_address: expected host:port"));
  absl::StatusOr<std::shared_ptr<const Config>> config = ParseConfigYaml("listeners: {}");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ((*config)->listeners.http_address, "");
  EXPECT_EQ((*config)->listeners.max_request_body_bytes, 4u << 20);
}

TEST(ConfigValidation, GrpcBackendsNeedAHostAndPortAndNoSimBlock) {
  EXPECT_THAT(ParseError("backends: [{name: a, kind: grpc}]"),
              StartsWith("backends[0].address: required for kind grpc"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: grpc, address: nowhere}]"),
              StartsWith("backends[0].address: expected host:port"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: grpc, address: \"h:1\", sim: {}}]"),
              StartsWith("backends[0].sim: only valid for kind sim"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, address: \"h:1\"}]"),
              StartsWith("backends[0].address: only valid for kind grpc"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: openai, base_url: \"http://h\", sim: {}}]"),
              StartsWith("backends[0].sim: only valid for kind sim"));
}

TEST(ConfigValidation, SimGpuMustBeAKnownPreset) {
  const std::string error = ParseError("backends: [{name: a, kind: sim, sim: {gpu: b200}}]");
  EXPECT_THAT(error, StartsWith("backends[0].sim.gpu: unknown GPU preset \"b200\""));
  EXPECT_THAT(error, HasSubstr("a100-80gb"));
}

TEST(ConfigValidation, SimTimeScaleMustBeFiniteAndNotNegative) {
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, sim: {time_scale: -0.5}}]"),
              StartsWith("backends[0].sim.time_scale: must be a finite number >= 0"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, sim: {time_scale: .inf}}]"),
              StartsWith("backends[0].sim.time_scale: must be a finite number >= 0"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, sim: {time_scale: .nan}}]"),
              StartsWith("backends[0].sim.time_scale: must be a finite number >= 0"));
}

TEST(ConfigValidation, SimMfuMustBeAboveZeroAndAtMostOne) {
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, sim: {mfu: 1.5}}]"),
              StartsWith("backends[0].sim.mfu: must be in (0, 1], got 1.5"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, sim: {mfu: -0.1}}]"),
              StartsWith("backends[0].sim.mfu: must be in (0, 1]"));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, sim: {mfu: .nan}}]"),
              StartsWith("backends[0].sim.mfu: must be in (0, 1]"));
  EXPECT_NE(ParseValid("backends: [{name: a, kind: sim, sim: {mfu: 1}}]"), nullptr);
}

TEST(ConfigValidation, EnabledBatchingNeedsABatchSize) {
  EXPECT_THAT(ParseError("batching: {enabled: true}"),
              StartsWith("batching.max_batch_size: must be >= 1 when batching is enabled"));
  EXPECT_THAT(ParseError("batching: {enabled: true, max_batch_size: 8, preferred_batch_sizes: "
                         "[4, 16]}"),
              StartsWith("batching.preferred_batch_sizes[1]: must be 1 to max_batch_size (8)"));
  EXPECT_NE(ParseValid("batching: {enabled: false}"), nullptr);
  EXPECT_THAT(ParseError("batching: {enabled: true, max_batch_size: 8, "
                         "max_queue_delay_us: 10000001}"),
              StartsWith("batching.max_queue_delay_us: must be at most 10000000 (10 s)"));
}

TEST(ConfigValidation, ABackendsBatchingOverridesTheTopLevelFieldByField) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
batching: {enabled: true, max_batch_size: 16, max_queue_delay_us: 2000,
           preferred_batch_sizes: [4, 8], max_in_flight_batches: 2}
backends:
  - {name: a, kind: sim}
  - {name: b, kind: sim, batching: {enabled: false}}
  - {name: c, kind: sim, batching: {max_batch_size: 32, max_queue_delay_us: 0,
                                    preferred_batch_sizes: [32], max_in_flight_batches: 0}}
models: [{name: m, backend: a}, {name: n}]
)");
  ASSERT_NE(config, nullptr);
  const BatchingOptions& a = config->FindBackend("a")->batching;
  EXPECT_TRUE(a.enabled);
  EXPECT_EQ(a.max_batch_size, 16u);
  EXPECT_EQ(a.max_queue_delay, absl::Microseconds(2000));
  EXPECT_EQ(a.preferred_batch_sizes, (std::vector<uint32_t>{4, 8}));
  EXPECT_EQ(a.max_in_flight_batches, 2u);
  EXPECT_FALSE(config->FindBackend("b")->batching.enabled);
  const BatchingOptions& c = config->FindBackend("c")->batching;
  EXPECT_EQ(c.max_batch_size, 32u);
  EXPECT_EQ(c.max_queue_delay, absl::ZeroDuration()) << "a written 0 overrides";
  EXPECT_EQ(c.preferred_batch_sizes, (std::vector<uint32_t>{32}));
  EXPECT_EQ(c.max_in_flight_batches, 0u) << "a written 0 (no bound) overrides";
  EXPECT_EQ(config->FindBackend("sim")->batching, a) << "the embedded simulator: the top level";
}

TEST(ConfigValidation, ABackendMayBatchAloneAndItsErrorsNameWhereTheValueCameFrom) {
  const std::shared_ptr<const Config> alone =
      ParseValid("backends: [{name: a, kind: sim, batching: {enabled: true, max_batch_size: 4}}]");
  ASSERT_NE(alone, nullptr);
  EXPECT_TRUE(alone->FindBackend("a")->batching.enabled);
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, batching: {enabled: true}}]"),
              StartsWith("batching.max_batch_size: must be >= 1 when batching is enabled"));
  EXPECT_THAT(ParseError("batching: {enabled: true, max_batch_size: 16, preferred_batch_sizes: "
                         "[8]}\nbackends: [{name: a, kind: sim, batching: {max_batch_size: 4}}]"),
              StartsWith("backends[0].batching.max_batch_size: must be at least the preferred "
                         "batch sizes it inherits (batching.preferred_batch_sizes[0] = 8)"));
  EXPECT_THAT(ParseError("batching: {enabled: true, max_batch_size: 16}\nbackends: [{name: a, "
                         "kind: sim, batching: {preferred_batch_sizes: [2, 20]}}]"),
              StartsWith("backends[0].batching.preferred_batch_sizes[1]: must be 1 to "
                         "max_batch_size (16)"));
  EXPECT_THAT(ParseError("batching: {enabled: true, max_batch_size: 16}\nbackends: [{name: a, "
                         "kind: sim, batching: {max_queue_delay_us: 99999999}}]"),
              StartsWith("backends[0].batching.max_queue_delay_us: must be at most"));
}

TEST(ConfigValidation, TypeErrorsFromTheYamlStartWithTheFieldPath) {
  EXPECT_THAT(ParseError("models: [{name: a, prices: {input_usd_per_mtok: cheap}}]"),
              StartsWith("models[0].prices.input_usd_per_mtok: expected a number, got \"cheap\""));
  EXPECT_THAT(ParseError("backends: [{name: a, kind: sim, timeout_ms: -1}]"),
              StartsWith("backends[0].timeout_ms: expected an unsigned integer, got \"-1\""));
  EXPECT_THAT(ParseError("listeners: [a]"), StartsWith("listeners: expected a map, got a list"));
  EXPECT_THAT(ParseError("models: [{name: a, bakend: b}]"),
              StartsWith("models[0].bakend: unknown field"));
}

TEST(ConfigValidation, MalformedYamlNamesTheLineAndColumn) {
  EXPECT_THAT(ParseError("models: [{name: a}\n"), StartsWith("YAML syntax error at line "));
  EXPECT_THAT(ParseError("listeners:\n    grpc_address: a:1\n  drain_timeout_ms: 5\n"),
              StartsWith("YAML syntax error at line 3, column 3"));
}

}  // namespace
}  // namespace tollgate
