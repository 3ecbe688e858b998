// Budgets, keys and UTC times shared by the budget tests.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "accounting/budget/budget.h"
#include "gtest/gtest.h"

namespace tollgate::budget_test {

inline constexpr int64_t kDollar = 1'000'000'000;  // nano-USD
inline const std::string kKey(64, 'a');
inline const std::string kOtherKey(64, 'b');

inline absl::Time Utc(int year, int month, int day, int hour = 0, int minute = 0, int second = 0) {
  return absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                         absl::UTCTimeZone());
}

inline BudgetSpec TenantBudget(std::string name, std::string tenant, BudgetWindow window,
                               int64_t limit_nano_usd, int64_t soft_nano_usd = 0) {
  BudgetSpec spec;
  spec.name = std::move(name);
  spec.tenant = std::move(tenant);
  spec.window = window;
  spec.limit_nano_usd = limit_nano_usd;
  spec.soft_nano_usd = soft_nano_usd;
  return spec;
}

inline BudgetSpec KeyBudget(std::string name, std::string key_sha256, BudgetWindow window,
                            int64_t limit_nano_usd, std::string key_tenant = "") {
  BudgetSpec spec;
  spec.name = std::move(name);
  spec.api_key_sha256 = std::move(key_sha256);
  spec.window = window;
  spec.limit_nano_usd = limit_nano_usd;
  spec.key_tenant = std::move(key_tenant);
  return spec;
}

inline std::shared_ptr<BudgetBook> MustBuild(std::vector<BudgetSpec> specs,
                                             BudgetBookOptions options = {},
                                             const BudgetBook* previous = nullptr) {
  auto book = BudgetBook::Build(std::move(specs), std::move(options), previous);
  EXPECT_TRUE(book.ok()) << book.status();
  return book.ok() ? *std::move(book) : nullptr;
}

}  // namespace tollgate::budget_test
