// Issue 8's acceptance of the monitoring stack, end to end on real servers: tollgate-sim and
// Tollgate under traffic that touches every charted feature, the real Prometheus scraping Tollgate
// every second with deploy/prometheus/tollgate-rules.yml (thresholds and `for:` rewritten for a
// test), and the real Alertmanager with deploy/alertmanager/alertmanager.yml (waits shortened, its
// receivers pointed at a webhook listener in this test).
//
// It checks that
//   (a) the spend alert reaches the webhook for the tenant whose spend passes the threshold, and
//       not for the other (their rates differ ~1000x and the threshold sits between them);
//   (b) every panel query of the Grafana dashboards returns data from that Prometheus;
//   (c) Prometheus loaded every rule and evaluates it without error.
//
// The traffic, per round: the expensive tenant (bigco) sends a repeated deterministic unary request
// (cache hits and savings) and a unique stream (TTFT, streamed tokens) to `premium`; the cheap
// tenant (smallco) sends a unique unary request to a model on a GPU-priced backend with KV
// accounting and a metrics_url (GPU idle cost, KV series), three concurrent /v1/completions prompt
// requests to a batching OpenAI-compatible backend (batch size, queue delay), and one request to a
// backend nobody listens on (errors, ejection). Shadow plans, daily budgets per tenant, the ledger
// and Redis are configured, so their series exist too.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "tests/common/free_port.h"
#include "tests/common/redis_server.h"
#include "tests/common/webhook_receiver.h"
#include "tests/integration/harness.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate {
namespace {

constexpr char kBigcoKey[] = "key-observability-bigco";
constexpr char kSmallcoKey[] = "key-observability-smallco";
constexpr char kSpendAlert[] = "TollgateTenantSpendHigh";
// USD per hour: bigco's 5-minute rate passes it within seconds of traffic, smallco's stays far
// below (GPU time at 0.01 USD per GPU-hour, tokens at cents per million).
constexpr char kSpendThresholdUsdPerHour[] = "1";
// All the test's waits end by this long after SetUp, so that a slow server fails the test with
// its reason before ctest's TIMEOUT (600 s in tests/integration/CMakeLists.txt) kills it.
constexpr absl::Duration kWaitBudget = absl::Seconds(540);

constexpr char kConfig[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0", http_address: "127.0.0.1:0"}
tenants: [{name: bigco, api_key_sha256: ["{BIGCO}"]}, {name: smallco, api_key_sha256: ["{SMALLCO}"]}]
backends:
  - {name: premium-pool, kind: grpc, address: "{SIM}", retry: {max_attempts: 1}}
  - {name: gpu-pool, kind: grpc, address: "{SIM}", retry: {max_attempts: 1},
     gpu_cost: {gpu_type: a100-80gb, gpu_count: 1, usd_per_gpu_hour: 0.01, watts: 400,
                usd_per_kwh: 0.12},
     kv: {gpu: a100-80gb, metrics_url: "http://{SIM_HTTP}/metrics", poll_interval_ms: 500}}
  - {name: vllm-http, kind: openai, base_url: "http://{SIM_HTTP}", retry: {max_attempts: 1},
     batching: {enabled: true, max_batch_size: 8, preferred_batch_sizes: [3],
                max_queue_delay_us: 50000}}
  - {name: dead-pool, kind: grpc, address: "127.0.0.1:{DEAD_PORT}", retry: {max_attempts: 1},
     ejection: {consecutive_failures: 3, probe_interval_ms: 1000}}
models:
  - {name: premium, backend: premium-pool, backend_model: llama-3-8b, tokenizer: estimate,
     prices: {input_usd_per_mtok: 50, output_usd_per_mtok: 150}}
  - {name: llama-3-8b, backend: gpu-pool, tokenizer: estimate}
  - {name: batch-model, backend: vllm-http, backend_model: llama-3-8b, tokenizer: estimate,
     prices: {input_usd_per_mtok: 0.01, output_usd_per_mtok: 0.02}}
  - {name: broken, backend: dead-pool, backend_model: llama-3-8b, tokenizer: estimate,
     prices: {input_usd_per_mtok: 0.01, output_usd_per_mtok: 0.02}}
cache: {enabled: true}
redis: {address: "{REDIS}"}
ledger: {directory: "{DIR}/ledger"}
budgets:
  - {name: bigco-daily, tenant: bigco, window: daily, limit_usd: 1000}
  - {name: smallco-daily, tenant: smallco, window: daily, limit_usd: 5}
shadow_plans:
  - {name: on-gpt-4o, prices: {input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00}}
  - {name: llama-70b-4xh100, gpu: {gpu_type: h100-80gb, gpu_count: 4, usd_per_gpu_hour: 2.00},
     prefill_tokens_per_second: 5000, decode_tokens_per_second: 40}
)";

constexpr char kPrometheusConfig[] = R"(
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: [rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ["{ALERTMANAGER}"]}]}]
scrape_configs:
  - {job_name: tollgate, static_configs: [{targets: ["{TOLLGATE_METRICS}"]}]}
)";

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

