#include "accounting/gpu/gpu_meter.h"

#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "accounting/gpu/wide_arithmetic.h"

namespace tollgate {
namespace {

// Backend time is counted in these units: fine enough that what integer division drops is far
// below a nano-USD, and 2^128 of them are 10^14 years. Products with prices and powers may need
// more than 128 bits; MulDiv* computes them exactly.
constexpr uint128 kUnitsPerNs = 65536;
constexpr uint128 kNsPerHour = 3'600'000'000'000;
constexpr uint128 kPicojoulesPerKwh = 3'600'000'000'000'000'000;

class GpuMeterImpl final : public GpuMeter {
 public:
  GpuMeterImpl(const GpuRates& rates, GpuClock clock, GpuMeterCounters counters)
      : gpu_count_(rates.gpu_count),
        nano_usd_per_hour_(static_cast<uint128>(rates.gpu_count) * rates.nano_usd_per_gpu_hour),
        milliwatts_(static_cast<uint128>(rates.gpu_count) * rates.milliwatts_per_gpu),
        nano_usd_per_kwh_(rates.nano_usd_per_kwh),
        prefill_weight_(rates.micro_weight.prefill),
        decode_weight_(rates.micro_weight.decode),
        clock_(std::move(clock)),
        counters_(counters),
        origin_(clock_()) {}

  RequestToken Begin(uint64_t prompt_tokens) override {
    absl::MutexLock lock(&mu_);
    ClosePeriod(NowNs());
    uint32_t slot;
    if (free_slots_.empty()) {
      slot = static_cast<uint32_t>(requests_.size());
      requests_.emplace_back();
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    Request& request = requests_[slot];
    const uint32_t generation = request.generation;
    request = Request{};
    request.generation = generation;
    request.in_use = true;
    request.prompt_tokens = prompt_tokens;
    request.even_mark = even_units_per_request_;
    ++in_flight_;
    return {slot, generation};
  }

  void Progress(RequestToken token, uint64_t output_tokens_so_far) override {
    absl::MutexLock lock(&mu_);
    Request* request = Find(token);
    if (request == nullptr) return;
    uint128 work = TakePrefillWork(*request);
    if (output_tokens_so_far > request->output_tokens) {
      work += static_cast<uint128>(output_tokens_so_far - request->output_tokens) * decode_weight_;
      request->output_tokens = output_tokens_so_far;
    }
    AddWork(*request, work);
  }

  GpuShare End(RequestToken token) override {
    absl::MutexLock lock(&mu_);
    Request* request = Find(token);
    if (request == nullptr) return {};
    AddWork(*request, TakePrefillWork(*request));
    ClosePeriod(NowNs());
    SettleClosedWork(*request);
    const GpuShare share = Price(UnitsBeforeOpenPeriod(*request));
    request->in_use = false;
    ++request->generation;
    free_slots_.push_back(token.slot);
    --in_flight_;
    ++totals_.requests_ended;
    totals_.ended_cost_nano_usd =
        SaturateToInt64(static_cast<uint128>(totals_.ended_cost_nano_usd) +
                        static_cast<uint128>(share.cost_nano_usd));
    totals_.ended_energy_joules += share.energy_joules;
    if (counters_.energy_joules != nullptr) counters_.energy_joules->Increment(share.energy_joules);
    return share;
  }

  GpuShare Accrued(RequestToken token) override {
    absl::MutexLock lock(&mu_);
    const Request* request = Find(token);
    if (request == nullptr) return {};
    uint128 units = UnitsBeforeOpenPeriod(*request);
    const bool reported_in_open =
        request->pending_work > 0 && request->pending_period == period_.id;
    if (request->pending_work > 0 && !reported_in_open) {
      const auto it = closed_.find(request->pending_period);
      if (it != closed_.end()) {  // its even share there was counted in `units`: swap it
        units = units + ShareOf(request->pending_work, it->second) - it->second.even_units;
      }
    }
    // The open period as if it closed now.
    const uint128 open_units = static_cast<uint128>(NowNs() - period_.start_ns) * kUnitsPerNs;
    const uint128 even_units = open_units / in_flight_;
    units += reported_in_open ? ShareOf(request->pending_work,
                                        ReportersPool(open_units, even_units), period_.work)
                              : even_units;
    return Price(units);
  }

  GpuMeterTotals Snapshot() override {
    absl::MutexLock lock(&mu_);
    const int64_t now_ns = NowNs();
    if (in_flight_ == 0) ClosePeriod(now_ns);  // books the idle time; attributes nothing
    GpuMeterTotals totals;
    totals.wall_time = absl::Nanoseconds(now_ns);
    totals.wall_cost_nano_usd = Price(static_cast<uint128>(now_ns) * kUnitsPerNs).cost_nano_usd;
    totals.idle_time = absl::Nanoseconds(totals_.idle_ns);
    const GpuShare idle = Price(static_cast<uint128>(totals_.idle_ns) * kUnitsPerNs);
    totals.idle_cost_nano_usd = idle.cost_nano_usd;
    totals.idle_energy_joules = idle.energy_joules;
    totals.requests_ended = totals_.requests_ended;
    totals.ended_cost_nano_usd = totals_.ended_cost_nano_usd;
    totals.ended_energy_joules = totals_.ended_energy_joules;
    totals.in_flight = in_flight_;
    return totals;
  }

 private:
  // One request's state. `pending_work` was reported in period `pending_period` and is turned
  // into `settled_units` once that period has closed, lazily, at the request's next event.
  struct Request {
    uint32_t generation = 0;
    bool in_use = false;
    bool prefill_reported = false;
    uint64_t prompt_tokens = 0;
    uint64_t output_tokens = 0;
    // Its units = settled_units + (even_units_per_request_ - even_mark) - refunded_units.
    uint128 settled_units = 0;
    uint128 even_mark = 0;       // even_units_per_request_ at Begin
    uint128 refunded_units = 0;  // even shares of periods in which it reported work
    uint64_t pending_period = 0;
    uint128 pending_work = 0;  // in millionths of a weighted token
  };

  // A closed period in which work was reported, kept until each reporter has taken its share.
  // Every request in flight was credited even_units through even_units_per_request_; a reporter
  // gives them back and takes its part of reporters_pool_units instead.
  struct ClosedPeriod {
    uint128 reporters_pool_units = 0;
    uint128 work = 0;
    uint128 even_units = 0;
    uint32_t unsettled_requests = 0;
  };

  static uint128 ShareOf(uint128 work, uint128 pool_units, uint128 total_work) {
    return MulDivFloor(work, pool_units, total_work);
  }
  static uint128 ShareOf(uint128 work, const ClosedPeriod& period) {
    return ShareOf(work, period.reporters_pool_units, period.work);
  }

  // What is left of a period of `length_units` once each request that reported nothing in it
  // has had `even_units`.
  uint128 ReportersPool(uint128 length_units, uint128 even_units) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return length_units - (in_flight_ - period_.reporters) * even_units;
  }

