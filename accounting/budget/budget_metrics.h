// The Prometheus series of spend budgets, declared in one place.
//
//   BudgetMetrics budget_metrics(registry);                     // once, at start-up
//   BudgetBook::Build(specs, {.metrics = &budget_metrics}, previous);  // on each config load
//
// Each budget gets one series per family, labelled budget (its name), tenant (the owning tenant;
// for an API-key budget the key's tenant, or "other" when the spec names none) and window. Budgets
// come only from config, so cardinality is bounded by it; the series of a budget that a reload
// drops are removed.
//
//   tollgate_budget_spent_usd           gauge    settled spend in the current window
//   tollgate_budget_reserved_usd        gauge    worst-case cost held by requests in flight
//   tollgate_budget_limit_usd           gauge    the hard limit
//   tollgate_budget_soft_limit_usd      gauge    the soft threshold (0: none)
//   tollgate_budget_soft_limit_crossed  gauge    1 once the current window's spend reached the
//                                                soft threshold, else 0
//   tollgate_budget_rejections_total    counter  requests refused because this budget was full
//
// Thread safety: safe from any thread. The registry must outlive it.
#pragma once

#include <string>

#include "accounting/budget/budget.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace tollgate {

// One budget's series. All null when a book has no metrics.
struct BudgetSeries {
  prometheus::Gauge* spent_usd = nullptr;
  prometheus::Gauge* reserved_usd = nullptr;
  prometheus::Gauge* limit_usd = nullptr;
  prometheus::Gauge* soft_limit_usd = nullptr;
  prometheus::Gauge* soft_limit_crossed = nullptr;
  prometheus::Counter* rejections = nullptr;
};

class BudgetMetrics {
 public:
  explicit BudgetMetrics(prometheus::Registry& registry);

  // Creates (or finds, when the labels are unchanged) the series of `spec`. Used by BudgetBook.
  BudgetSeries Add(const BudgetSpec& spec);
  void Remove(const BudgetSeries& series);

 private:
  prometheus::Family<prometheus::Gauge>& spent_;
  prometheus::Family<prometheus::Gauge>& reserved_;
  prometheus::Family<prometheus::Gauge>& limit_;
  prometheus::Family<prometheus::Gauge>& soft_limit_;
  prometheus::Family<prometheus::Gauge>& soft_limit_crossed_;
  prometheus::Family<prometheus::Counter>& rejections_;
};

}  // namespace tollgate
