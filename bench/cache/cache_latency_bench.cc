// tollgate-cache-latency-bench: server-side latency of a response-cache hit (issue 6), measured in
// process from Pipeline::Generate to the sink's OnFinish, side by side with the same calls made
// without the cache.
//
//   tollgate-cache-latency-bench                       # 200000 timed calls per case
//   tollgate-cache-latency-bench --calls=200000 --rounds=20
//   tollgate-cache-latency-bench --smoke               # a few calls per case; checks, no figures
//   perf record -g tollgate-cache-latency-bench --cases=hit   # where a hit's time goes
//
// The snapshot is built as the server builds one for a config without budgets or a ledger: the
// router with its backends, the metrics table, the models' tokenizers, an empty budget book, and a
// CacheStage. Two snapshots share all of it but the cache; one Pipeline runs on each.
//
// Cases (each unary and stream):
//   hit sim-16     the answer of the in-process simulator to tollgate-bench's request (a 200-byte
//                  user message, max_tokens 16, temperature 0): 16 one-token chunks
//   hit 1k-50      a ~1 KB answer in 50 chunks of 20 bytes, from a backend that answers inline
//   nocache sim-16 the first case's request without the cache: the simulator at time_scale 0,
//                  which answers on its engine thread
//   nocache 1k-50  the second case's request without the cache: the pipeline's own cost of a
//                  backend call, the backend answering on the caller's thread
// Every hit case is warmed by one miss through the pipeline, so the entry is the one the server
// would store. Calls are made one at a time, cases interleaved in rounds so that interference is
// shared; each call's time goes into a histogram (bench/latency_histogram.h).
//
// Exit status: 0 when every call succeeded and every hit was a hit, 1 otherwise.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "accounting/budget/budget.h"
#include "accounting/metrics.h"
#include "bench/latency_histogram.h"
#include "prometheus/registry.h"
#include "proxy/backends/sim/sim_backend.h"
#include "proxy/cache_stage.h"
#include "proxy/config/config.h"
#include "proxy/pipeline.h"
#include "proxy/router.h"
#include "proxy/tokenizers.h"

ABSL_FLAG(int64_t, calls, 200000, "timed calls per case (after the warm-up)");
ABSL_FLAG(int64_t, warmup_calls, 2000, "untimed calls per case before the timed ones");
ABSL_FLAG(int, rounds, 10,
          "the timed calls of each case are split into this many interleaved runs");
ABSL_FLAG(bool, smoke, false, "a few calls per case: checks that every case works, quickly");
ABSL_FLAG(std::string, cases, "",
          "only the cases whose name contains this (e.g. \"hit\"), to profile");

namespace tollgate {
namespace {

constexpr char kApiKey[] = "tollgate-cache-bench-key";
constexpr int kAnswerChunks = 50;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A backend that answers every call on the caller's thread, before Generate returns: 50 chunks of
// 20 bytes, then the finish reason with reported usage. Stateless; thread-safe.
class InlineBackend final : public Backend {
 public:
  explicit InlineBackend(std::string name) : name_(std::move(name)) {
    for (int i = 0; i < kAnswerChunks; ++i) {
      chunks_.push_back(absl::StrFormat("chunk %02d of answer: ", i));  // 20 bytes
    }
  }
  const std::string& name() const override { return name_; }
  std::shared_ptr<BackendCall> Generate(GenerateCall,
                                        std::shared_ptr<GenerateObserver> observer) override {
    v1::GenerateResponse message;
    for (const std::string& chunk : chunks_) {
      message.set_text(chunk);
      observer->OnMessage(message);
    }
    message.Clear();
    message.set_finish_reason(v1::FINISH_REASON_STOP);
    message.mutable_usage()->set_input_tokens(50);
    message.mutable_usage()->set_output_tokens(kAnswerChunks);
    message.mutable_usage()->set_source(v1::USAGE_SOURCE_REPORTED);
    observer->OnMessage(message);
    observer->OnDone(absl::OkStatus());
    return std::make_shared<Finished>();
  }
  void Embed(EmbedCall, EmbedCallback done) override {
    done(absl::UnimplementedError("inline bench backend"));
  }

