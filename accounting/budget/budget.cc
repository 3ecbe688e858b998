#include "accounting/budget/budget.h"

#include <algorithm>
#include <array>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "accounting/budget/budget_metrics.h"
#include "accounting/pricing.h"
#include "proxy/common/log.h"
#include "proxy/common/status_macros.h"

namespace tollgate {
namespace budget_internal {

// One budget's running state, shared by the books that adopt it.
struct Account {
  explicit Account(const BudgetSpec& spec)
      : name(spec.name),
        tenant(spec.tenant),
        api_key_sha256(spec.api_key_sha256),
        window(spec.window),
        owner(BudgetOwner(spec)) {}

  // Identity: a rebuilt book adopts the account when all of it is unchanged.
  const std::string name;
  const std::string tenant;
  const std::string api_key_sha256;
  const BudgetWindow window;
  const std::string owner;  // for messages

  // The rest is guarded by the lineage's SpendTracker::mu_.
  int64_t limit_nano_usd = 0;
  int64_t soft_nano_usd = 0;
  int64_t spent_nano_usd = 0;
  int64_t reserved_nano_usd = 0;
  bool soft_crossed = false;
  absl::Time window_start = absl::InfinitePast();
  absl::Time window_end = absl::InfinitePast();  // exclusive; the first use opens a window
  BudgetSeries series;                           // emptied when a reload drops the budget
};

// A soft threshold flagged under the lock, reported after it.
struct Crossing {
  const Account* account;
  absl::Time window_start;
  int64_t spent_nano_usd;
  int64_t soft_nano_usd;
  int64_t limit_nano_usd;
};
using Crossings = absl::InlinedVector<Crossing, 1>;

// The budget that refused a reservation, as it stood.
struct Refusal {
  const Account* account = nullptr;
  int64_t spent_nano_usd = 0;
  int64_t reserved_nano_usd = 0;
  int64_t limit_nano_usd = 0;
};

namespace {

int64_t SaturatingAdd(int64_t a, int64_t b) {  // both >= 0
  return b > std::numeric_limits<int64_t>::max() - a ? std::numeric_limits<int64_t>::max() : a + b;
}

void SetUsd(prometheus::Gauge* gauge, int64_t nano_usd) {
  if (gauge != nullptr) gauge->Set(NanoUsdToUsd(nano_usd));
}

void SetFlag(prometheus::Gauge* gauge, bool on) {
  if (gauge != nullptr) gauge->Set(on ? 1 : 0);
}

template <typename Fn>
void ForEachAccount(const AccountList* tenant_accounts, const AccountList* key_accounts, Fn fn) {
  for (const AccountList* list : {tenant_accounts, key_accounts}) {
    if (list == nullptr) continue;
    for (Account* account : *list) fn(*account);
  }
}

}  // namespace

// The arithmetic on accounts, under one lock shared by every book of a lineage (so that a book and
// the one built from it see the same totals, and a reservation spanning budgets is atomic).
class SpendTracker {
 public:
  // Holds `nano_usd` on every account of both lists, or, filling `refusal`, on none.
  bool TryReserve(const AccountList* tenant_accounts, const AccountList* key_accounts,
                  int64_t nano_usd, absl::Time now, Refusal* refusal) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ForEachAccount(tenant_accounts, key_accounts, [&](Account& a) {
      Roll(a, now);
      if (refusal->account == nullptr &&
          static_cast<__int128>(a.spent_nano_usd) + a.reserved_nano_usd + nano_usd >
              a.limit_nano_usd) {
        *refusal = {&a, a.spent_nano_usd, a.reserved_nano_usd, a.limit_nano_usd};
      }
    });
    if (refusal->account != nullptr) {
      if (refusal->account->series.rejections != nullptr) {
        refusal->account->series.rejections->Increment();
      }
      return false;
    }
    ForEachAccount(tenant_accounts, key_accounts, [&](Account& a) {
      a.reserved_nano_usd += nano_usd;  // cannot overflow: the sum stays within the limit
      SetUsd(a.series.reserved_usd, a.reserved_nano_usd);
    });
    return true;
  }

  void Release(const AccountList* tenant_accounts, const AccountList* key_accounts,
               int64_t nano_usd) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ForEachAccount(tenant_accounts, key_accounts, [&](Account& a) { Unreserve(a, nano_usd); });
  }

  Crossings Settle(const AccountList* tenant_accounts, const AccountList* key_accounts,
                   int64_t reserved_nano_usd, int64_t actual_nano_usd, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_) {
    Crossings crossings;
    absl::MutexLock lock(&mu_);
    ForEachAccount(tenant_accounts, key_accounts, [&](Account& a) {
      Unreserve(a, reserved_nano_usd);
      Roll(a, now);
      Charge(a, actual_nano_usd, &crossings);
    });
    return crossings;
  }

