#include "accounting/budget/budget.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/accounting/budget/budget_test_util.h"

namespace tollgate::budget_test {
namespace {

using ::testing::HasSubstr;

const absl::Time kNoon = Utc(2025, 3, 14, 12);

int64_t Spent(const BudgetBook& book, const std::string& name, absl::Time now = kNoon) {
  return book.Usage(name, now).value().spent_nano_usd;
}

int64_t Reserved(const BudgetBook& book, const std::string& name, absl::Time now = kNoon) {
  return book.Usage(name, now).value().reserved_nano_usd;
}

TEST(BudgetBook, ReservesAndSettlesExactlyToTheNanoDollar) {
  auto book = MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar)});

  auto first = book->Reserve("acme", "", 1'234'567'891, kNoon);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->nano_usd(), 1'234'567'891);
  EXPECT_EQ(Reserved(*book, "acme-daily"), 1'234'567'891);
  EXPECT_EQ(Spent(*book, "acme-daily"), 0);

  book->Settle(*std::move(first), 1'234'567'890, kNoon);
  EXPECT_EQ(Reserved(*book, "acme-daily"), 0);
  EXPECT_EQ(Spent(*book, "acme-daily"), 1'234'567'890);

  // Exactly the rest of the limit fits; one nano-dollar more does not.
  const int64_t rest = 10 * kDollar - 1'234'567'890;
  EXPECT_EQ(book->Reserve("acme", "", rest + 1, kNoon).status().code(),
            absl::StatusCode::kResourceExhausted);
  auto all = book->Reserve("acme", "", rest, kNoon);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(book->Reserve("acme", "", 1, kNoon).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(book->Reserve("acme", "", 0, kNoon).ok());

  // The actual cost may exceed the reservation (a backend ignoring max_tokens).
  book->Settle(*std::move(all), rest + 7, kNoon);
  EXPECT_EQ(Spent(*book, "acme-daily"), 10 * kDollar + 7);
  EXPECT_EQ(book->Reserve("acme", "", 0, kNoon).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(BudgetBook, RefusalNamesTheBudgetItsWindowLimitAndSpend) {
  auto book = MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar),
                         KeyBudget("ci-key", kKey, BudgetWindow::kTotal, kDollar)});
  book->AddSpent("acme", "", 9'980'000'000, kNoon);
  auto held = book->Reserve("acme", "", 20'000'000, kNoon);
  ASSERT_TRUE(held.ok());

  const absl::Status refused = book->Reserve("acme", "", 10'000'000, kNoon).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(),
            "budget \"acme-daily\" (tenant acme, daily) is exhausted: spent $9.980000000 + "
            "reserved $0.020000000 of $10.000000000; this request may cost up to $0.010000000");

  const absl::Status by_key = book->Reserve("", kKey, 2 * kDollar, kNoon).status();
  EXPECT_EQ(by_key.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(by_key.message()),
              HasSubstr("budget \"ci-key\" (api key sha256 aaaaaaaaaaaa..., total) is exhausted: "
                        "spent $0.000000000 + reserved $0.000000000 of $1.000000000"));
}

TEST(BudgetBook, DroppedReservationsReleaseTheirHoldOnce) {
  auto book = MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar)});
  {
    auto held = book->Reserve("acme", "", 3 * kDollar, kNoon);
    ASSERT_TRUE(held.ok());
    Reservation moved = *std::move(held);
    EXPECT_EQ(held->nano_usd(), 0);  // NOLINT(bugprone-use-after-move): moved-from holds nothing
    EXPECT_EQ(Reserved(*book, "acme-daily"), 3 * kDollar);

    // Assigning over a held reservation releases the one it held.
    moved = *book->Reserve("acme", "", 2 * kDollar, kNoon);
    EXPECT_EQ(Reserved(*book, "acme-daily"), 2 * kDollar);

    // Settling an empty reservation changes nothing.
    book->Settle(Reservation(), 5 * kDollar, kNoon);
    EXPECT_EQ(Spent(*book, "acme-daily"), 0);
  }
  EXPECT_EQ(Reserved(*book, "acme-daily"), 0);
  EXPECT_EQ(Spent(*book, "acme-daily"), 0);
}

