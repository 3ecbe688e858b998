// Defaults, derived values and lookups of a loaded Config.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/config/config_test_yaml.h"

namespace tollgate {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

TEST(ConfigDefaults, AnEmptyFileGivesDefaultListenersAndNothingElse) {
  const std::shared_ptr<const Config> config = ParseValid("");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->listeners.grpc_address, "0.0.0.0:50051");
  EXPECT_EQ(config->listeners.metrics_address, "0.0.0.0:9464");
  EXPECT_EQ(config->listeners.drain_timeout, absl::Seconds(30));
  EXPECT_TRUE(config->tenant_names.empty());
  EXPECT_TRUE(config->models.empty());
  EXPECT_TRUE(config->backends.empty());
}

TEST(ConfigDefaults, AModelWithoutBackendGetsTheEmbeddedSimulatorAndItsOwnName) {
  const std::shared_ptr<const Config> config = ParseValid("models: [{name: llama-3-8b}]");
  ASSERT_NE(config, nullptr);
  const ModelConfig* model = config->FindModel("llama-3-8b");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->backend, kEmbeddedSimBackend);
  EXPECT_EQ(model->backend_model, "llama-3-8b");
  EXPECT_EQ(model->architecture.bytes_per_element, 2u);

  ASSERT_EQ(config->backends.size(), 1u);
  const BackendConfig* sim = config->FindBackend(kEmbeddedSimBackend);
  ASSERT_NE(sim, nullptr);
  EXPECT_EQ(sim->kind, BackendKind::kSim);
  EXPECT_EQ(sim->timeout, absl::Minutes(10));
  EXPECT_EQ(sim->sim.gpu, "a100-80gb");
  EXPECT_EQ(sim->sim.gpu_count, 1u);
  EXPECT_EQ(sim->sim.time_scale, 1.0);
  EXPECT_EQ(sim->sim.mfu, 0.5);
  EXPECT_EQ(sim->sim.max_running_requests, 256u);
}

TEST(ConfigDefaults, AModelNamingSimExplicitlyAlsoGetsTheEmbeddedSimulator) {
  const std::shared_ptr<const Config> config = ParseValid("models: [{name: m, backend: sim}]");
  ASSERT_NE(config, nullptr);
  EXPECT_NE(config->FindBackend("sim"), nullptr);
}

TEST(ConfigDefaults, ADeclaredSimBackendIsUsedInsteadOfAddingOne) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
backends: [{name: sim, kind: sim, sim: {gpu: H100-80GB, time_scale: 0.05}}]
models: [{name: m}]
)");
  ASSERT_NE(config, nullptr);
  ASSERT_EQ(config->backends.size(), 1u);
  EXPECT_EQ(config->backends[0].sim.gpu, "h100-80gb");
  EXPECT_EQ(config->backends[0].sim.time_scale, 0.05);
}

TEST(ConfigDefaults, NoSimulatorIsAddedWhenNoModelNeedsIt) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
backends: [{name: remote, kind: grpc, address: "10.0.0.1:50051"}]
models: [{name: m, backend: remote, backend_model: upstream-name}]
)");
  ASSERT_NE(config, nullptr);
  ASSERT_EQ(config->backends.size(), 1u);
  EXPECT_EQ(config->backends[0].kind, BackendKind::kGrpc);
  EXPECT_EQ(config->backends[0].address, "10.0.0.1:50051");
  EXPECT_EQ(config->FindModel("m")->backend_model, "upstream-name");
}

TEST(ConfigDefaults, TimeScaleIsOneWhenOmittedAndZeroWhenWrittenAsZero) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
backends:
  - {name: no-block, kind: sim}
  - {name: omitted, kind: sim, sim: {gpu: a10g}}
  - {name: instant, kind: sim, sim: {time_scale: 0}}
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->FindBackend("no-block")->sim.time_scale, 1.0);
  EXPECT_EQ(config->FindBackend("omitted")->sim.time_scale, 1.0);
  EXPECT_EQ(config->FindBackend("instant")->sim.time_scale, 0.0);
}

TEST(ConfigDefaults, BuildConfigTakesTheTimeScaleOfAPresentSimBlockAsWritten) {
  v1::Config source;
  v1::Backend* backend = source.add_backends();
  backend->set_name("instant");
  backend->set_kind("sim");
  backend->mutable_sim()->set_gpu("a10g");
  absl::StatusOr<std::shared_ptr<const Config>> config = BuildConfig(source);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->backends[0].sim.time_scale, 0.0);
}