  void AddSpent(const AccountList* tenant_accounts, const AccountList* key_accounts,
                int64_t nano_usd, absl::Time when) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ForEachAccount(tenant_accounts, key_accounts, [&](Account& a) {
      Roll(a, when);
      if (when >= a.window_start) Charge(a, nano_usd, nullptr);
    });
  }

  void RollAll(const std::vector<std::shared_ptr<Account>>& accounts, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    for (const auto& account : accounts) Roll(*account, now);
  }

  BudgetUsage Usage(Account& a, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    Roll(a, now);
    return {a.spent_nano_usd, a.reserved_nano_usd, a.limit_nano_usd, a.soft_nano_usd,
            a.soft_crossed,   a.window_start,      a.window_end};
  }

  // Gives the accounts of a new book their limits and series, and takes the series away from the
  // accounts it dropped. Returns the series no account has any more, to be removed.
  std::vector<BudgetSeries> Install(const std::vector<std::shared_ptr<Account>>& accounts,
                                    const std::vector<BudgetSpec>& specs,
                                    const std::vector<BudgetSeries>& series,
                                    const std::vector<Account*>& dropped) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::flat_hash_set<const prometheus::Gauge*> kept;
    for (const BudgetSeries& s : series) kept.insert(s.spent_usd);
    std::vector<BudgetSeries> unused;
    auto replace = [&](Account& a, const BudgetSeries& next) {
      if (a.series.spent_usd != nullptr && !kept.contains(a.series.spent_usd)) {
        unused.push_back(a.series);
      }
      a.series = next;
    };
    absl::MutexLock lock(&mu_);
    for (Account* a : dropped) replace(*a, BudgetSeries{});
    for (size_t i = 0; i < accounts.size(); ++i) {
      Account& a = *accounts[i];
      replace(a, series[i]);
      a.limit_nano_usd = specs[i].limit_nano_usd;
      if (a.soft_nano_usd != specs[i].soft_nano_usd) {  // judged afresh at the next settle
        a.soft_nano_usd = specs[i].soft_nano_usd;
        a.soft_crossed = false;
      }
      SetUsd(a.series.spent_usd, a.spent_nano_usd);
      SetUsd(a.series.reserved_usd, a.reserved_nano_usd);
      SetUsd(a.series.limit_usd, a.limit_nano_usd);
      SetUsd(a.series.soft_limit_usd, a.soft_nano_usd);
      SetFlag(a.series.soft_limit_crossed, a.soft_crossed);
    }
    return unused;
  }

 private:
  // Opens the window that holds `now` once the current one has ended; earlier times stay in it.
  void Roll(Account& a, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (now < a.window_end) return;
    std::tie(a.window_start, a.window_end) = BudgetWindowAt(a.window, now);
    a.spent_nano_usd = 0;
    a.soft_crossed = false;
    SetUsd(a.series.spent_usd, 0);
    SetFlag(a.series.soft_limit_crossed, false);
  }

  void Unreserve(Account& a, int64_t nano_usd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    a.reserved_nano_usd -= nano_usd;
    SetUsd(a.series.reserved_usd, a.reserved_nano_usd);
  }

  // Adds settled spend and flags the soft threshold the first time the window reaches it;
  // `crossings` (if any) collects the flags to report.
  void Charge(Account& a, int64_t nano_usd, Crossings* crossings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    a.spent_nano_usd = SaturatingAdd(a.spent_nano_usd, nano_usd);
    SetUsd(a.series.spent_usd, a.spent_nano_usd);
    if (a.soft_crossed || a.soft_nano_usd == 0 || a.spent_nano_usd < a.soft_nano_usd) return;
    a.soft_crossed = true;
    SetFlag(a.series.soft_limit_crossed, true);
    if (crossings != nullptr) {
      crossings->push_back(
          {&a, a.window_start, a.spent_nano_usd, a.soft_nano_usd, a.limit_nano_usd});
    }
  }

  absl::Mutex mu_;
};

}  // namespace budget_internal

