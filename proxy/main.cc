// tollgate: the proxy executable.
//
//   tollgate --config tollgate.yaml        run; SIGHUP reloads, SIGTERM/SIGINT drain and exit 0
//   tollgate --check-config tollgate.yaml  validate the file, exit 0 (valid) or 1 (invalid)
//   tollgate ledger summarize FILE... [--from T] [--to T] [--by tenant|model|backend]
//   tollgate count-tokens --tokenizer NAME [--ids] [FILE]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "accounting/ledger/summarize.h"
#include "proxy/common/log.h"
#include "proxy/count_tokens.h"
#include "proxy/server.h"
#include "proxy/tokenizers.h"

ABSL_FLAG(std::string, config, "", "YAML config file to run with");
ABSL_FLAG(std::string, check_config, "", "Validate this YAML config file and exit");
ABSL_FLAG(std::string, tokenizer, "",
          "count-tokens: cl100k_base, o200k_base, llama3, llama2 or mistral");
ABSL_FLAG(bool, ids, false, "count-tokens: also print the token ids");
ABSL_FLAG(std::string, vocab_dir,
          std::getenv("TOLLGATE_VOCAB_DIR") != nullptr ? std::getenv("TOLLGATE_VOCAB_DIR")
                                                       : ".cache/tokenizer",
          "count-tokens: the vocabulary directory (scripts/fetch_vocab fills it)");

namespace {

int CheckConfig(const std::string& path) {
  absl::StatusOr<std::shared_ptr<const tollgate::Config>> config = tollgate::LoadConfigFile(path);
  if (!config.ok()) {
    std::cerr << path << ": " << config.status().message() << "\n";
    return 1;
  }
  tollgate::TokenizerCache tokenizers;
  if (absl::Status loaded = tokenizers.ForConfig(**config).status(); !loaded.ok()) {
    std::cerr << path << ": " << loaded.message() << "\n";
    return 1;
  }
  std::cout << path << ": OK (" << (*config)->tenant_names.size() << " tenants, "
            << (*config)->models.size() << " models, " << (*config)->backends.size()
            << " backends)\n";
  return 0;
}

int Run(const std::string& path) {
  // Block the signals in every thread (gRPC's included); this thread takes them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = tollgate::ProxyServer::Start(path);
  if (!server.ok()) {
    std::cerr << "tollgate: " << server.status().message() << "\n";
    return 1;
  }
  const std::string host = "127.0.0.1";
  std::printf("tollgate listening grpc=%s:%d metrics=%s:%d", host.c_str(), (*server)->grpc_port(),
              host.c_str(), (*server)->metrics_port());
  if ((*server)->http_port() != 0) std::printf(" http=%s:%d", host.c_str(), (*server)->http_port());
  std::printf("\n");
  std::fflush(stdout);
  tollgate::Log("serving ", path, " (grpc port ", (*server)->grpc_port(), ", metrics port ",
                (*server)->metrics_port(), ")");

  while (true) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal == SIGHUP) {
      (*server)->Reload().IgnoreError();  // logged inside; the old config stays on error
      continue;
    }
    const absl::Duration drain = (*server)->config()->listeners.drain_timeout;
    tollgate::Log("signal ", signal, ": draining calls in flight (up to ",
                  absl::FormatDuration(drain), ")");
    (*server)->Shutdown(drain);
    tollgate::Log("stopped");
    return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tollgate --config FILE | --check-config FILE | count-tokens --tokenizer NAME [--ids] "
      "[FILE] | ledger summarize FILE... [--from T] [--to T] [--by tenant|model|backend]\n"
      "LLM cost-accounting gRPC proxy. See README.md.");
  // `ledger summarize` has flags of its own (--from, --to, --by), read before absl's.
  if (argc >= 3 && std::string(argv[1]) == "ledger" && std::string(argv[2]) == "summarize") {
    absl::StatusOr<tollgate::SummarizeCommand> command =
        tollgate::ParseSummarizeArgs(std::vector<std::string>(argv + 3, argv + argc));
    if (!command.ok()) {
      std::cerr << "ledger summarize: " << command.status().message() << "\n"
                << tollgate::kSummarizeUsage << "\n";
      return 2;
    }
    return tollgate::SummarizeLedger(command->files, command->options, std::cout, std::cerr);
  }
  // The documented spelling is --check-config; absl flags spell it --check_config.
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& arg : args) {
    if (arg.rfind("--check-config", 0) == 0) arg.replace(0, 14, "--check_config");
  }
  std::vector<char*> arg_ptrs;
  arg_ptrs.reserve(args.size());
  for (std::string& arg : args) arg_ptrs.push_back(arg.data());
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  // Debian's Abseil checks every mutex acquisition for lock-order cycles (a debugging aid that
  // showed in request-path profiles); tests keep it, the server does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (positional.size() >= 2 && std::string(positional[1]) == "count-tokens") {
    if (positional.size() > 3) {
      std::cerr << "usage: tollgate count-tokens --tokenizer NAME [--ids] [FILE]\n";
      return 2;
    }
    return tollgate::CountTokens(absl::GetFlag(FLAGS_tokenizer), absl::GetFlag(FLAGS_vocab_dir),
                                 absl::GetFlag(FLAGS_ids),
                                 positional.size() == 3 ? positional[2] : "");
  }
  if (!absl::GetFlag(FLAGS_check_config).empty())
    return CheckConfig(absl::GetFlag(FLAGS_check_config));
  if (!absl::GetFlag(FLAGS_config).empty()) return Run(absl::GetFlag(FLAGS_config));
  std::cerr << absl::ProgramUsageMessage() << "\n";
  return 2;
}
