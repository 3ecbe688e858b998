#include "proxy/batch_router.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proxy/batcher/batch_key.h"
#include "proxy/batcher/usage_split.h"
#include "proxy/pipeline.h"

namespace tollgate {
namespace {

// What one backend's batches share.
struct BackendBatching {
  BatcherOptions options;
  BatchMetrics::Series series;
};

struct EmbedItem {
  EmbedCall call;
  uint64_t input_tokens = 0;
  std::function<void()> on_sent;
  EmbedCallback done;
};

struct CompleteItem {
  GenerateCall call;
  uint64_t prompt_tokens = 0;
  const Tokenizer* tokenizer = nullptr;
  std::function<void()> on_sent;
  std::shared_ptr<GenerateObserver> observer;
};

// The status every request of a failed batch gets. A batch of several refused as a bad request
// may be refused for one of them: each is told to try alone.
absl::Status BatchFailure(const absl::Status& status, size_t items) {
  absl::Status out = status;
  if (items > 1 && absl::IsInvalidArgument(status)) {
    out.SetPayload(kRetryAlonePayload, absl::Cord("1"));
  }
  return out;
}

// Where a batch goes and what it is counted on; copied into the call's callback.
struct BatchTarget {
  Target target;
  std::shared_ptr<const MetricsTable> metrics;

  // The backend's passive health counts one call once, whatever its size.
  void RecordHealth(const absl::Status& status) const {
    if (target.health->RecordOutcome(status, target.config->ejection, absl::Now())) {
      metrics->SetEjected(target.config->name, target.health->ejected());
    }
  }
};

template <typename Item>
absl::Time LatestDeadline(const std::vector<Item>& items) {
  absl::Time deadline = absl::InfinitePast();
  for (const Item& item : items) deadline = std::max(deadline, item.call.deadline);
  return deadline;
}

void AnswerEmbeds(std::vector<EmbedItem>& items, absl::StatusOr<v1::EmbedResponse> result,
                  int inputs) {
  if (result.ok() && result->embeddings_size() != inputs) {
    result = absl::InternalError(absl::StrCat("the backend returned ", result->embeddings_size(),
                                              " embeddings for a batch of ", inputs, " inputs"));
  }
  if (!result.ok()) {
    const absl::Status status = BatchFailure(result.status(), items.size());
    for (EmbedItem& item : items) item.done(status);
    return;
  }
  std::vector<v1::Usage> parts;
  if (result->usage().source() != v1::USAGE_SOURCE_UNSPECIFIED) {
    std::vector<UsageWeights> weights;
    weights.reserve(items.size());
    for (const EmbedItem& item : items) weights.push_back({.input = item.input_tokens});
    parts = SplitUsage(result->usage(), weights);
  }
  int next = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    v1::EmbedResponse part;
    const int n = items[i].call.request.inputs_size();
    part.mutable_embeddings()->Reserve(n);
    for (int j = 0; j < n; ++j) {
      *part.add_embeddings() = std::move(*result->mutable_embeddings(next++));
    }
    if (!parts.empty()) *part.mutable_usage() = parts[i];
    items[i].done(std::move(part));
  }
}

void SendEmbeds(const BatchTarget& to, const BackendBatching& batching,
                std::vector<EmbedItem> items, const BatchInfo& info) {
  batching.series.Record(info);
  EmbedCall call;
  call.request.set_model(items.front().call.request.model());
  call.deadline = LatestDeadline(items);
  for (const EmbedItem& item : items) {
    for (const std::string& input : item.call.request.inputs()) {
      call.request.add_inputs(input);  // copied: the request keeps its own for a retry alone
    }
  }
  const int inputs = call.request.inputs_size();
  for (EmbedItem& item : items) item.on_sent();
  std::shared_ptr<Backend> backend = to.target.backend;
  // info.in_flight is held until the call ends: its queue's bound on calls running at once.
  backend->Embed(std::move(call),
                 [to, items = std::move(items), inputs,
                  in_flight = info.in_flight](absl::StatusOr<v1::EmbedResponse> result) mutable {
                   to.RecordHealth(result.ok() && result->embeddings_size() != inputs
                                       ? absl::InternalError("wrong number of embeddings")
                                       : result.status());
                   AnswerEmbeds(items, std::move(result), inputs);
                 });
}

// Output weights: each choice's reported output when every answered choice has one, else its text
// counted; failed choices weigh nothing. When nothing weighs anything, the answered choices share
// evenly (a failed request is never charged output).
std::vector<UsageWeights> CompletionWeights(const std::vector<CompleteItem>& items,
                                            const CompleteBatchResult& result) {
  bool all_reported = true;
  for (const BatchChoice& choice : result.choices) {
    if (choice.status.ok() && !choice.usage.has_value()) all_reported = false;
  }
  std::vector<UsageWeights> weights(items.size());
  uint64_t output_sum = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchChoice& choice = result.choices[i];
    weights[i].input = items[i].prompt_tokens;
    if (!choice.status.ok()) continue;
    if (all_reported) {
      weights[i].output = choice.usage->output_tokens();
    } else if (items[i].tokenizer != nullptr) {
      weights[i].output = items[i].tokenizer->Count(choice.text);
    } else {
      weights[i].output = EstimateTokens(choice.text.size());
    }
    output_sum += weights[i].output;
  }
  if (output_sum == 0) {
    for (size_t i = 0; i < items.size(); ++i) weights[i].output = result.choices[i].status.ok();
  }
  return weights;
}

