#include "proxy/config/yaml_to_proto.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tollgate/v1/config.pb.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

// The INVALID_ARGUMENT message converting `yaml` into a `Message` fails with.
template <typename Message = v1::Config>
std::string ErrorOf(absl::string_view yaml) {
  Message message;
  const absl::Status status = YamlToProto(yaml, &message);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(YamlToProto, FillsNestedMessagesListsAndScalars) {
  v1::Config config;
  ASSERT_TRUE(YamlToProto(R"(
listeners: {grpc_address: "localhost:1", drain_timeout_ms: 5}
tenants:
  - name: acme
    api_key_sha256: [aa, bb]
models:
  - name: m
    prices: {input_usd_per_mtok: 0.15, cached_input_usd_per_mtok: 0}
batching: {enabled: TRUE, max_queue_delay_us: 18446744073709551615}
)",
                          &config)
                  .ok());
  EXPECT_EQ(config.listeners().grpc_address(), "localhost:1");
  EXPECT_EQ(config.listeners().drain_timeout_ms(), 5u);
  ASSERT_EQ(config.tenants_size(), 1);
  EXPECT_THAT(config.tenants(0).api_key_sha256(), testing::ElementsAre("aa", "bb"));
  EXPECT_DOUBLE_EQ(config.models(0).prices().input_usd_per_mtok(), 0.15);
  EXPECT_TRUE(config.models(0).prices().has_cached_input_usd_per_mtok());
  EXPECT_FALSE(config.models(0).prices().has_reasoning_usd_per_mtok());
  EXPECT_TRUE(config.batching().enabled());
  EXPECT_EQ(config.batching().max_queue_delay_us(), 18446744073709551615u);
}

TEST(YamlToProto, LeavesNullValuesUnset) {
  v1::Config config;
  ASSERT_TRUE(
      YamlToProto("listeners:\ntenants: ~\nmodels:\n  - name: m\n    prices: null\n", &config)
          .ok());
  EXPECT_FALSE(config.has_listeners());
  EXPECT_EQ(config.tenants_size(), 0);
  EXPECT_FALSE(config.models(0).has_prices());
}

TEST(YamlToProto, GivesAnEmptyMessageForAnEmptyDocument) {
  v1::Config config;
  config.add_tenants()->set_name("stale");
  EXPECT_TRUE(YamlToProto("", &config).ok());
  EXPECT_TRUE(YamlToProto("# only a comment\n", &config).ok());
  EXPECT_EQ(config.ByteSizeLong(), 0u);
}

TEST(YamlToProto, ReadsEnumsByNameInAnyCase) {
  v1::GenerateRequest request;
  ASSERT_TRUE(YamlToProto("cache_control: cache_control_bypass", &request).ok());
  EXPECT_EQ(request.cache_control(), v1::CACHE_CONTROL_BYPASS);
  EXPECT_THAT(ErrorOf<v1::GenerateRequest>("cache_control: sometimes"),
              StartsWith("cache_control: expected one of CACHE_CONTROL_DEFAULT, "
                         "CACHE_CONTROL_BYPASS, CACHE_CONTROL_NO_STORE, "
                         "CACHE_CONTROL_BYPASS_NO_STORE, got \"sometimes\""));
}

TEST(YamlToProto, FillsMapFieldsAndSignedAndFloatFields) {
  v1::GenerateRequest request;
  ASSERT_TRUE(
      YamlToProto("tags: {team: search, env: prod}\nparams: {seed: -3, temperature: 0.5}", &request)
          .ok());
  EXPECT_EQ(request.tags().at("team"), "search");
  EXPECT_EQ(request.tags().at("env"), "prod");
  EXPECT_EQ(request.params().seed(), -3);
  EXPECT_FLOAT_EQ(request.params().temperature(), 0.5f);
}

TEST(YamlToProto, RejectsTwoMembersOfOneOneof) {
  EXPECT_THAT(ErrorOf<v1::GenerateRequest>("prompt: hi\nchat: {messages: []}"),
              StartsWith("chat: only one of chat, prompt may be set"));
}

TEST(YamlToProto, RejectsAnUnknownTopLevelFieldListingTheKnownOnes) {
  EXPECT_THAT(ErrorOf("listener: {}"),
              StartsWith("listener: unknown field (known fields: listeners, tenants, models, "
                         "backends, cache, batching, vocab_dir, price_files, budgets, "
                         "default_max_tokens, ledger, shadow_plans, redis)"));
}

TEST(YamlToProto, RejectsAnUnknownNestedFieldNamingItsFullPath) {
  EXPECT_THAT(ErrorOf("backends:\n  - name: a\n    adress: x:1\n"),
              StartsWith("backends[0].adress: unknown field (known fields: name, kind, address, "));
}

TEST(YamlToProto, RejectsTextWhereANumberIsExpectedWithItsPosition) {
  EXPECT_EQ(ErrorOf("models:\n  - name: a\n  - name: b\n  - name: c\n"
                    "    prices: {input_usd_per_mtok: cheap}\n"),
            "models[2].prices.input_usd_per_mtok: expected a number, got \"cheap\" "
            "(line 5, column 34)");
}

