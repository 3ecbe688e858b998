#include "proxy/router.h"

#include "gtest/gtest.h"

namespace tollgate {
namespace {

std::shared_ptr<const Config> Load(const std::string& yaml) {
  absl::StatusOr<std::shared_ptr<const Config>> config = ParseConfigYaml(yaml);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.value_or(nullptr);
}

constexpr char kTwoBackends[] = R"(
backends:
  - {name: local, kind: sim, sim: {time_scale: 0}}
  - {name: remote, kind: grpc, address: "127.0.0.1:1"}
models:
  - {name: small, backend: local}
  - {name: big, backend: remote, backend_model: llama-3-70b}
  - {name: default-backend}
)";

TEST(Router, ResolvesEachModelToItsConfiguredBackend) {
  auto config = Load(kTwoBackends);
  auto router = Router::Build(*config, nullptr);
  ASSERT_TRUE(router.ok()) << router.status();
  EXPECT_EQ((*router)->Resolve("small")->targets[0].backend->name(), "local");
  EXPECT_EQ((*router)->Resolve("big")->targets[0].backend->name(), "remote");
  EXPECT_EQ((*router)->Resolve("big")->model->backend_model, "llama-3-70b");
}

TEST(Router, ListsFallbacksAfterThePrimaryInOrder) {
  auto config = Load(R"(
backends:
  - {name: a, kind: sim}
  - {name: b, kind: sim}
  - {name: c, kind: sim}
models: [{name: m, backend: b, fallback_backends: [c, a]}]
)");
  auto router = Router::Build(*config, nullptr);
  ASSERT_TRUE(router.ok());
  absl::StatusOr<Route> route = (*router)->Resolve("m");
  ASSERT_TRUE(route.ok());
  ASSERT_EQ(route->targets.size(), 3u);
  EXPECT_EQ(route->targets[0].backend->name(), "b");
  EXPECT_EQ(route->targets[1].backend->name(), "c");
  EXPECT_EQ(route->targets[2].backend->name(), "a");
  EXPECT_EQ(route->targets[1].config->name, "c");
}

TEST(Router, SendsModelsWithoutABackendToTheEmbeddedSimulator) {
  auto config = Load(kTwoBackends);
  auto router = Router::Build(*config, nullptr);
  ASSERT_TRUE(router.ok());
  EXPECT_EQ((*router)->Resolve("default-backend")->targets[0].backend->name(), kEmbeddedSimBackend);
}

TEST(Router, AnUnknownModelIsNotFound) {
  auto config = Load(kTwoBackends);
  auto router = Router::Build(*config, nullptr);
  ASSERT_TRUE(router.ok());
  absl::StatusOr<Route> route = (*router)->Resolve("gpt-17");
  EXPECT_EQ(route.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(route.status().message().find("gpt-17"), std::string::npos);
}

TEST(Router, ReloadKeepsUnchangedBackendsAndReplacesChangedOnes) {
  auto first_config = Load(kTwoBackends);
  auto first = Router::Build(*first_config, nullptr);
  ASSERT_TRUE(first.ok());
  auto second_config = Load(R"(
backends:
  - {name: local, kind: sim, sim: {time_scale: 0}}
  - {name: remote, kind: grpc, address: "127.0.0.1:2"}
models:
  - {name: small, backend: local}
  - {name: big, backend: remote}
)");
  auto second = Router::Build(*second_config, first->get());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->FindBackend("local"), (*first)->FindBackend("local"));
  EXPECT_EQ((*second)->Resolve("small")->targets[0].health,
            (*first)->Resolve("small")->targets[0].health);
  EXPECT_NE((*second)->FindBackend("remote"), (*first)->FindBackend("remote"));
}

}  // namespace
}  // namespace tollgate
