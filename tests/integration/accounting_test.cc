// Acceptance tests of spend accounting, budgets and the usage ledger, end to end: real tollgate and
// tollgate-sim processes, real sockets, the ledger read back from disk.
//
// - What the clients were charged, the ledger and /metrics agree to the nano-USD after a mixed run
//   (unary, streamed, cancelled, retried, cut-off, cached and reasoning, embeddings, HTTP).
// - A budget holds under 200 concurrent requests, survives a restart (the ledger is replayed) and
//   refuses over HTTP with an OpenAI-shaped 429.
// - `tollgate ledger summarize` adds up to the ledger; a SIGKILL leaves a ledger that parses and a
//   tollgate that restarts on it.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/substitute.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "accounting/ledger/ledger.h"
#include "accounting/ledger/reader.h"
#include "accounting/metrics.h"
#include "accounting/tokenizer/chat.h"
#include "accounting/tokenizer/registry.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "rapidjson/document.h"
#include "tests/http/json_test_util.h"
#include "tests/integration/harness.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate {
namespace {

constexpr char kAcmeKey[] = "key-acme";
constexpr char kBetaKey[] = "key-beta";
constexpr char kCappedKey[] = "key-beta-capped";  // beta's second key, under a tiny key budget
constexpr char kUnknownKey[] = "key-nobody";

// Every model of the mixed run: input 1.00, cached 0.50, output 4.00, reasoning 9.00 USD per Mtok.
constexpr int64_t kInputNano = 1000;  // nano-USD per token
constexpr int64_t kCachedNano = 500;
constexpr int64_t kOutputNano = 4000;
constexpr int64_t kReasoningNano = 9000;

// The mixed run. {SIM} is a simulator's gRPC address, {SIM_HTTP} its HTTP API, {FLAKY_HTTP} the
// HTTP API of one that answers every second request 503.
constexpr char kMixedConfig[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0", http_address: "127.0.0.1:0"}
tenants:
  - {name: acme, api_key_sha256: ["{ACME}"]}
  - {name: beta, api_key_sha256: ["{BETA}", "{CAPPED}"]}
backends:
  - {name: remote, kind: grpc, address: "{SIM}"}
  - {name: vllm-cache, kind: openai, base_url: "http://{SIM_HTTP}",
     headers: {x-sim-cache-read: "4", x-sim-reasoning: "3"}}
  - {name: flaky, kind: openai, base_url: "http://{FLAKY_HTTP}",
     retry: {max_attempts: 3, initial_backoff_ms: 1, max_backoff_ms: 10}}
  - {name: resetting, kind: openai, base_url: "http://{SIM_HTTP}",
     headers: {x-sim-fault: "reset-after=5"}, retry: {max_attempts: 1}}
  - {name: slow, kind: sim, sim: {gpu: a10g, time_scale: 1}}
models:
  - {name: chat, backend: remote, backend_model: llama-3-8b, prices: &prices
      {input_usd_per_mtok: 1.00, cached_input_usd_per_mtok: 0.50, output_usd_per_mtok: 4.00,
       reasoning_usd_per_mtok: 9.00}}
  - {name: cached, backend: vllm-cache, backend_model: llama-3-8b, prices: *prices}
  - {name: flaky, backend: flaky, backend_model: llama-3-8b, prices: *prices}
  - {name: reset, backend: resetting, backend_model: llama-3-8b, prices: *prices}
  - {name: slow, backend: slow, backend_model: llama-3-8b, prices: *prices}
budgets:
  - {name: acme-daily, tenant: acme, window: daily, limit_usd: 1, soft_limit_usd: 0.8}
  - {name: capped-key, api_key_sha256: "{CAPPED}", window: daily, limit_usd: 0.000001}
default_max_tokens: 4096
ledger: {directory: "{LEDGER}", fsync_interval_ms: 10}
vocab_dir: "{VOCAB}"
)";

// Budgets on the embedded simulator. `metered` has a dear output so that 16 tokens (never more than
// the simulator's shortest answer, so every call runs to max_tokens) reserve about a tenth of
// acme's budget; its reasoning price equals its output price, so a call costs about what it
// reserves.
constexpr char kBudgetConfig[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0", http_address: "127.0.0.1:0"}
tenants:
  - {name: acme, api_key_sha256: ["{ACME}"]}
  - {name: beta, api_key_sha256: ["{BETA}"]}
backends:
  - {name: local, kind: sim, sim: {time_scale: 0}}
models:
  - {name: metered, backend: local, backend_model: llama-3-8b, prices: &metered
      {input_usd_per_mtok: 1.00, cached_input_usd_per_mtok: 0.50, output_usd_per_mtok: 60.00,
       reasoning_usd_per_mtok: 60.00}}
  - {name: metered-2k, backend: local, backend_model: llama-3-8b, context_tokens: 2048,
     prices: *metered}
  - {name: cheap, backend: local, backend_model: llama-3-8b, prices:
      {input_usd_per_mtok: 1.00, cached_input_usd_per_mtok: 0.50, output_usd_per_mtok: 4.00,
       reasoning_usd_per_mtok: 9.00}}
budgets: [{name: acme-daily, tenant: acme, window: daily, limit_usd: 0.01, soft_limit_usd: 0.008}]
default_max_tokens: 4096
ledger: {directory: "{LEDGER}", fsync_interval_ms: 10{LEDGER_EXTRA}}
vocab_dir: "{VOCAB}"
)";
constexpr int64_t kAcmeLimitNano = 10'000'000;  // acme-daily: 0.01 USD
constexpr int64_t kMeteredOutputNano = 60'000;
constexpr uint32_t kDefaultMaxTokens = 4096;
constexpr char kBudgetRefusal[] = "budget \"acme-daily\" (tenant acme, daily) is exhausted";

// Amounts as the budget messages print them: "$0.001234567".
std::string Usd(int64_t nano_usd) {
  return absl::StrFormat("$%d.%09d", nano_usd / 1'000'000'000, nano_usd % 1'000'000'000);
}

// "0.001234567" (exactly nine decimals, as x-tollgate-cost-usd and the summary print) → 1234567;
// -1 when malformed.
int64_t ParseUsdNano(absl::string_view usd) {
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(usd, '.');
  int64_t whole = 0;
  int64_t fraction = 0;
  if (parts.second.size() != 9 || !absl::SimpleAtoi(parts.first, &whole) ||
      !absl::SimpleAtoi(parts.second, &fraction)) {
    return -1;
  }
  return whole * 1'000'000'000 + fraction;
}

// What `record`'s tokens cost at the mixed run's prices.
int64_t PricedNanoUsd(const LedgerRecord& r) {
  return static_cast<int64_t>(r.input_tokens - r.cached_input_tokens) * kInputNano +
         static_cast<int64_t>(r.cached_input_tokens) * kCachedNano +
         static_cast<int64_t>(r.output_tokens - r.reasoning_tokens) * kOutputNano +
         static_cast<int64_t>(r.reasoning_tokens) * kReasoningNano;
}

// The value of label `name` in a sample key such as `m{model="x",tenant="y"}`.
std::string LabelValue(const std::string& key, const std::string& name) {
  for (const char* before : {"{", ","}) {
    const std::string needle = absl::StrCat(before, name, "=\"");
    const size_t at = key.find(needle);
    if (at == std::string::npos) continue;
    const size_t start = at + needle.size();
    return key.substr(start, key.find('"', start) - start);
  }
  return "";
}

// One request as its client saw it.
struct ClientCall {
  std::string request_id;
  std::string tenant;
  std::string model;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
  int64_t cost_nano_usd = 0;
  // Whether the client learnt what it was charged. Not for a call it cancelled: gRPC then ends it
  // locally and drops the server's trailers.
  bool cost_seen = false;
};

using TenantModel = std::pair<std::string, std::string>;

// Spend, requests and tokens of one (tenant, model), summed from ledger records.
struct GroupTotals {
  int64_t nano_usd = 0;
  std::map<std::string, uint64_t> requests_by_status;
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
};

std::map<TenantModel, GroupTotals> TotalsByTenantModel(const std::vector<LedgerRecord>& records) {
  std::map<TenantModel, GroupTotals> totals;
  for (const LedgerRecord& r : records) {
    GroupTotals& t = totals[{r.tenant, r.model}];
    t.nano_usd += r.total_nano_usd;
    ++t.requests_by_status[r.status];
    t.input_tokens += r.input_tokens;
    t.output_tokens += r.output_tokens;
  }
  return totals;
}

// The same from the tollgate_cost_usd_total, tollgate_requests_total and tollgate_tokens_total
// series of a scrape; spend as the exposed double.
struct MetricTotals {
  double usd = 0;
  std::map<std::string, uint64_t> requests_by_status;
  uint64_t input_tokens = 0;   // input + cached_input
  uint64_t output_tokens = 0;  // output + reasoning
};

std::map<TenantModel, MetricTotals> MetricsByTenantModel(
    const std::map<std::string, double>& samples) {
  std::map<TenantModel, MetricTotals> totals;
  for (const auto& [key, value] : samples) {
    const std::string family = key.substr(0, key.find('{'));
    if (value == 0 || (family != "tollgate_cost_usd_total" && family != "tollgate_requests_total" &&
                       family != "tollgate_tokens_total")) {
      continue;
    }
    MetricTotals& t = totals[{LabelValue(key, "tenant"), LabelValue(key, "model")}];
    const auto count = static_cast<uint64_t>(value);
    if (family == "tollgate_cost_usd_total") {
      t.usd += value;
    } else if (family == "tollgate_requests_total") {
      t.requests_by_status[LabelValue(key, "status")] += count;
    } else if (const std::string type = LabelValue(key, "type");
               type == "input" || type == "cached_input") {
      t.input_tokens += count;
    } else {
      t.output_tokens += count;
    }
  }
  return totals;
}

std::string Trailer(const grpc::ClientContext& context, const std::string& key) {
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto it = trailers.find(key);
  return it == trailers.end() ? "" : std::string(it->second.data(), it->second.size());
}

// x_tollgate.cost_nano_usd of an OpenAI-shaped response or chunk; -1 when it has none.
int64_t XTollgateCostNanoUsd(const std::string& json) {
  const rapidjson::Document doc = http::testing::ParseJsonOrFail(json);
  if (!doc.IsObject() || !doc.HasMember("x_tollgate") || !doc["x_tollgate"].IsObject()) return -1;
  const rapidjson::Value& x = doc["x_tollgate"];
  return x.HasMember("cost_nano_usd") && x["cost_nano_usd"].IsInt64()
             ? x["cost_nano_usd"].GetInt64()
             : -1;
}

// The message of an OpenAI-shaped error, {"error": {"message": "...", "type": "...", ...}}; empty
// when `body` is not one.
std::string OpenAiErrorMessage(const std::string& body) {
  const rapidjson::Document doc = http::testing::ParseJsonOrFail(body);
  if (!doc.IsObject() || !doc.HasMember("error") || !doc["error"].IsObject()) return "";
  const rapidjson::Value& error = doc["error"];
  if (!error.HasMember("message") || !error["message"].IsString() || !error.HasMember("type") ||
      !error["type"].IsString()) {
    return "";
  }
  return error["message"].GetString();
}

class AccountingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ledger_dir_ = dir_ + "/ledger";
    const char* vocab = std::getenv("TOLLGATE_VOCAB_DIR");
    vocab_dir_ = vocab != nullptr ? vocab : TOLLGATE_SOURCE_DIR "/.cache/tokenizer";
    absl::StatusOr<std::shared_ptr<const Tokenizer>> llama3 = LoadTokenizer("llama3", vocab_dir_);
    if (!llama3.ok()) {
      // Every model here counts its prompt with llama3; without the vocabulary tollgate cannot
      // start, and the reservations cannot be computed.
      if (std::getenv("CI") != nullptr) {
        FAIL() << "llama3 vocabulary missing in CI: " << llama3.status();
      }
      GTEST_SKIP() << "no llama3 vocabulary (" << llama3.status() << "); run scripts/fetch_vocab";
    }
    llama3_ = *std::move(llama3);
  }

  // Keeps the logs and the ledger of a failed test.
  void TearDown() override {
    if (!HasFailure() && !dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Starts a tollgate-sim at time_scale 0 with a gRPC and an HTTP listener; returns {grpc, http}
  // host:port, empty when it did not start.
  std::pair<std::string, std::string> StartSim(testing::ChildProcess& sim, const std::string& name,
                                               const std::vector<std::string>& flags) {
    std::vector<std::string> all = {"--time_scale=0"};
    all.insert(all.end(), flags.begin(), flags.end());
    const absl::StatusOr<testing::SimAddresses> addresses =
        testing::StartSim(sim, all, absl::StrCat(dir_, "/sim-", name, ".log"));
    if (!addresses.ok()) return {};
    return {addresses->grpc, addresses->http};
  }

  void WriteConfig(const std::string& config_template,
                   const std::map<std::string, std::string>& values) {
    std::map<std::string, std::string> all = values;
    all.emplace("{ACME}", ApiKeySha256Hex(kAcmeKey));  // emplace: `values` win
    all.emplace("{BETA}", ApiKeySha256Hex(kBetaKey));
    all.emplace("{CAPPED}", ApiKeySha256Hex(kCappedKey));
    all.emplace("{LEDGER}", ledger_dir_);
    all.emplace("{LEDGER_EXTRA}", "");
    all.emplace("{VOCAB}", vocab_dir_);
    config_path_ = dir_ + "/tollgate.yaml";
    testing::WriteFile(config_path_, absl::StrReplaceAll(config_template, all));
  }

  // Starts (or restarts) tollgate on config_path_ and connects to it.
  void StartProxy() {
    proxy_ = std::make_unique<testing::ChildProcess>();
    const std::string log = absl::StrCat(dir_, "/tollgate-", ++proxy_starts_, ".log");
    ASSERT_TRUE(
        proxy_->Start({testing::Binary("proxy/tollgate"), "--config", config_path_}, log).ok());
    const absl::StatusOr<std::string> line =
        proxy_->WaitForLine("tollgate listening", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << testing::RunCommand("cat " + log).output;
    metrics_ = testing::FieldAfter(*line, "metrics");
    http_ = testing::FieldAfter(*line, "http");
    stub_ = v1::Inference::NewStub(grpc::CreateChannel(testing::FieldAfter(*line, "grpc"),
                                                       grpc::InsecureChannelCredentials()));
  }

  // SIGTERM: tollgate drains, closes the ledger and exits 0.
  void StopProxy() {
    // A synchronous client's idle channel answers the server's GOAWAY ping only at gRPC's 5 s
    // backup poll, which the drain would wait for; nothing is in flight here, so close it first.
    stub_.reset();
    proxy_->Signal(SIGTERM);
    const absl::StatusOr<int> exit_code = proxy_->Wait(absl::Seconds(60));
    ASSERT_TRUE(exit_code.ok()) << exit_code.status();
    EXPECT_EQ(*exit_code, 0);
  }

  std::vector<LedgerRecord> ReadLedger(ReadStats* stats) {
    absl::StatusOr<std::vector<std::string>> files = ListLedgerFiles(ledger_dir_);
    EXPECT_TRUE(files.ok()) << files.status();
    std::vector<LedgerRecord> records;
    const absl::Status read = ReadLedgerFiles(
        files.value_or(std::vector<std::string>{}),
        [&records](const LedgerRecord& r) { records.push_back(r); }, stats);
    EXPECT_TRUE(read.ok()) << read;
    return records;
  }

  std::map<std::string, double> Scrape() {
    absl::StatusOr<std::string> body = testing::HttpGet(metrics_, "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    return testing::ParseMetrics(body.value_or(""));
  }

  static std::string TenantOf(const std::string& key) {
    if (key == kAcmeKey) return "acme";
    if (key == kBetaKey || key == kCappedKey) return "beta";
    return std::string(kOtherLabel);
  }

  // A request with one user message, in protobuf text format.
  static v1::GenerateRequest Chat(const std::string& model, const std::string& content,
                                  uint32_t max_tokens) {
    v1::GenerateRequest request;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
        absl::Substitute(R"pb(model: "$0"
                              chat { messages { role: "user" content: "$1" } }
                              params { max_tokens: $2 })pb",
                         absl::CEscape(model), absl::CEscape(content), max_tokens),
        &request));
    return request;
  }

  // Prompt tokens as tollgate counts them before the call, for the reservation.
  int64_t PromptTokens(const std::string& content) const {
    return static_cast<int64_t>(CountChatPromptTokens(*llama3_, {{"user", content, ""}}));
  }

  static ClientCall Begin(const std::string& key, const std::string& model,
                          grpc::ClientContext& context) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", key));
    ClientCall call;
    call.tenant = TenantOf(key);
    call.model = model;
    return call;
  }

  // The call's status; its cost from the trailers, which must match the response's when it has
  // one; for an error, its id from them too. A call that reached no tollgate has no trailers.
  static void End(const grpc::Status& status, const grpc::ClientContext& context,
                  ClientCall& call) {
    call.code = status.error_code();
    call.message = status.error_message();
    int64_t trailer_cost = -1;
    call.cost_seen = absl::SimpleAtoi(Trailer(context, "x-tollgate-cost-nano-usd"), &trailer_cost);
    if (status.ok()) {
      EXPECT_EQ(trailer_cost, call.cost_nano_usd) << call.model << " " << call.request_id;
      return;
    }
    call.cost_nano_usd = trailer_cost;
    if (call.request_id.empty()) call.request_id = Trailer(context, "x-request-id");
  }

  ClientCall Unary(const std::string& key, const v1::GenerateRequest& request) {
    grpc::ClientContext context;
    ClientCall call = Begin(key, request.model(), context);
    v1::GenerateResponse response;
    const grpc::Status status = stub_->Generate(&context, request, &response);
    call.request_id = response.request_id();
    call.cost_nano_usd = response.cost().total_nano_usd();
    End(status, context, call);
    return call;
  }

  // A stream read to its end, or cancelled by the client once the first text delta arrived.
  ClientCall Stream(const std::string& key, const v1::GenerateRequest& request,
                    bool cancel_after_first_delta = false) {
    grpc::ClientContext context;
    ClientCall call = Begin(key, request.model(), context);
    std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
        stub_->GenerateStream(&context, request);
    v1::GenerateResponse message;
    while (reader->Read(&message)) {
      if (call.request_id.empty()) call.request_id = message.request_id();
      if (message.has_cost()) call.cost_nano_usd = message.cost().total_nano_usd();
      if (cancel_after_first_delta && !message.text().empty()) {
        context.TryCancel();
        while (reader->Read(&message)) {
        }
        call.code = reader->Finish().error_code();
        return call;
      }
    }
    End(reader->Finish(), context, call);
    return call;
  }

  ClientCall Embed(const std::string& key, const std::string& model,
                   const std::vector<std::string>& inputs) {
    grpc::ClientContext context;
    ClientCall call = Begin(key, model, context);
    v1::EmbedRequest request;
    request.set_model(model);
    for (const std::string& input : inputs) request.add_inputs(input);
    v1::EmbedResponse response;
    const grpc::Status status = stub_->Embed(&context, request, &response);
    EXPECT_EQ(response.embeddings_size(), status.ok() ? request.inputs_size() : 0);
    call.request_id = response.request_id();
    call.cost_nano_usd = response.cost().total_nano_usd();
    End(status, context, call);
    return call;
  }

  // POST /v1/chat/completions; `body` holds the JSON members after "messages".
  testing::HttpResponse HttpChat(const std::string& key, const std::string& model,
                                 const std::string& content, const std::string& body) {
    absl::StatusOr<testing::HttpResponse> response = testing::HttpCall(
        http_, "POST", "/v1/chat/completions",
        {{"Content-Type", "application/json"}, {"Authorization", absl::StrCat("Bearer ", key)}},
        absl::StrCat(R"({"model":")", model, R"(","messages":[{"role":"user","content":")", content,
                     "\"}]", body, "}"));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.value_or(testing::HttpResponse{});
  }

  // An HTTP chat completion as its client saw it: the cost from the x-tollgate-cost-usd header
  // (and the body's x_tollgate), or from the usage chunk of a stream that asked for one.
  ClientCall HttpCharged(const std::string& key, const std::string& model,
                         const std::string& content, const std::string& body, bool stream) {
    testing::HttpResponse response = HttpChat(key, model, content, body);
    EXPECT_EQ(response.status, 200) << response.body;
    ClientCall call;
    call.tenant = TenantOf(key);
    call.model = model;
    call.request_id = response.headers["x-request-id"];
    call.code = response.status == 200 ? grpc::StatusCode::OK : grpc::StatusCode::UNKNOWN;
    call.cost_seen = true;
    if (!stream) {
      call.cost_nano_usd = ParseUsdNano(response.headers["x-tollgate-cost-usd"]);
      EXPECT_EQ(XTollgateCostNanoUsd(response.body), call.cost_nano_usd) << response.body;
      return call;
    }
    const std::vector<std::string> events = testing::SseData(response.body);
    EXPECT_GE(events.size(), 2u) << response.body;
    if (events.size() >= 2) {
      EXPECT_EQ(events.back(), "[DONE]");
      call.cost_nano_usd = XTollgateCostNanoUsd(events[events.size() - 2]);  // the usage chunk
    }
    return call;
  }

  std::string dir_;
  std::string vocab_dir_;  // tollgate's and the test's llama3
  std::string ledger_dir_;
  std::string config_path_;
  std::string metrics_;
  std::string http_;
  int proxy_starts_ = 0;
  std::unique_ptr<testing::ChildProcess> proxy_;
  std::unique_ptr<v1::Inference::Stub> stub_;  // to the running tollgate
  std::shared_ptr<const Tokenizer> llama3_;
};

