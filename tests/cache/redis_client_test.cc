#include "cache/redis_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/cache/redis_test_util.h"
#include "tests/common/redis_server.h"

namespace tollgate {
namespace {

using ::testing::HasSubstr;
using testing::RedisCall;

class RedisClientTest : public testing::RedisServerTest {
 protected:
  RedisOptions Options() const { return TestRedisOptions(server_->port()); }

  std::unique_ptr<RedisClient> Connect(RedisOptions options, RedisMetrics* metrics = nullptr) {
    std::unique_ptr<RedisClient> client = NewRedisClient(std::move(options), metrics);
    EXPECT_TRUE(client->WaitUntilUp(kPatience)) << server_->Log();
    return client;
  }
};

TEST_F(RedisClientTest, SetsAndGetsBinaryValues) {
  auto client = Connect(Options());
  const std::string value("a\0b\r\nc", 6);
  absl::StatusOr<RedisReply> set = client->CommandSync({"SET", "k", value});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(*set, RedisReply::Status("OK"));
  absl::StatusOr<RedisReply> get = client->CommandSync({"GET", "k"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(*get, RedisReply::String(value));
  EXPECT_EQ(*client->CommandSync({"GET", "missing"}), RedisReply::Nil());
}

TEST_F(RedisClientTest, PipelinesThousandsOfCommandsFromManyThreadsOnOneConnection) {
  auto client = Connect(Options());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  std::atomic<int> answered = 0;
  std::atomic<int> failed = 0;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread's own counter: replies in order are 1, 2, 3... if matched to their commands.
      const std::string key = absl::StrCat("counter-", t);
      auto expected = std::make_shared<std::atomic<int64_t>>(1);
      for (int i = 0; i < kPerThread; ++i) {
        client->Command({"INCR", key}, [&, expected](absl::StatusOr<RedisReply> reply) {
          if (!reply.ok() || reply->integer != expected->fetch_add(1)) ++failed;
          ++answered;
        });
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(WaitFor([&] { return answered == kThreads * kPerThread; }));
  EXPECT_EQ(failed, 0);
  absl::StatusOr<std::string> clients = RedisCall(server_->port(), {"INFO", "clients"});
  ASSERT_TRUE(clients.ok()) << clients.status();
  EXPECT_THAT(*clients, HasSubstr("connected_clients:2"));  // the client's one and RedisCall's
}

TEST_F(RedisClientTest, AnErrorReplyIsAReplyNotAFailure) {
  prometheus::Registry registry;
  RedisMetrics metrics(registry, "test");
  auto client = Connect(Options(), &metrics);
  ASSERT_TRUE(client->CommandSync({"LPUSH", "list", "x"}).ok());
  absl::StatusOr<RedisReply> reply = client->CommandSync({"INCR", "list"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->HasErrorCode("WRONGTYPE")) << reply->DebugString();
  EXPECT_EQ(CounterValue(registry, "tollgate_redis_errors_total", "reply"), 1);
  EXPECT_TRUE(client->up());
}

TEST_F(RedisClientTest, CallbacksRunOnTheIoThreadEvenWhenRefused) {
  RedisOptions dead = Options();
  dead.port = 1;  // nothing listens there
  for (const RedisOptions& options : {Options(), dead}) {
    std::unique_ptr<RedisClient> client = NewRedisClient(options);
    client->WaitUntilUp(options.port == 1 ? absl::ZeroDuration() : kPatience);
    absl::Mutex mu;
    bool done = false;
    std::thread::id callback_thread;
    client->Command({"PING"}, [&](const absl::StatusOr<RedisReply>&) {
      absl::MutexLock lock(&mu);
      callback_thread = std::this_thread::get_id();
      done = true;
    });
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&done), kPatience));
    EXPECT_NE(callback_thread, std::this_thread::get_id());
  }
}

TEST_F(RedisClientTest, FailsFastWhileNothingListens) {
  prometheus::Registry registry;
  RedisMetrics metrics(registry, "test");
  RedisOptions options = Options();
  ASSERT_TRUE(server_->Kill().ok());
  options.command_timeout = absl::Seconds(30);  // a fast answer cannot be this timeout
  auto client = NewRedisClient(options, &metrics);
  ASSERT_TRUE(WaitFor(
      [&] { return CounterValue(registry, "tollgate_redis_errors_total", "connect") > 0; }));
  const absl::Time start = absl::Now();
  absl::StatusOr<RedisReply> reply = client->CommandSync({"PING"});
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_FALSE(client->up());
  EXPECT_EQ(GaugeValue(registry, "tollgate_redis_up"), 0);
  EXPECT_GE(CounterValue(registry, "tollgate_redis_errors_total", "unavailable"), 1);
}

TEST_F(RedisClientTest, ReconnectsAfterTheServerIsKilledAndRestarted) {
  prometheus::Registry registry;
  RedisMetrics metrics(registry, "test");
  auto client = Connect(Options(), &metrics);
  EXPECT_EQ(GaugeValue(registry, "tollgate_redis_up"), 1);

  ASSERT_TRUE(server_->Kill().ok());
  ASSERT_TRUE(WaitFor([&] { return !client->up(); }));
  EXPECT_EQ(GaugeValue(registry, "tollgate_redis_up"), 0);
  EXPECT_EQ(client->CommandSync({"PING"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CounterValue(registry, "tollgate_redis_errors_total", "disconnect"), 1);

  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(client->WaitUntilUp(kPatience));
  absl::StatusOr<RedisReply> pong = client->CommandSync({"PING"});
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(*pong, RedisReply::Status("PONG"));
  EXPECT_EQ(GaugeValue(registry, "tollgate_redis_up"), 1);
}

TEST_F(RedisClientTest, TimesOutWhenTheServerStopsAnsweringAndDropsTheLateReply) {
  prometheus::Registry registry;
  RedisMetrics metrics(registry, "test");
  RedisOptions options = Options();
  options.command_timeout = absl::Milliseconds(200);
  options.unresponsive_timeout = absl::Hours(1);  // keep the connection through the pause
  auto client = Connect(options, &metrics);

  ASSERT_TRUE(server_->Pause().ok());
  std::atomic<int> calls = 0;
  absl::Notification timed_out;
  absl::Status status;
  client->Command({"SET", "k", "late"}, [&](const absl::StatusOr<RedisReply>& reply) {
    status = reply.status();
    if (++calls == 1) timed_out.Notify();
  });
  ASSERT_TRUE(timed_out.WaitForNotificationWithTimeout(kPatience));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(CounterValue(registry, "tollgate_redis_errors_total", "timeout"), 1);

  // The server then executes the SET and answers; that reply must not be taken for the GET's.
  ASSERT_TRUE(server_->Resume().ok());
  absl::StatusOr<RedisReply> get;
  ASSERT_TRUE(WaitFor([&] {
    get = client->CommandSync({"GET", "k"});
    return get.ok();
  }));
  EXPECT_EQ(*get, RedisReply::String("late"));
  EXPECT_EQ(calls, 1);
}

TEST_F(RedisClientTest, ReopensAConnectionThatStopsAnswering) {
  prometheus::Registry registry;
  RedisMetrics metrics(registry, "test");
  RedisOptions options = Options();
  options.command_timeout = absl::Milliseconds(100);
  options.connect_timeout = absl::Milliseconds(300);
  options.unresponsive_timeout = absl::Milliseconds(300);
  auto client = Connect(options, &metrics);

  ASSERT_TRUE(server_->Pause().ok());
  EXPECT_EQ(client->CommandSync({"PING"}).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(WaitFor([&] { return !client->up(); }));
  EXPECT_GE(CounterValue(registry, "tollgate_redis_errors_total", "disconnect"), 1);
  // A stopped server still accepts TCP connections (the kernel does); its silence keeps it down.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_FALSE(client->up());

  ASSERT_TRUE(server_->Resume().ok());
  ASSERT_TRUE(client->WaitUntilUp(kPatience));
  EXPECT_TRUE(client->CommandSync({"PING"}).ok());
}

TEST_F(RedisClientTest, RefusesCommandsBeyondMaxPending) {
  RedisOptions options = Options();
  options.max_pending = 3;
  options.command_timeout = absl::Seconds(60);
  options.unresponsive_timeout = absl::Hours(1);
  auto client = Connect(options);
  ASSERT_TRUE(server_->Pause().ok());
  std::atomic<int> answered = 0;
  for (int i = 0; i < 3; ++i) {
    client->Command({"PING"}, [&](const absl::StatusOr<RedisReply>& reply) {
      EXPECT_TRUE(reply.ok()) << reply.status();
      ++answered;
    });
  }
  absl::Notification refused;
  client->Command({"PING"}, [&](const absl::StatusOr<RedisReply>& reply) {
    EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(reply.status().message(), HasSubstr("outstanding"));
    refused.Notify();
  });
  EXPECT_TRUE(refused.WaitForNotificationWithTimeout(kPatience));
  ASSERT_TRUE(server_->Resume().ok());
  EXPECT_TRUE(WaitFor([&] { return answered == 3; }));
}

TEST_F(RedisClientTest, DestructionCancelsOutstandingCommands) {
  RedisOptions options = Options();
  options.command_timeout = absl::Seconds(60);
  options.unresponsive_timeout = absl::Hours(1);
  auto client = Connect(options);
  RedisClient* raw = client.get();
  ASSERT_TRUE(server_->Pause().ok());
  std::atomic<int> cancelled = 0;
  std::atomic<int> requeued = 0;
  for (int i = 0; i < 10; ++i) {
    client->Command({"PING"}, [&](const absl::StatusOr<RedisReply>& reply) {
      if (absl::IsCancelled(reply.status())) ++cancelled;
      // A callback that queues more work while the client shuts down still gets its answer.
      raw->Command({"PING"}, [&](const absl::StatusOr<RedisReply>& again) {
        if (absl::IsCancelled(again.status())) ++requeued;
      });
    });
  }
  client.reset();
  EXPECT_EQ(cancelled, 10);
  EXPECT_EQ(requeued, 10);
  ASSERT_TRUE(server_->Resume().ok());
}

TEST_F(RedisClientTest, CommandSyncGivesUpAfterTheTimeout) {
  RedisOptions options = Options();
  options.command_timeout = absl::Milliseconds(200);
  options.unresponsive_timeout = absl::Hours(1);
  auto client = Connect(options);
  ASSERT_TRUE(server_->Pause().ok());
  const absl::Time start = absl::Now();
  EXPECT_EQ(client->CommandSync({"PING"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ASSERT_TRUE(server_->Resume().ok());
}

TEST_F(RedisClientTest, CommandSyncInsideACallbackIsRefusedInsteadOfDeadlocking) {
  auto client = Connect(Options());
  absl::Notification done;
  absl::Status inner;
  client->Command({"PING"}, [&](const absl::StatusOr<RedisReply>&) {
    inner = client->CommandSync({"PING"}).status();
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kPatience));
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition);
}

class RedisClientAuthTest : public testing::RedisServerTest {
 protected:
  testing::RedisServerOptions server_options() const override {
    return {.extra_args = {"--requirepass", "sesame"}};
  }
};

TEST_F(RedisClientAuthTest, AuthenticatesAndSelectsTheDatabase) {
  RedisOptions options = TestRedisOptions(server_->port());
  options.password = "sesame";
  options.db = 3;
  auto db3 = NewRedisClient(options);
  options.db = 0;
  auto db0 = NewRedisClient(options);
  ASSERT_TRUE(db3->WaitUntilUp(kPatience));
  ASSERT_TRUE(db0->WaitUntilUp(kPatience));
  ASSERT_TRUE(db3->CommandSync({"SET", "where", "three"}).ok());
  EXPECT_EQ(*db3->CommandSync({"GET", "where"}), RedisReply::String("three"));
  EXPECT_EQ(*db0->CommandSync({"GET", "where"}), RedisReply::Nil());
}

TEST_F(RedisClientAuthTest, AWrongPasswordKeepsTheClientDown) {
  prometheus::Registry registry;
  RedisMetrics metrics(registry, "test");
  RedisOptions options = TestRedisOptions(server_->port());
  options.password = "wrong";
  auto client = NewRedisClient(options, &metrics);
  ASSERT_TRUE(WaitFor(
      [&] { return CounterValue(registry, "tollgate_redis_errors_total", "connect") >= 2; }));
  EXPECT_FALSE(client->up());
}

// A server that answers PING and then breaks the protocol.
class GarbageServer {
 public:
  GarbageServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listen_fd_, 8), 0);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~GarbageServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  void Serve() {
    while (true) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      char buffer[4096];
      bool first = true;
      while (read(fd, buffer, sizeof(buffer)) > 0) {
        const std::string_view answer = first ? "+PONG\r\n" : "%garbage\r\n";
        first = false;
        if (write(fd, answer.data(), answer.size()) < 0) break;
      }
      close(fd);
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(RedisClient, AProtocolViolationBreaksTheConnectionNotTheProcess) {
  GarbageServer garbage;
  prometheus::Registry registry;
  RedisMetrics metrics(registry, "test");
  RedisOptions options = TestRedisOptions(garbage.port());
  options.reconnect_backoff = absl::Seconds(30);  // stay down after the violation
  auto client = NewRedisClient(options, &metrics);
  ASSERT_TRUE(client->WaitUntilUp(kPatience));
  absl::StatusOr<RedisReply> reply = client->CommandSync({"GET", "k"});
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_THAT(reply.status().message(), HasSubstr("protocol error"));
  EXPECT_FALSE(client->up());
  EXPECT_EQ(CounterValue(registry, "tollgate_redis_errors_total", "disconnect"), 1);
}

TEST(RedisMetrics, TwoClientsShareTheFamiliesUnderTheirOwnLabel) {
  prometheus::Registry registry;
  RedisMetrics cache(registry, "cache");
  RedisMetrics budgets(registry, "budgets");
  cache.SetUp(true);
  budgets.CountError(RedisErrorOp::kTimeout);
  EXPECT_EQ(GaugeValue(registry, "tollgate_redis_up", "cache"), 1);
  EXPECT_EQ(GaugeValue(registry, "tollgate_redis_up", "budgets"), 0);
  EXPECT_EQ(CounterValue(registry, "tollgate_redis_errors_total", "timeout", "budgets"), 1);
  EXPECT_EQ(CounterValue(registry, "tollgate_redis_errors_total", "timeout", "cache"), 0);
}

}  // namespace
}  // namespace tollgate