TEST(BudgetBook, RequestsNoBudgetAppliesToAreNotLimited) {
  auto book = MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, kDollar),
                         KeyBudget("ci-key", kKey, BudgetWindow::kDaily, kDollar)});
  auto held = book->Reserve("globex", kOtherKey, 1000 * kDollar, kNoon);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->nano_usd(), 0);
  EXPECT_EQ(book->Reserve("acme", "", -1, kNoon).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BudgetBook, TenantAndKeyBudgetsBothApplyAndTheTighterOneRefuses) {
  auto book = MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar),
                         KeyBudget("ci-key", kKey, BudgetWindow::kDaily, kDollar, "acme")});
  auto first = book->Reserve("acme", kKey, 600'000'000, kNoon);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Reserved(*book, "acme-daily"), 600'000'000);
  EXPECT_EQ(Reserved(*book, "ci-key"), 600'000'000);

  // The key's budget is the tighter: it refuses, and the tenant's holds nothing extra.
  const absl::Status refused = book->Reserve("acme", kKey, 600'000'000, kNoon).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("budget \"ci-key\""));
  EXPECT_EQ(Reserved(*book, "acme-daily"), 600'000'000);

  // Another key of the same tenant is limited by the tenant's budget only.
  auto other_key = book->Reserve("acme", kOtherKey, 9 * kDollar, kNoon);
  ASSERT_TRUE(other_key.ok());
  const absl::Status by_tenant = book->Reserve("acme", kOtherKey, kDollar, kNoon).status();
  EXPECT_EQ(by_tenant.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(by_tenant.message()), HasSubstr("budget \"acme-daily\""));

  // Settling charges every budget the reservation was taken on.
  book->Settle(*std::move(first), 500'000'000, kNoon);
  EXPECT_EQ(Spent(*book, "acme-daily"), 500'000'000);
  EXPECT_EQ(Spent(*book, "ci-key"), 500'000'000);
  EXPECT_EQ(Reserved(*book, "ci-key"), 0);
}

TEST(BudgetBook, DailyWindowRollsOverAtUtcMidnight) {
  auto book = MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar)});
  const absl::Time last_second = Utc(2025, 3, 31, 23, 59, 59);
  const absl::Time midnight = Utc(2025, 4, 1);
  book->Settle(*book->Reserve("acme", "", 9 * kDollar, last_second), 9 * kDollar, last_second);
  EXPECT_FALSE(book->Reserve("acme", "", 2 * kDollar, last_second).ok());

  // Taken on the old day, settled on the new one: charged to the new day.
  auto straddling = book->Reserve("acme", "", 500'000'000, last_second);
  ASSERT_TRUE(straddling.ok());
  EXPECT_TRUE(book->Reserve("acme", "", 2 * kDollar, midnight).ok());
  book->Settle(*std::move(straddling), 400'000'000, midnight + absl::Seconds(10));

  const BudgetUsage usage = *book->Usage("acme-daily", midnight + absl::Seconds(20));
  EXPECT_EQ(usage.spent_nano_usd, 400'000'000);
  EXPECT_EQ(usage.reserved_nano_usd, 0);
  EXPECT_EQ(usage.window_start, midnight);
  EXPECT_EQ(usage.window_end, Utc(2025, 4, 2));

  // A clock read before the window opened counts in the current window.
  book->Settle(*book->Reserve("acme", "", kDollar, last_second), kDollar, last_second);
  EXPECT_EQ(Spent(*book, "acme-daily", midnight), 1'400'000'000);
}