namespace {

using budget_internal::Account;
using budget_internal::AccountList;
using budget_internal::Crossings;

// Exact dollars: 9980000000 → "$9.980000000".
std::string Usd(int64_t nano_usd) { return "$" + FormatNanoUsd(nano_usd); }

// Debian's Abseil has its own string_view.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// `budget "acme-daily" (tenant acme, daily)`
std::string Describe(std::string_view name, std::string_view owner, BudgetWindow window) {
  return absl::StrCat("budget \"", Absl(name), "\" (", Absl(owner), ", ",
                      Absl(BudgetWindowName(window)), ")");
}

void Report(const BudgetBookOptions& options, const Crossings& crossings) {
  for (const auto& c : crossings) {
    const SoftLimitCrossing crossing = {c.account->name, c.account->owner, c.account->window,
                                        c.window_start,  c.spent_nano_usd, c.soft_nano_usd,
                                        c.limit_nano_usd};
    if (options.on_soft_limit) {
      options.on_soft_limit(crossing);
    } else {
      Log(Describe(crossing.budget, crossing.owner, crossing.window),
          " crossed its soft threshold: spent ", Usd(crossing.spent_nano_usd), " of soft ",
          Usd(crossing.soft_nano_usd), " (limit ", Usd(crossing.limit_nano_usd), ")");
    }
  }
}

const AccountList* Find(const absl::flat_hash_map<std::string, AccountList>& index,
                        std::string_view owner) {
  if (owner.empty()) return nullptr;
  const auto it = index.find(Absl(owner));
  return it != index.end() ? &it->second : nullptr;
}

bool IsLowerHexSha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

absl::Status Validate(const BudgetSpec& spec) {
  if (spec.name.empty()) return absl::InvalidArgumentError("a budget has no name");
  const auto error = [&spec](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("budget \"", spec.name, "\": ", what));
  };
  if (spec.tenant.empty() == spec.api_key_sha256.empty()) {
    return error("set exactly one of tenant and api_key_sha256");
  }
  if (!spec.api_key_sha256.empty() && !IsLowerHexSha256(spec.api_key_sha256)) {
    return error("api_key_sha256 must be 64 lower-case hex digits");
  }
  if (!spec.tenant.empty() && !spec.key_tenant.empty()) {
    return error("key_tenant is only for API-key budgets");
  }
  if (BudgetWindowName(spec.window) == "unknown") return error("unknown window");
  if (spec.limit_nano_usd < 0) return error("the limit must not be negative");
  if (spec.soft_nano_usd < 0 || spec.soft_nano_usd > spec.limit_nano_usd) {
    return error("the soft threshold must lie between 0 and the limit");
  }
  return absl::OkStatus();
}

}  // namespace

std::pair<absl::Time, absl::Time> BudgetWindowAt(BudgetWindow window, absl::Time t) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  switch (window) {
    case BudgetWindow::kDaily: {
      const absl::CivilDay day = absl::ToCivilDay(t, utc);
      return {absl::FromCivil(day, utc), absl::FromCivil(day + 1, utc)};
    }
    case BudgetWindow::kMonthly: {
      const absl::CivilMonth month = absl::ToCivilMonth(t, utc);
      return {absl::FromCivil(month, utc), absl::FromCivil(month + 1, utc)};
    }
    case BudgetWindow::kTotal:
      break;
  }
  return {absl::InfinitePast(), absl::InfiniteFuture()};
}

std::string BudgetOwner(const BudgetSpec& spec) {
  return spec.tenant.empty()
             ? absl::StrCat("api key sha256 ", spec.api_key_sha256.substr(0, 12), "...")
             : absl::StrCat("tenant ", spec.tenant);
}

absl::Status BudgetExhaustedError(const BudgetSpec& spec, int64_t spent_nano_usd,
                                  int64_t reserved_nano_usd, int64_t limit_nano_usd,
                                  int64_t request_nano_usd) {
  return absl::ResourceExhaustedError(
      absl::StrCat(Describe(spec.name, BudgetOwner(spec), spec.window), " is exhausted: spent ",
                   Usd(spent_nano_usd), " + reserved ", Usd(reserved_nano_usd), " of ",
                   Usd(limit_nano_usd), "; this request may cost up to ", Usd(request_nano_usd)));
}

std::string_view BudgetWindowName(BudgetWindow window) {
  constexpr std::array<std::string_view, 3> kNames = {"daily", "monthly", "total"};
  const auto i = static_cast<size_t>(window);
  return i < kNames.size() ? kNames[i] : "unknown";
}

Reservation& Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Release();
    book_ = std::move(other.book_);
    tenant_accounts_ = other.tenant_accounts_;
    key_accounts_ = other.key_accounts_;
    nano_usd_ = other.nano_usd_;
  }
  return *this;
}

Reservation::~Reservation() { Release(); }

void Reservation::Release() {
  if (book_ == nullptr) return;
  book_->tracker_->Release(tenant_accounts_, key_accounts_, nano_usd_);
  book_.reset();
}

