// Text renderings of a LoadReport: a summary for people and one RESULT line for scripts.
//
//   std::cout << FormatSummary(options, report) << FormatResultLine(options, report) << "\n";
//
// The RESULT line is space-separated key=value pairs, latencies in microseconds:
//   RESULT mode=unary target=H:P rate=R concurrency=N ok=N errors=N dropped=N duration_s=X
//          throughput_rps=X p50_us=X p90_us=X p99_us=X p999_us=X max_us=X warmup=N
// (one line; warmup counts the requests completed in the warm-up, which no other field counts),
// followed in stream mode by ttft_p50_us=X ttft_p99_us=X.
// Pure functions; thread-safe.
#pragma once

#include <string>

#include "bench/load_generator.h"

namespace tollgate::bench {

// Several lines, each ending in '\n'.
std::string FormatSummary(const LoadOptions& options, const LoadReport& report);
// One line, without a trailing '\n'.
std::string FormatResultLine(const LoadOptions& options, const LoadReport& report);

}  // namespace tollgate::bench