TEST(BudgetBook, MonthlyWindowRollsOverAtTheMonthNotAtTheDay) {
  auto book =
      MustBuild({TenantBudget("acme-monthly", "acme", BudgetWindow::kMonthly, 10 * kDollar)});
  book->AddSpent("acme", "", 6 * kDollar, Utc(2024, 12, 15));
  book->Settle(*book->Reserve("acme", "", 3 * kDollar, Utc(2024, 12, 31, 23)), 3 * kDollar,
               Utc(2024, 12, 31, 23));
  EXPECT_EQ(Spent(*book, "acme-monthly", Utc(2024, 12, 31, 23, 59, 59)), 9 * kDollar);
  EXPECT_FALSE(book->Reserve("acme", "", 2 * kDollar, Utc(2024, 12, 31, 23, 59, 59)).ok());

  EXPECT_TRUE(book->Reserve("acme", "", 2 * kDollar, Utc(2025, 1, 1)).ok());
  const BudgetUsage usage = *book->Usage("acme-monthly", Utc(2025, 1, 1));
  EXPECT_EQ(usage.spent_nano_usd, 0);
  EXPECT_EQ(usage.window_start, Utc(2025, 1, 1));
  EXPECT_EQ(usage.window_end, Utc(2025, 2, 1));
}

TEST(BudgetBook, RunningTotalNeverRollsOver) {
  auto book = MustBuild({TenantBudget("acme-total", "acme", BudgetWindow::kTotal, 10 * kDollar)});
  book->Settle(*book->Reserve("acme", "", 6 * kDollar, Utc(2020, 1, 1)), 6 * kDollar,
               Utc(2020, 1, 1));
  EXPECT_FALSE(book->Reserve("acme", "", 5 * kDollar, Utc(2030, 6, 15)).ok());
  const BudgetUsage usage = *book->Usage("acme-total", Utc(2030, 6, 15));
  EXPECT_EQ(usage.spent_nano_usd, 6 * kDollar);
  EXPECT_EQ(usage.window_start, absl::InfinitePast());
  EXPECT_EQ(usage.window_end, absl::InfiniteFuture());
}