// The clients' charges, the ledger and tollgate_cost_usd_total agree per tenant and model.
TEST_F(AccountingTest, ChargesLedgerAndMetricsReconcileToTheNanoDollar) {
  testing::ChildProcess sim, flaky_sim;
  const auto [sim_grpc, sim_http] = StartSim(sim, "main", {});
  const auto [flaky_grpc, flaky_http] = StartSim(flaky_sim, "flaky", {"--fault_503_rate=0.5"});
  ASSERT_FALSE(sim_grpc.empty() || flaky_http.empty());
  WriteConfig(kMixedConfig,
              {{"{SIM}", sim_grpc}, {"{SIM_HTTP}", sim_http}, {"{FLAKY_HTTP}", flaky_http}});
  ASSERT_NO_FATAL_FAILURE(StartProxy());

  std::vector<ClientCall> calls;
  // Keeps what the client saw, checking that the call ended as `expected` and got its request id.
  auto made = [&calls](grpc::StatusCode expected, ClientCall call) {
    EXPECT_EQ(call.code, expected) << call.model << ": " << call.message;
    EXPECT_FALSE(call.request_id.empty()) << call.model;
    EXPECT_EQ(call.cost_seen, expected != grpc::StatusCode::CANCELLED) << call.model;
    calls.push_back(std::move(call));
    return calls.back();
  };
  made(grpc::OK, Unary(kAcmeKey, Chat("chat", "What does a token cost?", 48)));
  made(grpc::OK, Unary(kAcmeKey, Chat("chat", "And a cached one?", 32)));
  made(grpc::OK, Stream(kAcmeKey, Chat("chat", "Stream the price list.", 40)));
  // About 27 ms a token on the simulated A10G: the cancel lands long before 200 tokens.
  made(grpc::CANCELLED, Stream(kAcmeKey, Chat("slow", "Tell me a long story.", 200), true));
  for (int i = 0; i < 4; ++i) {  // the flaky simulator fails every second request: retried
    made(grpc::OK, Unary(kAcmeKey, Chat("flaky", absl::StrCat("retry me ", i), 24)));
  }
  made(grpc::OK, Unary(kAcmeKey, Chat("cached", "cache me", 32)));
  made(grpc::OK, Stream(kAcmeKey, Chat("cached", "cache me again", 32)));
  const ClientCall reset =  // the backend resets the stream after 5 tokens
      made(grpc::UNAVAILABLE, Stream(kAcmeKey, Chat("reset", "cut me off", 64)));
  EXPECT_GT(reset.cost_nano_usd, 0) << "a stream cut off part-way is charged what arrived";
  made(grpc::OK, Embed(kAcmeKey, "chat", {"an embedding", "and another one"}));
  made(grpc::OK, Unary(kBetaKey, Chat("chat", "Beta asks a question.", 40)));
  made(grpc::OK, Stream(kBetaKey, Chat("chat", "Beta streams an answer.", 40)));
  made(grpc::OK, Embed(kBetaKey, "chat", {"beta embeds"}));
  made(grpc::OK, HttpCharged(kBetaKey, "chat", "Beta over HTTP.", R"(,"max_tokens":24)", false));
  made(grpc::OK, HttpCharged(kBetaKey, "chat", "Beta streams over HTTP.",
                             R"(,"max_tokens":24,"stream":true,)"
                             R"("stream_options":{"include_usage":true})",
                             true));
  const ClientCall capped =
      made(grpc::RESOURCE_EXHAUSTED, Unary(kCappedKey, Chat("chat", "Over the key's budget.", 24)));
  EXPECT_THAT(capped.message, ::testing::HasSubstr("budget \"capped-key\""));
  EXPECT_EQ(capped.cost_nano_usd, 0);
  const ClientCall unknown =
      made(grpc::UNAUTHENTICATED, Unary(kUnknownKey, Chat("chat", "Who am I?", 24)));
  EXPECT_EQ(unknown.cost_nano_usd, 0);

  // The cancelled call is recorded after the client has gone: wait until every call is counted
  // (bounded), then take the last scrape before SIGTERM.
  std::map<std::string, double> samples;
  for (int i = 0; i < 300; ++i) {
    samples = Scrape();
    if (testing::SumSamples(samples, "tollgate_requests_total", {}) >= calls.size()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_GE(testing::SumSamples(samples, "tollgate_backend_attempts_total",
                                {{"backend", "flaky"}, {"result", "retried"}}),
            1);
  const double acme_budget_usd =
      testing::SumSamples(samples, "tollgate_budget_spent_usd", {{"budget", "acme-daily"}});
  ASSERT_NO_FATAL_FAILURE(StopProxy());

  ReadStats stats;
  const std::vector<LedgerRecord> records = ReadLedger(&stats);
  EXPECT_EQ(stats.torn_lines + stats.corrupt_lines, 0u);
  ASSERT_EQ(records.size(), calls.size()) << "one ledger line per request";

  // (a) against (c), request by request: the same ids, each once, charged what the client saw.
  std::map<std::string, const LedgerRecord*> by_id;
  for (const LedgerRecord& r : records) {
    EXPECT_TRUE(by_id.emplace(r.request_id, &r).second) << "request id twice: " << r.request_id;
    EXPECT_EQ(r.total_nano_usd, r.input_nano_usd + r.cached_input_nano_usd +
                                    r.cache_write_nano_usd + r.output_nano_usd +
                                    r.reasoning_nano_usd + r.gpu_nano_usd)
        << r.request_id;
    EXPECT_EQ(r.total_nano_usd, PricedNanoUsd(r)) << r.request_id << " " << r.model;
  }
  std::map<TenantModel, int64_t> client_nano_usd;
  for (const ClientCall& call : calls) {
    const auto it = by_id.find(call.request_id);
    ASSERT_NE(it, by_id.end()) << "no ledger record for " << call.request_id << " (" << call.model
                               << ")";
    const LedgerRecord& r = *it->second;
    EXPECT_EQ(r.tenant, call.tenant) << call.request_id;
    EXPECT_EQ(r.model, call.model) << call.request_id;
    EXPECT_EQ(r.status, StatusLabel(static_cast<absl::StatusCode>(call.code))) << call.request_id;
    if (call.cost_seen) {
      EXPECT_EQ(r.total_nano_usd, call.cost_nano_usd) << call.request_id << " " << call.model;
      client_nano_usd[{call.tenant, call.model}] += call.cost_nano_usd;
    } else {
      // Charged its prompt and at least the delta the client read, at most what it reserved.
      EXPECT_GT(r.output_tokens, 0u) << call.request_id;
      EXPECT_LE(r.output_tokens, 200u) << call.request_id;
      EXPECT_GT(r.input_tokens, 0u) << call.request_id;
      client_nano_usd[{call.tenant, call.model}] += r.total_nano_usd;
    }
  }
  const auto cached = std::find_if(records.begin(), records.end(),
                                   [](const LedgerRecord& r) { return r.model == "cached"; });
  ASSERT_NE(cached, records.end());
  EXPECT_EQ(cached->cached_input_nano_usd, 4 * kCachedNano);
  EXPECT_EQ(cached->reasoning_nano_usd, 3 * kReasoningNano);

  // (a) against (c) and (b), per tenant and model. The counter is a double that adds each request's
  // cost in USD: its rounding error after a few dozen additions is about 1e-15 relative, so a
  // relative tolerance of 1e-9 hides none of it being wrong, yet still catches a single nano-USD
  // missing from a series below 1 USD (1e-9 USD out of under 1 USD is more than 1e-9 relative).
  const std::map<TenantModel, GroupTotals> ledger = TotalsByTenantModel(records);
  const std::map<TenantModel, MetricTotals> metrics = MetricsByTenantModel(samples);
  int64_t ledger_total = 0;
  int64_t client_total = 0;
  for (const auto& [group, totals] : ledger) {
    const std::string name = absl::StrCat(group.first, "/", group.second);
    EXPECT_EQ(totals.nano_usd, client_nano_usd[group]) << name;
    ledger_total += totals.nano_usd;
    client_total += client_nano_usd[group];
    const auto m = metrics.find(group);
    ASSERT_NE(m, metrics.end()) << name << " has ledger records but no metrics";
    const double ledger_usd = static_cast<double>(totals.nano_usd) * 1e-9;
    EXPECT_NEAR(m->second.usd, ledger_usd, ledger_usd * 1e-9) << name;
    EXPECT_EQ(m->second.requests_by_status, totals.requests_by_status) << name;
    EXPECT_EQ(m->second.input_tokens, totals.input_tokens) << name;
    EXPECT_EQ(m->second.output_tokens, totals.output_tokens) << name;
  }
  for (const auto& [group, totals] : metrics) {
    EXPECT_TRUE(ledger.contains(group))
        << group.first << "/" << group.second << " has metrics but no ledger records";
  }
  EXPECT_EQ(ledger_total, client_total);
  const int64_t acme_nano = [&] {
    int64_t sum = 0;
    for (const LedgerRecord& r : records) sum += r.tenant == "acme" ? r.total_nano_usd : 0;
    return sum;
  }();
  EXPECT_NEAR(acme_budget_usd, acme_nano * 1e-9, acme_nano * 1e-18) << "settled to the real cost";
  std::cout << "reconciled " << calls.size() << " requests: ledger " << Usd(ledger_total)
            << ", clients " << Usd(client_total) << ", metrics "
            << absl::StrFormat("$%.12f",
                               testing::SumSamples(samples, "tollgate_cost_usd_total", {}))
            << "\n";
}

// 200 concurrent requests against a budget that fits about ten of them.
TEST_F(AccountingTest, ConcurrentRequestsStayWithinTheBudgetAndTheRestAreRefused) {
  WriteConfig(kBudgetConfig, {});
  ASSERT_NO_FATAL_FAILURE(StartProxy());
  const std::string content = "How much budget is left for acme today?";
  const v1::GenerateRequest request = Chat("metered", content, 16);
  const int64_t reservation = PromptTokens(content) * kInputNano + 16 * kMeteredOutputNano;
  ASSERT_TRUE(reservation * 10 <= kAcmeLimitNano && reservation * 11 > kAcmeLimitNano)
      << "the limit should fit ten reservations of " << Usd(reservation);

  constexpr int kRequests = 200;
  struct AsyncCall {
    grpc::ClientContext context;
    v1::GenerateResponse response;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<AsyncCall>> calls;
  absl::Mutex mu;
  int done = 0;
  for (int i = 0; i < kRequests; ++i) {
    calls.push_back(std::make_unique<AsyncCall>());
    AsyncCall* call = calls.back().get();
    call->context.AddMetadata("authorization", absl::StrCat("Bearer ", kAcmeKey));
    stub_->async()->Generate(&call->context, &request, &call->response,
                             [call, &mu, &done](grpc::Status status) {
                               absl::MutexLock lock(&mu);
                               call->status = std::move(status);
                               ++done;
                             });
  }
  {
    absl::MutexLock lock(&mu);
    auto all_done = [&done] { return done == kRequests; };
    if (!mu.AwaitWithTimeout(absl::Condition(&all_done), absl::Seconds(120))) {
      for (const auto& call : calls) call->context.TryCancel();
      mu.Await(absl::Condition(&all_done));
      FAIL() << "only " << done << " of " << kRequests << " requests finished";
    }
  }

  int accepted = 0;
  int rejected = 0;
  std::set<std::string> client_ids;
  for (const auto& call : calls) {
    if (call->status.ok()) {
      ++accepted;
      client_ids.insert(call->response.request_id());
      continue;
    }
    ++rejected;
    EXPECT_EQ(call->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << call->status.error_message();
    EXPECT_THAT(call->status.error_message(), ::testing::HasSubstr(kBudgetRefusal));
    EXPECT_THAT(call->status.error_message(),
                ::testing::HasSubstr("this request may cost up to " + Usd(reservation)));
    EXPECT_EQ(Trailer(call->context, "x-tollgate-cost-nano-usd"), "0");
    client_ids.insert(Trailer(call->context, "x-request-id"));
  }
  EXPECT_EQ(client_ids.size(), static_cast<size_t>(kRequests)) << "distinct request ids";
  const std::map<std::string, double> samples = Scrape();
  EXPECT_EQ(
      testing::SumSamples(samples, "tollgate_budget_rejections_total", {{"budget", "acme-daily"}}),
      rejected);
  EXPECT_EQ(testing::SumSamples(samples, "tollgate_requests_total",
                                {{"model", "metered"}, {"status", "resource_exhausted"}}),
            rejected);
  EXPECT_EQ(
      testing::SumSamples(samples, "tollgate_budget_reserved_usd", {{"budget", "acme-daily"}}), 0);
  const double budget_spent_usd =
      testing::SumSamples(samples, "tollgate_budget_spent_usd", {{"budget", "acme-daily"}});
  ASSERT_NO_FATAL_FAILURE(StopProxy());

  ReadStats stats;
  const std::vector<LedgerRecord> records = ReadLedger(&stats);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRequests));
  int64_t spent = 0;
  int64_t min_cost = std::numeric_limits<int64_t>::max();
  int64_t max_cost = 0;
  for (const LedgerRecord& r : records) {
    EXPECT_TRUE(client_ids.contains(r.request_id)) << r.request_id;
    spent += r.total_nano_usd;
    if (r.status != "ok") {
      EXPECT_EQ(r.status, "resource_exhausted");
      EXPECT_EQ(r.total_nano_usd, 0);
      continue;
    }
    min_cost = std::min(min_cost, r.total_nano_usd);
    max_cost = std::max(max_cost, r.total_nano_usd);
  }
  ASSERT_GE(accepted, 1);
  ASSERT_GE(rejected, 1);
  EXPECT_LE(spent, kAcmeLimitNano + reservation);
  EXPECT_NEAR(budget_spent_usd, spent * 1e-9, spent * 1e-18);
  // Each admitted request held `reservation` or, once settled, its cost, and was admitted only if
  // what the others held plus its reservation fit the limit; a refusal means it did not. Hence,
  // whatever the interleaving: floor((limit - R) / max) + 1 <= accepted <= floor((limit - R) / min)
  // + 1, with min and max over R and the costs. About ten here: cost and reservation differ only in
  // how the simulator and llama3 count the prompt.
  const int64_t headroom = kAcmeLimitNano - reservation;
  EXPECT_GE(accepted, headroom / std::max(max_cost, reservation) + 1);
  EXPECT_LE(accepted, headroom / std::min(min_cost, reservation) + 1);
  std::cout << "accepted " << accepted << ", rejected " << rejected << ", spent " << Usd(spent)
            << " of " << Usd(kAcmeLimitNano) << " (reservation " << Usd(reservation) << ", cost "
            << Usd(min_cost) << ".." << Usd(max_cost) << ")\n";
}

// After a restart the budget still counts what was spent before it.
TEST_F(AccountingTest, BudgetSpendSurvivesARestart) {
  // The daily window resets at UTC midnight; keep this test clear of it.
  const absl::Time now = absl::Now();
  const absl::Duration to_midnight =
      absl::Hours(24) - (now - absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 86400 * 86400));
  if (to_midnight < absl::Minutes(1)) absl::SleepFor(to_midnight + absl::Seconds(1));

  WriteConfig(kBudgetConfig, {});
  ASSERT_NO_FATAL_FAILURE(StartProxy());
  int64_t spent = 0;
  for (int i = 0; i < 5; ++i) {
    const ClientCall call = Unary(kAcmeKey, Chat("metered", absl::StrCat("spend ", i), 16));
    ASSERT_EQ(call.code, grpc::StatusCode::OK) << call.message;
    spent += call.cost_nano_usd;
  }
  const double spent_before_usd =
      testing::SumSamples(Scrape(), "tollgate_budget_spent_usd", {{"budget", "acme-daily"}});
  EXPECT_NEAR(spent_before_usd, spent * 1e-9, spent * 1e-18);
  ASSERT_NO_FATAL_FAILURE(StopProxy());

  ASSERT_NO_FATAL_FAILURE(StartProxy());
  EXPECT_DOUBLE_EQ(
      testing::SumSamples(Scrape(), "tollgate_budget_spent_usd", {{"budget", "acme-daily"}}),
      spent_before_usd);
  // 100 output tokens: within the limit of a fresh budget, beyond what is left of this one.
  const std::string content = "one large request";
  const int64_t large = PromptTokens(content) * kInputNano + 100 * kMeteredOutputNano;
  ASSERT_LE(large, kAcmeLimitNano);
  ASSERT_GT(spent + large, kAcmeLimitNano);
  const ClientCall refused = Unary(kAcmeKey, Chat("metered", content, 100));
  EXPECT_EQ(refused.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.message;
  EXPECT_THAT(refused.message, ::testing::HasSubstr(kBudgetRefusal));
  EXPECT_THAT(refused.message, ::testing::HasSubstr(absl::StrCat("spent ", Usd(spent), " ")));
  // What is left still admits a small request, which adds to the replayed spend.
  const ClientCall small = Unary(kAcmeKey, Chat("metered", "one small request", 16));
  EXPECT_EQ(small.code, grpc::StatusCode::OK) << small.message;
  const int64_t total = spent + small.cost_nano_usd;
  EXPECT_NEAR(
      testing::SumSamples(Scrape(), "tollgate_budget_spent_usd", {{"budget", "acme-daily"}}),
      total * 1e-9, total * 1e-18);
  ASSERT_NO_FATAL_FAILURE(StopProxy());
  ReadStats stats;
  EXPECT_EQ(ReadLedger(&stats).size(), 7u);
}

// Over budget through the OpenAI-compatible ingress: 429 with an OpenAI error naming the budget.
TEST_F(AccountingTest, AnHttpRequestOverBudgetGets429NamingTheBudget) {
  WriteConfig(kBudgetConfig, {});
  ASSERT_NO_FATAL_FAILURE(StartProxy());
  const std::string content = "Spend it over HTTP.";
  const int64_t prompt_nano = PromptTokens(content) * kInputNano;
  const int64_t reservation = prompt_nano + 16 * kMeteredOutputNano;
  int accepted = 0;
  int64_t cost = 0;
  testing::HttpResponse refused;
  for (int i = 0; i < 40; ++i) {
    testing::HttpResponse response = HttpChat(kAcmeKey, "metered", content, R"(,"max_tokens":16)");
    if (response.status != 200) {
      refused = std::move(response);
      break;
    }
    ++accepted;
    cost = ParseUsdNano(response.headers["x-tollgate-cost-usd"]);
    ASSERT_GT(cost, 0) << response.headers["x-tollgate-cost-usd"];
  }
  // One at a time, each settled before the next: admitted while accepted * cost + R <= limit.
  ASSERT_GT(accepted, 0);
  EXPECT_EQ(accepted, (kAcmeLimitNano - reservation) / cost + 1);
  ASSERT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.headers["content-type"], "application/json");
  EXPECT_EQ(refused.headers["x-tollgate-cost-usd"], "0.000000000");
  EXPECT_FALSE(refused.headers["x-request-id"].empty());
  const std::string message = OpenAiErrorMessage(refused.body);
  EXPECT_THAT(message, ::testing::HasSubstr(kBudgetRefusal)) << refused.body;
  EXPECT_THAT(message, ::testing::HasSubstr(absl::StrCat("spent ", Usd(accepted * cost))));
  EXPECT_THAT(message, ::testing::HasSubstr("may cost up to " + Usd(reservation)));

  // A stream is refused before it starts: the same JSON error, not an event stream. Without
  // max_tokens the reservation is the rest of the model's context, else default_max_tokens.
  const int64_t prompt_tokens = prompt_nano / kInputNano;
  for (const auto& [model, worst_case] : std::vector<std::pair<std::string, int64_t>>{
           {"metered", prompt_nano + kDefaultMaxTokens * kMeteredOutputNano},
           {"metered-2k", prompt_nano + (2048 - prompt_tokens) * kMeteredOutputNano}}) {
    const testing::HttpResponse stream = HttpChat(kAcmeKey, model, content, R"(,"stream":true)");
    EXPECT_EQ(stream.status, 429) << model;
    const std::string stream_message = OpenAiErrorMessage(stream.body);
    EXPECT_THAT(stream_message, ::testing::HasSubstr(kBudgetRefusal)) << stream.body;
    EXPECT_THAT(stream_message, ::testing::HasSubstr("may cost up to " + Usd(worst_case))) << model;
  }
  // beta has no budget.
  EXPECT_EQ(HttpChat(kBetaKey, "metered", content, R"(,"max_tokens":16)").status, 200);
  ASSERT_NO_FATAL_FAILURE(StopProxy());

  ReadStats stats;
  const std::vector<LedgerRecord> records = ReadLedger(&stats);
  EXPECT_EQ(records.size(), static_cast<size_t>(accepted) + 4);
  EXPECT_EQ(std::count_if(records.begin(), records.end(),
                          [](const LedgerRecord& r) { return r.status == "resource_exhausted"; }),
            3);
}

// `tollgate ledger summarize` over several rotated files equals the ledger, by tenant and model.
TEST_F(AccountingTest, LedgerSummarizeTotalsEqualTheLedger) {
  // About two records per file.
  WriteConfig(kBudgetConfig, {{"{LEDGER_EXTRA}", ", max_file_bytes: 1200"}});
  ASSERT_NO_FATAL_FAILURE(StartProxy());
  int64_t charged = 0;
  for (const auto& [key, model] :
       std::vector<std::pair<std::string, std::string>>{{kAcmeKey, "cheap"},
                                                        {kAcmeKey, "metered"},
                                                        {kBetaKey, "cheap"},
                                                        {kBetaKey, "metered"}}) {
    for (int i = 0; i < 2; ++i) {
      const ClientCall call = i == 0 ? Unary(key, Chat(model, "summarize me", 20))
                                     : Stream(key, Chat(model, "and me, streamed", 20));
      ASSERT_EQ(call.code, grpc::StatusCode::OK) << call.message;
      charged += call.cost_nano_usd;
    }
  }
  const ClientCall embed = Embed(kBetaKey, "cheap", {"embed me"});
  ASSERT_EQ(embed.code, grpc::StatusCode::OK) << embed.message;
  charged += embed.cost_nano_usd;
  ASSERT_NO_FATAL_FAILURE(StopProxy());

  absl::StatusOr<std::vector<std::string>> files = ListLedgerFiles(ledger_dir_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_GE(files->size(), 2u) << "rotation by size";
  ReadStats stats;
  const std::vector<LedgerRecord> records = ReadLedger(&stats);
  ASSERT_EQ(records.size(), 9u);
  for (const std::string by : {"tenant", "model"}) {
    // Every group and the total: requests, spend and the five token columns, from the ledger.
    std::map<std::string, std::vector<int64_t>> want;
    for (const LedgerRecord& r : records) {
      for (const std::string& group : {by == "tenant" ? r.tenant : r.model, std::string("total")}) {
        std::vector<int64_t>& row = want[group];
        row.resize(7);
        const int64_t add[] = {1,
                               r.total_nano_usd,
                               static_cast<int64_t>(r.input_tokens),
                               static_cast<int64_t>(r.cached_input_tokens),
                               static_cast<int64_t>(r.cache_write_input_tokens),
                               static_cast<int64_t>(r.output_tokens),
                               static_cast<int64_t>(r.reasoning_tokens)};
        for (size_t i = 0; i < row.size(); ++i) row[i] += add[i];
      }
    }
    EXPECT_EQ(want["total"][1], charged);
    const testing::CommandResult summary =
        testing::RunCommand(absl::StrCat(testing::Binary("proxy/tollgate"), " ledger summarize ",
                                         absl::StrJoin(*files, " "), " --by ", by));
    ASSERT_EQ(summary.exit_code, 0) << summary.output;
    EXPECT_FALSE(absl::StrContains(summary.output, "warning")) << summary.output;
    std::map<std::string, std::vector<int64_t>> got;
    std::vector<std::string> lines = absl::StrSplit(summary.output, '\n', absl::SkipEmpty());
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(absl::StartsWith(lines[0], by)) << lines[0];
    for (size_t l = 1; l < lines.size(); ++l) {
      const std::vector<std::string> cells = absl::StrSplit(lines[l], ' ', absl::SkipEmpty());
      ASSERT_EQ(cells.size(), 8u) << lines[l];
      std::vector<int64_t>& row = got[cells[0]];
      for (size_t i = 1; i < cells.size(); ++i) {
        int64_t value = -1;
        if (i == 2) {
          value = ParseUsdNano(cells[i]);  // spend_usd
        } else {
          EXPECT_TRUE(absl::SimpleAtoi(cells[i], &value)) << lines[l];
        }
        row.push_back(value);
      }
    }
    EXPECT_EQ(got, want) << summary.output;
  }
}

// SIGKILL mid-traffic: what reached the ledger parses, nothing is corrupt, and tollgate restarts.
TEST_F(AccountingTest, AfterSigkillTheLedgerParsesAndTollgateRestarts) {
  WriteConfig(kBudgetConfig, {});
  ASSERT_NO_FATAL_FAILURE(StartProxy());
  // Phase A: completed and seen on disk before the kill, so the kill cannot take them.
  std::set<std::string> written;
  for (int i = 0; i < 20; ++i) {
    const ClientCall call = Unary(kBetaKey, Chat("cheap", absl::StrCat("before ", i), 16));
    ASSERT_EQ(call.code, grpc::StatusCode::OK) << call.message;
    written.insert(call.request_id);
  }
  for (int i = 0; i < 400; ++i) {
    std::set<std::string> present;
    for (const LedgerRecord& r : ReadLedger(nullptr)) present.insert(r.request_id);
    if (std::includes(present.begin(), present.end(), written.begin(), written.end())) break;
    absl::SleepFor(absl::Milliseconds(25));
  }

  // Phase B: three clients in a loop, killed mid-flight.
  constexpr int kClients = 3;
  absl::Mutex mu;
  std::set<std::string> completed = written;
  std::map<std::string, absl::Time> completed_at;  // phase B
  std::vector<int> done_per_client(kClients, 0);
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop.load(); ++i) {
        const ClientCall call =
            Unary(kBetaKey, Chat("cheap", absl::StrCat("client ", c, " call ", i), 16));
        if (call.code != grpc::StatusCode::OK) break;
        absl::MutexLock lock(&mu);
        completed.insert(call.request_id);
        completed_at[call.request_id] = absl::Now();
        ++done_per_client[c];
      }
    });
  }
  {
    absl::MutexLock lock(&mu);
    auto busy = [&done_per_client] {
      return *std::min_element(done_per_client.begin(), done_per_client.end()) >= 10;
    };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&busy), absl::Seconds(60)));
  }
  const absl::Time kill_time = absl::Now();
  proxy_->Signal(SIGKILL);
  const absl::StatusOr<int> killed = proxy_->Wait(absl::Seconds(30));
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(*killed, 128 + SIGKILL);
  stop = true;
  for (std::thread& client : clients) client.join();

  ReadStats stats;
  const std::vector<LedgerRecord> before_restart = ReadLedger(&stats);
  EXPECT_EQ(stats.corrupt_lines, 0u);
  EXPECT_LE(stats.torn_lines, stats.files) << "at most a torn last line per file";
  std::set<std::string> ids;
  size_t unseen = 0;  // recorded, but the client saw its call fail: in flight at the kill
  for (const LedgerRecord& r : before_restart) {
    EXPECT_TRUE(ids.insert(r.request_id).second) << "request id twice: " << r.request_id;
    EXPECT_EQ(r.status, "ok") << r.request_id;
    if (!completed.contains(r.request_id)) ++unseen;
  }
  EXPECT_LE(unseen, static_cast<size_t>(kClients));
  for (const std::string& id : written) EXPECT_TRUE(ids.contains(id)) << id;
  // Not asserted (a starved writer thread may lag on a busy machine): how long before the kill
  // the oldest completed call whose record was lost had completed.
  size_t lost = 0;
  absl::Duration oldest_lost;
  for (const auto& [id, at] : completed_at) {
    if (ids.contains(id)) continue;
    ++lost;
    oldest_lost = std::max(oldest_lost, kill_time - at);
  }
  std::cout << completed.size() << " calls completed, " << before_restart.size()
            << " records survived the SIGKILL (" << unseen << " of calls in flight); " << lost
            << " completed calls lost, the oldest completed " << oldest_lost << " before the kill; "
            << stats.torn_lines << " torn lines\n";

  ASSERT_NO_FATAL_FAILURE(StartProxy());  // a torn tail is truncated, the rest replayed
  const ClientCall after = Unary(kBetaKey, Chat("cheap", "after the restart", 16));
  EXPECT_EQ(after.code, grpc::StatusCode::OK) << after.message;
  ASSERT_NO_FATAL_FAILURE(StopProxy());
  ReadStats final_stats;
  const std::vector<LedgerRecord> final_records = ReadLedger(&final_stats);
  EXPECT_EQ(final_stats.torn_lines + final_stats.corrupt_lines, 0u);
  ASSERT_EQ(final_records.size(), before_restart.size() + 1);
  for (size_t i = 0; i < before_restart.size(); ++i) {
    EXPECT_EQ(final_records[i], before_restart[i]) << i;
  }
  EXPECT_EQ(final_records.back().request_id, after.request_id);
}

}  // namespace
}  // namespace tollgate