 private:
  struct Finished final : public BackendCall {
    void Cancel() override {}
  };
  const std::string name_;
  std::vector<std::string> chunks_;
};

// Records when OnFinish came and what it said. One call at a time: Reset, Generate, Wait.
class TimingSink final : public GenerateSink {
 public:
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = false;
    deltas_ = 0;
    text_bytes_ = 0;
  }
  void OnDelta(v1::GenerateResponse delta) override {
    ++deltas_;
    text_bytes_ += delta.text().size();
  }
  void OnFinish(const absl::Status& status, v1::GenerateResponse final) override {
    const int64_t now_ns = NowNs();
    std::lock_guard<std::mutex> lock(mu_);
    finish_ns_ = now_ns;
    ok_ = status.ok();
    error_ = status.ok() ? "" : status.ToString();
    cache_status_ = final.cache_status();
    text_bytes_ += final.text().size();
    finished_ = true;
    done_.notify_one();  // under the lock: Wait returns only after OnFinish has let go of it
  }
  // Returns the time OnFinish was called.
  int64_t Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return finished_; });
    return finish_ns_;
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  v1::CacheStatus cache_status() const { return cache_status_; }
  int deltas() const { return deltas_; }
  uint64_t text_bytes() const { return text_bytes_; }

 private:
  std::mutex mu_;
  std::condition_variable done_;
  bool finished_ = false;
  int64_t finish_ns_ = 0;
  bool ok_ = false;
  std::string error_;
  v1::CacheStatus cache_status_ = v1::CACHE_STATUS_UNSPECIFIED;
  int deltas_ = 0;  // written by the pipeline's thread before OnFinish, read after Wait
  uint64_t text_bytes_ = 0;
};

// tollgate-bench's request (bench/load_generator.cc): one 200-byte user message, temperature 0.
v1::GenerateRequest BenchRequest(const std::string& model, uint32_t max_tokens) {
  v1::GenerateRequest request;
  request.set_model(model);
  auto* message = request.mutable_chat()->add_messages();
  message->set_role("user");
  std::string content;
  while (content.size() < 197) content += "The quick brown fox jumps over the lazy dog. ";
  content.resize(197);
  message->set_content(content + " #0");
  request.mutable_params()->set_max_tokens(max_tokens);
  request.mutable_params()->set_temperature(0);
  return request;
}

struct Case {
  std::string name;
  Pipeline* pipeline;
  v1::GenerateRequest request;
  bool stream;
  bool expect_hit;
  bench::LatencyHistogram latency{};
  int64_t failures = 0;
  std::string first_failure{};
  int deltas = 0;  // of the last call
  uint64_t text_bytes = 0;
};

// One call; returns its latency in ns, or -1 when it failed or was not the hit it should be.
int64_t TimedCall(Case& c, TimingSink& sink) {
  IngressInfo info;
  const std::string authorization = absl::StrCat("Bearer ", kApiKey);
  info.authorization = authorization;
  sink.Reset();
  const int64_t start_ns = NowNs();
  std::shared_ptr<RequestHandle> handle = c.pipeline->Generate(info, c.request, c.stream, &sink);
  const int64_t end_ns = sink.Wait();
  handle.reset();
  c.deltas = sink.deltas();
  c.text_bytes = sink.text_bytes();
  const bool hit = sink.cache_status() == v1::CACHE_STATUS_HIT;
  if (!sink.ok() || hit != c.expect_hit) {
    if (c.failures++ == 0) {
      c.first_failure =
          sink.ok() ? absl::StrCat("cache status ", sink.cache_status()) : sink.error();
    }
    return -1;
  }
  return end_ns - start_ns;
}

