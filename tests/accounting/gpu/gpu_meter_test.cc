#include "accounting/gpu/gpu_meter.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;

// 2 GPUs × $1.80/h = $3.60/h = 1 nano-USD per microsecond; 2 × 500 W = 1 kJ per second, and at
// $0.36/kWh one joule costs 100 nano-USD.
const GpuCostSpec kSimpleSpec{.gpu_type = "test",
                              .gpu_count = 2,
                              .usd_per_gpu_hour = 1.80,
                              .watts = 500,
                              .usd_per_kwh = 0.36};
constexpr int64_t kNanoUsdPerSecond = 1'000'000;

class FakeClock {
 public:
  void Advance(absl::Duration d) { now_ += d; }
  GpuClock AsClock() {
    return [this] { return now_; };
  }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

// A meter on a fake clock, driven by a script of events:
//   "+A 300"  request A is sent with 300 prompt tokens
//   "A 40"    A reports 40 output tokens so far
//   "-A"      A ends
//   "1.5s"    the clock moves on (any absl::ParseDuration string)
class Timeline {
 public:
  explicit Timeline(const GpuCostSpec& spec = kSimpleSpec, GpuMeterCounters counters = {}) {
    absl::StatusOr<std::unique_ptr<GpuMeter>> meter = NewGpuMeter(spec, clock_.AsClock(), counters);
    EXPECT_TRUE(meter.ok()) << meter.status();
    meter_ = *std::move(meter);
  }

  Timeline& Run(const std::vector<std::string>& events) {
    for (const std::string& event : events) {
      const std::vector<std::string> words = absl::StrSplit(event, ' ');
      absl::Duration wait;
      uint64_t tokens = 0;
      if (absl::ParseDuration(event, &wait)) {
        clock_.Advance(wait);
      } else if (words[0][0] == '+' && absl::SimpleAtoi(words.at(1), &tokens)) {
        in_flight_[words[0].substr(1)] = meter_->Begin(tokens);
      } else if (words[0][0] == '-') {
        const std::string name = words[0].substr(1);
        ended_[name] = meter_->End(in_flight_.at(name));
        in_flight_.erase(name);
      } else if (absl::SimpleAtoi(words.at(1), &tokens)) {
        meter_->Progress(in_flight_.at(words[0]), tokens);
      } else {
        ADD_FAILURE() << "bad event: " << event;
      }
    }
    return *this;
  }

  // Cost of each ended request, by name.
  std::map<std::string, int64_t> Costs() const {
    std::map<std::string, int64_t> costs;
    for (const auto& [name, share] : ended_) costs[name] = share.cost_nano_usd;
    return costs;
  }
  const GpuShare& Ended(const std::string& name) const { return ended_.at(name); }
  int64_t AccruedCost(const std::string& name) {
    return meter_->Accrued(in_flight_.at(name)).cost_nano_usd;
  }
  GpuMeter::RequestToken Token(const std::string& name) const { return in_flight_.at(name); }
  GpuMeter& meter() { return *meter_; }

