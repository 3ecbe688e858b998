// Measures what Ledger::Append costs a request thread, and the writer's throughput. Not a test.
//
//   ledger_append_bench [RECORDS_PER_THREAD] [THREADS]
//
// "steady": bursts of 1000 Appends per thread, timed, each followed by an untimed Flush, so the
// writer keeps up and the queue reuses its capacity, as in a server below the writer's throughput.
// "flood": every thread appends without pause, faster than the writer drains, so the queue grows.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "accounting/ledger/ledger.h"
#include "tests/accounting/ledger/ledger_test_util.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kBurst = 1000;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Mean ns per Append over all threads.
double Run(bool steady, uint64_t per_thread, int threads, double* written_per_second) {
  tollgate::ledger_test::TempDir dir;
  tollgate::LedgerOptions options;
  options.directory = dir.path();
  options.max_buffered_records = per_thread * threads + 1;
  auto ledger = tollgate::Ledger::Open(options);
  if (!ledger.ok()) std::abort();
  std::vector<std::vector<tollgate::LedgerRecord>> records(threads);
  for (int t = 0; t < threads; ++t) {
    for (uint64_t i = 0; i < per_thread; ++i) {
      records[t].push_back(tollgate::ledger_test::NumberedRecord(t * per_thread + i));
    }
  }
  std::vector<Clock::duration> appending(threads);
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (uint64_t i = 0; i < per_thread; i += kBurst) {
        const auto begin = Clock::now();
        for (uint64_t j = i; j < std::min(per_thread, i + kBurst); ++j) {
          (*ledger)->Append(std::move(records[t][j]));
        }
        appending[t] += Clock::now() - begin;
        if (steady && !(*ledger)->Flush().ok()) std::abort();
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  if (!(*ledger)->Close().ok() || (*ledger)->dropped_records() != 0) std::abort();
  *written_per_second = static_cast<double>(per_thread * threads) / Seconds(Clock::now() - start);
  double total = 0;
  for (const Clock::duration& d : appending) total += Seconds(d);
  return total * 1e9 / static_cast<double>(per_thread * threads);
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t per_thread = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  for (bool steady : {true, false}) {
    double written = 0;
    const double ns = Run(steady, per_thread, threads, &written);
    std::printf("%-6s %d threads x %llu records: %.0f ns per Append, %.0f records/s durable\n",
                steady ? "steady" : "flood", threads, static_cast<unsigned long long>(per_thread),
                ns, written);
  }
  return 0;
}
