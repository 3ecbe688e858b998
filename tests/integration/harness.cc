#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "proxy/common/status_macros.h"

extern char** environ;

namespace tollgate::testing {

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

absl::Status ChildProcess::Start(const std::vector<std::string>& argv,
                                 const std::string& stderr_path) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    pid_ = -1;
    return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": errno ", rc));
  }
  stdout_fd_ = pipe_fds[0];
  return absl::OkStatus();
}

absl::StatusOr<std::string> ChildProcess::WaitForLine(const std::string& prefix,
                                                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    size_t newline;
    while ((newline = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (line.rfind(prefix, 0) == 0) return line;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("no line starting with \"", prefix, "\""));
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    char chunk[4096];
    const ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
    if (n <= 0) return absl::UnavailableError("the process closed its stdout");
    buffer_.append(chunk, n);
  }
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (absl::Now() > deadline) return absl::DeadlineExceededError("process did not exit");
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::FailedPreconditionError("not running");
}

absl::StatusOr<SimAddresses> StartSim(ChildProcess& sim, const std::vector<std::string>& flags,
                                      const std::string& stderr_path) {
  std::vector<std::string> argv = {Binary("sim/tollgate-sim"), "--address=127.0.0.1:0",
                                   "--http_address=127.0.0.1:0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  TG_RETURN_IF_ERROR(sim.Start(argv, stderr_path));
  TG_ASSIGN_OR_RETURN(const std::string grpc,
                      sim.WaitForLine("tollgate-sim listening on ", absl::Seconds(30)));
  TG_ASSIGN_OR_RETURN(const std::string http,
                      sim.WaitForLine("tollgate-sim http listening on ", absl::Seconds(30)));
  return SimAddresses{grpc.substr(grpc.rfind(' ') + 1), http.substr(http.rfind(' ') + 1)};
}

std::string FieldAfter(const std::string& line, const std::string& key) {
  const std::string needle = key + "=";
  const size_t at = line.find(needle);
  if (at == std::string::npos) return "";
  const size_t start = at + needle.size();
  return line.substr(start, line.find(' ', start) - start);
}

absl::StatusOr<HttpResponse> HttpCall(const std::string& address, const std::string& method,
                                      const std::string& path,
                                      const std::map<std::string, std::string>& headers,
                                      const std::string& body) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError("bad address " + address);
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError("cannot connect to " + address);
  }
  // HTTP/1.0 with an explicit close: some servers keep even 1.0 connections alive otherwise.
  std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: ", address, "\r\nConnection: close\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&request, name, ": ", value, "\r\n");
  if (!body.empty() || method == "POST") {
    absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&request, "\r\n", body);
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = write(fd, request.data() + sent, request.size() - sent);
    if (n <= 0) break;  // the server may answer (413) before reading everything
    sent += n;
  }
  std::string raw;
  char chunk[65536];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof(chunk))) > 0) raw.append(chunk, n);
  close(fd);
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) {
    return absl::UnavailableError("malformed HTTP response: " + raw.substr(0, 200));
  }
  HttpResponse response;
  std::vector<std::string> lines = absl::StrSplit(raw.substr(0, end), "\r\n");
  if (lines.empty() || !absl::SimpleAtoi(lines[0].substr(9, 3), &response.status)) {
    return absl::UnavailableError("malformed status line");
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t sep = lines[i].find(':');
    if (sep == std::string::npos) continue;
    response.headers[absl::AsciiStrToLower(lines[i].substr(0, sep))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(sep + 1)));
  }
  response.body = raw.substr(end + 4);
  return response;
}

std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> data;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    line = absl::StripTrailingAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "data:")) {
      data.emplace_back(absl::StripLeadingAsciiWhitespace(line));
    }
  }
  return data;
}

absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path) {
  absl::StatusOr<HttpResponse> response = HttpCall(address, "GET", path, {}, "");
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError(absl::StrCat("HTTP status ", response->status));
  }
  return response->body;
}

std::string Binary(const std::string& relative) {
  return absl::StrCat(TOLLGATE_BINARY_DIR, "/", relative);
}

std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      continue;
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

double SumSamples(const std::map<std::string, double>& samples, const std::string& name,
                  const std::map<std::string, std::string>& labels) {
  double sum = 0;
  for (const auto& [key, value] : samples) {
    if (key.rfind(name + "{", 0) != 0 && key != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      const std::string pair = absl::StrCat(k, "=\"", v, "\"");
      const size_t at = key.find(pair);
      // A whole label: preceded by { or , and followed by , or }.
      if (at == std::string::npos || (key[at - 1] != '{' && key[at - 1] != ',') ||
          (key[at + pair.size()] != ',' && key[at + pair.size()] != '}')) {
        all = false;
        break;
      }
    }
    if (all) sum += value;
  }
  return sum;
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), pipe)) > 0) result.output.append(chunk, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string MakeTempDir() {
  std::string pattern = "/tmp/tollgate-test-XXXXXX";
  return mkdtemp(pattern.data());
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::trunc) << contents;
}

}  // namespace tollgate::testing