TEST(ConfigDefaults, ZeroNumbersTakeTheirDefaults) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
listeners: {drain_timeout_ms: 0}
backends: [{name: b, kind: sim, timeout_ms: 0, sim: {gpu_count: 0, mfu: 0, time_scale: 2}}]
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->listeners.drain_timeout, absl::Seconds(30));
  const BackendConfig& backend = config->backends[0];
  EXPECT_EQ(backend.timeout, absl::Minutes(10));
  EXPECT_EQ(backend.sim.gpu_count, 1u);
  EXPECT_EQ(backend.sim.mfu, 0.5);
  EXPECT_EQ(backend.sim.time_scale, 2.0);
}

TEST(ConfigDefaults, PricesAreConvertedToNanoUsdExactly) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
models:
  - name: gpt-4o-mini
    prices: {input_usd_per_mtok: 0.15, cached_input_usd_per_mtok: 0.075, output_usd_per_mtok: 0.60,
             reasoning_usd_per_mtok: 2.50}
)");
  ASSERT_NE(config, nullptr);
  const TokenPrices& prices = config->models[0].prices;
  EXPECT_EQ(prices.input_nano_usd_per_mtok, 150'000'000);
  EXPECT_EQ(prices.cached_input_nano_usd_per_mtok, 75'000'000);
  EXPECT_EQ(prices.output_nano_usd_per_mtok, 600'000'000);
  EXPECT_EQ(prices.reasoning_nano_usd_per_mtok, 2'500'000'000);
}

TEST(ConfigDefaults, CachedInputAndReasoningPricesDefaultToInputAndOutput) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
models:
  - {name: a, prices: {input_usd_per_mtok: 2.5, output_usd_per_mtok: 10}}
  - {name: b, prices: {input_usd_per_mtok: 2.5, cached_input_usd_per_mtok: 0, output_usd_per_mtok: 10,
                       reasoning_usd_per_mtok: 0}}
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->models[0].prices.cached_input_nano_usd_per_mtok, 2'500'000'000);
  EXPECT_EQ(config->models[0].prices.reasoning_nano_usd_per_mtok, 10'000'000'000);
  // Written zeros are prices, not "unset".
  EXPECT_EQ(config->models[1].prices.cached_input_nano_usd_per_mtok, 0);
  EXPECT_EQ(config->models[1].prices.reasoning_nano_usd_per_mtok, 0);
}

TEST(ConfigDefaults, TenantKeysAreIndexedInLowerCase) {
  const std::string upper(64, 'A');
  const std::shared_ptr<const Config> config =
      ParseValid("tenants:\n  - {name: acme, api_key_sha256: [" + upper + "]}\n  - {name: b}\n");
  ASSERT_NE(config, nullptr);
  EXPECT_THAT(config->tenant_names, ElementsAre("acme", "b"));
  EXPECT_THAT(config->tenant_by_key_sha256,
              UnorderedElementsAre(Pair(std::string(64, 'a'), "acme")));
}

TEST(ConfigDefaults, KeepsTheSourceProtoAndConfigOrder) {
  const std::shared_ptr<const Config> config =
      ParseValid("models: [{name: z}, {name: a}, {name: m}]");
  ASSERT_NE(config, nullptr);
  ASSERT_EQ(config->models.size(), 3u);
  EXPECT_EQ(config->models[0].name, "z");
  EXPECT_EQ(config->models[2].name, "m");
  EXPECT_EQ(config->source.models_size(), 3);
  EXPECT_EQ(config->FindModel("a"), &config->models[1]);
}

TEST(ConfigDefaults, FindReturnsNullForUnknownNames) {
  const std::shared_ptr<const Config> config = ParseValid("models: [{name: m}]");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->FindModel("nope"), nullptr);
  EXPECT_EQ(config->FindBackend("nope"), nullptr);
}

TEST(ApiKeySha256Hex, MatchesTheStandardTestVectors) {
  EXPECT_EQ(ApiKeySha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ApiKeySha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ConfigDefaults, AModelsTokenizerIsImpliedByItsBackendModelThenItsName) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
models:
  - {name: chat, backend_model: gpt-4o-mini}
  - {name: gpt-4-turbo}
  - {name: llama, backend_model: meta-llama/Meta-Llama-3-8B-Instruct}
  - {name: mistral-7b}
  - {name: qwen-7b}
  - {name: forced, backend_model: gpt-4o, tokenizer: estimate}
  - {name: chosen, tokenizer: llama2}
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->FindModel("chat")->tokenizer, "o200k_base");
  EXPECT_EQ(config->FindModel("gpt-4-turbo")->tokenizer, "cl100k_base");
  EXPECT_EQ(config->FindModel("llama")->tokenizer, "llama3");
  EXPECT_EQ(config->FindModel("mistral-7b")->tokenizer, "mistral");
  EXPECT_EQ(config->FindModel("qwen-7b")->tokenizer, "");
  EXPECT_EQ(config->FindModel("forced")->tokenizer, "");
  EXPECT_EQ(config->FindModel("chosen")->tokenizer, "llama2");
}