void AnswerCompletions(std::vector<CompleteItem>& items,
                       absl::StatusOr<CompleteBatchResult> result) {
  if (!result.ok()) {
    const absl::Status status = BatchFailure(result.status(), items.size());
    for (CompleteItem& item : items) item.observer->OnDone(status);
    return;
  }
  std::vector<v1::Usage> parts;
  if (result->usage.has_value()) {
    parts = SplitUsage(*result->usage, CompletionWeights(items, *result));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    BatchChoice& choice = result->choices[i];
    v1::GenerateResponse message;
    if (!parts.empty()) {
      *message.mutable_usage() = parts[i];
    } else if (choice.usage.has_value()) {
      *message.mutable_usage() = *choice.usage;  // per choice only: reported as it is
    }
    if (choice.status.ok()) {
      message.set_text(std::move(choice.text));
      message.set_finish_reason(choice.finish_reason);
    }
    // A failed choice still carries its input share (the backend read its prompt), without a
    // finish reason: the pipeline charges that input and fails the request.
    items[i].observer->OnMessage(message);
    items[i].observer->OnDone(choice.status);
  }
}

void SendCompletions(const BatchTarget& to, const BackendBatching& batching,
                     std::vector<CompleteItem> items, const BatchInfo& info) {
  batching.series.Record(info);
  CompleteBatchCall call;
  call.request = items.front().call.request;  // equal keys: the same model and parameters
  call.request.clear_input();
  call.deadline = LatestDeadline(items);
  for (const CompleteItem& item : items) call.prompts.push_back(item.call.request.prompt());
  for (CompleteItem& item : items) item.on_sent();
  const size_t prompts = call.prompts.size();
  std::shared_ptr<Backend> backend = to.target.backend;
  backend->CompleteBatch(std::move(call), [to, items = std::move(items), prompts,
                                           in_flight = info.in_flight](
                                              absl::StatusOr<CompleteBatchResult> result) mutable {
    if (result.ok() && result->choices.size() != prompts) {
      result = absl::InternalError(absl::StrCat("the backend returned ", result->choices.size(),
                                                " answers for a batch of ", prompts, " prompts"));
    }
    to.RecordHealth(result.status());
    AnswerCompletions(items, std::move(result));
  });
}

// A queued request's handle: cancels it while it waits.
template <typename Item>
class QueuedCall final : public BackendCall {
 public:
  QueuedCall(std::weak_ptr<DynamicBatcher<Item>> batcher, uint64_t ticket)
      : batcher_(std::move(batcher)), ticket_(ticket) {}
  void Cancel() override {
    if (std::shared_ptr<DynamicBatcher<Item>> batcher = batcher_.lock()) batcher->Cancel(ticket_);
  }

 private:
  const std::weak_ptr<DynamicBatcher<Item>> batcher_;
  const uint64_t ticket_;
};

class BatchRouterImpl final : public BatchRouter {
 public:
  BatchRouterImpl(absl::flat_hash_map<std::string, std::shared_ptr<const BackendBatching>> backends,
                  std::shared_ptr<const MetricsTable> metrics, Scheduler* scheduler)
      : backends_(std::move(backends)), metrics_(std::move(metrics)), scheduler_(scheduler) {}

  bool BatchesEmbeddings(const Target& target) const override {
    return backends_.contains(target.config->name);
  }
  bool BatchesCompletions(const Target& target) const override {
    return backends_.contains(target.config->name) && target.backend->SupportsCompleteBatch();
  }

  std::shared_ptr<BackendCall> Embed(const Target& target, EmbedCall call, uint64_t input_tokens,
                                     std::function<void()> on_sent, EmbedCallback done) override {
    std::string key = EmbeddingBatchKey(target.config->name, call.request);
    const auto size = static_cast<size_t>(call.request.inputs_size());
    const absl::Time deadline = call.deadline;
    return Join(target, std::move(key), embed_queues_,
                EmbedItem{std::move(call), input_tokens, std::move(on_sent), std::move(done)}, size,
                deadline, &SendEmbeds,
                [](const EmbedItem& item, const absl::Status& status) { item.done(status); });
  }