absl::StatusOr<std::shared_ptr<BudgetBook>> BudgetBook::Build(std::vector<BudgetSpec> specs,
                                                              BudgetBookOptions options,
                                                              const BudgetBook* previous) {
  std::shared_ptr<BudgetBook> book(new BudgetBook());
  for (size_t i = 0; i < specs.size(); ++i) {
    TG_RETURN_IF_ERROR(Validate(specs[i]));
    if (!book->by_name_.emplace(specs[i].name, i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("budget \"", specs[i].name, "\" is defined twice"));
    }
  }
  book->options_ = std::move(options);
  book->tracker_ =
      previous != nullptr ? previous->tracker_ : std::make_shared<budget_internal::SpendTracker>();

  std::vector<BudgetSeries> series;
  for (const BudgetSpec& spec : specs) {
    std::shared_ptr<Account> account;
    if (previous != nullptr) {
      const auto it = previous->by_name_.find(spec.name);
      if (it != previous->by_name_.end()) {
        const std::shared_ptr<Account>& old = previous->accounts_[it->second];
        if (old->tenant == spec.tenant && old->api_key_sha256 == spec.api_key_sha256 &&
            old->window == spec.window) {
          account = old;
        }
      }
    }
    if (account == nullptr) account = std::make_shared<Account>(spec);
    auto& index =
        spec.tenant.empty() ? book->by_key_[spec.api_key_sha256] : book->by_tenant_[spec.tenant];
    index.push_back(account.get());
    book->accounts_.push_back(std::move(account));
    series.push_back(book->options_.metrics != nullptr ? book->options_.metrics->Add(spec)
                                                       : BudgetSeries{});
  }

  std::vector<Account*> dropped;
  if (previous != nullptr) {
    for (const auto& old : previous->accounts_) {
      const auto it = book->by_name_.find(old->name);
      if (it == book->by_name_.end() || book->accounts_[it->second] != old) {
        dropped.push_back(old.get());
      }
    }
  }
  const std::vector<BudgetSeries> unused =
      book->tracker_->Install(book->accounts_, specs, series, dropped);
  if (previous != nullptr && previous->options_.metrics != nullptr) {
    for (const BudgetSeries& s : unused) previous->options_.metrics->Remove(s);
  }
  book->specs_ = std::move(specs);
  return book;
}

absl::StatusOr<Reservation> BudgetBook::Reserve(std::string_view tenant,
                                                std::string_view key_sha256,
                                                int64_t worst_case_nano_usd, absl::Time now) {
  if (worst_case_nano_usd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("negative worst-case cost: ", worst_case_nano_usd, " nano-USD"));
  }
  Reservation reservation;
  reservation.tenant_accounts_ = Find(by_tenant_, tenant);
  reservation.key_accounts_ = Find(by_key_, key_sha256);
  if (reservation.tenant_accounts_ == nullptr && reservation.key_accounts_ == nullptr) {
    return reservation;
  }
  budget_internal::Refusal refusal;
  if (!tracker_->TryReserve(reservation.tenant_accounts_, reservation.key_accounts_,
                            worst_case_nano_usd, now, &refusal)) {
    // The accounts of this book's lists are this book's, so the name is in by_name_.
    return BudgetExhaustedError(specs_[by_name_.at(refusal.account->name)], refusal.spent_nano_usd,
                                refusal.reserved_nano_usd, refusal.limit_nano_usd,
                                worst_case_nano_usd);
  }
  reservation.book_ = shared_from_this();
  reservation.nano_usd_ = worst_case_nano_usd;
  return reservation;
}

void BudgetBook::Settle(Reservation reservation, int64_t actual_nano_usd, absl::Time now) {
  if (reservation.book_ == nullptr) return;
  const std::shared_ptr<const BudgetBook> issuer = std::move(reservation.book_);
  const Crossings crossings =
      issuer->tracker_->Settle(reservation.tenant_accounts_, reservation.key_accounts_,
                               reservation.nano_usd_, std::max<int64_t>(actual_nano_usd, 0), now);
  Report(issuer->options_, crossings);
}

void BudgetBook::AddSpent(std::string_view tenant, std::string_view key_sha256, int64_t nano_usd,
                          absl::Time when) {
  tracker_->AddSpent(Find(by_tenant_, tenant), Find(by_key_, key_sha256),
                     std::max<int64_t>(nano_usd, 0), when);
}

void BudgetBook::RollWindows(absl::Time now) { tracker_->RollAll(accounts_, now); }

std::vector<const BudgetSpec*> BudgetBook::SpecsFor(std::string_view tenant,
                                                    std::string_view key_sha256) const {
  std::vector<const BudgetSpec*> specs;
  for (const AccountList* list : {Find(by_tenant_, tenant), Find(by_key_, key_sha256)}) {
    if (list == nullptr) continue;
    for (const Account* account : *list) specs.push_back(&specs_[by_name_.at(account->name)]);
  }
  return specs;
}

std::optional<BudgetUsage> BudgetBook::Usage(std::string_view name, absl::Time now) const {
  const auto it = by_name_.find(Absl(name));
  if (it == by_name_.end()) return std::nullopt;
  return tracker_->Usage(*accounts_[it->second], now);
}

}  // namespace tollgate