TEST(ConfigDefaults, TheVocabularyDirectoryIsTheConfiguredOneElseTheEnvironmentsElseTheCache) {
  EXPECT_EQ(ParseValid("vocab_dir: /srv/vocab")->vocab_dir, "/srv/vocab");
  const char* saved = std::getenv("TOLLGATE_VOCAB_DIR");
  const std::string restore = saved != nullptr ? saved : "";
  setenv("TOLLGATE_VOCAB_DIR", "/from/env", 1);
  EXPECT_EQ(ParseValid("")->vocab_dir, "/from/env");
  unsetenv("TOLLGATE_VOCAB_DIR");
  EXPECT_EQ(ParseValid("")->vocab_dir, ".cache/tokenizer");
  if (saved != nullptr) setenv("TOLLGATE_VOCAB_DIR", restore.c_str(), 1);
}

TEST(ConfigDefaults, CacheWriteDefaultsToTheInputPriceAndTiersAndDiscountsAreExact) {
  const std::shared_ptr<const Config> config = ParseValid(R"(
models:
  - name: sonnet
    prices:
      input_usd_per_mtok: 3
      output_usd_per_mtok: 15
      batch_discount: 0.5
      long_context: {above_input_tokens: 200000, input_usd_per_mtok: 6, output_usd_per_mtok: 22.5}
  - {name: plain, prices: {input_usd_per_mtok: 1, cache_write_usd_per_mtok: 1.25}}
)");
  ASSERT_NE(config, nullptr);
  const TokenPrices& sonnet = config->FindModel("sonnet")->prices;
  EXPECT_EQ(sonnet.cache_write_nano_usd_per_mtok, 3'000'000'000);
  EXPECT_EQ(sonnet.batch_discount_ppm, 500'000);
  EXPECT_EQ(sonnet.long_context_above_input_tokens, 200'000u);
  ASSERT_NE(sonnet.long_context, nullptr);
  EXPECT_EQ(sonnet.long_context->input_nano_usd_per_mtok, 6'000'000'000);
  EXPECT_EQ(sonnet.long_context->reasoning_nano_usd_per_mtok, 22'500'000'000);
  const TokenPrices& plain = config->FindModel("plain")->prices;
  EXPECT_EQ(plain.cache_write_nano_usd_per_mtok, 1'250'000'000);
  EXPECT_EQ(plain.long_context, nullptr);
}

TEST(ConfigDefaults, ModelsWithoutPricesTakeThemFromThePriceFiles) {
  const std::string dir = ::testing::TempDir() + "/prices_" + std::to_string(getpid());
  mkdir(dir.c_str(), 0700);
  {
    std::ofstream file(dir + "/prices.yaml");
    file << R"(read_on: "2026-11-21"
models:
  - {name: gpt-4o, prices: {input_usd_per_mtok: 2.5, output_usd_per_mtok: 10}}
  - {name: claude-sonnet-4, prices: {input_usd_per_mtok: 3, output_usd_per_mtok: 15}}
)";
  }
  auto config = ParseConfigYaml(R"(
price_files: [prices.yaml]
models:
  - {name: chat, backend_model: gpt-4o-2024-08-06}
  - {name: claude-sonnet-4-20250514}
  - {name: own, backend_model: gpt-4o, prices: {input_usd_per_mtok: 1, output_usd_per_mtok: 2}}
  - {name: unlisted}
)",
                                dir);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->FindModel("chat")->prices.input_nano_usd_per_mtok, 2'500'000'000);
  EXPECT_EQ((*config)->FindModel("claude-sonnet-4-20250514")->prices.output_nano_usd_per_mtok,
            15'000'000'000);
  EXPECT_EQ((*config)->FindModel("own")->prices.input_nano_usd_per_mtok, 1'000'000'000);
  EXPECT_EQ((*config)->FindModel("unlisted")->prices.input_nano_usd_per_mtok, 0);
}

TEST(ConfigDefaults, TheShippedPriceFileLoads) {
  auto config = ParseConfigYaml(
      "price_files: [deploy/prices.yaml]\nmodels: [{name: gpt-4o-mini}, {name: claude-sonnet-4}]",
      TOLLGATE_SOURCE_DIR);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->FindModel("gpt-4o-mini")->prices.cached_input_nano_usd_per_mtok, 75'000'000);
  EXPECT_EQ((*config)->FindModel("claude-sonnet-4")->prices.long_context_above_input_tokens,
            200'000u);
}

}  // namespace
}  // namespace tollgate
