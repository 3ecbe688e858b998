// Runs real tollgate-sim and tollgate processes and talks to them over gRPC and HTTP.
#include <csignal>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "accounting/pricing.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proxy/config/config.h"
#include "tests/integration/harness.h"
#include "tollgate/v1/inference.grpc.pb.h"

namespace tollgate {
namespace {

using ::tollgate::testing::Binary;
using ::tollgate::testing::ChildProcess;
using ::tollgate::testing::FieldAfter;
using ::tollgate::testing::HttpGet;
using ::tollgate::testing::ParseMetrics;
using ::tollgate::testing::SumSamples;

constexpr char kAcmeKey[] = "key-acme";
constexpr char kMeteredKey[] = "key-metered";

// The config under test; {REMOTE} and {SLOW} are the simulators' addresses, {OUT} the output
// price of llama-3-8b.
constexpr char kConfigTemplate[] = R"(
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0", drain_timeout_ms: 20000}
tenants:
  - {name: acme, api_key_sha256: ["{ACME}"]}
  - {name: metered, api_key_sha256: ["{METERED}"]}
backends:
  - {name: remote, kind: grpc, address: "{REMOTE}"}
  - {name: remote-slow, kind: grpc, address: "{SLOW}"}
  - {name: local-slow, kind: sim, sim: {gpu: a10g, time_scale: 1}}
  - {name: local-fast, kind: sim, sim: {time_scale: 0}}
  - {name: garbage, kind: grpc, address: "{GARBAGE}"}
models:
  - {name: broken, backend: garbage, prices: {input_usd_per_mtok: 1, output_usd_per_mtok: 1}}
  - name: llama-3-8b
    backend: remote
    prices: {input_usd_per_mtok: 0.20, cached_input_usd_per_mtok: 0.10, output_usd_per_mtok: {OUT}}
  - name: gpt-4o
    backend: remote
    backend_model: llama-3-70b
    prices: {input_usd_per_mtok: 2.50, cached_input_usd_per_mtok: 1.25, output_usd_per_mtok: 10.00}
  - name: slow-remote
    backend: remote-slow
    backend_model: llama-3-8b
    prices: {input_usd_per_mtok: 1, output_usd_per_mtok: 2}
  - name: slow-local
    backend: local-slow
    backend_model: llama-3-8b
    prices: {input_usd_per_mtok: 1, output_usd_per_mtok: 2}
  - name: embedded
    backend: local-fast
    backend_model: llama-3-8b
    prices: {input_usd_per_mtok: 0.02, output_usd_per_mtok: 0.02}
)";

// A backend that answers every call with bytes that are not a protobuf message. In-process, as a
// stand-in for a broken or hostile model server (the proxy under test is still the real process).
class GarbageBackend final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      Reactor() { StartRead(&request_); }
      void OnReadDone(bool) override {
        StartWriteAndFinish(&garbage_, grpc::WriteOptions(), grpc::Status::OK);
      }
      void OnDone() override { delete this; }