 private:
  FakeClock clock_;
  std::unique_ptr<GpuMeter> meter_;
  std::map<std::string, GpuMeter::RequestToken> in_flight_;
  std::map<std::string, GpuShare> ended_;
};

using Costs = std::map<std::string, int64_t>;

TEST(GpuMeter, RequestAlonePaysForItsWholeSpan) {
  Timeline t;
  t.Run({"5s", "+A 100", "1s", "A 10", "2s", "A 50", "3s", "-A"});
  EXPECT_EQ(t.Ended("A").cost_nano_usd, 6 * kNanoUsdPerSecond);
  EXPECT_DOUBLE_EQ(t.Ended("A").gpu_seconds, 12.0);
  EXPECT_DOUBLE_EQ(t.Ended("A").energy_joules, 6000.0);
  EXPECT_EQ(t.Ended("A").energy_cost_nano_usd, 600'000);

  const GpuMeterTotals totals = t.meter().Snapshot();
  EXPECT_EQ(totals.wall_time, absl::Seconds(11));
  EXPECT_EQ(totals.wall_cost_nano_usd, 11 * kNanoUsdPerSecond);
  EXPECT_EQ(totals.idle_time, absl::Seconds(5));
  EXPECT_EQ(totals.idle_cost_nano_usd, 5 * kNanoUsdPerSecond);
  EXPECT_EQ(totals.requests_ended, 1u);
  EXPECT_EQ(totals.ended_cost_nano_usd, 6 * kNanoUsdPerSecond);
}

TEST(GpuMeter, GapsBetweenRequestsAreBookedAsIdle) {
  prometheus::Counter idle_usd;
  prometheus::Counter energy_joules;
  Timeline t(kSimpleSpec, {&idle_usd, &energy_joules});
  t.Run({"1s", "+A 10", "2s", "-A", "2s", "+B 10"});  // B's Begin books the 2 s gap
  EXPECT_NEAR(idle_usd.Value(), 3e-3, 1e-12);
  t.Run({"1.5s", "-B", "0.5s"});
  EXPECT_EQ(t.Costs(), (Costs{{"A", 2 * kNanoUsdPerSecond}, {"B", 1'500'000}}));

  const GpuMeterTotals totals = t.meter().Snapshot();  // books the last 0.5 s
  EXPECT_EQ(totals.idle_time, absl::Milliseconds(3500));
  EXPECT_EQ(totals.idle_cost_nano_usd, 3'500'000);
  EXPECT_DOUBLE_EQ(totals.idle_energy_joules, 3500.0);
  EXPECT_EQ(totals.idle_cost_nano_usd + totals.ended_cost_nano_usd, totals.wall_cost_nano_usd);
  EXPECT_NEAR(idle_usd.Value(), 3.5e-3, 1e-12);
  EXPECT_NEAR(energy_joules.Value(), 3500.0 + 3500.0, 1e-9);  // idle + both requests
}

TEST(GpuMeter, TwoEqualConcurrentRequestsSplitEvenlyWhateverTheChunkOrder) {
  Timeline t;
  t.Run({"+A 200", "+B 200"});
  // A's chunk always arrives 1 ms before B's: cutting time at chunks would charge A for nearly
  // every step.
  for (int step = 1; step <= 10; ++step) {
    const std::string output = absl::StrCat(5 * step);
    t.Run({"99ms", "A " + output, "1ms", "B " + output});
  }
  t.Run({"-A", "-B"});
  EXPECT_EQ(t.Costs(), (Costs{{"A", 500'000}, {"B", 500'000}}));
}

TEST(GpuMeter, ConcurrentUnaryCallsSplitEvenly) {
  Timeline t;
  // Neither reports work before its end: B holds the GPUs as long as A does.
  t.Run({"+A 300", "+B 300", "10s", "A 40", "-A", "B 40", "-B"});
  EXPECT_EQ(t.Costs(), (Costs{{"A", 5 * kNanoUsdPerSecond}, {"B", 5 * kNanoUsdPerSecond}}));
}

TEST(GpuMeter, PrefillAndDecodeWeightsShiftTheSplit) {
  const std::vector<std::string> events = {"+A 1000", "+B 200", "1s", "A 100",
                                           "B 100",   "1s",     "-A", "-B"};
  // Work A = 1000 + 100 = 1100, B = 200 + 100 = 300: 2 s × 11/14 and × 3/14.
  EXPECT_EQ(Timeline().Run(events).Costs(), (Costs{{"A", 1'571'429}, {"B", 428'571}}));
  // Work A = 1000 × 0.5 + 100 × 2 = 700, B = 200 × 0.5 + 100 × 2 = 300.
  GpuCostSpec spec = kSimpleSpec;
  spec.prefill_weight = 0.5;
  spec.decode_weight = 2;
  EXPECT_EQ(Timeline(spec).Run(events).Costs(), (Costs{{"A", 1'400'000}, {"B", 600'000}}));
}

TEST(GpuMeter, RequestThatReportsNoWorkInAPeriodPaysAnEvenShareOfIt) {
  Timeline t;
  // C is still in prefill: it pays 3 s / 3 in flight; A and B split the other 2 s 30:10.
  t.Run({"+A 0", "+B 0", "+C 5000", "3s", "A 30", "B 10"});
  EXPECT_EQ(t.AccruedCost("C"), 1 * kNanoUsdPerSecond);
  t.Run({"-A", "-B", "-C"});
  EXPECT_EQ(t.Costs(), (Costs{{"A", 1'500'000}, {"B", 500'000}, {"C", kNanoUsdPerSecond}}));
}

TEST(GpuMeter, PeriodWithoutWorkIsSplitEvenly) {
  Timeline t;
  t.Run({"+A 100", "+B 900", "2s", "+C 0"});  // C's Begin cuts a period nobody reported work in
  EXPECT_EQ(t.AccruedCost("A"), 1 * kNanoUsdPerSecond);
  EXPECT_EQ(t.AccruedCost("B"), 1 * kNanoUsdPerSecond);
  EXPECT_EQ(t.AccruedCost("C"), 0);
}

TEST(GpuMeter, PromptCountsAsWorkInThePeriodOfTheFirstProgress) {
  Timeline t;
  // Period 1: B, with no output yet, holds half of it.
  t.Run({"+A 0", "+B 900", "1s", "A 10", "+C 0"});
  EXPECT_EQ(t.AccruedCost("A"), 500'000);
  EXPECT_EQ(t.AccruedCost("B"), 500'000);
  // Period 2: B's prefill is done and its 900 prompt tokens count as work. C holds 1/3 s; A and B
  // split the other 2/3 s 10:900.
  t.Run({"1s", "A 20", "B 0", "-A", "-B", "-C"});
  EXPECT_EQ(t.Costs(), (Costs{{"A", 507'326},  // 500000 + 666666.67 × 10/910
                              {"B", 1'159'341},
                              {"C", 333'333}}));
}

TEST(GpuMeter, EnergyIsAttributedLikeCostAndPricedSeparately) {
  Timeline t;
  t.Run({"+A 50", "+B 150", "4s", "A 50", "B 150", "-A", "-B"});  // work 100 and 300
  EXPECT_EQ(t.Costs(), (Costs{{"A", 1 * kNanoUsdPerSecond}, {"B", 3 * kNanoUsdPerSecond}}));
  EXPECT_DOUBLE_EQ(t.Ended("A").gpu_seconds, 2.0);
  EXPECT_DOUBLE_EQ(t.Ended("A").energy_joules, 1000.0);
  EXPECT_EQ(t.Ended("A").energy_cost_nano_usd, 100'000);  // not added into cost_nano_usd
  EXPECT_DOUBLE_EQ(t.Ended("B").energy_joules, 3000.0);
  EXPECT_EQ(t.Ended("B").energy_cost_nano_usd, 300'000);
  const GpuMeterTotals totals = t.meter().Snapshot();
  EXPECT_DOUBLE_EQ(totals.ended_energy_joules + totals.idle_energy_joules, 4000.0);
}

TEST(GpuMeter, IgnoresTokensThatAreNoLongerInFlight) {
  Timeline t;
  t.Run({"+A 10", "1s"});
  const GpuMeter::RequestToken stale = t.Token("A");
  t.Run({"-A", "+B 10", "1s"});
  EXPECT_EQ(t.Token("B").slot, stale.slot);  // B reuses A's slot
  t.meter().Progress(stale, 1000);
  EXPECT_EQ(t.meter().End(stale).cost_nano_usd, 0);
  EXPECT_EQ(t.meter().Accrued(stale).cost_nano_usd, 0);
  EXPECT_EQ(t.meter().End(GpuMeter::RequestToken{99, 0}).cost_nano_usd, 0);
  EXPECT_EQ(t.AccruedCost("B"), kNanoUsdPerSecond);
  t.Run({"-B"});
  EXPECT_EQ(t.Costs(), (Costs{{"A", kNanoUsdPerSecond}, {"B", kNanoUsdPerSecond}}));
  EXPECT_EQ(t.meter().Snapshot().requests_ended, 2u);
}

TEST(GpuMeter, ClockGoingBackwardsStandsStill) {
  Timeline t;
  t.Run({"10s", "+A 10", "-5s", "+B 10", "7s", "-A", "-B"});  // B begins at 10 s, not 5 s
  EXPECT_EQ(t.Costs(), (Costs{{"A", kNanoUsdPerSecond}, {"B", kNanoUsdPerSecond}}));
  EXPECT_EQ(t.meter().Snapshot().idle_time, absl::Seconds(10));
}

TEST(GpuMeter, RejectsInvalidSpecsNamingTheField) {
  FakeClock clock;
  GpuCostSpec spec = kSimpleSpec;
  spec.gpu_count = 0;
  EXPECT_THAT(NewGpuMeter(spec, clock.AsClock()).status().message(), HasSubstr("gpu_count"));
  spec = kSimpleSpec;
  spec.watts = -1;
  EXPECT_THAT(NewGpuMeter(spec, clock.AsClock()).status().message(), HasSubstr("watts"));
  spec = kSimpleSpec;
  spec.decode_weight = std::nan("");
  EXPECT_THAT(NewGpuMeter(spec, clock.AsClock()).status().message(), HasSubstr("decode_weight"));
  spec = kSimpleSpec;
  spec.usd_per_gpu_hour = 2e6;
  EXPECT_EQ(NewGpuMeter(spec, clock.AsClock()).status().code(), absl::StatusCode::kInvalidArgument);
}

// The documented rules, computed the slow way (every request visited at every cut) in long
// double, to check the meter's O(1) bookkeeping request by request.
class ReferenceMeter {
 public:
  ReferenceMeter(long double prefill_weight, long double decode_weight)
      : prefill_weight_(prefill_weight), decode_weight_(decode_weight) {}

  void Begin(int id, int64_t now_ns, uint64_t prompt) {
    Cut(now_ns);
    requests_[id] = Request{prompt};
  }
  void Progress(int id, uint64_t output) {
    Request& r = requests_.at(id);
    long double work = 0;
    if (!r.prefill_reported) work += prefill_weight_ * static_cast<long double>(r.prompt);
    r.prefill_reported = true;
    if (output > r.output) work += decode_weight_ * static_cast<long double>(output - r.output);
    r.output = std::max(r.output, output);
    r.work += work;
  }
  long double End(int id, int64_t now_ns) {
    Request& r = requests_.at(id);
    if (!r.prefill_reported) r.work += prefill_weight_ * static_cast<long double>(r.prompt);
    r.prefill_reported = true;
    Cut(now_ns);
    const long double ns = requests_.at(id).ns;
    requests_.erase(id);
    return ns;
  }
  // Backend nanoseconds held by `id` so far, the open period split as if it were cut now.
  long double Accrued(int id, int64_t now_ns) const {
    ReferenceMeter copy = *this;
    copy.Cut(now_ns);
    return copy.requests_.at(id).ns;
  }

 private:
  struct Request {
    uint64_t prompt = 0;
    uint64_t output = 0;
    bool prefill_reported = false;
    long double work = 0;  // in the open period
    long double ns = 0;
  };

  void Cut(int64_t now_ns) {
    const auto length = static_cast<long double>(now_ns - period_start_ns_);
    period_start_ns_ = now_ns;
    if (requests_.empty()) return;
    const long double even = length / static_cast<long double>(requests_.size());
    long double work = 0;
    long double pool = length;
    for (const auto& [id, r] : requests_) {
      work += r.work;
      if (r.work == 0) pool -= even;
    }
    for (auto& [id, r] : requests_) {
      r.ns += r.work == 0 ? even : pool * r.work / work;
      r.work = 0;
    }
  }

  long double prefill_weight_;
  long double decode_weight_;
  int64_t period_start_ns_ = 0;
  std::map<int, Request> requests_;
};

TEST(GpuMeter, RandomOverlappingRequestsAddUpToTheGpuBill) {
  const GpuCostSpec spec{.gpu_type = "h100-80gb",
                         .gpu_count = 8,
                         .usd_per_gpu_hour = 2.17,
                         .watts = 700,
                         .usd_per_kwh = 0.13,
                         .prefill_weight = 0.7,
                         .decode_weight = 1.9};
  const long double nano_usd_per_ns = 8 * 2.17e9L / 3.6e12L;
  FakeClock clock;
  absl::StatusOr<std::unique_ptr<GpuMeter>> made = NewGpuMeter(spec, clock.AsClock());
  ASSERT_TRUE(made.ok()) << made.status();
  GpuMeter* const meter = made->get();
  ReferenceMeter reference(0.7L, 1.9L);

  std::mt19937_64 rng(20240611);
  struct Live {
    int id;
    GpuMeter::RequestToken token;
    uint64_t output;
  };
  std::vector<Live> live;
  int64_t now_ns = 0;
  int next_id = 0;
  int64_t ended_nano_usd = 0;
  int checkpoints = 0;
  constexpr int kRequests = 4000;
  while (next_id < kRequests || !live.empty()) {
    // Time: often none (simultaneous events), often microseconds, sometimes seconds of idle.
    const int64_t step_ns =
        std::vector<int64_t>{0, 0, 1'000, 37'000, 2'000'000, 900'000'000}[rng() % 6];
    const int64_t advance_ns = step_ns == 0 ? 0 : static_cast<int64_t>(rng() % step_ns);
    clock.Advance(absl::Nanoseconds(advance_ns));
    now_ns += advance_ns;

    const uint64_t action = rng() % 10;
    if (next_id < kRequests && (live.empty() || (action < 3 && live.size() < 64))) {
      const uint64_t prompt = rng() % 4000;
      live.push_back({next_id, meter->Begin(prompt), 0});
      reference.Begin(next_id, now_ns, prompt);
      ++next_id;
    } else if (action < 8) {
      Live& r = live[rng() % live.size()];
      r.output += rng() % 5;
      meter->Progress(r.token, r.output);
      reference.Progress(r.id, r.output);
    } else {
      const size_t index = rng() % live.size();
      const GpuShare share = meter->End(live[index].token);
      const long double expected = reference.End(live[index].id, now_ns) * nano_usd_per_ns;
      ASSERT_NEAR(static_cast<long double>(share.cost_nano_usd), expected, 1.0L)
          << "request " << live[index].id;
      ended_nano_usd += share.cost_nano_usd;
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(index));
    }

    if (rng() % 500 == 0) {
      ++checkpoints;
      int64_t accrued_nano_usd = 0;
      for (const Live& r : live) {
        const int64_t accrued = meter->Accrued(r.token).cost_nano_usd;
        ASSERT_NEAR(static_cast<long double>(accrued),
                    reference.Accrued(r.id, now_ns) * nano_usd_per_ns, 1.0L);
        accrued_nano_usd += accrued;
      }
      const GpuMeterTotals totals = meter->Snapshot();
      const int64_t attributed = ended_nano_usd + accrued_nano_usd;
      ASSERT_EQ(totals.ended_cost_nano_usd, ended_nano_usd);
      // Each of the figures is rounded once: at most half a nano-USD each.
      const int64_t tolerance = static_cast<int64_t>(totals.requests_ended + live.size()) + 2;
      ASSERT_LE(std::abs(attributed + totals.idle_cost_nano_usd - totals.wall_cost_nano_usd),
                tolerance)
          << "at " << now_ns << " ns";
    }
  }
  const GpuMeterTotals totals = meter->Snapshot();
  EXPECT_EQ(totals.requests_ended, static_cast<uint64_t>(kRequests));
  EXPECT_GT(checkpoints, 10);
  EXPECT_GT(totals.idle_time, absl::ZeroDuration());
  EXPECT_LE(
      std::abs(totals.ended_cost_nano_usd + totals.idle_cost_nano_usd - totals.wall_cost_nano_usd),
      kRequests / 2 + 2);
  EXPECT_NEAR(totals.ended_energy_joules + totals.idle_energy_joules,
              8 * 700 * absl::ToDoubleSeconds(totals.wall_time), 1e-6 * kRequests);
}

TEST(GpuMeter, ConcurrentCallersKeepTheInvariant) {
  std::atomic<int64_t> ticks{0};
  // Every reading advances the clock by 1 µs, so concurrent requests overlap and time moves.
  GpuClock clock = [&ticks] {
    return absl::FromUnixSeconds(1'700'000'000) + absl::Microseconds(ticks.fetch_add(1) + 1);
  };
  auto meter = NewGpuMeter(kSimpleSpec, clock);
  ASSERT_TRUE(meter.ok());
  constexpr int kThreads = 4;
  constexpr int kRequestsPerThread = 500;
  std::vector<int64_t> ended(kThreads, 0);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequestsPerThread; ++i) {
        const GpuMeter::RequestToken token = (*meter)->Begin(100 + i);
        for (uint64_t out = 1; out <= 8; ++out) (*meter)->Progress(token, out);
        ended[t] += (*meter)->End(token).cost_nano_usd;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const GpuMeterTotals totals = (*meter)->Snapshot();
  int64_t ended_total = 0;
  for (int64_t e : ended) ended_total += e;
  EXPECT_EQ(totals.requests_ended, static_cast<uint64_t>(kThreads * kRequestsPerThread));
  EXPECT_EQ(totals.ended_cost_nano_usd, ended_total);
  EXPECT_LE(std::abs(ended_total + totals.idle_cost_nano_usd - totals.wall_cost_nano_usd),
            kThreads * kRequestsPerThread);
}

}  // namespace
}  // namespace tollgate
