// The pipeline's unit-test fixture: a backend driven by hand, a sink that records, and a snapshot
// with model m1 on that backend. Shared by the pipeline's and the cache stage's tests.
#pragma once

#include <atomic>
#include <cstdlib>
#include <functional>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "accounting/gpu/gpu_meter.h"
#include "accounting/gpu/shadow_pricing.h"
#include "accounting/tokenizer/registry.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "proxy/pipeline.h"
#include "tests/common/fake_scheduler.h"

namespace tollgate::pipeline_test {

// A backend whose calls the test drives by hand (unit test only; integration tests use real ones).
// Retries start calls from the timer thread, hence the lock.
class FakeBackend final : public Backend {
 public:
  struct Call final : public BackendCall {
    void Cancel() override { cancelled = true; }
    std::atomic<bool> cancelled = false;
  };

  explicit FakeBackend(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  std::shared_ptr<BackendCall> Generate(GenerateCall call,
                                        std::shared_ptr<GenerateObserver> observer) override {
    absl::MutexLock lock(&mu_);
    last_call = std::move(call);
    observers_.push_back(observer);
    observer_ = std::move(observer);
    call_ = std::make_shared<Call>();
    ++calls_;
    return call_;
  }
  void Embed(EmbedCall call, EmbedCallback done) override {
    ++embed_calls;
    done(embed_answer(call));
  }
  // What Embed answers; by default UNIMPLEMENTED.
  std::function<absl::StatusOr<v1::EmbedResponse>(const EmbedCall&)> embed_answer =
      [](const EmbedCall&) { return absl::UnimplementedError("fake"); };
  std::atomic<int> embed_calls = 0;

  // Batches of prompts, answered by hand (AnswerBatch) when `batches_completions` is set.
  bool SupportsCompleteBatch() const override { return batches_completions; }
  void CompleteBatch(CompleteBatchCall call, CompleteBatchCallback done) override {
    absl::MutexLock lock(&mu_);
    batch_calls_.push_back(std::move(call));
    batch_done_ = std::move(done);
  }
  // Answers the last batch.
  void AnswerBatch(absl::StatusOr<CompleteBatchResult> result) {
    CompleteBatchCallback done;
    {
      absl::MutexLock lock(&mu_);
      done = std::move(batch_done_);
    }
    done(std::move(result));
  }
  std::vector<CompleteBatchCall> batch_calls() {
    absl::MutexLock lock(&mu_);
    return batch_calls_;
  }
  std::atomic<bool> batches_completions = false;

  // Waits (bounded) until `n` calls have been started; returns the count reached.
  int WaitForCalls(int n) {
    struct AtLeast {
      const int* calls;
      int n;
      bool Reached() const { return *calls >= n; }
    } at_least{&calls_, n};
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&at_least, &AtLeast::Reached), absl::Seconds(10));
    return calls_;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // The observer of the `n`th call (from 0), to answer a call that is no longer the last.
  std::shared_ptr<GenerateObserver> ObserverOf(int n) {
    absl::MutexLock lock(&mu_);
    return observers_.at(n);
  }

  void Send(const std::string& text) {
    v1::GenerateResponse m;
    m.set_text(text);
    Send(m);
  }
  void Send(const v1::GenerateResponse& m) { Observer()->OnMessage(m); }
  void Done(const absl::Status& status) { Observer()->OnDone(status); }
  // The end of an answer from a server that reports no usage: a finish reason only.
  void FinishWithoutUsage() {
    v1::GenerateResponse last;
    last.set_finish_reason(v1::FINISH_REASON_STOP);
    Send(last);
    Done(absl::OkStatus());
  }
  // A complete answer: `text`, then a finish reason with reported usage.
  void Answer(const std::string& text, uint64_t input, uint64_t output) {
    Send(text);
    FinishWithUsage(input, output);
  }
  // The end of an answer: a finish reason with reported usage.
  void FinishWithUsage(uint64_t input, uint64_t output) {
    v1::GenerateResponse last;
    last.set_finish_reason(v1::FINISH_REASON_STOP);
    last.mutable_usage()->set_input_tokens(input);
    last.mutable_usage()->set_output_tokens(output);
    last.mutable_usage()->set_source(v1::USAGE_SOURCE_REPORTED);
    Send(last);
    Done(absl::OkStatus());
  }

  GenerateCall last_call;
  std::shared_ptr<Call> call_;

 private:
  std::shared_ptr<GenerateObserver> Observer() {
    absl::MutexLock lock(&mu_);
    return observer_;
  }