  std::shared_ptr<BackendCall> Complete(const Target& target, GenerateCall call,
                                        uint64_t prompt_tokens, const Tokenizer* tokenizer,
                                        std::function<void()> on_sent,
                                        std::shared_ptr<GenerateObserver> observer) override {
    std::string key = CompletionBatchKey(target.config->name, call.request);
    const absl::Time deadline = call.deadline;
    return Join(target, std::move(key), complete_queues_,
                CompleteItem{std::move(call), prompt_tokens, tokenizer, std::move(on_sent),
                             std::move(observer)},
                1, deadline, &SendCompletions,
                [](const CompleteItem& item, const absl::Status& status) {
                  item.observer->OnDone(status);
                });
  }

  size_t queues() const override {
    absl::MutexLock lock(&mu_);
    return embed_queues_.size() + complete_queues_.size();
  }

 private:
  template <typename Item>
  using Queues = absl::flat_hash_map<std::string, std::shared_ptr<DynamicBatcher<Item>>>;

  // Finds or creates the queue of `key` and queues `item` on it, until `deadline` at most.
  template <typename Item>
  std::shared_ptr<BackendCall> Join(const Target& target, std::string key, Queues<Item>& queues,
                                    Item item, size_t size, absl::Time deadline,
                                    void (*send)(const BatchTarget&, const BackendBatching&,
                                                 std::vector<Item>, const BatchInfo&),
                                    typename DynamicBatcher<Item>::RejectFn reject)
      ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<DynamicBatcher<Item>> batcher;
    {
      absl::MutexLock lock(&mu_);
      std::shared_ptr<DynamicBatcher<Item>>& slot = queues[key];
      if (slot == nullptr) {
        std::shared_ptr<const BackendBatching> batching = backends_.at(target.config->name);
        BatchTarget to{target, metrics_};
        slot = DynamicBatcher<Item>::Create(
            batching->options, scheduler_,
            [to = std::move(to), batching, send](std::vector<Item> items, const BatchInfo& info) {
              send(to, *batching, std::move(items), info);
            },
            std::move(reject));
        SweepLocked();
      }
      batcher = slot;
    }
    const uint64_t ticket = batcher->Enqueue(std::move(item), size, deadline);
    return std::make_shared<QueuedCall<Item>>(batcher, ticket);
  }

  // Drops empty queues once the map has doubled since the last sweep, so that keys seen once
  // (a rare temperature, say) do not pile up. A request that found a queue just dropped still
  // waits on it and is sent by its timer; it only misses batching with later requests.
  void SweepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (embed_queues_.size() + complete_queues_.size() < sweep_at_) return;
    // A queue with calls running keeps its count of them, so it stays too.
    absl::erase_if(embed_queues_, [](const auto& entry) { return entry.second->idle(); });
    absl::erase_if(complete_queues_, [](const auto& entry) { return entry.second->idle(); });
    sweep_at_ = std::max<size_t>(64, 2 * (embed_queues_.size() + complete_queues_.size()));
  }

  const absl::flat_hash_map<std::string, std::shared_ptr<const BackendBatching>> backends_;
  const std::shared_ptr<const MetricsTable> metrics_;
  Scheduler* const scheduler_;

  mutable absl::Mutex mu_;
  Queues<EmbedItem> embed_queues_ ABSL_GUARDED_BY(mu_);
  Queues<CompleteItem> complete_queues_ ABSL_GUARDED_BY(mu_);
  size_t sweep_at_ ABSL_GUARDED_BY(mu_) = 64;
};

}  // namespace

std::shared_ptr<BatchRouter> BatchRouter::Create(const Config& config,
                                                 std::shared_ptr<const MetricsTable> metrics,
                                                 BatchMetrics* batch_metrics,
                                                 Scheduler* scheduler) {
  absl::flat_hash_map<std::string, std::shared_ptr<const BackendBatching>> backends;
  for (const BackendConfig& backend : config.backends) {
    if (!backend.batching.enabled) continue;
    auto batching = std::make_shared<BackendBatching>();
    batching->options.max_batch_size = backend.batching.max_batch_size;
    batching->options.preferred_batch_sizes.assign(backend.batching.preferred_batch_sizes.begin(),
                                                   backend.batching.preferred_batch_sizes.end());
    batching->options.max_queue_delay = backend.batching.max_queue_delay;
    batching->options.max_in_flight = backend.batching.max_in_flight_batches;
    if (batch_metrics != nullptr) batching->series = batch_metrics->ForBackend(backend.name);
    backends.emplace(backend.name, std::move(batching));
  }
  if (backends.empty()) return nullptr;
  return std::make_shared<BatchRouterImpl>(std::move(backends), std::move(metrics), scheduler);
}

}  // namespace tollgate
