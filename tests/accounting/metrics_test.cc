#include "accounting/metrics.h"

#include <sstream>

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace tollgate {
namespace {

std::string Scrape(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

double CounterValue(prometheus::Registry& registry, const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> got;
      for (const auto& l : metric.label) got[l.name] = l.value;
      if (got == labels) return metric.counter.value;
    }
  }
  return -1;
}

TEST(ProxyMetrics, CreatesEverySeriesWhenTheTableIsBuilt) {
  prometheus::Registry registry;
  ProxyMetrics metrics(registry);
  metrics.BuildTable({"acme", "globex"}, {"gpt-4o"});
  // 3 tenants (with other) × 2 models (with other) × 17 codes.
  for (const auto& family : registry.Collect()) {
    if (family.name == "tollgate_requests_total") {
      EXPECT_EQ(family.metric.size(), 3u * 2u * 17u);
    }
  }
  EXPECT_EQ(
      CounterValue(registry, "tollgate_cost_usd_total", {{"model", "other"}, {"tenant", "other"}}),
      0);
}

TEST(ProxyMetrics, RecordsUsageAndCostOnTheRequestsSeries) {
  prometheus::Registry registry;
  ProxyMetrics metrics(registry);
  auto table = metrics.BuildTable({"acme"}, {"gpt-4o"});
  RequestOutcome outcome;
  outcome.usage.set_input_tokens(100);
  outcome.usage.set_cached_input_tokens(40);
  outcome.usage.set_output_tokens(50);
  outcome.usage.set_reasoning_tokens(10);
  outcome.cost_nano_usd = 1'234'000;
  table->Record(table->TenantIndex("acme"), table->ModelIndex("gpt-4o"), outcome);

  const std::map<std::string, std::string> cell = {{"model", "gpt-4o"}, {"tenant", "acme"}};
  auto with = [&](const char* k, const char* v) {
    auto labels = cell;
    labels[k] = v;
    return labels;
  };
  EXPECT_EQ(CounterValue(registry, "tollgate_requests_total", with("status", "ok")), 1);
  EXPECT_EQ(CounterValue(registry, "tollgate_tokens_total", with("type", "input")), 60);
  EXPECT_EQ(CounterValue(registry, "tollgate_tokens_total", with("type", "cached_input")), 40);
  EXPECT_EQ(CounterValue(registry, "tollgate_tokens_total", with("type", "output")), 40);
  EXPECT_EQ(CounterValue(registry, "tollgate_tokens_total", with("type", "reasoning")), 10);
  EXPECT_DOUBLE_EQ(CounterValue(registry, "tollgate_cost_usd_total", cell), 0.001234);
}

TEST(ProxyMetrics, MapsUnknownTenantsAndModelsToOther) {
  prometheus::Registry registry;
  ProxyMetrics metrics(registry);
  auto table = metrics.BuildTable({"acme"}, {"gpt-4o"});
  RequestOutcome outcome;
  outcome.code = absl::StatusCode::kUnauthenticated;
  table->Record(table->TenantIndex("mallory"), table->ModelIndex("made-up-model"), outcome);
  EXPECT_EQ(CounterValue(registry, "tollgate_requests_total",
                         {{"model", "other"}, {"tenant", "other"}, {"status", "unauthenticated"}}),
            1);
  EXPECT_EQ(Scrape(registry).find("mallory"), std::string::npos);
}

TEST(ProxyMetrics, RebuildingForANewConfigKeepsExistingCounts) {
  prometheus::Registry registry;
  ProxyMetrics metrics(registry);
  auto first = metrics.BuildTable({"acme"}, {"gpt-4o"});
  RequestOutcome outcome;
  first->Record(first->TenantIndex("acme"), first->ModelIndex("gpt-4o"), outcome);
  auto second = metrics.BuildTable({"acme", "globex"}, {"gpt-4o"});
  second->Record(second->TenantIndex("acme"), second->ModelIndex("gpt-4o"), outcome);
  EXPECT_EQ(CounterValue(registry, "tollgate_requests_total",
                         {{"model", "gpt-4o"}, {"tenant", "acme"}, {"status", "ok"}}),
            2);
}

TEST(StatusLabel, NamesEveryGrpcCode) {
  EXPECT_EQ(StatusLabel(absl::StatusCode::kOk), "ok");
  EXPECT_EQ(StatusLabel(absl::StatusCode::kResourceExhausted), "resource_exhausted");
  EXPECT_EQ(StatusLabel(absl::StatusCode::kUnauthenticated), "unauthenticated");
  EXPECT_EQ(StatusLabel(static_cast<absl::StatusCode>(99)), "unknown");
}

}  // namespace
}  // namespace tollgate
