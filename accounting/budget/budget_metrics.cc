#include "accounting/budget/budget_metrics.h"

namespace tollgate {
namespace {

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

BudgetMetrics::BudgetMetrics(prometheus::Registry& registry)
    : spent_(GaugeFamily(registry, "tollgate_budget_spent_usd",
                         "Settled spend in USD in the budget's current window.")),
      reserved_(GaugeFamily(registry, "tollgate_budget_reserved_usd",
                            "Worst-case cost in USD held on the budget by requests in flight.")),
      limit_(GaugeFamily(registry, "tollgate_budget_limit_usd",
                         "The budget's hard limit in USD per window.")),
      soft_limit_(GaugeFamily(registry, "tollgate_budget_soft_limit_usd",
                              "The budget's soft threshold in USD per window (0: none).")),
      soft_limit_crossed_(GaugeFamily(registry, "tollgate_budget_soft_limit_crossed",
                                      "1 once the current window's settled spend reached the "
                                      "budget's soft threshold, else 0.")),
      rejections_(prometheus::BuildCounter()
                      .Name("tollgate_budget_rejections_total")
                      .Help("Requests refused because they would take the budget past its limit.")
                      .Register(registry)) {}

BudgetSeries BudgetMetrics::Add(const BudgetSpec& spec) {
  std::string tenant = spec.tenant;
  if (tenant.empty()) tenant = spec.key_tenant.empty() ? "other" : spec.key_tenant;
  const prometheus::Labels labels = {{"budget", spec.name},
                                     {"tenant", tenant},
                                     {"window", std::string(BudgetWindowName(spec.window))}};
  return {&spent_.Add(labels),      &reserved_.Add(labels),           &limit_.Add(labels),
          &soft_limit_.Add(labels), &soft_limit_crossed_.Add(labels), &rejections_.Add(labels)};
}

void BudgetMetrics::Remove(const BudgetSeries& series) {
  if (series.spent_usd == nullptr) return;
  spent_.Remove(series.spent_usd);
  reserved_.Remove(series.reserved_usd);
  limit_.Remove(series.limit_usd);
  soft_limit_.Remove(series.soft_limit_usd);
  soft_limit_crossed_.Remove(series.soft_limit_crossed);
  rejections_.Remove(series.rejections);
}

}  // namespace tollgate
