// A real redis-server for tests: started on a free loopback port with its own temporary directory,
// no persistence, and stopped (SIGKILL) when the object goes away.
//
//   absl::StatusOr<std::unique_ptr<RedisServer>> redis = RedisServer::Start();
//   if (!redis.ok()) GTEST_SKIP() << redis.status();  // only where redis-server is not installed
//   RedisOptions options{.host = "127.0.0.1", .port = (*redis)->port()};
//   ...
//   ASSERT_TRUE((*redis)->Kill().ok());     // the server dies (SIGKILL): clients see a dead port
//   ASSERT_TRUE((*redis)->Restart().ok());  // same port, empty data set, answers PING on return
//
// Every server picks its own port (the kernel's choice for a port-0 bind, re-checked by the start),
// so tests that ctest runs in parallel processes do not meet. Start and Restart return once the
// server answers PING, or an error (with the server's log) after `start_timeout`.
//
// Thread safety: one thread at a time (a test's main thread). The server is a separate process, so
// any number of clients in any threads or processes may talk to it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tollgate::testing {

struct RedisServerOptions {
  // Extra redis-server arguments, e.g. {"--requirepass", "secret"}.
  std::vector<std::string> extra_args;
  absl::Duration start_timeout = absl::Seconds(20);
  // Empty: $TOLLGATE_REDIS_SERVER, else redis-server on PATH, else /usr/bin/redis-server.
  std::string binary = "";
};

class RedisServer {
 public:
  // Starts a server. NOT_FOUND when there is no redis-server binary (tests may skip on that only).
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(RedisServerOptions options = {});

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer();  // SIGKILLs the server, removes its directory

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  std::string address() const;  // "127.0.0.1:port"
  const std::string& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }

  // SIGKILL and reap: connections break at once, the port refuses connections.
  absl::Status Kill();
  // Starts the server again on the same port (killing it first if it runs). The data set is empty.
  absl::Status Restart();
  // SIGSTOP / SIGCONT: the server keeps its connections but answers nothing while paused.
  absl::Status Pause();
  absl::Status Resume();

  // The server's log (stdout and stderr), for failure messages.
  std::string Log() const;

 private:
  RedisServer(RedisServerOptions options, std::string binary, std::string dir);
  absl::Status Launch();
  absl::Status WaitForPing();

  const RedisServerOptions options_;
  const std::string binary_;
  const std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

// A fixture with a fresh server per test (options from server_options(), which a derived fixture
// may override). It skips, with the reason, only where redis-server is not installed.
class RedisServerTest : public ::testing::Test {
 protected:
  virtual RedisServerOptions server_options() const { return {}; }

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start(server_options());
    if (absl::IsNotFound(server.status())) GTEST_SKIP() << server.status();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<RedisServer> server_;
};

// Sends one command over a fresh blocking connection and returns the reply as text (a status,
// string or integer reply; an array's elements joined by '\n'), or an error. For tests that look
// at the server behind a client's back (key TTLs, SCRIPT FLUSH).
absl::StatusOr<std::string> RedisCall(int port, const std::vector<std::string>& argv);

}  // namespace tollgate::testing
