#include "accounting/budget/budget_metrics.h"

#include <map>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/accounting/budget/budget_test_util.h"

namespace tollgate::budget_test {
namespace {

using Labels = std::map<std::string, std::string>;

const absl::Time kNoon = Utc(2025, 7, 10, 12);
const Labels kAcme = {{"budget", "acme-daily"}, {"tenant", "acme"}, {"window", "daily"}};
const Labels kCiKey = {{"budget", "ci-key"}, {"tenant", "acme"}, {"window", "monthly"}};
const Labels kOrphanKey = {{"budget", "orphan-key"}, {"tenant", "other"}, {"window", "total"}};

// What a scrape reports for the series `name`{labels}; nullopt when there is no such series.
std::optional<double> Scraped(prometheus::Registry& registry, const std::string& name,
                              const Labels& labels) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& series : family.metric) {
      Labels got;
      for (const prometheus::ClientMetric::Label& label : series.label) {
        got[label.name] = label.value;
      }
      if (got != labels) continue;
      return family.type == prometheus::MetricType::Counter ? series.counter.value
                                                            : series.gauge.value;
    }
  }
  return std::nullopt;
}

TEST(BudgetMetrics, ExportsSpendLimitsRefusalsAndTheSoftFlagPerBudget) {
  prometheus::Registry registry;
  BudgetMetrics metrics(registry);
  auto book = MustBuild(
      {TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar, 8 * kDollar),
       KeyBudget("ci-key", kKey, BudgetWindow::kMonthly, 50 * kDollar, "acme"),
       KeyBudget("orphan-key", kOtherKey, BudgetWindow::kTotal, 5 * kDollar)},
      {.metrics = &metrics});
  EXPECT_EQ(Scraped(registry, "tollgate_budget_limit_usd", kAcme), 10);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_soft_limit_usd", kAcme), 8);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_spent_usd", kAcme), 0);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_soft_limit_crossed", kAcme), 0);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_rejections_total", kAcme), 0);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_limit_usd", kCiKey), 50);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_limit_usd", kOrphanKey), 5);

  auto held = book->Reserve("acme", kKey, 2 * kDollar, kNoon);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(Scraped(registry, "tollgate_budget_reserved_usd", kAcme), 2);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_reserved_usd", kCiKey), 2);

  book->Settle(*std::move(held), 8'500'000'000, kNoon);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_reserved_usd", kAcme), 0);
  EXPECT_DOUBLE_EQ(*Scraped(registry, "tollgate_budget_spent_usd", kAcme), 8.5);
  EXPECT_DOUBLE_EQ(*Scraped(registry, "tollgate_budget_spent_usd", kCiKey), 8.5);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_soft_limit_crossed", kAcme), 1);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_soft_limit_crossed", kCiKey), 0);  // no threshold

  EXPECT_FALSE(book->Reserve("acme", kKey, 2 * kDollar, kNoon).ok());
  EXPECT_EQ(Scraped(registry, "tollgate_budget_rejections_total", kAcme), 1);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_rejections_total", kCiKey), 0);

  // An idle daily budget's gauges drop at midnight; the monthly one keeps its spend.
  book->RollWindows(Utc(2025, 7, 11));
  EXPECT_EQ(Scraped(registry, "tollgate_budget_spent_usd", kAcme), 0);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_soft_limit_crossed", kAcme), 0);
  EXPECT_DOUBLE_EQ(*Scraped(registry, "tollgate_budget_spent_usd", kCiKey), 8.5);
}

TEST(BudgetMetrics, RebuildKeepsTheSeriesOfKeptBudgetsAndRemovesDroppedOnes) {
  prometheus::Registry registry;
  BudgetMetrics metrics(registry);
  auto old_book =
      MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 10 * kDollar),
                 KeyBudget("ci-key", kKey, BudgetWindow::kMonthly, 50 * kDollar, "acme"),
                 KeyBudget("orphan-key", kOtherKey, BudgetWindow::kTotal, 5 * kDollar)},
                {.metrics = &metrics});
  old_book->Settle(*old_book->Reserve("acme", kKey, 3 * kDollar, kNoon), 3 * kDollar, kNoon);
  EXPECT_FALSE(old_book->Reserve("acme", "", 8 * kDollar, kNoon).ok());
  auto in_flight = old_book->Reserve("", kOtherKey, kDollar, kNoon);
  ASSERT_TRUE(in_flight.ok());

  // acme-daily: new limit. ci-key: its tenant label moves to globex. orphan-key: dropped.
  auto new_book =
      MustBuild({TenantBudget("acme-daily", "acme", BudgetWindow::kDaily, 20 * kDollar),
                 KeyBudget("ci-key", kKey, BudgetWindow::kMonthly, 50 * kDollar, "globex")},
                {.metrics = &metrics}, old_book.get());
  EXPECT_EQ(Scraped(registry, "tollgate_budget_limit_usd", kAcme), 20);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_spent_usd", kAcme), 3);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_rejections_total", kAcme), 1);

  Labels moved = kCiKey;
  moved["tenant"] = "globex";
  EXPECT_EQ(Scraped(registry, "tollgate_budget_spent_usd", kCiKey), std::nullopt);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_spent_usd", moved), 3);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_limit_usd", kOrphanKey), std::nullopt);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_rejections_total", kOrphanKey), std::nullopt);

  // A dropped budget's reservation settles without touching a removed series.
  old_book.reset();
  new_book->Settle(*std::move(in_flight), kDollar, kNoon);
  EXPECT_EQ(Scraped(registry, "tollgate_budget_spent_usd", kOrphanKey), std::nullopt);
}

}  // namespace
}  // namespace tollgate::budget_test
