#include "proxy/config/config_store.h"

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/config/config_test_yaml.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;

// Writes `yaml` to a file in the test's temporary directory and returns its path.
std::string WriteConfigFile(absl::string_view name, absl::string_view yaml) {
  std::string path = absl::StrCat(testing::TempDir(), "/", name);
  std::ofstream(path) << yaml;
  return path;
}

TEST(ConfigStore, GetReturnsTheInitialConfig) {
  const std::shared_ptr<const Config> initial = ParseValid("models: [{name: a}]");
  ConfigStore store(initial);
  EXPECT_EQ(store.Get(), initial);
}

TEST(ConfigStore, ReloadingAGoodFileSwapsTheConfigAndNotifiesListeners) {
  ConfigStore store(ParseValid("models: [{name: a}]"));
  std::vector<std::shared_ptr<const Config>> notified;
  store.OnReload([&](const std::shared_ptr<const Config>& config) {
    EXPECT_EQ(store.Get(), config);  // the swap happens before the notification
    notified.push_back(config);
  });
  const std::string path = WriteConfigFile("good.yaml", "models: [{name: b}]");

  ASSERT_TRUE(store.ReloadFromFile(path).ok());

  EXPECT_NE(store.Get()->FindModel("b"), nullptr);
  EXPECT_EQ(store.Get()->FindModel("a"), nullptr);
  ASSERT_EQ(notified.size(), 1u);
  EXPECT_EQ(notified[0], store.Get());
}

TEST(ConfigStore, ReloadingABadFileKeepsTheOldConfigAndNamesTheField) {
  const std::shared_ptr<const Config> initial = ParseValid("models: [{name: a}]");
  ConfigStore store(initial);
  int notifications = 0;
  store.OnReload([&](const std::shared_ptr<const Config>&) { ++notifications; });
  const std::string path =
      WriteConfigFile("bad.yaml", "models: [{name: a, prices: {input_usd_per_mtok: cheap}}]");

  const absl::Status status = store.ReloadFromFile(path);

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("bad.yaml: models[0].prices.input_usd_per_mtok"));
  EXPECT_EQ(store.Get(), initial);
  EXPECT_EQ(notifications, 0);
}

TEST(ConfigStore, ReloadingAMissingFileIsNotFoundNamingThePath) {
  const std::shared_ptr<const Config> initial = ParseValid("");
  ConfigStore store(initial);
  const std::string path = absl::StrCat(testing::TempDir(), "/does-not-exist.yaml");

  const absl::Status status = store.ReloadFromFile(path);

  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(path));
  EXPECT_EQ(store.Get(), initial);
}

TEST(ConfigStore, ListenersRunInRegistrationOrderOnEverySet) {
  ConfigStore store(ParseValid(""));
  std::vector<int> calls;
  store.OnReload([&](const std::shared_ptr<const Config>&) { calls.push_back(1); });
  store.OnReload([&](const std::shared_ptr<const Config>&) { calls.push_back(2); });
  store.Set(ParseValid("models: [{name: a}]"));
  store.Set(ParseValid("models: [{name: b}]"));
  EXPECT_EQ(calls, (std::vector<int>{1, 2, 1, 2}));
}

TEST(ConfigStore, ConcurrentGetsDuringSetsAlwaysSeeAWholeConfig) {
  const std::shared_ptr<const Config> one = ParseValid("models: [{name: a}]");
  const std::shared_ptr<const Config> two = ParseValid("models: [{name: a}, {name: b}]");
  ConfigStore store(one);
  std::atomic<bool> stop{false};
  std::atomic<int> bad_reads{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers(4);
  for (std::thread& reader : readers) {
    reader = std::thread([&] {
      while (!stop.load()) {
        const std::shared_ptr<const Config> config = store.Get();
        ++reads;
        if (config != one && config != two) ++bad_reads;
        if (config->FindModel("a") == nullptr) ++bad_reads;
      }
    });
  }
  while (reads.load() < 100) std::this_thread::yield();  // the readers are running
  for (int i = 0; i < 2000; ++i) store.Set(i % 2 == 0 ? two : one);
  stop = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(bad_reads.load(), 0);
}

}  // namespace
}  // namespace tollgate
