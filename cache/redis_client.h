// An asynchronous, pipelined Redis client: one connection, one I/O thread, many commands in flight.
//
// Callers queue commands from any thread and never wait on the network. The I/O thread writes them
// to the one connection as they come (pipelining: it does not wait for a reply before sending the
// next command) and matches replies to commands in order. Every command ends exactly once:
//
//   - with the server's reply, which may be an error reply (RedisReply::Type::kError: WRONGTYPE,
//     NOSCRIPT, a script's error) — that is an answer, not a failure;
//   - UNAVAILABLE when the connection is down or max_pending commands are outstanding (at once:
//     callers do not wait for a timeout while Redis is down), or when no reply came within
//     command_timeout (a reply arriving later is dropped), or when the connection breaks first;
//   - CANCELLED when the client is destroyed first.
//
// The client connects by itself and reconnects after a failed attempt or a broken connection,
// waiting reconnect_backoff, doubling up to max_reconnect_backoff, back to reconnect_backoff once
// up. AUTH, SELECT and a PING run on each new connection before it counts as up. A connection whose
// oldest unanswered command is overdue by unresponsive_timeout is presumed dead (a stopped server,
// a lost network path) and reopened.
//
// hiredis supplies the RESP encoder and reply reader; the client owns its socket and its poll()
// loop, woken through an eventfd.
//
// Example:
//   RedisMetrics redis_metrics(registry, "cache");
//   std::unique_ptr<RedisClient> redis = NewRedisClient({.host = "redis", .port = 6379},
//                                                       &redis_metrics);
//   redis->Command({"GET", key}, [](absl::StatusOr<RedisReply> reply) {
//     // on the I/O thread
//   });
//   absl::StatusOr<RedisReply> reply = redis->CommandSync({"INCRBY", counter, "5"});
//
// Thread safety: Command, CommandSync, up and WaitUntilUp may be called from any thread. Callbacks
// run one at a time on the I/O thread, never inside Command; they must be quick and must not
// block (they may call Command, not CommandSync). Destroying the client runs every outstanding
// callback (CANCELLED) on the I/O thread, then joins it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cache/redis_metrics.h"
#include "cache/redis_reply.h"

namespace tollgate {

struct RedisOptions {
  std::string host = "127.0.0.1";  // a name is resolved on the I/O thread at each connect
  int port = 6379;
  std::string username;  // Redis 6 ACL user; empty: the default user
  std::string password;  // non-empty: AUTH [username] password on connect
  int db = 0;            // non-zero: SELECT db on connect
  // From the start of a connection attempt to the answer of its AUTH / SELECT / PING.
  absl::Duration connect_timeout = absl::Milliseconds(100);
  // From Command to the reply. CommandSync waits this long plus kCommandSyncSlack at most.
  absl::Duration command_timeout = absl::Milliseconds(20);
  // The wait after a failure; doubles after each failed attempt up to max_reconnect_backoff.
  absl::Duration reconnect_backoff = absl::Milliseconds(250);
  absl::Duration max_reconnect_backoff = absl::Seconds(5);
  // How long past its command_timeout the oldest unanswered command may stay unanswered before the
  // connection is presumed dead and reopened.
  absl::Duration unresponsive_timeout = absl::Seconds(1);
  // Commands accepted and not yet ended; more are refused with UNAVAILABLE.
  size_t max_pending = 10000;
};

// How much longer than command_timeout CommandSync waits, for the I/O thread to deliver a timeout.
inline constexpr absl::Duration kCommandSyncSlack = absl::Milliseconds(50);

class RedisClient {
 public:
  using Callback = std::function<void(absl::StatusOr<RedisReply>)>;

  virtual ~RedisClient() = default;

  // Queues `argv` (a command and its arguments, binary-safe) and calls `done` exactly once, on
  // the I/O thread, with the reply or an error as listed above. REQUIRES: argv is not empty.
  virtual void Command(std::vector<std::string> argv, Callback done) = 0;

  // Command, waiting for the outcome: at most command_timeout + kCommandSyncSlack, then
  // UNAVAILABLE. FAILED_PRECONDITION when called on the I/O thread (from a callback), which would
  // wait for itself.
  virtual absl::StatusOr<RedisReply> CommandSync(std::vector<std::string> argv) = 0;

  // Whether the connection is up: commands are being sent rather than refused.
  virtual bool up() const = 0;

  // Waits until the connection is up or `timeout` passes; returns up(). For start-up and tests.
  virtual bool WaitUntilUp(absl::Duration timeout) const = 0;
};

// Starts the I/O thread, which connects at once. `metrics` is optional and must outlive the client.
std::unique_ptr<RedisClient> NewRedisClient(RedisOptions options, RedisMetrics* metrics = nullptr);

}  // namespace tollgate
