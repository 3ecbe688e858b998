// Many requests against one budget at once. Each test's bounds hold for every interleaving, so
// they neither depend on timing nor flake on a loaded machine.
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "accounting/budget/budget.h"
#include "gtest/gtest.h"
#include "tests/accounting/budget/budget_test_util.h"

namespace tollgate::budget_test {
namespace {

constexpr int kThreads = 200;
constexpr int64_t kLimit = 10 * kDollar;
constexpr int64_t kWorstCase = kDollar;  // a tenth of the limit
const absl::Time kNow = Utc(2025, 6, 1, 12);
constexpr char kRefusal[] = "budget \"acme-daily\" (tenant acme, daily) is exhausted";

// Runs body(i) on kThreads threads released together.
template <typename Body>
void RunTogether(Body body) {
  absl::Notification go;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&go, &body, i] {
      go.WaitForNotification();
      body(i);
    });
  }
  go.Notify();
  for (std::thread& t : threads) t.join();
}

bool IsRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted &&
         std::string(status.message()).find(kRefusal) == 0;
}

TEST(BudgetBookConcurrency, SettledSpendStaysWithinTheLimitPlusTheActualsOverrun) {
  auto book = MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, kLimit)});
  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  std::atomic<int> wrong_status{0};
  std::atomic<int64_t> settled{0};
  std::atomic<int64_t> overrun{0};  // sum of actual - reservation where positive

  RunTogether([&](int i) {
    absl::StatusOr<Reservation> held = book->Reserve("acme", "", kWorstCase, kNow);
    if (!held.ok()) {
      (IsRefusal(held.status()) ? refused : wrong_status).fetch_add(1);
      return;
    }
    accepted.fetch_add(1);
    // Within 2000 nano-USD of the reservation, either way.
    const int64_t actual = kWorstCase + int64_t{i % 5 - 2} * 1000;
    settled.fetch_add(actual);
    overrun.fetch_add(std::max<int64_t>(actual - kWorstCase, 0));
    book->Settle(*std::move(held), actual, kNow);
  });

  EXPECT_EQ(wrong_status.load(), 0);
  EXPECT_EQ(accepted.load() + refused.load(), kThreads);
  // A refusal means the accepted ones (each at most $1 + 2000 nano) hold more than $9: at least 9.
  EXPECT_GE(accepted.load(), 9);
  EXPECT_LE(accepted.load(), 10);

  const BudgetUsage usage = *book->Usage("acme-daily", kNow);
  EXPECT_EQ(usage.reserved_nano_usd, 0);
  EXPECT_EQ(usage.spent_nano_usd, settled.load());
  EXPECT_LE(usage.spent_nano_usd, kLimit + overrun.load());
  EXPECT_LE(usage.spent_nano_usd, kLimit + kWorstCase);  // the bound: one reservation
}

TEST(BudgetBookConcurrency, HeldReservationsNeverExceedTheLimit) {
  auto book = MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, kLimit)});
  std::vector<Reservation> held(kThreads);
  std::atomic<int> refused{0};

  RunTogether([&](int i) {
    absl::StatusOr<Reservation> r = book->Reserve("acme", "", kWorstCase, kNow);
    if (r.ok()) {
      held[i] = *std::move(r);
    } else if (IsRefusal(r.status())) {
      refused.fetch_add(1);
    }
  });

  // Nothing settles, so exactly ten reservations of a tenth fit, whatever the interleaving.
  EXPECT_EQ(refused.load(), kThreads - 10);
  EXPECT_EQ(book->Usage("acme-daily", kNow)->reserved_nano_usd, kLimit);
  held.clear();
  EXPECT_EQ(book->Usage("acme-daily", kNow)->reserved_nano_usd, 0);
}

}  // namespace
}  // namespace tollgate::budget_test
