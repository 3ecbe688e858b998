// tollgate-sim: a simulated model server speaking tollgate.v1.Inference.
//
//   tollgate-sim --address=127.0.0.1:0 --gpu=h100-80gb --time_scale=0.1
//   tollgate-sim --address=127.0.0.1:0 --http_address=127.0.0.1:0 --fault_429_rate=0.1
//   tollgate-sim --address=127.0.0.1:0 --batch_mode=static --max_static_batch=32
//
// Prints `tollgate-sim listening on HOST:PORT` once serving gRPC and, with --http_address, a second
// line `tollgate-sim http listening on HOST:PORT` for the OpenAI/Anthropic-compatible HTTP API
// (sim/http_api.h); SIGINT or SIGTERM shut it down (exit 0). Invalid flag values exit 2.
#include <pthread.h>

#include <csignal>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proxy/http/server/http_server.h"
#include "sim/engine.h"
#include "sim/http_api.h"
#include "sim/presets.h"
#include "sim/server.h"

ABSL_FLAG(std::string, address, "0.0.0.0:50061", "host:port to listen on; port 0 picks one");
ABSL_FLAG(std::string, gpu, "a100-80gb", "GPU preset: a10g, a100-80gb, h100-80gb");
ABSL_FLAG(uint32_t, gpu_count, 1, "GPUs serving the model (tensor parallel)");
ABSL_FLAG(double, time_scale, 1.0, "multiplies every simulated delay; 0 answers instantly");
ABSL_FLAG(double, mfu, 0.5, "model FLOPs utilisation during prefill, in (0, 1]");
ABSL_FLAG(uint32_t, max_running_requests, 256,
          "continuous mode: requests decoded together in one batch");
ABSL_FLAG(std::string, batch_mode, "continuous",
          "continuous: requests join and leave the running batch at every step (vLLM); static: one "
          "call at a time, a call of B inputs taking t_1 x (1 + f x (B - 1))");
ABSL_FLAG(uint32_t, max_static_batch, 32,
          "static mode: most inputs (prompts, embedding inputs) in one call; more are refused");
ABSL_FLAG(double, static_per_item_fraction, 0.02,
          "static mode: f, what each input after the first adds to a call, as a share of t_1");
ABSL_FLAG(uint64_t, kv_capacity_bytes, 0,
          "KV-cache bytes; 0 = GPU memory x gpu_count x 0.9 - the weights of --served_model_name");
ABSL_FLAG(std::string, http_address, "",
          "host:port of the OpenAI/Anthropic-compatible HTTP API; empty = no HTTP listener");
ABSL_FLAG(int32_t, http_threads, 2, "io threads of the HTTP listener");
ABSL_FLAG(std::string, served_model_name, "llama-3-8b",
          "model listed by /v1/models, labelled in /metrics and whose weights size the KV cache");
ABSL_FLAG(double, fault_429_rate, 0, "share of HTTP API requests answered 429, in [0, 1]");
ABSL_FLAG(double, fault_500_rate, 0, "share of HTTP API requests answered 500, in [0, 1]");
ABSL_FLAG(double, fault_503_rate, 0, "share of HTTP API requests answered 503, in [0, 1]");
ABSL_FLAG(int32_t, fault_reset_after_tokens, -1,
          "reset HTTP connections after this many tokens; -1 = never");
ABSL_FLAG(int32_t, fault_first_byte_delay_ms, 0, "delay before HTTP response headers, in ms");
ABSL_FLAG(bool, fault_omit_usage, false, "leave usage out of HTTP responses and streams");

namespace tollgate::sim {
namespace {

constexpr int kExitBadFlags = 2;
constexpr absl::Duration kShutdownGrace = absl::Seconds(2);

absl::StatusOr<EngineOptions> OptionsFromFlags() {
  absl::StatusOr<GpuSpec> gpu = FindGpu(absl::GetFlag(FLAGS_gpu));
  if (!gpu.ok()) return gpu.status();
  EngineOptions options;
  options.gpu = *std::move(gpu);
  options.gpu_count = absl::GetFlag(FLAGS_gpu_count);
  options.time_scale = absl::GetFlag(FLAGS_time_scale);
  options.mfu = absl::GetFlag(FLAGS_mfu);
  options.max_running_requests = absl::GetFlag(FLAGS_max_running_requests);
  options.max_static_batch = absl::GetFlag(FLAGS_max_static_batch);
  options.static_per_item_fraction = absl::GetFlag(FLAGS_static_per_item_fraction);
  if (options.gpu_count < 1) return absl::InvalidArgumentError("--gpu_count must be at least 1");
  if (!(options.time_scale >= 0)) {
    return absl::InvalidArgumentError("--time_scale must be zero or positive");
  }
  if (!(options.mfu > 0 && options.mfu <= 1)) {
    return absl::InvalidArgumentError("--mfu must be in (0, 1]");
  }
  if (options.max_running_requests < 1) {
    return absl::InvalidArgumentError("--max_running_requests must be at least 1");
  }
  if (const std::string mode = absl::GetFlag(FLAGS_batch_mode); mode == "static") {
    options.batch_mode = BatchMode::kStatic;
  } else if (mode != "continuous") {
    return absl::InvalidArgumentError("--batch_mode must be continuous or static");
  }
  if (options.max_static_batch < 1) {
    return absl::InvalidArgumentError("--max_static_batch must be at least 1");
  }
  if (!(options.static_per_item_fraction >= 0)) {
    return absl::InvalidArgumentError("--static_per_item_fraction must be zero or positive");
  }
  options.kv_capacity_bytes = absl::GetFlag(FLAGS_kv_capacity_bytes);
  if (options.kv_capacity_bytes == 0) {
    const std::string model = absl::GetFlag(FLAGS_served_model_name);
    const double capacity =
        KvCapacityBytesFor(options.gpu, options.gpu_count, ShapeForModel(model));
    if (capacity < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the weights of ", model, " leave no KV cache on ", options.gpu_count, " x ",
          options.gpu.name, " at 0.9 utilisation; raise --gpu_count or set --kv_capacity_bytes"));
    }
    options.kv_capacity_bytes = static_cast<uint64_t>(capacity);
  }
  return options;
}

