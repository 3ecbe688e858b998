// tollgate-bench: drives tollgate.v1.Inference with open- or closed-loop load and reports latency.
//
//   tollgate-bench --target 127.0.0.1:50051 --rate 1000 --duration_s 10
//   tollgate-bench --target 127.0.0.1:50051 --concurrency 32 --mode stream --api_key KEY
//
// Exit status: 0 when the run happened (errors included), 2 on bad flags, 1 when the target could
// not be reached at the start.
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/load_generator.h"
#include "bench/load_report.h"

ABSL_FLAG(std::string, target, "", "host:port of the Inference service (required)");
ABSL_FLAG(std::string, api_key, "", "sent as `authorization: Bearer <key>`; empty sends none");
ABSL_FLAG(std::string, mode, "unary", "unary (Generate) or stream (GenerateStream)");
ABSL_FLAG(double, rate, 0, "open loop: requests per second, sent at fixed intervals");
ABSL_FLAG(int, concurrency, 0, "closed loop: requests kept in flight");
ABSL_FLAG(double, duration_s, 10, "measured seconds, after the warm-up");
ABSL_FLAG(double, warmup_s, 1, "seconds of load left out of the statistics");
ABSL_FLAG(int64_t, max_requests, 0, "stop after this many requests (0: no limit)");
ABSL_FLAG(int, max_outstanding, 10000, "open loop: requests in flight beyond which to drop");
ABSL_FLAG(int, deadline_ms, 30000, "per-request deadline");
ABSL_FLAG(std::string, model, "llama-3-8b", "model name sent in every request");
ABSL_FLAG(int, prompt_bytes, 200, "size of the user message");
ABSL_FLAG(int, max_tokens, 16, "max_tokens sent in every request");
ABSL_FLAG(double, temperature, 0, "temperature sent in every request");
ABSL_FLAG(int, distinct_prompts, 0, "0: every prompt distinct; K > 0: cycle through K prompts");

namespace {

constexpr int kExitUnreachable = 1;
constexpr int kExitBadFlags = 2;

// Abseil's parser exits with status 1 on a malformed command line and after --help; this tool
// promises 2 for the first and 0 for the second.
bool command_line_parsed = false;
bool help_requested = false;
void FixExitStatusOfParser() {
  if (command_line_parsed) return;
  std::cout.flush();
  std::_Exit(help_requested ? 0 : kExitBadFlags);
}

absl::StatusOr<tollgate::bench::LoadOptions> OptionsFromFlags() {
  tollgate::bench::LoadOptions options;
  absl::StatusOr<tollgate::bench::LoadMode> mode =
      tollgate::bench::ParseLoadMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) return mode.status();
  options.mode = *mode;
  options.target = absl::GetFlag(FLAGS_target);
  options.api_key = absl::GetFlag(FLAGS_api_key);
  options.rate_rps = absl::GetFlag(FLAGS_rate);
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  options.warmup = absl::Seconds(absl::GetFlag(FLAGS_warmup_s));
  options.max_requests = absl::GetFlag(FLAGS_max_requests);
  options.max_outstanding = absl::GetFlag(FLAGS_max_outstanding);
  options.deadline = absl::Milliseconds(absl::GetFlag(FLAGS_deadline_ms));
  options.model = absl::GetFlag(FLAGS_model);
  options.prompt_bytes = absl::GetFlag(FLAGS_prompt_bytes);
  options.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  options.temperature = absl::GetFlag(FLAGS_temperature);
  options.distinct_prompts = absl::GetFlag(FLAGS_distinct_prompts);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  absl::FlagsUsageConfig usage_config;
  // --help lists the flags of this file (Abseil's default looks for a file named after the binary).
  usage_config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "bench/main.cc");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  absl::SetProgramUsageMessage(
      "Load generator for tollgate.v1.Inference.\n"
      "  tollgate-bench --target HOST:PORT (--rate R | --concurrency N) [--mode unary|stream]");
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (absl::StartsWith(arg, "--help") || absl::StartsWith(arg, "-help")) help_requested = true;
  }
  std::atexit(FixExitStatusOfParser);
  const auto positional = absl::ParseCommandLine(argc, argv);
  // Lock-order cycle checks (on in Debian's Abseil) cost every mutex acquisition; tests keep them.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  command_line_parsed = true;
  if (positional.size() > 1) {
    std::cerr << "tollgate-bench: unexpected argument \"" << positional[1] << "\"\n";
    return kExitBadFlags;
  }

  absl::StatusOr<tollgate::bench::LoadOptions> options = OptionsFromFlags();
  absl::Status valid =
      options.ok() ? tollgate::bench::ValidateLoadOptions(*options) : options.status();
  if (!valid.ok()) {
    std::cerr << "tollgate-bench: " << valid.message() << "\n";
    return kExitBadFlags;
  }

  absl::StatusOr<tollgate::bench::LoadReport> report = tollgate::bench::RunLoad(*options);
  if (!report.ok()) {
    std::cerr << "tollgate-bench: " << report.status().message()
              << " (is the server running at that address?)\n";
    return kExitUnreachable;
  }
  std::cout << tollgate::bench::FormatSummary(*options, *report)
            << tollgate::bench::FormatResultLine(*options, *report) << std::endl;
  return 0;
}
