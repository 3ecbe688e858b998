#include "proxy/cached_generate.h"

#include <atomic>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cache/cache_key.h"
#include "cache/coalescer.h"
#include "cache/replay.h"
#include "proxy/common/work_queue.h"

namespace tollgate::pipeline_internal {
namespace {

bool Reads(v1::CacheControl control) {
  return control == v1::CACHE_CONTROL_DEFAULT || control == v1::CACHE_CONTROL_NO_STORE;
}

bool Stores(v1::CacheControl control) {
  return control == v1::CACHE_CONTROL_DEFAULT || control == v1::CACHE_CONTROL_BYPASS;
}

// Publishes the leader's backend call to its flight, and stores the answer when it is complete
// (finished with a finish reason) and small enough. Owns itself until OnFinish returns.
class FlightFeeder final : public GenerateSink {
 public:
  FlightFeeder(std::shared_ptr<Flight> flight, std::shared_ptr<const CacheStage> stage,
               std::string key, bool store)
      : flight_(std::move(flight)), stage_(std::move(stage)), key_(std::move(key)), store_(store) {}

  void OnDelta(v1::GenerateResponse delta) override {
    if (store_) {
      bytes_ += delta.text().size();
      if (bytes_ > stage_->options().max_entry_bytes) {
        store_ = false;  // too large to cache: stop keeping a copy
        chunks_.clear();
      } else {
        chunks_.push_back(delta.text());
      }
    }
    flight_->Publish(std::move(delta));
  }

  void OnFinish(const absl::Status& status, v1::GenerateResponse final) override {
    std::unique_ptr<FlightFeeder> self(this);
    if (store_ && status.ok() && final.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      auto answer = std::make_shared<CachedResponse>();
      answer->chunks = std::move(chunks_);
      answer->chunks.shrink_to_fit();  // the cache charges each slot of the vector
      answer->finish_reason = final.finish_reason();
      answer->usage = final.usage();
      answer->cost = final.cost();
      answer->stored = absl::Now();
      stage_->Store(key_, std::move(answer));
    }
    flight_->Finish(status, std::move(final));
  }

 private:
  const std::shared_ptr<Flight> flight_;
  const std::shared_ptr<const CacheStage> stage_;
  const std::string key_;
  bool store_;
  uint64_t bytes_ = 0;
  std::vector<std::string> chunks_;
};

// One client's generation through the cache. As a party of a flight it receives the shared
// answer; the leader's party only relays it (the backend call accounts for itself), a follower's
// also accounts for itself as coalesced.
class CachedGenerate final : public RequestHandle,
                             public FlightObserver,
                             public std::enable_shared_from_this<CachedGenerate> {
 public:
  CachedGenerate(Admission admission, const v1::GenerateRequest& request, bool stream,
                 GenerateSink* sink)
      : a_(std::move(admission)),
        stream_(stream),
        sink_(sink),
        stage_(a_.snapshot->cache),
        control_(request.cache_control()),
        request_(&request) {
    a_.cacheable = true;
    const ModelConfig& model = *a_.route.model;
    // Tenant names are never empty, so the shared scope cannot be a tenant's.
    key_ = CacheKey(model.cache.shared_across_tenants ? "" : a_.caller.tenant, model.name, request);
  }

  // `request` must stay valid until Start returns.
  void Start() {
    if (Reads(control_)) {
      if (std::shared_ptr<const CachedResponse> hit = stage_->memory().Lookup(key_)) {
        ServeHit(*hit);
        return;
      }
      if (RedisCacheTier* shared = stage_->shared(); shared != nullptr) {
        request_copy_ = *request_;
        request_ = &*request_copy_;
        // The answer comes on the Redis client's I/O thread, which must not block: the rest of
        // the request (which may wait on shared budgets) runs on the work queue.
        shared->Get(key_, [self = shared_from_this()](std::shared_ptr<const CachedResponse> hit) {
          WorkQueue::Default().Post(
              [self, hit = std::move(hit)]() mutable { self->AfterSharedLookup(std::move(hit)); });
        });
        return;
      }
    }
    Miss();
  }

  void Cancel() override {
    std::shared_ptr<Flight> flight;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || cancelled_) return;
      cancelled_ = true;
      flight = flight_;
    }
    // Not joined yet: the shared lookup's answer, or Miss, sees `cancelled_`.
    if (flight != nullptr) LeaveFlight(*flight);
  }

  void OnChunk(const v1::GenerateResponse& chunk) override {
    if (timing_.first_token == absl::InfiniteFuture()) timing_.first_token = absl::Now();
    relay_.Relay(chunk.text(), a_.request_id, chunk.backend(),
                 leader_ ? chunk.cache_status() : v1::CACHE_STATUS_COALESCED);
  }

