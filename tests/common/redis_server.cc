#include "tests/common/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/common/free_port.h"

extern char** environ;

namespace tollgate::testing {
namespace {

constexpr int kPortAttempts = 5;

bool IsExecutable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

std::string FindBinary(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("TOLLGATE_REDIS_SERVER"); env != nullptr && *env != '\0') {
    return env;
  }
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      std::string candidate = absl::StrCat(dir, "/redis-server");
      if (IsExecutable(candidate)) return candidate;
    }
  }
  return "/usr/bin/redis-server";
}

std::string ReplyText(const redisReply* reply) {
  switch (reply->type) {
    case REDIS_REPLY_INTEGER:
      return absl::StrCat(reply->integer);
    case REDIS_REPLY_ARRAY: {
      std::vector<std::string> parts;
      for (size_t i = 0; i < reply->elements; ++i) parts.push_back(ReplyText(reply->element[i]));
      return absl::StrJoin(parts, "\n");
    }
    case REDIS_REPLY_NIL:
      return "";
    default:
      return {reply->str, reply->len};
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(RedisServerOptions options) {
  std::string binary = FindBinary(options.binary);
  if (!IsExecutable(binary)) {
    return absl::NotFoundError(
        absl::StrCat("no redis-server binary (tried ", binary,
                     "; set TOLLGATE_REDIS_SERVER or install redis-server)"));
  }
  std::string pattern = (std::filesystem::temp_directory_path() / "tollgate-redis-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  std::unique_ptr<RedisServer> server(
      new RedisServer(std::move(options), std::move(binary), std::move(pattern)));
  // The port is free when picked but another process may take it before redis binds: try again.
  absl::Status status;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) return port.status();
    server->port_ = *port;
    status = server->Launch();
    if (status.ok()) return server;
    server->Kill().IgnoreError();
  }
  return status;
}

RedisServer::RedisServer(RedisServerOptions options, std::string binary, std::string dir)
    : options_(std::move(options)), binary_(std::move(binary)), dir_(std::move(dir)) {}

RedisServer::~RedisServer() {
  Kill().IgnoreError();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RedisServer::address() const { return absl::StrCat(host(), ":", port_); }

absl::Status RedisServer::Launch() {
  std::vector<std::string> args = {binary_,
                                   "--port",
                                   absl::StrCat(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--daemonize",
                                   "no",
                                   "--dir",
                                   dir_,
                                   "--protected-mode",
                                   "no"};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const std::string log_path = dir_ + "/redis.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    return absl::InternalError(absl::StrCat("posix_spawn ", binary_, ": ", std::strerror(rc)));
  }
  paused_ = false;
  return WaitForPing();
}

absl::Status RedisServer::WaitForPing() {
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  absl::Duration pause = absl::Milliseconds(5);
  while (absl::Now() < deadline) {
    int wstatus = 0;
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("redis-server on port ", port_, " exited at start:\n", Log()));
    }
    // An error reply (NOAUTH with --requirepass) is an answer too.
    absl::StatusOr<std::string> pong = RedisCall(port_, {"PING"});
    if ((pong.ok() && *pong == "PONG") || absl::IsFailedPrecondition(pong.status())) {
      return absl::OkStatus();
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("redis-server on port ", port_, " did not answer PING in time:\n", Log()));
}

absl::Status RedisServer::Kill() {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGKILL);
  int wstatus = 0;
  while (waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  paused_ = false;
  return absl::OkStatus();
}

absl::Status RedisServer::Restart() {
  if (absl::Status killed = Kill(); !killed.ok()) return killed;
  // The old socket may linger briefly; redis sets SO_REUSEADDR, but retry a few times anyway.
  absl::Status status;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    status = Launch();
    if (status.ok()) return status;
    Kill().IgnoreError();
    absl::SleepFor(absl::Milliseconds(200));
  }
  return status;
}

absl::Status RedisServer::Pause() {
  if (pid_ <= 0) return absl::FailedPreconditionError("redis-server is not running");
  if (kill(pid_, SIGSTOP) != 0) return absl::InternalError(std::strerror(errno));
  paused_ = true;
  return absl::OkStatus();
}

absl::Status RedisServer::Resume() {
  if (pid_ <= 0) return absl::FailedPreconditionError("redis-server is not running");
  if (kill(pid_, SIGCONT) != 0) return absl::InternalError(std::strerror(errno));
  paused_ = false;
  return absl::OkStatus();
}

std::string RedisServer::Log() const {
  std::ifstream in(dir_ + "/redis.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<std::string> RedisCall(int port, const std::vector<std::string>& argv) {
  timeval timeout{2, 0};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port, timeout);
  if (context == nullptr) return absl::InternalError("redisConnectWithTimeout: out of memory");
  if (context->err != 0) {
    std::string error = context->errstr;
    redisFree(context);
    return absl::UnavailableError(error);
  }
  redisSetTimeout(context, timeout);
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const std::string& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(args.size()), args.data(), lengths.data()));
  absl::StatusOr<std::string> result;
  if (reply == nullptr) {
    result = absl::UnavailableError(context->errstr);
  } else if (reply->type == REDIS_REPLY_ERROR) {
    result = absl::FailedPreconditionError(std::string(reply->str, reply->len));
  } else if (reply->type == REDIS_REPLY_NIL) {
    result = absl::NotFoundError("nil");
  } else {
    result = ReplyText(reply);
  }
  if (reply != nullptr) freeReplyObject(reply);
  redisFree(context);
  return result;
}

}  // namespace tollgate::testing
