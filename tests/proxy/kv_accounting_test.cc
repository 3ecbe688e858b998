// KvAccounting (proxy/kv_accounting.cc): states per backend with `kv`, kept across reloads that
// change nothing of theirs.
#include "proxy/kv_accounting.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "proxy/config/config.h"

namespace tollgate {
namespace {

std::shared_ptr<const Config> Load(const std::string& kv) {
  absl::StatusOr<std::shared_ptr<const Config>> config =
      ParseConfigYaml("backends: [{name: gpu, kind: sim, kv: " + kv +
                      "}, {name: plain, kind: sim}]\n"
                      "models: [{name: chat, backend: gpu, backend_model: llama-3-8b}, {name: m, "
                      "backend: plain}]\n");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.value_or(nullptr);
}

TEST(KvAccounting, TracksOnlyKvBackendsSizedForTheirModel) {
  prometheus::Registry registry;
  KvAccounting kv(registry);
  const absl::StatusOr<KvStates> states = kv.StatesFor(*Load("{gpu: a100-80gb}"));
  ASSERT_TRUE(states.ok()) << states.status();
  kv.Commit();
  ASSERT_EQ(states->size(), 1u);
  const KvBackendState& gpu = *states->at("gpu");
  EXPECT_EQ(gpu.tracker->capacity_bytes(), 55'940'000'000u);  // 80e9 × 0.9 − 8.03e9 × 2
  ASSERT_NE(gpu.Model("chat"), nullptr);
  EXPECT_EQ(gpu.Model("chat")->bytes_per_token(), 131072u);
  EXPECT_EQ(gpu.Model("m"), nullptr);
  EXPECT_EQ(gpu.admission, nullptr);
}

TEST(KvAccounting, AGivenCapacityReplacesTheDerivedOne) {
  prometheus::Registry registry;
  KvAccounting kv(registry);
  const absl::StatusOr<KvStates> states =
      kv.StatesFor(*Load("{gpu: a100-80gb, capacity_bytes: 2097152000}"));
  ASSERT_TRUE(states.ok()) << states.status();
  kv.Commit();
  EXPECT_EQ(states->at("gpu")->tracker->capacity_bytes(), 2'097'152'000u);
  // A changed capacity is a changed backend: a new tracker, sized anew.
  const KvStates derived = *kv.StatesFor(*Load("{gpu: a100-80gb}"));
  kv.Commit();
  EXPECT_NE(derived.at("gpu"), states->at("gpu"));
  EXPECT_EQ(derived.at("gpu")->tracker->capacity_bytes(), 55'940'000'000u);
}

TEST(KvAccounting, AReloadKeepsAnUnchangedBackendsTrackerAndReplacesAChangedOne) {
  prometheus::Registry registry;
  KvAccounting kv(registry);
  const KvStates first = *kv.StatesFor(*Load("{gpu: a100-80gb}"));
  kv.Commit();
  KvRequest held = first.at("gpu")->tracker->Begin(100, 131072);

  const KvStates same = *kv.StatesFor(*Load("{gpu: a100-80gb}"));
  kv.Commit();
  EXPECT_EQ(same.at("gpu"), first.at("gpu")) << "what is in flight stays counted";

  const KvStates changed = *kv.StatesFor(
      *Load("{gpu: a100-80gb, gpu_memory_utilization: 0.8, admission: {enabled: true}}"));
  kv.Commit();
  EXPECT_NE(changed.at("gpu"), first.at("gpu"));
  EXPECT_EQ(changed.at("gpu")->tracker->capacity_bytes(), 47'940'000'000u);
  EXPECT_NE(changed.at("gpu")->admission, nullptr);
  first.at("gpu")->tracker->End(held);
}

}  // namespace
}  // namespace tollgate