  void OnEnd(const absl::Status& status, const v1::GenerateResponse& final_message) override {
    if (!MarkFinished()) return;
    const std::shared_ptr<CachedGenerate> keep = std::move(in_flight_);  // released on return
    timing_.done = absl::Now();
    v1::GenerateResponse final = final_message;
    if (!stream_) final.set_text(relay_.TakeText());
    final.set_request_id(a_.request_id);
    if (leader_) {  // the backend call recorded and settled it
      sink_->OnFinish(status, std::move(final));
      return;
    }
    const absl::Status client_status = ClientStatus(status, a_.deadline);
    final.set_cache_status(v1::CACHE_STATUS_COALESCED);
    const int64_t paid = final.cost().total_nano_usd();
    *final.mutable_cost() = HitCost(final.cost(), a_.route.model->cache.hit_cost_fraction);
    SettleAndRecord(a_, reservation_, client_status.code(), final, &timing_,
                    status.ok() ? paid - final.cost().total_nano_usd() : 0);
    sink_->OnFinish(client_status, std::move(final));
  }

 private:
  // True for the first caller: the one that delivers the request's OnFinish.
  bool MarkFinished() {
    absl::MutexLock lock(&mu_);
    if (finished_) return false;
    finished_ = true;
    return true;
  }

  bool cancelled() {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

  // Ends a request that did not reach a backend or the cache (cancelled while the shared tier was
  // asked, or refused by a budget, which ReserveBudget recorded).
  void FinishEarly(const absl::Status& status, bool record) {
    if (!MarkFinished()) return;
    if (record) RecordOutcome(a_, {.code = status.code()});
    v1::GenerateResponse final;
    final.set_request_id(a_.request_id);
    sink_->OnFinish(ClientStatus(status, a_.deadline), std::move(final));
  }

  void AfterSharedLookup(std::shared_ptr<const CachedResponse> hit) {
    if (cancelled()) {
      FinishEarly(absl::CancelledError("cancelled by the client"), /*record=*/true);
      return;
    }
    if (hit == nullptr) {
      Miss();
      return;
    }
    stage_->memory().Insert(key_, hit);  // the next repeat on this replica stays in memory
    ServeHit(*hit);
  }

  void ServeHit(const CachedResponse& hit) {
    const v1::Cost charge = HitCost(hit.cost, a_.route.model->cache.hit_cost_fraction);
    BudgetHold reservation;
    if (charge.total_nano_usd() > 0) {
      absl::StatusOr<BudgetHold> held = ReserveBudget(a_, charge.total_nano_usd());
      if (!held.ok()) {
        FinishEarly(held.status(), /*record=*/false);
        return;
      }
      reservation = *std::move(held);
    }
    if (!MarkFinished()) return;
    v1::GenerateResponse final;
    if (stream_) {
      std::vector<v1::GenerateResponse> replay = ReplayStream(hit);
      final = std::move(replay.back());
      replay.pop_back();
      for (size_t i = 0; i < replay.size(); ++i) {
        if (i == 0) {
          replay[i].set_request_id(a_.request_id);
          replay[i].set_backend(std::string(kCacheBackend));
        }
        sink_->OnDelta(std::move(replay[i]));
      }
    } else {
      final = ReplayUnary(hit);
    }
    final.set_request_id(a_.request_id);
    final.set_backend(std::string(kCacheBackend));
    final.set_cache_status(v1::CACHE_STATUS_HIT);
    *final.mutable_cost() = charge;
    SettleAndRecord(a_, reservation, absl::StatusCode::kOk, final, /*timing=*/nullptr,
                    hit.cost.total_nano_usd() - charge.total_nano_usd());
    sink_->OnFinish(absl::OkStatus(), std::move(final));
  }

  // Reserves the worst case, then joins the flight of identical requests or leads a new one.
  void Miss() {
    if (cancelled()) {
      FinishEarly(absl::CancelledError("cancelled by the client"), /*record=*/true);
      return;
    }
    const v1::GenerateRequest& request = *request_;
    const PromptTokens prompt = CountPrompt(a_.tokenizer, request);
    absl::StatusOr<BudgetHold> reservation = ReserveBudget(
        a_, WorstCaseNanoUsd(a_.route.model->prices, prompt.tokens,
                             MaxOutputTokens(a_, request.params().max_tokens(), prompt.tokens)));
    if (!reservation.ok()) {
      FinishEarly(reservation.status(), /*record=*/false);
      return;
    }
    // A bypass neither reads the cache nor shares another request's call: its flight is its own.
    static std::atomic<uint64_t> private_flights{0};
    const bool shared = stage_->options().coalesce && Reads(control_);
    const std::string flight_key =
        shared ? key_ : absl::StrCat(key_, "/", private_flights.fetch_add(1));
    timing_.start = absl::Now();
    // Before Join: a follower's end may come on the leader's thread as soon as it has joined.
    reservation_ = *std::move(reservation);
    in_flight_ = shared_from_this();
    Coalescer::Joined joined = stage_->coalescer().Join(flight_key, this);
    if (joined.leader) {
      leader_ = true;  // before the call starts, so before any callback to this party
      auto* feeder = new FlightFeeder(joined.flight, stage_, key_, Stores(control_));
      std::shared_ptr<RequestHandle> call =
          StartGenerateRun(a_, /*stream=*/true, feeder, prompt, std::move(reservation_), request,
                           Reads(control_) ? v1::CACHE_STATUS_MISS : v1::CACHE_STATUS_BYPASS);
      joined.flight->SetCancel([call = std::move(call)] { call->Cancel(); });
    }
    bool cancelled_meanwhile = false;
    {
      absl::MutexLock lock(&mu_);
      flight_ = joined.flight;
      cancelled_meanwhile = cancelled_ && !finished_;
    }
    if (cancelled_meanwhile) LeaveFlight(*joined.flight);
  }

  // The client went away: detach (the call goes on for the other parties) and finish.
  void LeaveFlight(Flight& flight) {
    flight.Detach(this);
    if (!MarkFinished()) return;                                         // the end arrived first
    const std::shared_ptr<CachedGenerate> keep = std::move(in_flight_);  // released on return
    const absl::Status status =
        ClientStatus(absl::CancelledError("cancelled by the client"), a_.deadline);
    if (!leader_) {  // the leader's call records itself when it ends
      SettleBudget(a_, reservation_, 0);
      RecordOutcome(a_, {.code = status.code(), .cache_status = v1::CACHE_STATUS_COALESCED});
    }
    v1::GenerateResponse final;
    final.set_request_id(a_.request_id);
    sink_->OnFinish(status, std::move(final));
  }

  Admission a_;
  const bool stream_;
  GenerateSink* const sink_;
  const std::shared_ptr<const CacheStage> stage_;
  const v1::CacheControl control_;
  std::string key_;
  const v1::GenerateRequest* request_;  // the caller's until Start returns, then request_copy_
  std::optional<v1::GenerateRequest> request_copy_;

  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // OnFinish delivered or being delivered
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<Flight> flight_ ABSL_GUARDED_BY(mu_);

  // Set in Miss before the flight delivers anything, then read by the flight's callbacks.
  bool leader_ = false;
  // While a party of a flight (which knows it by a raw pointer): this request itself. Released by
  // whoever finishes it.
  std::shared_ptr<CachedGenerate> in_flight_;
  BudgetHold reservation_;  // a follower's; the leader's went to the backend call
  // Touched by the flight's callbacks, which come one at a time.
  BackendTiming timing_;
  TextRelay relay_{stream_, sink_};
};

}  // namespace