int Occurrences(absl::string_view text, absl::string_view needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != absl::string_view::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

// The path of an installed executable, or "" (`command -v`).
std::string FindExecutable(const std::string& name) {
  const testing::CommandResult found = testing::RunCommand("command -v " + name);
  if (found.exit_code != 0) return "";
  return std::string(absl::StripAsciiWhitespace(found.output));
}

// A free loopback port: the kernel's pick for a port-0 bind, released for a server to take; 0
// when none (the wait for that server then fails).
int FreePort() { return testing::PickFreePort().value_or(0); }

// The rules with the spend threshold set to `spend_usd_per_hour` and every `for:` 0s, so that an
// alert fires at the first evaluation that sees its condition.
absl::StatusOr<std::string> RulesForTest(const std::string& rules,
                                         const std::string& spend_usd_per_hour) {
  std::vector<std::string> lines = absl::StrSplit(rules, '\n');
  bool in_spend_threshold = false;
  int thresholds_set = 0, fors_set = 0;
  for (std::string& line : lines) {
    const size_t indent = line.find_first_not_of(' ');
    if (indent == std::string::npos) continue;
    const absl::string_view text = absl::string_view(line).substr(indent);
    if (absl::StartsWith(text, "- record: ")) {
      in_spend_threshold = text == "- record: tollgate:threshold:spend_usd_per_hour";
    } else if (in_spend_threshold && absl::StartsWith(text, "expr: vector(")) {
      line = absl::StrCat(std::string(indent, ' '), "expr: vector(", spend_usd_per_hour, ")");
      in_spend_threshold = false;
      ++thresholds_set;
    } else if (absl::StartsWith(text, "for: ")) {
      line = absl::StrCat(std::string(indent, ' '), "for: 0s");
      ++fors_set;
    }
  }
  if (thresholds_set != 1 || fors_set == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("tollgate-rules.yml changed shape: ", thresholds_set, " spend thresholds and ",
                     fors_set, " `for:` lines found"));
  }
  return absl::StrJoin(lines, "\n");
}

// deploy/alertmanager/alertmanager.yml with its waits shortened and every receiver sent to `url`.
absl::StatusOr<std::string> AlertmanagerConfigForTest(const std::string& config,
                                                      const std::string& url) {
  const std::vector<std::pair<std::string, std::string>> rewrites = {
      {"group_wait: 30s", "group_wait: 1s"},
      {"group_interval: 5m", "group_interval: 1s"},
      {"repeat_interval: 4h", "repeat_interval: 1m"},
      {"http://alert-receiver:9095/alerts", url},
      {"http://oncall-receiver:9096/alerts", url}};
  for (const auto& [from, to] : rewrites) {
    if (!absl::StrContains(config, from)) {
      return absl::FailedPreconditionError(
          absl::StrCat("alertmanager.yml changed shape: no `", from, "`"));
    }
  }
  return absl::StrReplaceAll(config, rewrites);
}

