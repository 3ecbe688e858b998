// Spend budgets: what a tenant or an API key may spend per UTC day, per UTC month, or in total.
//
//   BudgetMetrics budget_metrics(registry);  // once
//   auto book = BudgetBook::Build(specs, {.metrics = &budget_metrics}, previous_book.get());
//   absl::StatusOr<Reservation> held = (*book)->Reserve(tenant, key_sha256, worst_case, now);
//   if (!held.ok()) return held.status();  // RESOURCE_EXHAUSTED, naming the budget
//   ...                                    // call the backend
//   (*book)->Settle(*std::move(held), actual_cost, absl::Now());
//
// A request reserves its worst-case cost on every budget that applies to it (its tenant's and its
// API key's) before the backend call, and settles to the actual cost after it. A reservation is
// refused when it would take any of them past its hard limit, so concurrent requests overspend a
// budget only by what their actual costs exceed their reservations (a backend ignoring
// max_tokens). Amounts are integer nano-USD throughout.
//
// Windows are UTC calendar days or months, or a running total that never rolls over. Spend counts
// in the window it is settled in: a reservation taken before midnight and settled after it charges
// the new day. A Reserve or Settle time earlier than the current window (a clock read just before
// another thread rolled the window) counts in the current window; replay (AddSpent) drops it.
//
// One book per config generation. A book built with `previous` adopts the running state (spent,
// reserved, window, soft-limit flag) of every budget whose name, owner and window are unchanged, so
// a reload keeps what was spent and what requests in flight hold; both books then share that state.
// A changed limit applies at once; a changed soft threshold is judged afresh at the next settle.
//
// Thread safety: BudgetBook is safe to use from any thread. A Reservation belongs to one request
// and is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tollgate {

class BudgetMetrics;
namespace budget_internal {
struct Account;
class SpendTracker;
using AccountList = std::vector<Account*>;
}  // namespace budget_internal

enum class BudgetWindow { kDaily, kMonthly, kTotal };

// "daily", "monthly", "total": the `window` label and the word in messages.
std::string_view BudgetWindowName(BudgetWindow window);

struct BudgetSpec {
  std::string name;            // unique within a book
  std::string tenant;          // owner: a tenant, or
  std::string api_key_sha256;  // an API key by its lower-case hex SHA-256 (exactly one is set)
  BudgetWindow window = BudgetWindow::kDaily;
  int64_t limit_nano_usd = 0;  // hard limit: a reservation past it is refused
  int64_t soft_nano_usd = 0;   // soft threshold (0: none), at most the limit
  std::string key_tenant;      // API-key budgets only: the key's tenant, for the `tenant` label
};

// [start, end) of the window of kind `window` that holds `t`: a UTC day or month;
// [InfinitePast, InfiniteFuture) for a running total.
std::pair<absl::Time, absl::Time> BudgetWindowAt(BudgetWindow window, absl::Time t);

// "tenant acme" or "api key sha256 0123456789ab...": the owner of `spec`, as messages name it.
std::string BudgetOwner(const BudgetSpec& spec);

// RESOURCE_EXHAUSTED: a reservation of `request_nano_usd` refused because `spec` stood at `spent`
// + `reserved` of `limit`. One wording for the local book and the shared (Redis) budgets:
//   budget "acme-daily" (tenant acme, daily) is exhausted: spent $9.980000000 + reserved
//   $0.010000000 of $10.000000000; this request may cost up to $0.050000000
absl::Status BudgetExhaustedError(const BudgetSpec& spec, int64_t spent_nano_usd,
                                  int64_t reserved_nano_usd, int64_t limit_nano_usd,
                                  int64_t request_nano_usd);

// Reported the first time in a window that settled spend reaches a budget's soft threshold.
struct SoftLimitCrossing {
  std::string_view budget;
  std::string_view owner;  // "tenant acme" or "api key sha256 0123456789ab..."
  BudgetWindow window;
  absl::Time window_start;
  int64_t spent_nano_usd;
  int64_t soft_nano_usd;
  int64_t limit_nano_usd;
};

struct BudgetBookOptions {
  // Optional. Must outlive the book, books built from it, and their reservations.
  BudgetMetrics* metrics = nullptr;
  // Called outside the book's lock. Empty: one Log line per crossing.
  std::function<void(const SoftLimitCrossing&)> on_soft_limit = nullptr;
};