v1::Cost HitCost(const v1::Cost& paid, double fraction) {
  v1::Cost cost;
  if (fraction <= 0) return cost;
  const auto part = [fraction](int64_t nano_usd) {
    return static_cast<int64_t>(std::llround(static_cast<double>(nano_usd) * fraction));
  };
  cost.set_input_nano_usd(part(paid.input_nano_usd()));
  cost.set_cached_input_nano_usd(part(paid.cached_input_nano_usd()));
  cost.set_output_nano_usd(part(paid.output_nano_usd()));
  cost.set_reasoning_nano_usd(part(paid.reasoning_nano_usd()));
  cost.set_cache_write_nano_usd(part(paid.cache_write_nano_usd()));
  cost.set_gpu_nano_usd(part(paid.gpu_nano_usd()));
  cost.set_total_nano_usd(cost.input_nano_usd() + cost.cached_input_nano_usd() +
                          cost.output_nano_usd() + cost.reasoning_nano_usd() +
                          cost.cache_write_nano_usd() + cost.gpu_nano_usd());
  return cost;
}

bool UsesCache(const Admission& a, const v1::GenerateRequest& request) {
  if (a.snapshot->cache == nullptr) return false;
  switch (a.route.model->cache.policy) {
    case CachePolicy::kAlways:
      return true;
    case CachePolicy::kDeterministic:
      return IsDeterministic(request);
    case CachePolicy::kNever:
      return false;
  }
  return false;
}

std::shared_ptr<RequestHandle> GenerateThroughCache(Admission a, const v1::GenerateRequest& request,
                                                    bool stream, GenerateSink* sink) {
  auto run = std::make_shared<CachedGenerate>(std::move(a), request, stream, sink);
  run->Start();
  return run;
}

}  // namespace tollgate::pipeline_internal