std::string UrlEncode(absl::string_view text) {
  std::string encoded;
  for (const unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      absl::StrAppend(&encoded, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return encoded;
}

// A Grafana panel query made runnable: the dashboards' variables match any value, and the
// interval variables take a range that holds many samples at a 1 s scrape. `.+`, not the
// dashboards' "All" of `.*`: `label=~".*"` also matches series without the label, so a panel
// filtering by a label its series lack would pass here and show nothing once a value is picked.
std::string ResolveGrafanaVariables(const std::string& expr) {
  std::string resolved =
      std::regex_replace(expr, std::regex(R"(\$\{?__(rate_interval|interval|range)\}?)"), "30s");
  return std::regex_replace(resolved, std::regex(R"(\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)"), ".+");
}

// Every targets[].expr of the dashboard's panels, rows' nested panels included.
void CollectPanelQueries(const rapidjson::Value& panels, std::vector<std::string>& queries) {
  if (!panels.IsArray()) return;
  for (const rapidjson::Value& panel : panels.GetArray()) {
    if (!panel.IsObject()) continue;
    if (panel.HasMember("targets") && panel["targets"].IsArray()) {
      for (const rapidjson::Value& target : panel["targets"].GetArray()) {
        if (target.IsObject() && target.HasMember("expr") && target["expr"].IsString()) {
          queries.emplace_back(target["expr"].GetString());
        }
      }
    }
    if (panel.HasMember("panels")) CollectPanelQueries(panel["panels"], queries);
  }
}

// "alertname{tenant}" of each firing alert in the webhook bodies received so far ("alertname{}"
// for an alert without a tenant).
std::set<std::string> FiringAlerts(const std::vector<std::string>& bodies) {
  std::set<std::string> firing;
  for (const std::string& body : bodies) {
    rapidjson::Document json;
    json.Parse(body.c_str());
    if (json.HasParseError() || !json.IsObject() || !json.HasMember("alerts") ||
        !json["alerts"].IsArray()) {
      continue;
    }
    for (const rapidjson::Value& alert : json["alerts"].GetArray()) {
      if (!alert.IsObject() || !alert.HasMember("labels") || !alert.HasMember("status")) continue;
      const rapidjson::Value& labels = alert["labels"];
      if (std::string(alert["status"].GetString()) != "firing" || !labels.HasMember("alertname")) {
        continue;
      }
      firing.insert(absl::StrCat(labels["alertname"].GetString(), "{",
                                 labels.HasMember("tenant") ? labels["tenant"].GetString() : "",
                                 "}"));
    }
  }
  return firing;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    deadline_ = absl::Now() + kWaitBudget;
  }

  // The end of a wait of at most `most`, never past the test's shared deadline.
  absl::Time WaitEnd(absl::Duration most) const { return std::min(absl::Now() + most, deadline_); }

  void TearDown() override {
    stop_traffic_ = true;
    if (traffic_.joinable()) traffic_.join();
    for (testing::ChildProcess* process : {&prometheus_, &alertmanager_, &proxy_, &sim_}) {
      process->Signal(SIGKILL);
      process->Wait(absl::Seconds(10)).IgnoreError();
    }
    redis_.reset();
    if (HasFailure()) {
      std::cerr << "kept " << dir_ << " (logs of every server)\n";
    } else if (!dir_.empty()) {
      std::filesystem::remove_all(dir_);
    }
  }

  void StartTollgate() {
    absl::StatusOr<std::unique_ptr<testing::RedisServer>> redis = testing::RedisServer::Start();
    if (absl::IsNotFound(redis.status()) && std::getenv("CI") == nullptr) {
      GTEST_SKIP() << "redis-server not installed; scripts/setup installs it";
    }
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    const absl::StatusOr<testing::SimAddresses> sim =
        testing::StartSim(sim_, {"--time_scale=0.05"}, dir_ + "/sim.log");
    ASSERT_TRUE(sim.ok()) << sim.status();
    const std::string config = dir_ + "/tollgate.yaml";
    testing::WriteFile(config,
                       absl::StrReplaceAll(kConfig, {{"{BIGCO}", ApiKeySha256Hex(kBigcoKey)},
                                                     {"{SMALLCO}", ApiKeySha256Hex(kSmallcoKey)},
                                                     {"{SIM}", sim->grpc},
                                                     {"{SIM_HTTP}", sim->http},
                                                     {"{DEAD_PORT}", absl::StrCat(FreePort())},
                                                     {"{REDIS}", redis_->address()},
                                                     {"{DIR}", dir_}}));
    const std::string log = dir_ + "/tollgate.log";
    ASSERT_TRUE(proxy_.Start({testing::Binary("proxy/tollgate"), "--config", config}, log).ok());
    const absl::StatusOr<std::string> line =
        proxy_.WaitForLine("tollgate listening", WaitEnd(absl::Seconds(60)) - absl::Now());
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << ReadFile(log);
    metrics_ = testing::FieldAfter(*line, "metrics");
    grpc_ = testing::FieldAfter(*line, "grpc");
    http_ = testing::FieldAfter(*line, "http");
  }

  // Starts `binary` with `args` and waits until http://address/-/ready answers 200.
  void StartAndAwaitReady(testing::ChildProcess& process, const std::string& name,
                          const std::vector<std::string>& argv, const std::string& address) {
    const std::string log = absl::StrCat(dir_, "/", name, ".log");
    ASSERT_TRUE(process.Start(argv, log).ok()) << name;
    for (const absl::Time end = WaitEnd(absl::Seconds(90)); absl::Now() < end;
         absl::SleepFor(absl::Milliseconds(200))) {
      if (testing::HttpGet(address, "/-/ready").ok()) return;
    }
    FAIL() << name << " not ready at " << address << "\n" << ReadFile(log);
  }

  void StartAlerting(const std::string& alertmanager_binary, const std::string& prometheus_binary) {
    absl::StatusOr<std::unique_ptr<testing::WebhookReceiver>> webhook =
        testing::WebhookReceiver::Start();
    ASSERT_TRUE(webhook.ok()) << webhook.status();
    webhook_ = std::move(*webhook);

    const absl::StatusOr<std::string> alertmanager_config = AlertmanagerConfigForTest(
        ReadFile(TOLLGATE_SOURCE_DIR "/deploy/alertmanager/alertmanager.yml"),
        webhook_->url("/alerts"));
    ASSERT_TRUE(alertmanager_config.ok()) << alertmanager_config.status();
    testing::WriteFile(dir_ + "/alertmanager.yml", *alertmanager_config);
    alertmanager_address_ = absl::StrCat("127.0.0.1:", FreePort());
    ASSERT_NO_FATAL_FAILURE(StartAndAwaitReady(
        alertmanager_, "alertmanager",
        {alertmanager_binary, "--config.file=" + dir_ + "/alertmanager.yml",
         "--storage.path=" + dir_ + "/alertmanager-data",
         "--web.listen-address=" + alertmanager_address_, "--cluster.listen-address="},
        alertmanager_address_));

    const absl::StatusOr<std::string> rules =
        RulesForTest(ReadFile(TOLLGATE_SOURCE_DIR "/deploy/prometheus/tollgate-rules.yml"),
                     kSpendThresholdUsdPerHour);
    ASSERT_TRUE(rules.ok()) << rules.status();
    testing::WriteFile(dir_ + "/rules.yml", *rules);
    testing::WriteFile(
        dir_ + "/prometheus.yml",
        absl::StrReplaceAll(kPrometheusConfig, {{"{ALERTMANAGER}", alertmanager_address_},
                                                {"{TOLLGATE_METRICS}", metrics_}}));
    prometheus_address_ = absl::StrCat("127.0.0.1:", FreePort());
    ASSERT_NO_FATAL_FAILURE(
        StartAndAwaitReady(prometheus_, "prometheus",
                           {prometheus_binary, "--config.file=" + dir_ + "/prometheus.yml",
                            "--storage.tsdb.path=" + dir_ + "/prometheus-data",
                            "--web.listen-address=" + prometheus_address_},
                           prometheus_address_));
  }

  // One round of the traffic described at the top, repeated until the test ends.
  void RunTraffic() {
    const std::unique_ptr<v1::Inference::Stub> stub =
        v1::Inference::NewStub(grpc::CreateChannel(grpc_, grpc::InsecureChannelCredentials()));
    for (int round = 0; !stop_traffic_; ++round) {
      const auto call = [&](const char* key, const std::string& model, const std::string& prompt,
                            float temperature, bool stream) {
        grpc::ClientContext context;
        context.AddMetadata("authorization", absl::StrCat("Bearer ", key));
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
        v1::GenerateRequest request;
        request.set_model(model);
        request.set_prompt(prompt);
        request.mutable_params()->set_max_tokens(32);
        request.mutable_params()->set_temperature(temperature);
        v1::GenerateResponse response;
        if (!stream) {
          stub->Generate(&context, request, &response).IgnoreError();
          return;
        }
        auto reader = stub->GenerateStream(&context, request);
        while (reader->Read(&response)) {
        }
        reader->Finish().IgnoreError();
      };
      call(kBigcoKey, "premium", absl::StrCat("What costs ", round % 3, " dollars?"), 0, false);
      call(kBigcoKey, "premium", absl::StrCat("Tell story number ", round), 0.7f, true);
      call(kSmallcoKey, "llama-3-8b", absl::StrCat("Count to ", round), 0.7f, false);
      call(kSmallcoKey, "broken", "Nobody answers this", 0, false);
      constexpr int kBatchSize = 3;  // the backend's preferred batch size
      std::vector<std::thread> batch;
      batch.reserve(kBatchSize);
      for (int i = 0; i < kBatchSize; ++i) {
        batch.emplace_back([this, round, i] {
          testing::HttpCall(http_, "POST", "/v1/completions",
                            {{"authorization", absl::StrCat("Bearer ", kSmallcoKey)},
                             {"content-type", "application/json"}},
                            absl::StrCat(R"({"model":"batch-model","prompt":"item )", round, "-", i,
                                         R"(","max_tokens":8,"temperature":0.7})"))
              .IgnoreError();
        });
      }
      for (std::thread& thread : batch) thread.join();
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  // GET on Prometheus's HTTP API; the parsed body when its status is "success".
  absl::Status PrometheusApi(const std::string& path, rapidjson::Document& json) {
    const absl::StatusOr<testing::HttpResponse> response =
        testing::HttpCall(prometheus_address_, "GET", path, {}, "");
    if (!response.ok()) return response.status();
    json.Parse(response->body.c_str());
    if (json.HasParseError() || !json.IsObject() || !json.HasMember("status") ||
        std::string(json["status"].GetString()) != "success" || !json.HasMember("data")) {
      return absl::UnavailableError(absl::StrCat("HTTP ", response->status, ": ", response->body));
    }
    return absl::OkStatus();
  }

  // "" when the instant query returns at least one series, else why not.
  std::string QueryProblem(const std::string& expr) {
    rapidjson::Document json;
    const absl::Status status = PrometheusApi("/api/v1/query?query=" + UrlEncode(expr), json);
    if (!status.ok()) return status.ToString();
    const rapidjson::Value& data = json["data"];
    if (!data.HasMember("result") || !data["result"].IsArray()) return "no result array";
    if (data["result"].Empty()) return "empty result";
    return "";
  }

  // The instant query's data.result as JSON, for failure messages.
  std::string QueryResult(const std::string& expr) {
    rapidjson::Document json;
    const absl::Status status = PrometheusApi("/api/v1/query?query=" + UrlEncode(expr), json);
    if (!status.ok()) return status.ToString();
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    json["data"].Accept(writer);
    return buffer.GetString();
  }

  std::string dir_;
  absl::Time deadline_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<testing::WebhookReceiver> webhook_;
  testing::ChildProcess sim_, proxy_, alertmanager_, prometheus_;
  std::string metrics_, grpc_, http_, alertmanager_address_, prometheus_address_;
  std::atomic<bool> stop_traffic_{false};
  std::thread traffic_;
};

TEST_F(ObservabilityTest, SpendAlertReachesTheWebhookAndEveryDashboardQueryHasData) {
  const std::string prometheus = FindExecutable("prometheus");
  const std::string alertmanager = FindExecutable("prometheus-alertmanager");
  if (prometheus.empty() || alertmanager.empty()) {
    if (std::getenv("CI") != nullptr) {
      FAIL() << "prometheus or prometheus-alertmanager is missing in CI (scripts/setup installs "
                "them)";
    }
    GTEST_SKIP() << "prometheus or prometheus-alertmanager not installed; scripts/setup installs "
                    "them";
  }
  ASSERT_NO_FATAL_FAILURE(StartTollgate());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(StartAlerting(alertmanager, prometheus));
  traffic_ = std::thread([this] { RunTraffic(); });

  // (c) Every rule loaded, and evaluated without error.
  const std::set<std::string> expected_alerts = {"TollgateTenantSpendHigh",
                                                 "TollgateDailyBudgetProjectedExhausted",
                                                 "TollgateBudgetNearlySpent",
                                                 "TollgateBudgetExhausted",
                                                 "TollgateCacheHitRatioDropped",
                                                 "TollgateKvCacheNearlyFull",
                                                 "TollgateErrorRateHigh",
                                                 "TollgateLedgerWriteErrors",
                                                 "TollgateRedisDown",
                                                 "TollgateBackendEjected",
                                                 "TollgateDown"};
  const std::string rules_text =
      ReadFile(TOLLGATE_SOURCE_DIR "/deploy/prometheus/tollgate-rules.yml");
  const int rules_in_file =
      Occurrences(rules_text, "- record: ") + Occurrences(rules_text, "- alert: ");
  std::string rules_problem = "not asked yet";
  for (const absl::Time end = WaitEnd(absl::Seconds(60));
       !rules_problem.empty() && absl::Now() < end; absl::SleepFor(absl::Milliseconds(500))) {
    rapidjson::Document json;
    const absl::Status status = PrometheusApi("/api/v1/rules", json);
    if (!status.ok()) {
      rules_problem = status.ToString();
      continue;
    }
    std::set<std::string> alerts;
    int rules = 0;
    rules_problem.clear();
    for (const rapidjson::Value& group : json["data"]["groups"].GetArray()) {
      for (const rapidjson::Value& rule : group["rules"].GetArray()) {
        ++rules;
        const std::string name = rule["name"].GetString();
        if (std::string(rule["type"].GetString()) == "alerting") alerts.insert(name);
        const std::string health = rule["health"].GetString();
        if (health != "ok") {
          absl::StrAppend(&rules_problem, name, " health ", health, " ",
                          rule.HasMember("lastError") ? rule["lastError"].GetString() : "", "; ");
        }
      }
    }
    if (alerts != expected_alerts) {
      absl::StrAppend(&rules_problem, "alerting rules loaded: ", absl::StrJoin(alerts, ", "));
    }
    if (rules != rules_in_file) {
      absl::StrAppend(&rules_problem, rules, " rules loaded, ", rules_in_file, " in the file");
    }
  }
  EXPECT_EQ(rules_problem, "") << "Prometheus's /api/v1/rules";

  // (a) The spend alert reaches the webhook through Alertmanager, for bigco.
  const std::string bigco_alert = absl::StrCat(kSpendAlert, "{bigco}");
  const std::string smallco_alert = absl::StrCat(kSpendAlert, "{smallco}");
  std::set<std::string> firing;
  for (const absl::Time end = WaitEnd(absl::Seconds(120));
       !firing.count(bigco_alert) && absl::Now() < end; absl::SleepFor(absl::Milliseconds(500))) {
    firing = FiringAlerts(webhook_->Bodies());
  }
  EXPECT_TRUE(firing.count(bigco_alert))
      << "no " << bigco_alert << " at the webhook; alerts received: " << absl::StrJoin(firing, ", ")
      << "\nspend per tenant, USD/h: " << QueryResult("tenant:tollgate_cost_usd_per_hour:rate5m");

  // (b) Every dashboard panel query returns data.
  for (const char* dashboard : {"tollgate-cost.json", "tollgate-performance.json"}) {
    const std::string path = absl::StrCat(TOLLGATE_SOURCE_DIR, "/deploy/grafana/", dashboard);
    if (!std::filesystem::exists(path)) {
      ADD_FAILURE() << "dashboard " << path << " does not exist yet";
      continue;
    }
    rapidjson::Document json;
    json.Parse(ReadFile(path).c_str());
    ASSERT_FALSE(json.HasParseError()) << path << " is not JSON";
    ASSERT_TRUE(json.IsObject() && json.HasMember("panels")) << path << " has no panels";
    std::vector<std::string> queries;
    CollectPanelQueries(json["panels"], queries);
    EXPECT_FALSE(queries.empty()) << path << " has no panel queries";
    std::map<std::string, std::string> problems;  // query → why it has no data
    for (const std::string& query : queries) problems[query] = "not asked yet";
    for (const absl::Time end = WaitEnd(absl::Seconds(90)); !problems.empty() && absl::Now() < end;
         absl::SleepFor(absl::Seconds(1))) {
      for (auto it = problems.begin(); it != problems.end();) {
        it->second = QueryProblem(ResolveGrafanaVariables(it->first));
        it = it->second.empty() ? problems.erase(it) : std::next(it);
      }
    }
    for (const auto& [query, problem] : problems) {
      ADD_FAILURE() << dashboard << ": no data for " << query << "\n  run as "
                    << ResolveGrafanaVariables(query) << "\n  " << problem;
    }
  }

  // (a) again, after a minute or more of traffic: smallco's spend stayed under the threshold.
  firing = FiringAlerts(webhook_->Bodies());
  EXPECT_EQ(firing.count(smallco_alert), 0u)
      << "smallco's spend alerted: " << QueryResult("tenant:tollgate_cost_usd_per_hour:rate5m");
  rapidjson::Document alerts;
  ASSERT_TRUE(PrometheusApi("/api/v1/alerts", alerts).ok());
  firing.clear();
  for (const rapidjson::Value& alert : alerts["data"]["alerts"].GetArray()) {
    const rapidjson::Value& labels = alert["labels"];
    if (labels["alertname"].GetString() == std::string(kSpendAlert) &&
        std::string(alert["state"].GetString()) == "firing") {
      firing.insert(labels["tenant"].GetString());
    }
  }
  EXPECT_EQ(firing, std::set<std::string>({"bigco"})) << "Prometheus's firing spend alerts";
}

}  // namespace
}  // namespace tollgate
