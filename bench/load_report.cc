#include "bench/load_report.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tollgate::bench {
namespace {

std::string Micros(int64_t ns) { return absl::StrFormat("%.1f", static_cast<double>(ns) / 1e3); }

std::string LoadShape(const LoadOptions& options) {
  if (options.rate_rps > 0) return absl::StrCat("open loop at ", options.rate_rps, " req/s");
  return absl::StrCat("closed loop with ", options.concurrency, " in flight");
}

}  // namespace

std::string FormatSummary(const LoadOptions& options, const LoadReport& report) {
  std::string out =
      absl::StrCat("tollgate-bench: ", LoadModeName(options.mode), " ", LoadShape(options),
                   " against ", options.target, " for ", absl::FormatDuration(options.duration),
                   " (+", absl::FormatDuration(options.warmup), " warm-up)\n");
  absl::StrAppend(&out, "requests:   ok=", report.ok, " errors=", report.errors,
                  " dropped=", report.dropped, " (warm-up ", report.warmup_requests, ", abandoned ",
                  report.abandoned, ")\n");
  if (!report.errors_by_code.empty()) {
    absl::StrAppend(&out, "errors:     ",
                    absl::StrJoin(report.errors_by_code, " ", absl::PairFormatter("=")), "\n");
  }
  absl::StrAppend(&out, "throughput: ", absl::StrFormat("%.1f", report.ThroughputRps()),
                  " req/s over ", absl::StrFormat("%.3f", report.measured_s), " s\n");
  const LatencyHistogram& latency = report.latency;
  absl::StrAppend(&out, "latency us: p50=", Micros(latency.Percentile(50)),
                  " p90=", Micros(latency.Percentile(90)), " p99=", Micros(latency.Percentile(99)),
                  " p99.9=", Micros(latency.Percentile(99.9)), " max=", Micros(latency.Max()),
                  " mean=", absl::StrFormat("%.1f", latency.Mean() / 1e3), "\n");
  if (options.mode == LoadMode::kStream) {
    absl::StrAppend(&out, "ttft us:    p50=", Micros(report.ttft.Percentile(50)),
                    " p99=", Micros(report.ttft.Percentile(99)), "\n");
  }
  return out;
}

std::string FormatResultLine(const LoadOptions& options, const LoadReport& report) {
  const LatencyHistogram& latency = report.latency;
  std::string line = absl::StrCat(
      "RESULT mode=", LoadModeName(options.mode), " target=", options.target,
      " rate=", options.rate_rps, " concurrency=", options.concurrency, " ok=", report.ok,
      " errors=", report.errors, " dropped=", report.dropped,
      " duration_s=", absl::StrFormat("%.3f", report.measured_s),
      " throughput_rps=", absl::StrFormat("%.1f", report.ThroughputRps()),
      " p50_us=", Micros(latency.Percentile(50)), " p90_us=", Micros(latency.Percentile(90)),
      " p99_us=", Micros(latency.Percentile(99)), " p999_us=", Micros(latency.Percentile(99.9)),
      " max_us=", Micros(latency.Max()), " warmup=", report.warmup_requests);
  if (options.mode == LoadMode::kStream) {
    absl::StrAppend(&line, " ttft_p50_us=", Micros(report.ttft.Percentile(50)),
                    " ttft_p99_us=", Micros(report.ttft.Percentile(99)));
  }
  return line;
}

}  // namespace tollgate::bench
