#include "cache/coalescer.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace tollgate {
namespace {

// The open flights by key. Shared with the flights so that a flight closing after the Coalescer
// is gone does not touch freed memory.
struct FlightIndex {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, std::weak_ptr<Flight>> open ABSL_GUARDED_BY(mu);
};

// One observer's place in a flight.
struct Party {
  explicit Party(FlightObserver* observer) : observer(observer) {}
  FlightObserver* const observer;
  // The rest is guarded by the flight's mutex.
  size_t next_chunk = 0;
  bool end_sent = false;
  bool detached = false;
  bool delivering = false;  // a callback to `observer` is running on `delivering_thread`
  std::thread::id delivering_thread;
};

class FlightImpl final : public Flight {
 public:
  FlightImpl(std::shared_ptr<FlightIndex> index, std::string key)
      : index_(std::move(index)), key_(std::move(key)) {}

  // Adds a party unless the flight is closed. The caller then runs Deliver() for it.
  std::shared_ptr<Party> Attach(FlightObserver* observer) {
    absl::MutexLock lock(&mu_);
    if (closed_) return nullptr;
    parties_.push_back(std::make_shared<Party>(observer));
    return parties_.back();
  }

  // Brings `party` up to date: the chunks it has not had, then the end. Whoever finds the party
  // idle delivers, and keeps delivering until nothing is left, so callbacks to one observer never
  // overlap and stay in order however many threads publish or join.
  void Deliver(const std::shared_ptr<Party>& party) {
    absl::MutexLock lock(&mu_);
    while (!party->detached && !party->delivering) {
      if (party->next_chunk < chunks_.size()) {
        // deque::push_back keeps references to existing elements valid.
        const v1::GenerateResponse& chunk = chunks_[party->next_chunk++];
        RunUnlocked(*party, [&] { party->observer->OnChunk(chunk); });
      } else if (ended_ && !party->end_sent) {
        party->end_sent = true;
        // status_ and final_ are immutable once ended_ is set.
        RunUnlocked(*party, [&] { party->observer->OnEnd(status_, final_); });
      } else {
        break;
      }
    }
  }

  void Publish(v1::GenerateResponse chunk) override {
    std::vector<std::shared_ptr<Party>> parties;
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      chunks_.push_back(std::move(chunk));
      parties = parties_;
    }
    for (const auto& party : parties) Deliver(party);
  }

  void Finish(absl::Status status, v1::GenerateResponse final_message) override {
    std::vector<std::shared_ptr<Party>> parties;
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      status_ = std::move(status);
      final_ = std::move(final_message);
      ended_ = true;
      closed_ = true;
      cancel_ = nullptr;
      parties = parties_;
    }
    Unindex();
    for (const auto& party : parties) Deliver(party);
  }

  void SetCancel(std::function<void()> cancel) override {
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      if (!cancelled_) {
        cancel_ = std::move(cancel);
        return;
      }
    }
    if (cancel) cancel();  // every party left before the backend call could be cancelled
  }

  bool Detach(FlightObserver* observer) override {
    std::function<void()> cancel;
    {
      absl::MutexLock lock(&mu_);
      auto it = std::find_if(parties_.begin(), parties_.end(),
                             [&](const auto& party) { return party->observer == observer; });
      if (it == parties_.end()) return false;
      std::shared_ptr<Party> party = *it;
      parties_.erase(it);
      party->detached = true;
      if (party->delivering && party->delivering_thread != std::this_thread::get_id()) {
        mu_.Await(absl::Condition(
            +[](Party* p) ABSL_NO_THREAD_SAFETY_ANALYSIS { return !p->delivering; }, party.get()));
      }
      if (!parties_.empty() || ended_ || cancelled_) return false;
      cancelled_ = true;
      closed_ = true;
      cancel = std::move(cancel_);
      cancel_ = nullptr;
    }
    Unindex();
    if (cancel) cancel();
    return true;
  }

 private:
  template <typename Callback>
  void RunUnlocked(Party& party, Callback callback) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    party.delivering = true;
    party.delivering_thread = std::this_thread::get_id();
    mu_.Unlock();
    callback();
    mu_.Lock();
    party.delivering = false;
  }

  // Removes this flight from the index, unless a newer flight of the key has replaced it.
  void Unindex() {
    absl::MutexLock lock(&index_->mu);
    auto it = index_->open.find(key_);
    if (it == index_->open.end()) return;
    std::shared_ptr<Flight> indexed = it->second.lock();
    if (indexed == nullptr || indexed.get() == this) index_->open.erase(it);
  }

  const std::shared_ptr<FlightIndex> index_;
  const std::string key_;

  absl::Mutex mu_;
  std::vector<std::shared_ptr<Party>> parties_ ABSL_GUARDED_BY(mu_);  // attached, in join order
  std::deque<v1::GenerateResponse> chunks_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;  // every party detached before the end
  bool closed_ ABSL_GUARDED_BY(mu_) = false;     // ended or cancelled: no one may join
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse final_ ABSL_GUARDED_BY(mu_);
  std::function<void()> cancel_ ABSL_GUARDED_BY(mu_);
};

class CoalescerImpl final : public Coalescer {
 public:
  Joined Join(const std::string& key, FlightObserver* observer) override {
    std::shared_ptr<FlightImpl> flight;
    std::shared_ptr<Party> party;
    bool leader = false;
    {
      absl::MutexLock lock(&index_->mu);
      auto it = index_->open.find(key);
      if (it != index_->open.end()) {
        flight = std::static_pointer_cast<FlightImpl>(it->second.lock());
        if (flight != nullptr) party = flight->Attach(observer);
      }
      if (party == nullptr) {  // no flight, or it closed and has not yet left the index
        flight = std::make_shared<FlightImpl>(index_, key);
        party = flight->Attach(observer);
        index_->open[key] = flight;
        leader = true;
      }
    }
    if (!leader) flight->Deliver(party);
    return {.leader = leader, .flight = std::move(flight)};
  }

  size_t OpenFlights() const override {
    absl::MutexLock lock(&index_->mu);
    return index_->open.size();
  }

 private:
  const std::shared_ptr<FlightIndex> index_ = std::make_shared<FlightIndex>();
};

}  // namespace

std::unique_ptr<Coalescer> NewCoalescer() { return std::make_unique<CoalescerImpl>(); }

}  // namespace tollgate