  // The request's units from the periods before the open one, with work it reported in a closed
  // period not yet counted.
  uint128 UnitsBeforeOpenPeriod(const Request& request) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return request.settled_units + (even_units_per_request_ - request.even_mark) -
           request.refunded_units;
  }

  struct OpenPeriod {
    uint64_t id = 1;
    int64_t start_ns = 0;
    uint128 work = 0;
    uint32_t reporters = 0;  // requests that reported work in it
  };

  int64_t NowNs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t ns = absl::ToInt64Nanoseconds(clock_() - origin_);
    if (ns > now_ns_) now_ns_ = ns;
    return now_ns_;
  }

  Request* Find(RequestToken token) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (token.slot >= requests_.size()) return nullptr;
    Request& request = requests_[token.slot];
    return request.in_use && request.generation == token.generation ? &request : nullptr;
  }

  struct RunningTotals {
    int64_t idle_ns = 0;
    int64_t idle_nano_usd_counted = 0;  // in counters_.idle_cost_usd so far
    double idle_joules_counted = 0;     // in counters_.energy_joules so far
    uint64_t requests_ended = 0;
    int64_t ended_cost_nano_usd = 0;
    double ended_energy_joules = 0;
  };

  // The prompt's work the first time it is asked for, then 0.
  uint128 TakePrefillWork(Request& request) const {
    if (request.prefill_reported) return 0;
    request.prefill_reported = true;
    return static_cast<uint128>(request.prompt_tokens) * prefill_weight_;
  }

  void AddWork(Request& request, uint128 work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (work == 0) return;
    SettleClosedWork(request);
    if (request.pending_work == 0) {
      request.pending_period = period_.id;
      ++period_.reporters;
    }
    request.pending_work += work;
    period_.work += work;
  }

  void SettleClosedWork(Request& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (request.pending_work == 0 || request.pending_period == period_.id) return;
    const auto it = closed_.find(request.pending_period);
    if (it != closed_.end()) {  // absent: the period had zero length
      request.settled_units += ShareOf(request.pending_work, it->second);
      request.refunded_units += it->second.even_units;
      if (--it->second.unsettled_requests == 0) closed_.erase(it);
    }
    request.pending_work = 0;
  }

  // Ends the open period at `now_ns` and opens the next.
  void ClosePeriod(int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t length_ns = now_ns - period_.start_ns;
    const uint128 length_units = static_cast<uint128>(length_ns) * kUnitsPerNs;
    if (in_flight_ == 0) {
      BookIdle(length_ns);
    } else {
      const uint128 even_units = length_units / in_flight_;
      even_units_per_request_ += even_units;
      if (period_.work > 0 && length_units > 0) {
        closed_[period_.id] = ClosedPeriod{ReportersPool(length_units, even_units), period_.work,
                                           even_units, period_.reporters};
      }
    }
    period_ = OpenPeriod{.id = period_.id + 1, .start_ns = now_ns};
  }

  void BookIdle(int64_t length_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (length_ns == 0) return;
    totals_.idle_ns += length_ns;
    if (counters_.idle_cost_usd == nullptr && counters_.energy_joules == nullptr) return;
    const GpuShare idle = Price(static_cast<uint128>(totals_.idle_ns) * kUnitsPerNs);
    if (counters_.idle_cost_usd != nullptr) {
      counters_.idle_cost_usd->Increment(
          static_cast<double>(idle.cost_nano_usd - totals_.idle_nano_usd_counted) * 1e-9);
    }
    if (counters_.energy_joules != nullptr) {
      counters_.energy_joules->Increment(idle.energy_joules - totals_.idle_joules_counted);
    }
    totals_.idle_nano_usd_counted = idle.cost_nano_usd;
    totals_.idle_joules_counted = idle.energy_joules;
  }

  GpuShare Price(uint128 units) const {
    GpuShare share;
    share.cost_nano_usd =
        SaturateToInt64(MulDivRoundHalfUp(units, nano_usd_per_hour_, kUnitsPerNs * kNsPerHour));
    share.gpu_seconds = static_cast<double>(units) / static_cast<double>(kUnitsPerNs) * 1e-9 *
                        static_cast<double>(gpu_count_);
    // milliwatts × ns = picojoules.
    share.energy_joules =
        static_cast<double>(MulDivRoundHalfUp(units, milliwatts_, kUnitsPerNs)) * 1e-12;
    share.energy_cost_nano_usd = SaturateToInt64(
        MulDivRoundHalfUp(units, milliwatts_ * nano_usd_per_kwh_, kUnitsPerNs * kPicojoulesPerKwh));
    return share;
  }

  const uint32_t gpu_count_;
  const uint128 nano_usd_per_hour_;  // all GPUs
  const uint128 milliwatts_;         // all GPUs
  const uint128 nano_usd_per_kwh_;
  const uint128 prefill_weight_;  // millionths per token
  const uint128 decode_weight_;
  const GpuClock clock_;
  const GpuMeterCounters counters_;
  const absl::Time origin_;

  absl::Mutex mu_;
  int64_t now_ns_ ABSL_GUARDED_BY(mu_) = 0;  // latest clock reading since origin_, never lower
  uint32_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  OpenPeriod period_ ABSL_GUARDED_BY(mu_);
  // Units each request in flight was credited from closed periods: their even shares.
  uint128 even_units_per_request_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, ClosedPeriod> closed_ ABSL_GUARDED_BY(mu_);
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);  // indexed by RequestToken::slot
  std::vector<uint32_t> free_slots_ ABSL_GUARDED_BY(mu_);
  RunningTotals totals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<GpuMeter>> NewGpuMeter(const GpuCostSpec& spec, GpuClock clock,
                                                      GpuMeterCounters counters) {
  absl::StatusOr<GpuRates> rates = ToGpuRates(spec);
  if (!rates.ok()) return rates.status();
  return std::make_unique<GpuMeterImpl>(*rates, std::move(clock), counters);
}

}  // namespace tollgate