absl::StatusOr<HttpApiOptions> HttpOptionsFromFlags() {
  HttpApiOptions options;
  options.served_model_name = absl::GetFlag(FLAGS_served_model_name);
  FaultDefaults& faults = options.faults;
  faults.rate_429 = absl::GetFlag(FLAGS_fault_429_rate);
  faults.rate_500 = absl::GetFlag(FLAGS_fault_500_rate);
  faults.rate_503 = absl::GetFlag(FLAGS_fault_503_rate);
  for (double rate : {faults.rate_429, faults.rate_500, faults.rate_503}) {
    if (!(rate >= 0 && rate <= 1)) {
      return absl::InvalidArgumentError("--fault_*_rate must be in [0, 1]");
    }
  }
  if (const int32_t tokens = absl::GetFlag(FLAGS_fault_reset_after_tokens); tokens >= 0) {
    faults.reset_after_tokens = static_cast<uint32_t>(tokens);
  }
  const int32_t delay_ms = absl::GetFlag(FLAGS_fault_first_byte_delay_ms);
  if (delay_ms < 0) return absl::InvalidArgumentError("--fault_first_byte_delay_ms must be >= 0");
  faults.first_byte_delay = absl::Milliseconds(delay_ms);
  faults.omit_usage = absl::GetFlag(FLAGS_fault_omit_usage);
  if (absl::GetFlag(FLAGS_http_threads) < 1) {
    return absl::InvalidArgumentError("--http_threads must be at least 1");
  }
  return options;
}

// "0.0.0.0:50061" -> "0.0.0.0"; "[::]:0" -> "[::]".
std::string HostOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage("Simulated LLM model server for Tollgate.");
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  // Lock-order cycle checks (on in Debian's Abseil) cost every mutex acquisition; tests keep them.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (positional.size() > 1) {
    std::cerr << "tollgate-sim: unexpected argument " << positional[1] << "\n";
    return kExitBadFlags;
  }
  absl::StatusOr<EngineOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    std::cerr << "tollgate-sim: " << options.status().message() << "\n";
    return kExitBadFlags;
  }

  // Blocked before any thread starts, so every thread inherits the mask and sigwait receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<HttpApiOptions> http_options = HttpOptionsFromFlags();
  if (!http_options.ok()) {
    std::cerr << "tollgate-sim: " << http_options.status().message() << "\n";
    return kExitBadFlags;
  }

  SimEngine engine(*std::move(options));
  SimService service(&engine);
  SimHttpApi http_api(&engine, *std::move(http_options));
  const std::string address = absl::GetFlag(FLAGS_address);
  absl::StatusOr<SimServer> server = StartSimServer(address, &service);
  if (!server.ok()) {
    std::cerr << "tollgate-sim: " << server.status().message() << "\n";
    return 1;
  }
  std::cout << "tollgate-sim listening on " << HostOf(address) << ":" << server->port << std::endl;
  std::unique_ptr<http::HttpServer> http_server;
  if (const std::string http_address = absl::GetFlag(FLAGS_http_address); !http_address.empty()) {
    http::ServerOptions http_server_options;
    http_server_options.address = http_address;
    http_server_options.threads = absl::GetFlag(FLAGS_http_threads);
    http_server_options.error_body = &SimHttpApi::ServerErrorBody;
    absl::StatusOr<std::unique_ptr<http::HttpServer>> started =
        http::HttpServer::Start(std::move(http_server_options), http_api.Handler());
    if (!started.ok()) {
      std::cerr << "tollgate-sim: " << started.status().message() << "\n";
      server->server->Shutdown(absl::ToChronoTime(absl::Now()));
      server->server->Wait();
      return 1;
    }
    http_server = *std::move(started);
    std::cout << "tollgate-sim http listening on " << HostOf(http_address) << ":"
              << http_server->port() << std::endl;
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  if (http_server != nullptr) http_server->Shutdown(kShutdownGrace);
  server->server->Shutdown(absl::ToChronoTime(absl::Now() + kShutdownGrace));
  server->server->Wait();
  return 0;
}

}  // namespace
}  // namespace tollgate::sim

int main(int argc, char** argv) { return tollgate::sim::Run(argc, argv); }