     private:
      grpc::ByteBuffer request_;
      grpc::Slice bytes_{std::string("\xff\xff\xff\xff\x0f not a protobuf")};
      grpc::ByteBuffer garbage_{&bytes_, 1};
    };
    return new Reactor;
  }
};

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    remote_address_ = StartSim(sim_fast_, "0", "sim-fast");
    slow_address_ = StartSim(sim_slow_, "1", "sim-slow");
    ASSERT_FALSE(remote_address_.empty());
    ASSERT_FALSE(slow_address_.empty());
    grpc::ServerBuilder builder;
    int garbage_port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &garbage_port);
    builder.RegisterCallbackGenericService(&garbage_service_);
    garbage_server_ = builder.BuildAndStart();
    ASSERT_NE(garbage_port, 0);
    garbage_address_ = absl::StrCat("127.0.0.1:", garbage_port);
    config_path_ = dir_ + "/tollgate.yaml";
    WriteConfig("0.60");
    ASSERT_TRUE(
        proxy_.Start({Binary("proxy/tollgate"), "--config", config_path_}, dir_ + "/tollgate.log")
            .ok());
    absl::StatusOr<std::string> line = proxy_.WaitForLine("tollgate listening", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << Log("tollgate.log");
    grpc_address_ = FieldAfter(*line, "grpc");
    metrics_address_ = FieldAfter(*line, "metrics");
    stub_ = v1::Inference::NewStub(
        grpc::CreateChannel(grpc_address_, grpc::InsecureChannelCredentials()));
    sim_stub_ = v1::Inference::NewStub(
        grpc::CreateChannel(remote_address_, grpc::InsecureChannelCredentials()));
  }

  std::string StartSim(ChildProcess& process, const char* time_scale, const char* name) {
    if (!process
             .Start({Binary("sim/tollgate-sim"), "--address", "127.0.0.1:0", "--time_scale",
                     time_scale},
                    dir_ + "/" + name + ".log")
             .ok()) {
      return "";
    }
    absl::StatusOr<std::string> line =
        process.WaitForLine("tollgate-sim listening on ", absl::Seconds(30));
    return line.ok() ? line->substr(std::string("tollgate-sim listening on ").size()) : "";
  }

  void WriteConfig(const std::string& output_price) {
    testing::WriteFile(
        config_path_,
        absl::StrReplaceAll(kConfigTemplate, {{"{ACME}", ApiKeySha256Hex(kAcmeKey)},
                                              {"{METERED}", ApiKeySha256Hex(kMeteredKey)},
                                              {"{REMOTE}", remote_address_},
                                              {"{SLOW}", slow_address_},
                                              {"{GARBAGE}", garbage_address_},
                                              {"{OUT}", output_price}}));
  }

  std::string Log(const std::string& name) {
    return testing::RunCommand("tail -n 40 " + dir_ + "/" + name).output;
  }

  static void Authorize(grpc::ClientContext& context, const std::string& key) {
    context.AddMetadata("authorization", "Bearer " + key);
  }

  static v1::GenerateRequest Chat(const std::string& model, const std::string& content,
                                  uint32_t max_tokens = 64) {
    v1::GenerateRequest request;
    request.set_model(model);
    v1::Message* m = request.mutable_chat()->add_messages();
    m->set_role("user");
    m->set_content(content);
    request.mutable_params()->set_max_tokens(max_tokens);
    request.mutable_params()->set_temperature(0);
    return request;
  }

  grpc::Status Generate(const v1::GenerateRequest& request, v1::GenerateResponse* response,
                        const std::string& key = kAcmeKey) {
    grpc::ClientContext context;
    Authorize(context, key);
    return stub_->Generate(&context, request, response);
  }

  // Concatenated text, and the last message in `last`.
  grpc::Status Stream(const v1::GenerateRequest& request, std::string* text,
                      v1::GenerateResponse* last, const std::string& key = kAcmeKey) {
    grpc::ClientContext context;
    Authorize(context, key);
    auto reader = stub_->GenerateStream(&context, request);
    v1::GenerateResponse message;
    while (reader->Read(&message)) {
      text->append(message.text());
      *last = message;
    }
    return reader->Finish();
  }

  std::map<std::string, double> Scrape() {
    absl::StatusOr<std::string> body = HttpGet(metrics_address_, "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    return ParseMetrics(body.value_or(""));
  }

  // Polls /metrics until `name{labels}` sums to at least `want` (bounded; not a timing assertion).
  double AwaitSample(const std::string& name, const std::map<std::string, std::string>& labels,
                     double want) {
    double got = 0;
    for (int i = 0; i < 300; ++i) {
      got = SumSamples(Scrape(), name, labels);
      if (got >= want) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return got;
  }

  std::string dir_;
  std::string config_path_;
  std::string remote_address_;
  std::string slow_address_;
  std::string garbage_address_;
  std::string grpc_address_;
  std::string metrics_address_;
  GarbageBackend garbage_service_;
  std::unique_ptr<grpc::Server> garbage_server_;
  ChildProcess sim_fast_;
  ChildProcess sim_slow_;
  ChildProcess proxy_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  std::unique_ptr<v1::Inference::Stub> sim_stub_;
};

TEST_F(ProxyTest, UnaryAndStreamingCallsReturnTheSameAnswer) {
  const v1::GenerateRequest request = Chat("llama-3-8b", "Explain KV caches in one line.");
  v1::GenerateResponse unary;
  ASSERT_TRUE(Generate(request, &unary).ok());
  EXPECT_FALSE(unary.text().empty());
  EXPECT_NE(unary.finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_EQ(unary.usage().source(), v1::USAGE_SOURCE_REPORTED);
  EXPECT_EQ(unary.backend(), "remote");
  EXPECT_EQ(unary.cache_status(), v1::CACHE_STATUS_MISS);
  EXPECT_FALSE(unary.request_id().empty());

  std::string text;
  v1::GenerateResponse last;
  ASSERT_TRUE(Stream(request, &text, &last).ok());
  EXPECT_EQ(text, unary.text());
  EXPECT_EQ(last.usage().SerializeAsString(), unary.usage().SerializeAsString());
  EXPECT_EQ(last.cost().total_nano_usd(), unary.cost().total_nano_usd());
  EXPECT_EQ(last.finish_reason(), unary.finish_reason());
}

TEST_F(ProxyTest, UsageAndCostEqualTheSimulatorsReportedUsageTimesThePrices) {
  for (const char* model : {"llama-3-8b", "gpt-4o"}) {
    const v1::GenerateRequest request =
        Chat(model, absl::StrCat("Price check for ", model, ": how much is a token?"), 200);
    v1::GenerateResponse proxied;
    ASSERT_TRUE(Generate(request, &proxied).ok());

    v1::GenerateRequest direct_request = request;
    direct_request.set_model(std::string(model) == "gpt-4o" ? "llama-3-70b" : "llama-3-8b");
    v1::GenerateResponse direct;
    grpc::ClientContext context;
    ASSERT_TRUE(sim_stub_->Generate(&context, direct_request, &direct).ok());

    EXPECT_EQ(proxied.usage().input_tokens(), direct.usage().input_tokens()) << model;
    EXPECT_EQ(proxied.usage().output_tokens(), direct.usage().output_tokens()) << model;
    EXPECT_EQ(proxied.text(), direct.text()) << model;
    // nano-USD per token: llama-3-8b 200 in / 600 out; gpt-4o 2500 in / 10000 out.
    const bool gpt = std::string(model) == "gpt-4o";
    const int64_t want = static_cast<int64_t>(direct.usage().input_tokens()) * (gpt ? 2500 : 200) +
                         static_cast<int64_t>(direct.usage().output_tokens()) * (gpt ? 10000 : 600);
    EXPECT_EQ(proxied.cost().total_nano_usd(), want) << model;
    EXPECT_EQ(proxied.cost().input_nano_usd() + proxied.cost().output_nano_usd(), want) << model;
  }
}

TEST_F(ProxyTest, MetricCountersEqualTheSumsOverTheResponses) {
  uint64_t input = 0, output = 0;
  int64_t cost_nano = 0;
  constexpr int kEach = 8;
  for (int i = 0; i < kEach; ++i) {
    v1::GenerateResponse unary;
    ASSERT_TRUE(Generate(Chat(i % 2 ? "gpt-4o" : "llama-3-8b", absl::StrCat("unary ", i)), &unary,
                         kMeteredKey)
                    .ok());
    std::string text;
    v1::GenerateResponse last;
    ASSERT_TRUE(Stream(Chat("llama-3-8b", absl::StrCat("stream number ", i), 32 + i), &text, &last,
                       kMeteredKey)
                    .ok());
    for (const v1::GenerateResponse* r : {&unary, &last}) {
      input += r->usage().input_tokens();
      output += r->usage().output_tokens();
      cost_nano += r->cost().total_nano_usd();
    }
  }
  const auto samples = Scrape();
  const std::map<std::string, std::string> metered = {{"tenant", "metered"}};
  EXPECT_EQ(
      SumSamples(samples, "tollgate_requests_total", {{"tenant", "metered"}, {"status", "ok"}}),
      2 * kEach);
  EXPECT_EQ(
      SumSamples(samples, "tollgate_tokens_total", {{"tenant", "metered"}, {"type", "input"}}),
      input);
  EXPECT_EQ(
      SumSamples(samples, "tollgate_tokens_total", {{"tenant", "metered"}, {"type", "output"}}),
      output);
  EXPECT_NEAR(SumSamples(samples, "tollgate_cost_usd_total", metered), NanoUsdToUsd(cost_nano),
              1e-12);
  EXPECT_EQ(SumSamples(samples, "tollgate_request_cost_usd_count", metered), 2 * kEach);
  EXPECT_NEAR(SumSamples(samples, "tollgate_request_cost_usd_sum", metered),
              NanoUsdToUsd(cost_nano), 1e-12);
  EXPECT_GT(SumSamples(samples, "tollgate_overhead_seconds_count", {}), 0);
  EXPECT_GT(SumSamples(samples, "tollgate_time_to_first_token_seconds_count", {}), 0);
}

class CancelTest : public ProxyTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CancelTest, ACancelledStreamEndsCancelledAndIsChargedForDeliveredTokens) {
  const std::string model = GetParam();
  grpc::ClientContext context;
  Authorize(context, kAcmeKey);
  auto reader = stub_->GenerateStream(&context, Chat(model, "Write a very long story.", 4000));
  v1::GenerateResponse message;
  int delivered = 0;
  while (delivered < 5 && reader->Read(&message)) {
    if (!message.text().empty()) ++delivered;
  }
  ASSERT_EQ(delivered, 5);
  context.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  const std::map<std::string, std::string> cell = {{"tenant", "acme"}, {"model", model}};
  auto with = [&](const char* k, const char* v) {
    auto labels = cell;
    labels[k] = v;
    return labels;
  };
  EXPECT_EQ(AwaitSample("tollgate_requests_total", with("status", "cancelled"), 1), 1);
  const auto samples = Scrape();
  EXPECT_GE(SumSamples(samples, "tollgate_tokens_total", with("type", "output")), delivered);
  EXPECT_LT(SumSamples(samples, "tollgate_tokens_total", with("type", "output")), 4000);
  EXPECT_GT(SumSamples(samples, "tollgate_tokens_total", with("type", "input")), 0);
  EXPECT_GT(SumSamples(samples, "tollgate_cost_usd_total", cell), 0);
}

INSTANTIATE_TEST_SUITE_P(EmbeddedAndRemoteBackends, CancelTest,
                         ::testing::Values("slow-local", "slow-remote"));

TEST_F(ProxyTest, AnExpiredDeadlineEndsDeadlineExceededAndStillCharges) {
  grpc::ClientContext context;
  Authorize(context, kAcmeKey);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  v1::GenerateResponse response;
  const grpc::Status status =
      stub_->Generate(&context, Chat("slow-local", "Take your time.", 4000), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(AwaitSample("tollgate_requests_total",
                        {{"model", "slow-local"}, {"status", "deadline_exceeded"}}, 1),
            1);
  EXPECT_GT(SumSamples(Scrape(), "tollgate_cost_usd_total", {{"model", "slow-local"}}), 0);
}

TEST_F(ProxyTest, AUnaryCallToARemoteBackendCutByItsDeadlineIsChargedItsInput) {
  grpc::ClientContext context;
  Authorize(context, kAcmeKey);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  v1::GenerateResponse response;
  const grpc::Status status =
      stub_->Generate(&context, Chat("slow-remote", "Take your time.", 4000), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const std::map<std::string, std::string> cell = {{"model", "slow-remote"}};
  EXPECT_EQ(AwaitSample("tollgate_requests_total",
                        {{"model", "slow-remote"}, {"status", "deadline_exceeded"}}, 1),
            1);
  const auto samples = Scrape();
  EXPECT_GT(
      SumSamples(samples, "tollgate_tokens_total", {{"model", "slow-remote"}, {"type", "input"}}),
      0);
  EXPECT_GT(SumSamples(samples, "tollgate_cost_usd_total", cell), 0);
}

TEST_F(ProxyTest, BadCredentialsAndBadRequestsGetTheirStatusCodes) {
  v1::GenerateResponse response;
  EXPECT_EQ(Generate(Chat("llama-3-8b", "hi"), &response, "wrong-key").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  {
    grpc::ClientContext context;  // no authorization at all
    EXPECT_EQ(stub_->Generate(&context, Chat("llama-3-8b", "hi"), &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(Generate(Chat("no-such-model-xyz", "hi"), &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::GenerateRequest no_input;
  no_input.set_model("llama-3-8b");
  EXPECT_EQ(Generate(no_input, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  std::string text;
  v1::GenerateResponse last;
  EXPECT_EQ(Stream(Chat("llama-3-8b", "hi"), &text, &last, "wrong-key").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  const auto samples = Scrape();
  EXPECT_EQ(
      SumSamples(samples, "tollgate_requests_total",
                 {{"tenant", "other"}, {"model", "llama-3-8b"}, {"status", "unauthenticated"}}),
      3);
  EXPECT_EQ(SumSamples(samples, "tollgate_requests_total",
                       {{"tenant", "acme"}, {"model", "other"}, {"status", "not_found"}}),
            1);
  const std::string body = HttpGet(metrics_address_, "/metrics").value_or("");
  EXPECT_EQ(body.find("no-such-model-xyz"), std::string::npos) << "label cardinality leak";
}

TEST_F(ProxyTest, EmbeddingsArePricedByInputTokens) {
  v1::EmbedRequest request;
  request.set_model("embedded");
  request.add_inputs("first document");
  request.add_inputs("second, somewhat longer document");
  grpc::ClientContext context;
  Authorize(context, kAcmeKey);
  v1::EmbedResponse response;
  ASSERT_TRUE(stub_->Embed(&context, request, &response).ok());
  EXPECT_EQ(response.embeddings_size(), 2);
  EXPECT_GT(response.usage().input_tokens(), 0u);
  EXPECT_EQ(response.cost().total_nano_usd(),
            static_cast<int64_t>(response.usage().input_tokens()) * 20);
}

TEST_F(ProxyTest, MetricsPassPromtoolCheck) {
  v1::GenerateResponse response;
  ASSERT_TRUE(Generate(Chat("llama-3-8b", "hello"), &response).ok());
  if (testing::RunCommand("command -v promtool").exit_code != 0) {
    if (getenv("CI") != nullptr) FAIL() << "promtool is missing in CI (scripts/setup installs it)";
    GTEST_SKIP() << "promtool not installed; scripts/setup installs it";
  }
  const std::string path = dir_ + "/metrics.txt";
  testing::WriteFile(path, HttpGet(metrics_address_, "/metrics").value_or(""));
  const testing::CommandResult result = testing::RunCommand("promtool check metrics < " + path);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "") << "promtool reported problems";
}

TEST_F(ProxyTest, SighupReloadsPricesAndABadReloadKeepsTheOldConfig) {
  v1::GenerateResponse before;
  const v1::GenerateRequest request = Chat("llama-3-8b", "reload me", 100);
  ASSERT_TRUE(Generate(request, &before).ok());
  const int64_t output_tokens = before.usage().output_tokens();
  ASSERT_EQ(before.cost().output_nano_usd(), output_tokens * 600);

  WriteConfig("1.20");
  proxy_.Signal(SIGHUP);
  ASSERT_EQ(AwaitSample("tollgate_config_reloads_total", {{"result", "ok"}}, 1), 1);
  v1::GenerateResponse after;
  ASSERT_TRUE(Generate(request, &after).ok());
  EXPECT_EQ(after.cost().output_nano_usd(), output_tokens * 1200);

  testing::WriteFile(config_path_, "listeners: {grpc_adress: oops}\n");
  proxy_.Signal(SIGHUP);
  ASSERT_EQ(AwaitSample("tollgate_config_reloads_total", {{"result", "error"}}, 1), 1);
  v1::GenerateResponse kept;
  ASSERT_TRUE(Generate(request, &kept).ok());
  EXPECT_EQ(kept.cost().output_nano_usd(), output_tokens * 1200);
  EXPECT_NE(Log("tollgate.log").find("grpc_adress"), std::string::npos)
      << "the log should name the bad field";
}

TEST_F(ProxyTest, SigtermDrainsACallInFlightThenExitsZero) {
  grpc::ClientContext context;
  Authorize(context, kAcmeKey);
  // About 40 decode steps of 27 ms on the simulated A10G: long enough to be in flight at SIGTERM.
  auto reader = stub_->GenerateStream(&context, Chat("slow-local", "drain", 40));
  v1::GenerateResponse message;
  ASSERT_TRUE(reader->Read(&message));
  proxy_.Signal(SIGTERM);
  v1::GenerateResponse last = message;
  while (reader->Read(&message)) last = message;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(last.usage().output_tokens(), 40u);
  absl::StatusOr<int> exit_code = proxy_.Wait(absl::Seconds(30));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// Waits for the completion-queue event tagged `tag`.
bool Await(grpc::CompletionQueue& cq, intptr_t tag) {
  void* got = nullptr;
  bool ok = false;
  return cq.Next(&got, &ok) && ok && reinterpret_cast<intptr_t>(got) == tag;
}

TEST_F(ProxyTest, HealthServiceReportsServing) {
  grpc::GenericStub stub(grpc::CreateChannel(grpc_address_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  grpc::Slice empty("");  // HealthCheckRequest{service: ""} encodes to no bytes
  const grpc::ByteBuffer request(&empty, 1);
  auto call = stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  ASSERT_TRUE(Await(cq, 1));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Flatten(response), std::string("\x08\x01", 2));  // status: SERVING
}

TEST_F(ProxyTest, ServerReflectionListsTheInferenceService) {
  grpc::GenericStub stub(grpc::CreateChannel(grpc_address_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(Await(cq, 1));
  grpc::Slice list_services(std::string("\x3a\x00", 2));  // field 7 list_services: ""
  call->Write(grpc::ByteBuffer(&list_services, 1), reinterpret_cast<void*>(2));
  ASSERT_TRUE(Await(cq, 2));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(Await(cq, 3));
  EXPECT_NE(Flatten(response).find("tollgate.v1.Inference"), std::string::npos);
  context.TryCancel();
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  Await(cq, 4);
}

TEST_F(ProxyTest, MalformedProtobufFromAClientIsRejectedAndTheServerStaysUp) {
  grpc::GenericStub stub(grpc::CreateChannel(grpc_address_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.AddMetadata("authorization", std::string("Bearer ") + kAcmeKey);
  grpc::CompletionQueue cq;
  grpc::Slice garbage(std::string("\x0a\xff\xff\xff\xff\x0f truncated", 17));
  auto call = stub.PrepareUnaryCall(&context, "/tollgate.v1.Inference/Generate",
                                    grpc::ByteBuffer(&garbage, 1), &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  ASSERT_TRUE(Await(cq, 1));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  v1::GenerateResponse ok;
  EXPECT_TRUE(Generate(Chat("llama-3-8b", "still serving?"), &ok).ok());
}

TEST_F(ProxyTest, MalformedProtobufFromABackendGetsAClearErrorAndChargesNothing) {
  for (bool stream : {false, true}) {
    v1::GenerateResponse response;
    std::string text;
    const grpc::Status status = stream ? Stream(Chat("broken", "hi"), &text, &response)
                                       : Generate(Chat("broken", "hi"), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL) << status.error_message();
    EXPECT_EQ(text, "");
  }
  v1::EmbedRequest embed;
  embed.set_model("broken");
  embed.add_inputs("hi");
  grpc::ClientContext context;
  Authorize(context, kAcmeKey);
  v1::EmbedResponse embedding;
  EXPECT_EQ(stub_->Embed(&context, embed, &embedding).error_code(), grpc::StatusCode::INTERNAL);

  const auto samples = Scrape();
  EXPECT_EQ(
      SumSamples(samples, "tollgate_requests_total", {{"model", "broken"}, {"status", "internal"}}),
      3);
  EXPECT_EQ(SumSamples(samples, "tollgate_cost_usd_total", {{"model", "broken"}}), 0);
  v1::GenerateResponse ok;
  EXPECT_TRUE(Generate(Chat("llama-3-8b", "still serving?"), &ok).ok());
}

TEST_F(ProxyTest, CheckConfigAcceptsAGoodFileAndRejectsABadOne) {
  const testing::CommandResult good =
      testing::RunCommand(Binary("proxy/tollgate") + " --check-config " + config_path_);
  EXPECT_EQ(good.exit_code, 0) << good.output;
  const std::string bad = dir_ + "/bad.yaml";
  testing::WriteFile(bad, "models:\n  - {name: m, prices: {input_usd_per_mtok: -1}}\n");
  const testing::CommandResult result =
      testing::RunCommand(Binary("proxy/tollgate") + " --check-config " + bad);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("models[0].prices.input_usd_per_mtok"), std::string::npos)
      << result.output;
}

}  // namespace
}  // namespace tollgate