TEST(BudgetBook, ReplayCountsOnlyEachBudgetsCurrentWindow) {
  auto book = MustBuild({TenantBudget("daily", "acme", BudgetWindow::kDaily, 100 * kDollar),
                         TenantBudget("monthly", "acme", BudgetWindow::kMonthly, 100 * kDollar),
                         TenantBudget("total", "acme", BudgetWindow::kTotal, 100 * kDollar),
                         KeyBudget("key", kKey, BudgetWindow::kDaily, 100 * kDollar)});
  // Out of order, as a ledger of several files may be read.
  book->AddSpent("acme", kKey, 2 * kDollar, Utc(2025, 1, 30, 10));
  book->AddSpent("acme", kKey, 1 * kDollar, Utc(2025, 1, 31, 10));
  book->AddSpent("acme", "", 4 * kDollar, Utc(2024, 12, 31, 23));
  book->AddSpent("acme", kKey, 500'000'000, Utc(2025, 1, 31, 11));
  book->AddSpent("globex", kOtherKey, 50 * kDollar, Utc(2025, 1, 31, 11));  // no budget

  const absl::Time now = Utc(2025, 1, 31, 12);
  EXPECT_EQ(Spent(*book, "daily", now), 1'500'000'000);
  EXPECT_EQ(Spent(*book, "monthly", now), 3'500'000'000);
  EXPECT_EQ(Spent(*book, "total", now), 7'500'000'000);
  EXPECT_EQ(Spent(*book, "key", now), 1'500'000'000);
  // Replayed spend of a window that has since ended no longer counts.
  EXPECT_EQ(Spent(*book, "daily", Utc(2025, 2, 1, 9)), 0);
}

TEST(BudgetBook, SoftThresholdFiresOncePerWindow) {
  std::vector<SoftLimitCrossing> crossings;
  std::vector<std::string> names;
  BudgetBookOptions options;
  options.on_soft_limit = [&](const SoftLimitCrossing& c) {
    crossings.push_back(c);
    names.emplace_back(c.budget);
  };
  auto book = MustBuild(
      {TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar, 8 * kDollar)},
      options);
  const absl::Time day1 = Utc(2025, 5, 1, 9);
  const absl::Time day2 = Utc(2025, 5, 2, 9);

  book->Settle(*book->Reserve("acme", "", 5 * kDollar, day1), 5 * kDollar, day1);
  EXPECT_TRUE(crossings.empty());
  EXPECT_FALSE(book->Usage("acme-daily", day1)->soft_limit_crossed);
  book->Settle(*book->Reserve("acme", "", 3 * kDollar, day1), 3 * kDollar, day1);
  ASSERT_EQ(crossings.size(), 1u);
  EXPECT_EQ(names[0], "acme-daily");
  EXPECT_EQ(crossings[0].owner, "tenant acme");
  EXPECT_EQ(crossings[0].window, BudgetWindow::kDaily);
  EXPECT_EQ(crossings[0].window_start, Utc(2025, 5, 1));
  EXPECT_EQ(crossings[0].spent_nano_usd, 8 * kDollar);
  EXPECT_EQ(crossings[0].soft_nano_usd, 8 * kDollar);
  EXPECT_EQ(crossings[0].limit_nano_usd, 10 * kDollar);
  EXPECT_TRUE(book->Usage("acme-daily", day1)->soft_limit_crossed);

  book->Settle(*book->Reserve("acme", "", kDollar, day1), kDollar, day1);
  EXPECT_EQ(crossings.size(), 1u);

  EXPECT_FALSE(book->Usage("acme-daily", day2)->soft_limit_crossed);
  book->Settle(*book->Reserve("acme", "", 9 * kDollar, day2), 9 * kDollar, day2);
  ASSERT_EQ(crossings.size(), 2u);
  EXPECT_EQ(crossings[1].window_start, Utc(2025, 5, 2));

  // Replay flags the threshold without announcing it again.
  auto replayed = MustBuild(
      {TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar, 8 * kDollar)},
      options);
  replayed->AddSpent("acme", "", 9 * kDollar, day2);
  EXPECT_TRUE(replayed->Usage("acme-daily", day2)->soft_limit_crossed);
  EXPECT_EQ(crossings.size(), 2u);
}

TEST(BudgetBook, RebuildKeepsTheStateOfUnchangedBudgets) {
  auto old_book =
      MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar),
                 TenantBudget("acme-monthly", "acme", BudgetWindow::kMonthly, 90 * kDollar),
                 KeyBudget("ci-key", kKey, BudgetWindow::kDaily, 5 * kDollar)});
  old_book->Settle(*old_book->Reserve("acme", kKey, 3 * kDollar, kNoon), 3 * kDollar, kNoon);
  auto in_flight = old_book->Reserve("acme", kKey, 2 * kDollar, kNoon);
  auto abandoned = old_book->Reserve("acme", "", kDollar, kNoon);
  ASSERT_TRUE(in_flight.ok() && abandoned.ok());

  // Same name, owner and window (new limit): adopted. Window changed: a new budget. Key budget
  // dropped; one added.
  auto new_book =
      MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 20 * kDollar),
                 TenantBudget("acme-monthly", "acme", BudgetWindow::kTotal, 90 * kDollar),
                 TenantBudget("globex-daily", "globex", BudgetWindow::kDaily, kDollar)},
                {}, old_book.get());
  BudgetUsage daily = *new_book->Usage("acme-daily", kNoon);
  EXPECT_EQ(daily.spent_nano_usd, 3 * kDollar);
  EXPECT_EQ(daily.reserved_nano_usd, 3 * kDollar);
  EXPECT_EQ(daily.limit_nano_usd, 20 * kDollar);
  EXPECT_EQ(Spent(*new_book, "acme-monthly"), 0);
  EXPECT_FALSE(new_book->Usage("ci-key", kNoon).has_value());

  // Reservations of the old book settle and release into the shared state, after it is gone.
  old_book.reset();
  new_book->Settle(*std::move(in_flight), 1'500'000'000, kNoon);
  { Reservation dropped = *std::move(abandoned); }
  daily = *new_book->Usage("acme-daily", kNoon);
  EXPECT_EQ(daily.spent_nano_usd, 4'500'000'000);
  EXPECT_EQ(daily.reserved_nano_usd, 0);
  EXPECT_FALSE(new_book->Reserve("acme", "", 16 * kDollar, kNoon).ok());
  EXPECT_TRUE(new_book->Reserve("acme", "", 15'500'000'000, kNoon).ok());
}

TEST(BudgetBook, BuildRejectsMalformedSpecsNamingTheBudget) {
  const auto error = [](std::vector<BudgetSpec> specs) {
    return std::string(BudgetBook::Build(std::move(specs), {}, nullptr).status().message());
  };
  BudgetSpec both = TenantBudget("both", "acme", BudgetWindow::kDaily, kDollar);
  both.api_key_sha256 = kKey;
  EXPECT_THAT(error({both}), HasSubstr("budget \"both\": set exactly one of"));
  EXPECT_THAT(error({TenantBudget("none", "", BudgetWindow::kDaily, kDollar)}),
              HasSubstr("budget \"none\": set exactly one of"));
  EXPECT_THAT(error({KeyBudget("short", "abc", BudgetWindow::kDaily, kDollar)}),
              HasSubstr("budget \"short\": api_key_sha256 must be 64 lower-case hex digits"));
  EXPECT_THAT(error({KeyBudget("upper", std::string(64, 'A'), BudgetWindow::kDaily, kDollar)}),
              HasSubstr("budget \"upper\": api_key_sha256"));
  EXPECT_THAT(error({TenantBudget("neg", "acme", BudgetWindow::kDaily, -1)}),
              HasSubstr("budget \"neg\": the limit must not be negative"));
  EXPECT_THAT(error({TenantBudget("soft", "acme", BudgetWindow::kDaily, kDollar, 2 * kDollar)}),
              HasSubstr("budget \"soft\": the soft threshold"));
  EXPECT_THAT(error({TenantBudget("twice", "acme", BudgetWindow::kDaily, kDollar),
                     TenantBudget("twice", "globex", BudgetWindow::kDaily, kDollar)}),
              HasSubstr("budget \"twice\" is defined twice"));
  EXPECT_THAT(error({TenantBudget("", "acme", BudgetWindow::kDaily, kDollar)}),
              HasSubstr("a budget has no name"));
}

TEST(BudgetBook, SpecsForListsTheBudgetsAReservationHoldsOnInOrder) {
  auto book = MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar),
                         KeyBudget("ci-key", kKey, BudgetWindow::kTotal, kDollar),
                         TenantBudget("other-daily", "other", BudgetWindow::kDaily, kDollar),
                         TenantBudget("acme-monthly", "acme", BudgetWindow::kMonthly, kDollar)});
  const auto names = [&](std::string_view tenant, std::string_view key) {
    std::vector<std::string> names;
    for (const BudgetSpec* spec : book->SpecsFor(tenant, key)) names.push_back(spec->name);
    return names;
  };
  EXPECT_THAT(names("acme", kKey), ::testing::ElementsAre("acme-daily", "acme-monthly", "ci-key"));
  EXPECT_THAT(names("acme", ""), ::testing::ElementsAre("acme-daily", "acme-monthly"));
  EXPECT_THAT(names("", kKey), ::testing::ElementsAre("ci-key"));
  EXPECT_THAT(names("nobody", kOtherKey), ::testing::IsEmpty());
  const BudgetSpec* key_budget = book->SpecsFor("", kKey).front();
  EXPECT_EQ(key_budget->limit_nano_usd, kDollar);
  EXPECT_EQ(key_budget->window, BudgetWindow::kTotal);
  EXPECT_EQ(BudgetOwner(*key_budget), "api key sha256 aaaaaaaaaaaa...");
}

}  // namespace
}  // namespace tollgate::budget_test
