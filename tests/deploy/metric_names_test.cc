// Every tollgate_* series that the Prometheus rules (deploy/prometheus/*.yml) and the Grafana
// dashboards (deploy/grafana/*.json) query is one Tollgate or tollgate-sim exposes.
//
// The exposed names come from the real /metrics of a tollgate started with every feature that
// owns series (budgets, cache, Redis, GPU cost, KV accounting with a polled backend, batching,
// shadow plans, ledger) after one request, and of the tollgate-sim it polls: the README's table
// can fall behind the code, /metrics cannot. Tollgate creates its series at start-up, so one
// request is enough for histograms to show their _bucket/_sum/_count samples too.
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/deploy/deploy_files.h"

namespace tollgate::deploy_test {
namespace {

// Metric family names in a Prometheus text exposition (# TYPE lines, and sample names).
void AddExposedNames(const std::string& text, std::set<std::string>* names) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      names->insert(std::string(line.substr(0, line.find(' '))));
    } else if (!line.empty() && line[0] != '#') {
      names->insert(std::string(line.substr(0, line.find_first_of("{ "))));
    }
  }
}

// "tollgate_x" tokens in `text` that are metric names: not part of a longer identifier and not a
// recording rule's level:metric:operation name.
std::set<std::string> ReferencedNames(const std::string& text) {
  std::set<std::string> names;
  auto is_name_char = [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == ':'; };
  for (size_t at = text.find("tollgate_"); at != std::string::npos;
       at = text.find("tollgate_", at + 1)) {
    if (at > 0 && is_name_char(text[at - 1])) continue;
    size_t end = at + 9;
    while (end < text.size() && (absl::ascii_islower(text[end]) || text[end] == '_')) ++end;
    if (end < text.size() && is_name_char(text[end])) continue;
    names.insert(text.substr(at, end - at));
  }
  return names;
}

std::string Exposed(const std::set<std::string>& exposed, const std::string& name) {
  if (exposed.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (absl::EndsWith(name, suffix)) {
      const std::string base = name.substr(0, name.size() - strlen(suffix));
      if (exposed.count(base)) return base;
    }
  }
  return "";
}

class MetricNamesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = absl::StrCat(::testing::TempDir(), "/deploy_metric_names_", getpid());
    RunCommand("mkdir -p '" + dir + "/ledger'");
    ::tollgate::testing::ChildProcess sim;
    const absl::StatusOr<::tollgate::testing::SimAddresses> sim_addresses =
        ::tollgate::testing::StartSim(sim, {"--time_scale=0"}, dir + "/sim.err");
    ASSERT_TRUE(sim_addresses.ok()) << "tollgate-sim did not start: " << sim_addresses.status();
    const std::string sim_http = sim_addresses->http;
    const std::string config = dir + "/tollgate.yaml";
    std::ofstream(config) << absl::StrCat(R"(
listeners: {grpc_address: 127.0.0.1:0, metrics_address: 127.0.0.1:0, http_address: 127.0.0.1:0}
tenants: [{name: acme, api_key_sha256: [)",
                                          ApiKeySha256Hex("deploy-test-key"), R"(]}]
backends:
  - name: vllm
    kind: openai
    base_url: http://)",
                                          sim_http, R"(
    gpu_cost: {gpu_type: a100-80gb, gpu_count: 1, usd_per_gpu_hour: 1.89, watts: 400, usd_per_kwh: 0.12}
    kv: {gpu: a100-80gb, metrics_url: http://)",
                                          sim_http, R"(/metrics, poll_interval_ms: 100}
    batching: {enabled: true, max_batch_size: 4, max_queue_delay_us: 1000}
models:
  - name: llama-3-8b
    backend: vllm
    prices: {input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2}
    architecture: {parameters: 8030000000, layers: 32, kv_heads: 8, head_dim: 128}
cache: {enabled: true}
redis: {address: "127.0.0.1:1"}
budgets: [{name: acme-daily, tenant: acme, window: daily, limit_usd: 10}]
ledger: {directory: )",
                                          dir, R"(/ledger}
shadow_plans: [{name: on-gpt-4o, prices: {input_usd_per_mtok: 2.5, output_usd_per_mtok: 10}}]
)");
    ::tollgate::testing::ChildProcess tollgate;
    ASSERT_TRUE(
        tollgate.Start({Binary("proxy/tollgate"), "--config", config}, dir + "/tollgate.err").ok());
    absl::StatusOr<std::string> line =
        tollgate.WaitForLine("tollgate listening ", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << "tollgate did not start: " << line.status() << "\n"
                           << ReadFile(dir + "/tollgate.err");
    const std::string listening = line->substr(std::strlen("tollgate listening "));
    std::map<std::string, std::string> addresses;  // grpc=, metrics=, http=
    for (absl::string_view field : absl::StrSplit(listening, ' ', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(field, absl::MaxSplits('=', 1));
      addresses[kv.first] = kv.second;
    }
    // One request of each batched and unbatched kind, so that histograms have samples.
    for (const char* request :
         {R"({"model":"llama-3-8b","messages":[{"role":"user","content":"hi"}],"max_tokens":8})",
          R"({"model":"llama-3-8b","prompt":"hi","max_tokens":8})"}) {
      const char* path =
          absl::StrContains(request, "messages") ? "chat/completions" : "completions";
      RunCommand(absl::StrCat("curl -s -m 10 -H 'Authorization: Bearer deploy-test-key' ",
                              "-H 'Content-Type: application/json' -d '", request, "' http://",
                              addresses["http"], "/v1/", path));
    }
    // The backend's own KV figure appears after the first poll of the simulator's /metrics: wait
    // for it (up to 30 s on a busy machine) instead of a fixed pause.
    std::string tollgate_metrics;
    for (int attempt = 0; attempt < 300; ++attempt) {
      tollgate_metrics =
          RunCommand("curl -s -m 10 http://" + addresses["metrics"] + "/metrics").output;
      if (absl::StrContains(tollgate_metrics, "tollgate_backend_kv_cache_usage_ratio{")) break;
      usleep(100 * 1000);
    }
    const std::string sim_metrics =
        RunCommand("curl -s -m 10 http://" + sim_http + "/metrics").output;
    exposed_ = new std::set<std::string>();
    AddExposedNames(tollgate_metrics, exposed_);
    AddExposedNames(sim_metrics, exposed_);
  }
  static void TearDownTestSuite() {
    delete exposed_;
    exposed_ = nullptr;
  }

  static std::set<std::string>* exposed_;
};

std::set<std::string>* MetricNamesTest::exposed_ = nullptr;

TEST_F(MetricNamesTest, TollgateExposesItsSeries) {
  ASSERT_NE(exposed_, nullptr);
  for (const char* name :
       {"tollgate_requests_total", "tollgate_cost_usd_total", "tollgate_request_duration_seconds",
        "tollgate_kv_cache_bytes", "tollgate_redis_up", "tollgate_sim_requests_total"}) {
    EXPECT_TRUE(exposed_->count(name)) << name << " missing from the started processes' /metrics";
  }
}

TEST_F(MetricNamesTest, RulesAndDashboardsQueryOnlyExposedSeries) {
  ASSERT_NE(exposed_, nullptr);
  std::vector<std::string> files = ListFiles(SourcePath("deploy/prometheus"), {".yml", ".yaml"});
  for (std::string& file : ListFiles(SourcePath("deploy/grafana"), {".json"})) {
    files.push_back(std::move(file));
  }
  ASSERT_FALSE(files.empty()) << "no deploy/prometheus/*.yml or deploy/grafana/*.json";
  std::set<std::string> tollgate_names;
  for (const std::string& name : *exposed_) {
    if (absl::StartsWith(name, "tollgate_")) tollgate_names.insert(name);
  }
  for (const std::string& file : files) {
    for (const std::string& name : ReferencedNames(ReadFile(file))) {
      EXPECT_FALSE(Exposed(*exposed_, name).empty())
          << file << " queries " << name << ", which neither tollgate nor tollgate-sim exposes. "
          << "Exposed: " << absl::StrJoin(tollgate_names, " ");
    }
  }
}

}  // namespace
}  // namespace tollgate::deploy_test
