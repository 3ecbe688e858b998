// Per-call cost of GpuMeter on the request path, with N other requests in flight.
//
//   tollgate-gpu-meter-bench --benchmark_min_time=0.5
//
// Begin and End read absl::Now() (included in their cost); Progress reads no clock.
#include <cstdint>
#include <memory>
#include <vector>

#include "accounting/gpu/gpu_meter.h"
#include "benchmark/benchmark.h"

namespace tollgate {
namespace {

std::unique_ptr<GpuMeter> MakeMeter() {
  return *NewGpuMeter({.gpu_type = "h100-80gb",
                       .gpu_count = 8,
                       .usd_per_gpu_hour = 2.17,
                       .watts = 700,
                       .usd_per_kwh = 0.13,
                       .decode_weight = 4});
}

struct InFlight {
  std::vector<GpuMeter::RequestToken> tokens;
  std::vector<uint64_t> outputs;
};

InFlight StartRequests(GpuMeter& meter, int64_t n) {
  InFlight in_flight;
  for (int64_t i = 0; i < n; ++i) {
    in_flight.tokens.push_back(meter.Begin(1000));
    in_flight.outputs.push_back(0);
  }
  return in_flight;
}

// One streamed chunk of one of N requests in flight, round robin.
void BM_Progress(benchmark::State& state) {
  std::unique_ptr<GpuMeter> meter = MakeMeter();
  InFlight in_flight = StartRequests(*meter, state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    meter->Progress(in_flight.tokens[i], ++in_flight.outputs[i]);
    if (++i == in_flight.tokens.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Progress)->Arg(1)->Arg(64)->Arg(1024);

// A short request (Begin, 4 chunks, End) among N others that stream: 6 calls an iteration, and
// every Begin/End closes a period in which all N reported work.
void BM_RequestAmongStreams(benchmark::State& state) {
  std::unique_ptr<GpuMeter> meter = MakeMeter();
  InFlight in_flight = StartRequests(*meter, state.range(0));
  size_t next = 0;
  for (auto _ : state) {
    const GpuMeter::RequestToken token = meter->Begin(500);
    for (uint64_t out = 1; out <= 4; ++out) {
      meter->Progress(token, out);
      meter->Progress(in_flight.tokens[next], ++in_flight.outputs[next]);
      if (++next == in_flight.tokens.size()) next = 0;
    }
    benchmark::DoNotOptimize(meter->End(token));
  }
  state.SetItemsProcessed(state.iterations() * 10);  // calls
}
BENCHMARK(BM_RequestAmongStreams)->Arg(1)->Arg(64)->Arg(1024);

// Begin then End, with N others in flight that report nothing.
void BM_BeginEnd(benchmark::State& state) {
  std::unique_ptr<GpuMeter> meter = MakeMeter();
  InFlight in_flight = StartRequests(*meter, state.range(0));
  for (auto _ : state) {
    const GpuMeter::RequestToken token = meter->Begin(500);
    benchmark::DoNotOptimize(meter->End(token));
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_BeginEnd)->Arg(1)->Arg(1024);

// Progress from several threads on one meter (one backend): the mutex under contention.
void BM_ProgressContended(benchmark::State& state) {
  static std::unique_ptr<GpuMeter> meter;
  static InFlight in_flight;
  if (state.thread_index() == 0) {
    meter = MakeMeter();
    in_flight = StartRequests(*meter, 64);
  }
  const size_t first = static_cast<size_t>(state.thread_index()) * 8;
  size_t i = 0;
  uint64_t output = 0;
  for (auto _ : state) {
    meter->Progress(in_flight.tokens[first + i], ++output);
    i = (i + 1) % 8;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProgressContended)->Threads(1)->Threads(2)->Threads(4);

}  // namespace
}  // namespace tollgate