// One budget's state as of a time.
struct BudgetUsage {
  int64_t spent_nano_usd = 0;     // settled in the current window
  int64_t reserved_nano_usd = 0;  // held by unsettled reservations
  int64_t limit_nano_usd = 0;
  int64_t soft_nano_usd = 0;
  bool soft_limit_crossed = false;
  absl::Time window_start;  // InfinitePast for a running total
  absl::Time window_end;    // exclusive; InfiniteFuture for a running total
};

class BudgetBook;

// A worst-case cost held on the budgets of one request. Move-only: BudgetBook::Settle takes it by
// value, so it is settled at most once. One destroyed unsettled releases its hold (RAII: a request
// that fails before the backend charges nothing). A default-constructed or moved-from reservation
// holds nothing.
class Reservation {
 public:
  Reservation() = default;
  Reservation(Reservation&& other) noexcept = default;
  Reservation& operator=(Reservation&& other) noexcept;
  ~Reservation();

  int64_t nano_usd() const { return book_ != nullptr ? nano_usd_ : 0; }

 private:
  friend class BudgetBook;
  void Release();

  std::shared_ptr<const BudgetBook> book_;  // keeps the budgets alive across a reload
  const budget_internal::AccountList* tenant_accounts_ = nullptr;
  const budget_internal::AccountList* key_accounts_ = nullptr;
  int64_t nano_usd_ = 0;
};

class BudgetBook : public std::enable_shared_from_this<BudgetBook> {
 public:
  // INVALID_ARGUMENT naming the budget for a spec that is not well formed: empty or repeated
  // name, not exactly one owner, a key that is not 64 lower-case hex digits, a negative limit, a
  // soft threshold outside [0, limit]. REQUIRES: books are built one at a time from the newest.
  static absl::StatusOr<std::shared_ptr<BudgetBook>> Build(std::vector<BudgetSpec> specs,
                                                           BudgetBookOptions options,
                                                           const BudgetBook* previous);

  // Holds `worst_case_nano_usd` on every budget of `tenant` and of `key_sha256` (lower-case hex;
  // empty: none), or on none of them: RESOURCE_EXHAUSTED naming the first budget it would take
  // past its limit. INVALID_ARGUMENT for a negative amount. Requests no budget applies to get an
  // empty reservation without taking the lock.
  absl::StatusOr<Reservation> Reserve(std::string_view tenant, std::string_view key_sha256,
                                      int64_t worst_case_nano_usd, absl::Time now);

  // Releases the hold and charges `actual_nano_usd` (negative counts as 0) to the budgets the
  // reservation was taken on, even when it came from an earlier book. May fire soft thresholds.
  void Settle(Reservation reservation, int64_t actual_nano_usd, absl::Time now);

  // Replays past spend (the usage ledger at start-up), in any order: each budget counts only what
  // falls in its newest window seen. A soft threshold crossed by replay is flagged (metric) but
  // not reported again.
  void AddSpent(std::string_view tenant, std::string_view key_sha256, int64_t nano_usd,
                absl::Time when);

  // Rolls every window up to `now`, so that the gauges of idle budgets drop at midnight. Call it
  // periodically (e.g. every minute); the request path rolls the budgets it touches by itself.
  void RollWindows(absl::Time now);

  // nullopt for a name the book does not have.
  std::optional<BudgetUsage> Usage(std::string_view name, absl::Time now) const;

  // The specs of the budgets Reserve(tenant, key_sha256, ...) holds on, in the same order (the
  // tenant's in spec order, then the key's): what the shared budgets reserve on as well. The
  // pointers live as long as the book. No lock: the book's specs do not change after Build.
  std::vector<const BudgetSpec*> SpecsFor(std::string_view tenant,
                                          std::string_view key_sha256) const;

 private:
  friend class Reservation;
  BudgetBook() = default;

  BudgetBookOptions options_;
  std::vector<BudgetSpec> specs_;                           // as built, parallel to accounts_
  std::shared_ptr<budget_internal::SpendTracker> tracker_;  // shared by every book of a lineage
  std::vector<std::shared_ptr<budget_internal::Account>> accounts_;  // in spec order
  absl::flat_hash_map<std::string, size_t> by_name_;
  // Immutable once built, so a Reservation may point at the lists.
  absl::flat_hash_map<std::string, budget_internal::AccountList> by_tenant_;
  absl::flat_hash_map<std::string, budget_internal::AccountList> by_key_;
};

}  // namespace tollgate