  const std::string name_;
  absl::Mutex mu_;
  std::shared_ptr<GenerateObserver> observer_;
  std::vector<std::shared_ptr<GenerateObserver>> observers_;  // of every call, in order
  int calls_ = 0;
  std::vector<CompleteBatchCall> batch_calls_;
  CompleteBatchCallback batch_done_;
};

class RecordingSink final : public GenerateSink {
 public:
  void OnDelta(v1::GenerateResponse delta) override { deltas.push_back(std::move(delta)); }
  void OnFinish(const absl::Status& s, v1::GenerateResponse f) override {
    ++finishes;
    status = s;
    final = std::move(f);
    finished.Notify();
  }
  std::vector<v1::GenerateResponse> deltas;
  int finishes = 0;
  absl::Status status;
  v1::GenerateResponse final;
  absl::Notification finished;
};

// Backend `fake` serves model m1 and does not retry; `spare` is there for fallback tests.
constexpr char kDefaultBackends[] = R"(
backends:
  - {name: fake, kind: sim, retry: {max_attempts: 1}}
  - {name: spare, kind: sim}
)";

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { Configure(kDefaultBackends, ""); }

  // `backends` is the YAML backends section; `model_extra` more fields of model m1; `top` more
  // top-level sections. A config with `cache.enabled` gets a response cache.
  void Configure(const std::string& backends, const std::string& model_extra,
                 const std::string& top = "") {
    auto config = ParseConfigYaml(absl::StrCat(R"(
tenants:
  - {name: acme, api_key_sha256: [")",
                                               ApiKeySha256Hex("k1"), R"("]}
  - {name: beta, api_key_sha256: [")",
                                               ApiKeySha256Hex("k2"), R"("]}
)",
                                               top, "\n", backends, R"(
models:
  - {name: m1, backend: fake, backend_model: upstream-m1,
     prices: {input_usd_per_mtok: 1.00, output_usd_per_mtok: 4.00})",
                                               model_extra, "}\n"));
    ASSERT_TRUE(config.ok()) << config.status();
    auto snapshot = std::make_shared<Snapshot>();
    snapshot->config = *config;
    snapshot->router = Router::WithBackends(**config, {{"fake", backend_}, {"spare", spare_}});
    std::vector<std::string> plans;
    for (const ShadowPlan& plan : (*config)->shadow_plans) plans.push_back(plan.name);
    snapshot->metrics =
        metrics_.BuildTable((*config)->tenant_names, {"m1"}, {"fake", "spare"}, plans);
    if ((*config)->cache.enabled) snapshot->cache = CacheStage::Create((*config)->cache, nullptr);
    snapshot->batches =
        BatchRouter::Create(**config, snapshot->metrics, &batch_metrics_, &batch_clock_);
    holder_.Set(snapshot);
  }

  double Attempts(const std::string& backend, const std::string& result) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != "tollgate_backend_attempts_total") continue;
      for (const auto& metric : family.metric) {
        std::map<std::string, std::string> labels;
        for (const auto& l : metric.label) labels[l.name] = l.value;
        if (labels["backend"] == backend && labels["result"] == result) {
          return metric.counter.value;
        }
      }
    }
    return -1;
  }

  std::shared_ptr<RequestHandle> Start(bool stream, IngressInfo info = {}) {
    if (info.authorization.empty()) info.authorization = "Bearer k1";
    v1::GenerateRequest request;
    request.set_model("m1");
    request.set_prompt("twelve bytes");
    return pipeline_.Generate(info, request, stream, &sink_);
  }

  // Installs the cl100k_base tokenizer for m1, as a config naming it would.
  void UseTokenizer() {
    const char* dir = std::getenv("TOLLGATE_VOCAB_DIR");
    ASSERT_NE(dir, nullptr) << "run under ctest, which sets TOLLGATE_VOCAB_DIR";
    absl::StatusOr<std::shared_ptr<const Tokenizer>> loaded = LoadTokenizer("cl100k_base", dir);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    tokenizer_ = *loaded;
    auto snapshot = std::make_shared<Snapshot>(*holder_.Get());
    snapshot->tokenizers["m1"] = tokenizer_;
    holder_.Set(snapshot);
  }

  // The sum of the series of `family` with label `name` = `value` (over their other labels).
  double Series(const std::string& family_name, const std::string& name, const std::string& value) {
    double sum = 0;
    for (const auto& family : registry_.Collect()) {
      if (family.name != family_name) continue;
      for (const auto& metric : family.metric) {
        for (const auto& label : metric.label) {
          if (label.name == name && label.value == value) sum += metric.counter.value;
        }
      }
    }
    return sum;
  }

  // tollgate_tokens_total{type} summed over tenants.
  double Tokens(const std::string& type) {
    double sum = 0;
    for (const auto& family : registry_.Collect()) {
      if (family.name != "tollgate_tokens_total") continue;
      for (const auto& metric : family.metric) {
        for (const auto& label : metric.label) {
          if (label.name == "type" && label.value == type) sum += metric.counter.value;
        }
      }
    }
    return sum;
  }

  double RequestsWithStatus(const std::string& status) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != "tollgate_requests_total") continue;
      for (const auto& metric : family.metric) {
        bool match = false;
        for (const auto& label : metric.label) {
          if (label.name == "status" && label.value == status) match = true;
          if (label.name == "tenant" && label.value != "acme") match = false;
        }
        if (match && metric.counter.value > 0) return metric.counter.value;
      }
    }
    return 0;
  }

  prometheus::Registry registry_;
  ProxyMetrics metrics_{registry_};
  BatchMetrics batch_metrics_{registry_};
  testing::FakeScheduler batch_clock_;  // the batch queues' clock and timers
  SnapshotHolder holder_;
  Pipeline pipeline_{&holder_};
  std::shared_ptr<FakeBackend> backend_ = std::make_shared<FakeBackend>("fake");
  std::shared_ptr<FakeBackend> spare_ = std::make_shared<FakeBackend>("spare");
  RecordingSink sink_;
  std::shared_ptr<const Tokenizer> tokenizer_;
};

}  // namespace tollgate::pipeline_test
