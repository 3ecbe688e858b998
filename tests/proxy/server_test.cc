#include "proxy/server.h"

#include <fstream>

#include "gtest/gtest.h"

namespace tollgate {
namespace {

constexpr char kBase[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0"}
backends: [{name: local, kind: sim, sim: {time_scale: 0}}]
)";

class ProxyServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tollgate-server-test-XXXXXX";
    path_ = std::string(mkdtemp(dir)) + "/tollgate.yaml";
  }
  void Write(const std::string& models) {
    std::ofstream(path_, std::ios::trunc) << kBase << models;
  }
  std::string path_;
};

TEST_F(ProxyServerTest, StartsOnFreePortsFromTheConfigFile) {
  Write("models: [{name: m, backend: local}]\n");
  auto server = ProxyServer::Start(path_);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->grpc_port(), 0);
  EXPECT_GT((*server)->metrics_port(), 0);
  (*server)->Shutdown(absl::Seconds(1));
}

TEST_F(ProxyServerTest, ReloadSwapsInTheNewPrices) {
  Write("models: [{name: m, backend: local, prices: {input_usd_per_mtok: 1}}]\n");
  auto server = ProxyServer::Start(path_);
  ASSERT_TRUE(server.ok()) << server.status();
  Write(
      "models: [{name: m, backend: local, prices: {input_usd_per_mtok: 3}},\n"
      "         {name: n, backend: local}]\n");
  ASSERT_TRUE((*server)->Reload().ok());
  EXPECT_EQ((*server)->config()->FindModel("m")->prices.input_nano_usd_per_mtok, 3'000'000'000);
  EXPECT_NE((*server)->config()->FindModel("n"), nullptr);
}

TEST_F(ProxyServerTest, ABadReloadKeepsTheRunningConfigAndNamesTheField) {
  Write("models: [{name: m, backend: local, prices: {input_usd_per_mtok: 1}}]\n");
  auto server = ProxyServer::Start(path_);
  ASSERT_TRUE(server.ok()) << server.status();
  Write("models: [{name: m, backend: nowhere}]\n");
  const absl::Status status = (*server)->Reload();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("models[0].backend"), std::string::npos) << status;
  EXPECT_EQ((*server)->config()->FindModel("m")->prices.input_nano_usd_per_mtok, 1'000'000'000);
}

TEST_F(ProxyServerTest, AMissingConfigFileIsAClearStartError) {
  auto server = ProxyServer::Start(path_ + ".missing");
  EXPECT_EQ(server.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(server.status().message().find(".missing"), std::string::npos);
}

}  // namespace
}  // namespace tollgate
