// Budgets shared by every replica through Redis: the second check next to the local BudgetBook.
//
// A request reserves its worst case on the local book (always) and, when Redis answers in time,
// here too; it is refused if either refuses, and settles both. When Redis is down or slow, Reserve
// says UNAVAILABLE at once and the request goes on with the local book alone.
//
//   absl::StatusOr<Reservation> local = book->Reserve(tenant, key, worst_case, now);
//   if (!local.ok()) return local.status();
//   std::vector<const BudgetSpec*> specs = book->SpecsFor(tenant, key);
//   absl::StatusOr<SharedHold> shared = shared_budgets->Reserve(specs, worst_case, now);
//   if (absl::IsResourceExhausted(shared.status())) return shared.status();
//   ...call the backend...
//   book->Settle(*std::move(local), actual, absl::Now());
//   if (shared.ok()) shared_budgets->Settle(*std::move(shared), actual, absl::Now());
//
// Redis layout, per budget and window (`key_prefix` + name + ":" + window; the window is
// "daily:2025-03-14", "monthly:2025-03" or "total", in UTC from the caller's `now`):
//   <base>            hash: spent (settled nano-USD), held (sum of live holds), hold:<id> (amount)
//   <base>:holds      sorted set: live hold ids by expiry (Redis server time, ms)
//   <base>:expired    sorted set: ids of holds that expired unsettled, by expiry time
//   <base>:lost       sorted set: ids settled after the store lost their holds, by settle time
//   <key_prefix>epoch a random string naming the store's lifetime, set by the first reserve
// Daily and monthly keys expire `retention` after their window ends (counted from the caller's
// `now`); running totals never do.
//
// Reserve is one EVALSHA (EVAL on NOSCRIPT) of a Lua script that, atomically: drops expired holds
// from each budget's window (moving their amounts out of `held`), checks spent + held + amount
// <= limit on every budget in exact 64-bit arithmetic, and then holds the amount on all of them or
// on none. RESOURCE_EXHAUSTED names the first budget that refused, worded as the local book does.
// A Reserve whose reply was lost to a timeout may still have taken its hold: a release for it is
// sent at once, best effort.
//
// Hold expiry: each hold expires hold_ttl after it was taken (by Redis's clock), so the holds of a
// replica that crashed stop counting after hold_ttl. hold_ttl must exceed the longest request.
//
// Settle is one script run, asynchronous: it removes the hold from the reservation's window and
// adds `actual` to spent of the window `now` falls in. It applies at most once per budget: when
// the hold is there (normal), or recorded as expired, or the store lost it (the epoch changed:
// Redis restarted empty or failed over), recorded in <base>:lost. Otherwise it was applied already,
// so a settle can be retried freely. A settle with an actual cost that Redis cannot take (down,
// timed out) waits in a local queue of at most max_queued_settles entries, oldest dropped first
// past that (counted in stats; the spend is then missing from the shared totals only, never from
// the local book or the ledger). The queue is sent again on the next Reserve or FlushQueued once
// Redis is up, so a periodic FlushQueued (e.g. every few seconds) bounds the delay on an idle
// replica. A replayed settle counts in the window of its own `now`. Settles of 0 (and holds dropped
// unsettled) only release: sent once, and left to expire if that fails. Settles still queued
// when the SharedBudgets and all its holds are gone are lost (from the shared totals).
//
// Redis Cluster: a script touches the keys of all the request's budgets, so they must share a hash
// slot: put a hash tag in the prefix (e.g. "{tollgate}:budget:"). Needs Redis >= 5 (scripts that
// read TIME). Use a noeviction or volatile-* policy: an evicted epoch key would let a retried
// settle count twice.
//
// Thread safety: SharedBudgets is safe from any thread. Reserve and Usage wait for Redis (at most
// about twice the client's command_timeout: a NOSCRIPT costs a second round trip), so they must
// not run on the Redis client's I/O thread. A SharedHold belongs to one request, one thread at a
// time. The RedisClient must outlive the SharedBudgets and every SharedHold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "accounting/budget/budget.h"
#include "cache/redis_client.h"