absl::StatusOr<std::shared_ptr<const Config>> BenchConfig() {
  return ParseConfigYaml(absl::StrCat(R"(
tenants: [{name: bench, api_key_sha256: [")",
                                      ApiKeySha256Hex(kApiKey), R"("]}]
backends:
  - {name: sim0, kind: sim, sim: {time_scale: 0}, retry: {max_attempts: 1}}
  - {name: inline, kind: sim, retry: {max_attempts: 1}}
models:
  - {name: llama-3-8b, backend: sim0,
     prices: {input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2}}
  - {name: bench-1k, backend: inline,
     prices: {input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2}}
cache: {enabled: true}
)"));
}

std::string Micros(int64_t ns) { return absl::StrFormat("%.2f", static_cast<double>(ns) / 1e3); }

int Run() {
  absl::StatusOr<std::shared_ptr<const Config>> config = BenchConfig();
  if (!config.ok()) {
    std::cerr << "config: " << config.status() << "\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Backend>> sim =
      NewSimBackend("sim0", (*config)->backends[0].sim, {});
  if (!sim.ok()) {
    std::cerr << "sim backend: " << sim.status() << "\n";
    return 1;
  }
  TokenizerCache tokenizer_cache;
  absl::StatusOr<ModelTokenizers> tokenizers = tokenizer_cache.ForConfig(**config);
  if (!tokenizers.ok()) {
    std::cerr << "tokenizers: " << tokenizers.status() << "\n";
    return 1;
  }
  absl::StatusOr<std::shared_ptr<BudgetBook>> budgets =
      BudgetBook::Build((*config)->budgets, BudgetBookOptions{}, nullptr);
  if (!budgets.ok()) {
    std::cerr << "budgets: " << budgets.status() << "\n";
    return 1;
  }
  prometheus::Registry registry;
  ProxyMetrics metrics(registry);

  auto uncached = std::make_shared<Snapshot>();
  uncached->config = *config;
  uncached->router =
      Router::WithBackends(**config, {{"sim0", std::shared_ptr<Backend>(*std::move(sim))},
                                      {"inline", std::make_shared<InlineBackend>("inline")}});
  uncached->metrics =
      metrics.BuildTable((*config)->tenant_names, {"llama-3-8b", "bench-1k"}, {"sim0", "inline"});
  uncached->tokenizers = *std::move(tokenizers);
  uncached->budgets = *std::move(budgets);
  auto cached = std::make_shared<Snapshot>(*uncached);
  cached->cache = CacheStage::Create((*config)->cache, nullptr);
  SnapshotHolder cached_holder, uncached_holder;
  cached_holder.Set(cached);
  uncached_holder.Set(uncached);
  Pipeline with_cache(&cached_holder), without_cache(&uncached_holder);

  const v1::GenerateRequest sim_request = BenchRequest("llama-3-8b", 16);
  const v1::GenerateRequest inline_request = BenchRequest("bench-1k", kAnswerChunks);
  std::vector<Case> cases;
  for (const bool stream : {false, true}) {
    const char* mode = stream ? "stream" : "unary";
    cases.push_back({absl::StrCat("hit sim-16 ", mode), &with_cache, sim_request, stream, true});
    cases.push_back({absl::StrCat("hit 1k-50 ", mode), &with_cache, inline_request, stream, true});
    cases.push_back(
        {absl::StrCat("nocache sim-16 ", mode), &without_cache, sim_request, stream, false});
    cases.push_back(
        {absl::StrCat("nocache 1k-50 ", mode), &without_cache, inline_request, stream, false});
  }

  const std::string only = absl::GetFlag(FLAGS_cases);
  std::erase_if(cases, [&only](const Case& c) { return !absl::StrContains(c.name, only); });

  TimingSink sink;
  // The misses that store the two answers (a unary and a stream request share one entry).
  for (const v1::GenerateRequest* request : {&sim_request, &inline_request}) {
    Case warm{"warm", &with_cache, *request, false, false};
    if (TimedCall(warm, sink) < 0) {
      std::cerr << "warming miss for " << request->model() << " failed: " << warm.first_failure
                << "\n";
      return 1;
    }
  }

  const bool smoke = absl::GetFlag(FLAGS_smoke);
  const int64_t warmup_calls = smoke ? 3 : absl::GetFlag(FLAGS_warmup_calls);
  const int64_t calls = smoke ? 20 : absl::GetFlag(FLAGS_calls);
  const int rounds = smoke ? 2 : std::max(1, absl::GetFlag(FLAGS_rounds));
  for (Case& c : cases) {
    for (int64_t i = 0; i < warmup_calls; ++i) TimedCall(c, sink);
  }
  for (int round = 0; round < rounds; ++round) {
    for (Case& c : cases) {
      const int64_t n = calls / rounds + (round < calls % rounds ? 1 : 0);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t ns = TimedCall(c, sink);
        if (ns >= 0) c.latency.Record(ns);
      }
    }
  }

  const ResponseCacheStats stats = cached->cache->memory().Stats();
  std::cout
      << "| case | deltas / text bytes | calls | p50 µs | p99 µs | p99.9 µs | max µs | mean µs "
         "|\n|---|---|---|---|---|---|---|---|\n";
  int status = 0;
  for (const Case& c : cases) {
    const bench::LatencyHistogram& h = c.latency;
    std::cout << "| " << c.name << " | " << c.deltas << " / " << c.text_bytes << " | " << h.Count()
              << " | " << Micros(h.Percentile(50)) << " | " << Micros(h.Percentile(99)) << " | "
              << Micros(h.Percentile(99.9)) << " | " << Micros(h.Max()) << " | "
              << absl::StrFormat("%.2f", h.Mean() / 1e3) << " |\n";
    if (c.failures > 0) {
      std::cerr << c.name << ": " << c.failures << " calls failed, first: " << c.first_failure
                << "\n";
      status = 1;
    }
  }
  std::cout << "\ncache: " << stats.entries << " entries, " << stats.hits << " hits, "
            << stats.misses << " misses\n";
  return status;
}

}  // namespace
}  // namespace tollgate

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // llama-3-8b counts its prompts with the llama3 tokenizer: scripts/fetch_vocab's vocabulary.
  setenv("TOLLGATE_VOCAB_DIR", TOLLGATE_SOURCE_DIR "/.cache/tokenizer", /*overwrite=*/0);
  // Lock-order cycle checks (on in Debian's Abseil) cost every mutex acquisition; the server
  // turns them off too (proxy/main.cc).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return tollgate::Run();
}