TEST(YamlToProto, RejectsNegativeValuesForUnsignedFields) {
  EXPECT_THAT(ErrorOf("listeners: {drain_timeout_ms: -5}"),
              StartsWith("listeners.drain_timeout_ms: expected an unsigned integer, got \"-5\""));
}

TEST(YamlToProto, RejectsFractionsForIntegerFields) {
  EXPECT_THAT(ErrorOf("listeners: {drain_timeout_ms: 1.5}"),
              StartsWith("listeners.drain_timeout_ms: expected an unsigned integer, got \"1.5\""));
  EXPECT_THAT(ErrorOf<v1::GenerateRequest>("params: {seed: 1e3}"),
              StartsWith("params.seed: expected an integer, got \"1e3\""));
}

TEST(YamlToProto, RejectsOutOfRangeIntegers) {
  EXPECT_THAT(ErrorOf("listeners: {drain_timeout_ms: 4294967296}"),
              StartsWith("listeners.drain_timeout_ms: 4294967296 is out of range for uint32"));
  EXPECT_THAT(ErrorOf("cache: {max_bytes: 18446744073709551616}"),
              StartsWith("cache.max_bytes: 18446744073709551616 is out of range for uint64"));
}

TEST(YamlToProto, RejectsWordsForBooleans) {
  EXPECT_THAT(ErrorOf("cache: {enabled: yes}"),
              StartsWith("cache.enabled: expected true or false, got \"yes\""));
}

TEST(YamlToProto, RejectsAMapWhereAListIsExpected) {
  EXPECT_THAT(ErrorOf("tenants: {name: acme}"), StartsWith("tenants: expected a list, got a map"));
}

TEST(YamlToProto, RejectsAListWhereAMapIsExpected) {
  EXPECT_THAT(ErrorOf("listeners: [a, b]"), StartsWith("listeners: expected a map, got a list"));
  EXPECT_THAT(ErrorOf("- a"), StartsWith("top level: expected a map, got a list"));
}

TEST(YamlToProto, RejectsAMapWhereAScalarIsExpected) {
  EXPECT_THAT(ErrorOf("models: [{name: {first: a}}]"),
              StartsWith("models[0].name: expected a string, got a map"));
}

TEST(YamlToProto, RejectsNullListElements) {
  EXPECT_THAT(ErrorOf("tenants: [~]"), StartsWith("tenants[0]: expected a map, got null"));
}

TEST(YamlToProto, RejectsDuplicateKeysInOneMap) {
  EXPECT_EQ(ErrorOf("listeners:\n  grpc_address: a:1\n  grpc_address: b:2\n"),
            "listeners.grpc_address: duplicate key (line 3, column 3)");
}

TEST(YamlToProto, ReportsTheLineAndColumnOfAnUnclosedBracket) {
  EXPECT_THAT(ErrorOf("tenants: [{name: a}\nmodels: []\n"),
              StartsWith("YAML syntax error at line 2, column "));
}

TEST(YamlToProto, ReportsTheLineAndColumnOfBadIndentation) {
  EXPECT_EQ(ErrorOf("listeners:\n    grpc_address: a:1\n  metrics_address: b:2\n"),
            "YAML syntax error at line 3, column 3: end of map not found");
}

TEST(YamlToProto, RejectsMoreThanOneDocument) {
  EXPECT_EQ(ErrorOf("cache: {}\n---\ncache: {}\n"), "expected one YAML document, got 2");
}

TEST(YamlToProto, ParsesQuotedNumbersAndYamlInfinityAndNan) {
  v1::Config config;
  ASSERT_TRUE(YamlToProto(R"(
models:
  - prices: {input_usd_per_mtok: "0.25", output_usd_per_mtok: .inf, reasoning_usd_per_mtok: .NaN}
)",
                          &config)
                  .ok());
  const v1::Prices& prices = config.models(0).prices();
  EXPECT_DOUBLE_EQ(prices.input_usd_per_mtok(), 0.25);
  EXPECT_TRUE(std::isinf(prices.output_usd_per_mtok()));
  EXPECT_TRUE(std::isnan(prices.reasoning_usd_per_mtok()));
}

TEST(YamlToProto, RecordsThePathsOfWrittenFields) {
  v1::Config config;
  YamlWrittenPaths written;
  ASSERT_TRUE(
      YamlToProto("backends:\n  - name: a\n    sim: {time_scale: 0, gpu: ~}\n", &config, &written)
          .ok());
  EXPECT_THAT(written, UnorderedElementsAre("backends", "backends[0].name", "backends[0].sim",
                                            "backends[0].sim.time_scale"));
}

TEST(YamlToProto, KeepsStringsThatLookLikeOtherTypes) {
  v1::Config config;
  ASSERT_TRUE(
      YamlToProto("tenants: [{name: 123}, {name: 'null'}, {name: \"true\"}]", &config).ok());
  EXPECT_EQ(config.tenants(0).name(), "123");
  EXPECT_EQ(config.tenants(1).name(), "null");
  EXPECT_EQ(config.tenants(2).name(), "true");
}

TEST(YamlToProto, NamesTheFieldInAnErrorFromAMapFieldEntry) {
  EXPECT_THAT(ErrorOf<v1::GenerateRequest>("tags: {team: [a]}"),
              HasSubstr("tags[\"team\"]: expected a string, got a list"));
}

}  // namespace
}  // namespace tollgate