namespace tollgate {

struct SharedBudgetsOptions {
  std::string key_prefix = "tollgate:budget:";
  std::string replica_id = "";  // in hold ids, for operators; empty: 16 random hex digits
  absl::Duration hold_ttl = absl::Minutes(10);
  // How long Redis keeps what a late settle needs: a dated window's keys after the window ends,
  // and the records of expired and lost holds.
  absl::Duration retention = absl::Hours(24 * 7);
  size_t max_queued_settles = 100000;
};

namespace shared_budgets_internal {
class Core;
struct HeldBudget {
  std::string name;
  BudgetWindow window;
  std::string base_key;  // of the window the hold was taken in
  absl::Time window_end;
};
}  // namespace shared_budgets_internal

// An amount held on the shared budgets of one request. Move-only; settled at most once (Settle
// takes it by value). One destroyed unsettled releases its hold. A default-constructed or
// moved-from hold, or one taken on no budget, holds nothing.
class SharedHold {
 public:
  SharedHold() = default;
  SharedHold(SharedHold&& other) noexcept = default;
  SharedHold& operator=(SharedHold&& other) noexcept;
  ~SharedHold();

  bool held() const { return core_ != nullptr; }
  int64_t nano_usd() const { return held() ? nano_usd_ : 0; }
  const std::string& id() const { return id_; }  // "<replica id>:<sequence>"

 private:
  friend class shared_budgets_internal::Core;
  void Release();

  std::shared_ptr<shared_budgets_internal::Core> core_;
  std::string id_;
  std::string epoch_;
  int64_t nano_usd_ = 0;
  std::vector<shared_budgets_internal::HeldBudget> budgets_;
};

// One budget's shared state in the window holding `now`.
struct SharedBudgetUsage {
  int64_t spent_nano_usd = 0;
  int64_t held_nano_usd = 0;  // live holds of every replica
};

struct SharedBudgetsStats {
  size_t queued_settles = 0;      // waiting for Redis now
  uint64_t replayed_settles = 0;  // sent again from the queue and applied
  uint64_t dropped_settles = 0;   // pushed out of a full queue
  uint64_t unavailable = 0;       // Reserves answered UNAVAILABLE
};

class SharedBudgets {
 public:
  virtual ~SharedBudgets() = default;

  // Holds `amount_nano_usd` on every budget of `budgets` (e.g. BudgetBook::SpecsFor), in their
  // windows at `now`, or on none: RESOURCE_EXHAUSTED naming the first that would go past its
  // limit; UNAVAILABLE when Redis cannot answer in time (go on with the local book alone);
  // INVALID_ARGUMENT for a negative amount. No budgets: an empty hold, without a round trip.
  virtual absl::StatusOr<SharedHold> Reserve(absl::Span<const BudgetSpec* const> budgets,
                                             int64_t amount_nano_usd, absl::Time now) = 0;

  // Releases the hold and adds `actual_nano_usd` (negative counts as 0) to the spent of each of its
  // budgets in the window of `now`. Does not wait; queued if Redis cannot take it.
  virtual void Settle(SharedHold hold, int64_t actual_nano_usd, absl::Time now) = 0;

  // The budget's state in Redis (expired holds dropped first). UNAVAILABLE as Reserve.
  virtual absl::StatusOr<SharedBudgetUsage> Usage(const BudgetSpec& budget, absl::Time now) = 0;

  // Sends the queued settles again if Redis is up. Does not wait.
  virtual void FlushQueued() = 0;

  virtual SharedBudgetsStats Stats() const = 0;
};

// REQUIRES: client != nullptr, and it outlives the result and its holds.
std::unique_ptr<SharedBudgets> NewSharedBudgets(RedisClient* client, SharedBudgetsOptions options);

}  // namespace tollgate
