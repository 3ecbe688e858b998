// Helpers for integration tests that run the real tollgate and tollgate-sim executables.
// Each helper is used by one test thread at a time.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tollgate::testing {

// A child process whose stdout is read line by line and whose stderr goes to a log file.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();  // SIGKILLs a child still running

  absl::Status Start(const std::vector<std::string>& argv, const std::string& stderr_path);
  // Reads stdout until a line starting with `prefix`; returns the line.
  absl::StatusOr<std::string> WaitForLine(const std::string& prefix, absl::Duration timeout);
  void Signal(int signal);
  // Waits for exit; returns the exit code (128 + signal when killed), or an error on timeout.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
};

// The listening addresses of a tollgate-sim, host:port each.
struct SimAddresses {
  std::string grpc;
  std::string http;
};

// Starts tollgate-sim with a gRPC and an HTTP listener on free loopback ports, plus `flags`, its
// stderr to `stderr_path`; returns once both listen.
absl::StatusOr<SimAddresses> StartSim(ChildProcess& sim, const std::vector<std::string>& flags,
                                      const std::string& stderr_path);

// The value after `key=` in a line like "tollgate listening grpc=127.0.0.1:5 metrics=...".
std::string FieldAfter(const std::string& line, const std::string& key);

// GET http://address/path over a plain socket; returns the body.
absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path);

// One HTTP/1.0 exchange (the body ends when the server closes the connection).
struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};
absl::StatusOr<HttpResponse> HttpCall(const std::string& address, const std::string& method,
                                      const std::string& path,
                                      const std::map<std::string, std::string>& headers,
                                      const std::string& body);

// The `data:` payloads of a server-sent event stream, in order.
std::vector<std::string> SseData(const std::string& body);

// Samples from the Prometheus text format: "name{labels}" → value, labels sorted as exposed.
std::map<std::string, double> ParseMetrics(const std::string& text);

// Sum of every sample named `name` whose labels include all of `labels` (k="v" pairs).
double SumSamples(const std::map<std::string, double>& samples, const std::string& name,
                  const std::map<std::string, std::string>& labels);

// Runs a shell command; returns its exit code and combined output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command);

// Path of a built executable, e.g. Binary("proxy/tollgate").
std::string Binary(const std::string& relative);

std::string MakeTempDir();
void WriteFile(const std::string& path, const std::string& contents);

}  // namespace tollgate::testing
