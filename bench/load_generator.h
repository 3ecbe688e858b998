// An asynchronous load generator for tollgate.v1.Inference (Tollgate, tollgate-sim, or anything
// that serves the API), built on the gRPC callback client API.
//
//   LoadOptions options;
//   options.target = "127.0.0.1:50051";
//   options.rate_rps = 1000;  // open loop
//   TG_RETURN_IF_ERROR(ValidateLoadOptions(options));
//   absl::StatusOr<LoadReport> report = RunLoad(options);
//
// Open loop (rate_rps > 0): a scheduler thread issues a request every 1/rate_rps whether or not
// earlier ones have finished, and latency runs from the request's intended send time, so a slow
// server or a late scheduler cannot hide queueing (no coordinated omission). Beyond
// max_outstanding in flight a request is dropped (counted, never sent).
// Closed loop (concurrency > 0): `concurrency` requests in flight; each completion issues the next.
// Latency runs from the actual send time.
//
// Requests whose send time falls in the warm-up are sent but left out of the report.
//
// Thread safety: the functions are reentrant; RunLoad blocks its caller until the run is over.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/latency_histogram.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::bench {

enum class LoadMode { kUnary, kStream };

// "unary" or "stream".
absl::StatusOr<LoadMode> ParseLoadMode(absl::string_view name);
absl::string_view LoadModeName(LoadMode mode);

struct LoadOptions {
  std::string target;   // host:port
  std::string api_key;  // sent as `authorization: Bearer <key>`; empty sends no header
  LoadMode mode = LoadMode::kUnary;
  // Exactly one of the two is positive.
  double rate_rps = 0;
  int concurrency = 0;
  absl::Duration duration = absl::Seconds(10);  // measured, after the warm-up
  absl::Duration warmup = absl::Seconds(1);
  // Stop after this many requests (including warm-up and dropped ones); 0: only time bounds it.
  int64_t max_requests = 0;
  int max_outstanding = 10000;  // open loop only
  absl::Duration deadline = absl::Milliseconds(30000);
  absl::Duration connect_timeout = absl::Seconds(5);

  std::string model = "llama-3-8b";
  int prompt_bytes = 200;
  int max_tokens = 16;
  double temperature = 0;
  // 0: every prompt is distinct (a sequence number ends it); K > 0: prompts cycle through K.
  int distinct_prompts = 0;
};

// INVALID_ARGUMENT naming the offending option (by its tollgate-bench flag name).
absl::Status ValidateLoadOptions(const LoadOptions& options);

// The request with sequence number `sequence`: one user chat message of exactly
// options.prompt_bytes bytes (longer only when the sequence tag alone is longer), deterministic in
// (options, sequence).
tollgate::v1::GenerateRequest MakeGenerateRequest(const LoadOptions& options, uint64_t sequence);

struct LoadReport {
  int64_t ok = 0;
  int64_t errors = 0;
  int64_t dropped = 0;
  std::map<std::string, int64_t> errors_by_code;  // gRPC code name, e.g. "UNAVAILABLE"
  int64_t warmup_requests = 0;                    // completed during the warm-up, in no other count
  // Still in flight when the run gave up waiting for them (deadline + 5 s after the last send).
  int64_t abandoned = 0;
  // From the end of the warm-up to the last measured completion (or the end of the run).
  double measured_s = 0;
  LatencyHistogram latency;  // successful requests
  LatencyHistogram ttft;     // stream mode: time to the first message of successful streams

  double ThroughputRps() const { return measured_s > 0 ? ok / measured_s : 0; }
};

// Connects (UNAVAILABLE when the target does not become ready within options.connect_timeout),
// then runs the load. REQUIRES: ValidateLoadOptions(options).ok().
absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options);

}  // namespace tollgate::bench
