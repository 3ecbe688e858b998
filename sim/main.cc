// tollgate-sim: a simulated model server speaking tollgate.v1.Inference.
//
//   tollgate-sim --address=127.0.0.1:0 --gpu=h100-80gb --time_scale=0.1
//
// Prints `tollgate-sim listening on HOST:PORT` once serving; SIGINT or SIGTERM shut it down
// (exit 0). Invalid flag values exit 2.
#include <pthread.h>

#include <csignal>
#include <cstdint>
#include <iostream>
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
#include "sim/engine.h"
#include "sim/presets.h"
#include "sim/server.h"

ABSL_FLAG(std::string, address, "0.0.0.0:50061", "host:port to listen on; port 0 picks one");
ABSL_FLAG(std::string, gpu, "a100-80gb", "GPU preset: a10g, a100-80gb, h100-80gb");
ABSL_FLAG(uint32_t, gpu_count, 1, "GPUs serving the model (tensor parallel)");
ABSL_FLAG(double, time_scale, 1.0, "multiplies every simulated delay; 0 answers instantly");
ABSL_FLAG(double, mfu, 0.5, "model FLOPs utilisation during prefill, in (0, 1]");
ABSL_FLAG(uint32_t, max_running_requests, 256, "requests decoded together in one batch");

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

  SimEngine engine(*std::move(options));
  SimService service(&engine);
  const std::string address = absl::GetFlag(FLAGS_address);
  absl::StatusOr<SimServer> server = StartSimServer(address, &service);
  if (!server.ok()) {
    std::cerr << "tollgate-sim: " << server.status().message() << "\n";
    return 1;
  }
  std::cout << "tollgate-sim listening on " << HostOf(address) << ":" << server->port << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->server->Shutdown(absl::ToChronoTime(absl::Now() + kShutdownGrace));
  server->server->Wait();
  return 0;
}

}  // namespace
}  // namespace tollgate::sim

int main(int argc, char** argv) { return tollgate::sim::Run(argc, argv); }
