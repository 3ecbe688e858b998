// The shipped examples under deploy/examples load, and the reference shows every schema field.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "proxy/config/yaml_to_proto.h"

namespace tollgate {
namespace {

using ::testing::ElementsAre;

std::string ExamplePath(absl::string_view file) {
  return absl::StrCat(TOLLGATE_SOURCE_DIR, "/deploy/examples/", file);
}

std::shared_ptr<const Config> LoadExample(absl::string_view file) {
  absl::StatusOr<std::shared_ptr<const Config>> config = LoadConfigFile(ExamplePath(file));
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : nullptr;
}

// "a.b[3].c[0]" → "a.b.c".
std::string WithoutIndexes(absl::string_view path) {
  std::string out;
  bool in_index = false;
  for (char c : path) {
    if (c == '[') in_index = true;
    if (!in_index) out.push_back(c);
    if (c == ']') in_index = false;
  }
  return out;
}

// Paths of every field reachable from `descriptor`, without list indexes.
// Every field path, descending into each message type at its first (breadth-first) use only: a
// type used again (Prices in a shadow plan) is already shown where it first appears.
void AllFieldPaths(const google::protobuf::Descriptor* root,
                   absl::flat_hash_set<std::string>* paths) {
  absl::flat_hash_set<const google::protobuf::Descriptor*> seen = {root};
  std::vector<std::pair<const google::protobuf::Descriptor*, std::string>> queue = {{root, ""}};
  for (size_t next = 0; next < queue.size(); ++next) {
    const auto [descriptor, prefix] = queue[next];
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* field = descriptor->field(i);
      const std::string path = prefix.empty() ? field->name() : prefix + "." + field->name();
      paths->insert(path);
      // A map's entries are free-form keys and values, not schema fields.
      if (field->message_type() != nullptr && !field->is_map() &&
          seen.insert(field->message_type()).second) {
        queue.emplace_back(field->message_type(), path);
      }
    }
  }
}

TEST(ConfigExamples, DemoConfigLoadsWithThreeTenantsAndFourModels) {
  const std::shared_ptr<const Config> config = LoadExample("demo.yaml");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->listeners.grpc_address, "127.0.0.1:50051");
  EXPECT_EQ(config->listeners.metrics_address, "127.0.0.1:9464");
  EXPECT_THAT(config->tenant_names, ElementsAre("acme", "globex", "initech"));
  for (const char* tenant : {"acme", "globex", "initech"}) {
    const auto it =
        config->tenant_by_key_sha256.find(ApiKeySha256Hex(absl::StrCat("demo-key-", tenant)));
    ASSERT_NE(it, config->tenant_by_key_sha256.end()) << tenant;
    EXPECT_EQ(it->second, tenant);
  }
  ASSERT_EQ(config->models.size(), 4u);
  EXPECT_EQ(config->FindModel("llama-3-8b")->backend, "sim");
  EXPECT_EQ(config->FindModel("mistral-7b")->backend, "sim");
  const ModelConfig* mini = config->FindModel("gpt-4o-mini");
  ASSERT_NE(mini, nullptr);
  EXPECT_EQ(mini->backend, "sim-hosted");
  EXPECT_EQ(mini->prices.input_nano_usd_per_mtok, 150'000'000);
  EXPECT_EQ(mini->prices.cached_input_nano_usd_per_mtok, 75'000'000);
  EXPECT_EQ(mini->prices.output_nano_usd_per_mtok, 600'000'000);
  const ModelConfig* gpt4o = config->FindModel("gpt-4o");
  ASSERT_NE(gpt4o, nullptr);
  EXPECT_EQ(gpt4o->prices.input_nano_usd_per_mtok, 2'500'000'000);
  EXPECT_EQ(gpt4o->prices.cached_input_nano_usd_per_mtok, 1'250'000'000);
  EXPECT_EQ(gpt4o->prices.output_nano_usd_per_mtok, 10'000'000'000);
  ASSERT_EQ(config->backends.size(), 2u);
  EXPECT_EQ(config->FindBackend("sim")->sim.gpu, "a100-80gb");
  EXPECT_EQ(config->FindBackend("sim")->sim.time_scale, 0.05);
  EXPECT_EQ(config->FindBackend("sim-hosted")->kind, BackendKind::kGrpc);
  EXPECT_EQ(config->FindBackend("sim-hosted")->address, "127.0.0.1:50061");
}

TEST(ConfigExamples, ReferenceConfigLoads) {
  const std::shared_ptr<const Config> config = LoadExample("tollgate.example.yaml");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->FindModel("llama-3-8b")->backend, "gpu-pool");
  EXPECT_EQ(config->FindModel("scratch-model")->backend, "sim");
}

TEST(ConfigExamples, ReferenceConfigShowsEverySchemaField) {
  std::ifstream file(ExamplePath("tollgate.example.yaml"));
  ASSERT_TRUE(file.is_open());
  std::stringstream text;
  text << file.rdbuf();
  v1::Config source;
  YamlWrittenPaths written;
  ASSERT_TRUE(YamlToProto(text.str(), &source, &written).ok());
  absl::flat_hash_set<std::string> shown;
  for (const std::string& path : written) shown.insert(WithoutIndexes(path));
  absl::flat_hash_set<std::string> schema;
  AllFieldPaths(v1::Config::descriptor(), &schema);
  for (const std::string& path : schema) EXPECT_TRUE(shown.contains(path)) << "not shown: " << path;
}

}  // namespace
}  // namespace tollgate
