#include "cache/redis_client.h"

#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proxy/common/log.h"

namespace tollgate {
namespace {

using Clock = std::chrono::steady_clock;
using Callback = RedisClient::Callback;

Clock::duration ToClock(absl::Duration d) {
  return std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(d));
}

std::string Errno(int error) { return std::strerror(error); }

// A command queued by a caller, not yet taken by the I/O thread.
struct Submitted {
  std::vector<std::string> argv;
  Callback done;
  Clock::time_point deadline;
};

// A command written (or being written) to the connection, waiting for its reply. A command
// answered by its timeout keeps its place, with `done` empty, until its late reply is dropped.
struct InFlight {
  Callback done;
  Clock::time_point deadline;
  bool handshake = false;  // AUTH or SELECT of a new connection
};

class RedisClientImpl final : public RedisClient {
 public:
  RedisClientImpl(RedisOptions options, RedisMetrics* metrics)
      : options_(std::move(options)),
        metrics_(metrics),
        address_(absl::StrCat(options_.host, ":", options_.port)),
        wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
        backoff_(options_.reconnect_backoff) {
    if (metrics_ != nullptr) metrics_->SetUp(false);
    thread_ = std::thread([this] { Run(); });
    io_thread_id_ = thread_.get_id();
  }

  ~RedisClientImpl() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    Wake();
    thread_.join();
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  void Command(std::vector<std::string> argv, Callback done) override {
    if (!done) done = [](const absl::StatusOr<RedisReply>&) {};
    bool wake = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        refused_.emplace_back(std::move(done), absl::CancelledError("redis client shutting down"));
      } else if (!up_) {
        refused_.emplace_back(std::move(done),
                              absl::UnavailableError(absl::StrCat("redis ", address_, " is down")));
        CountError(RedisErrorOp::kUnavailable);
      } else if (pending_ >= options_.max_pending) {
        refused_.emplace_back(
            std::move(done), absl::UnavailableError(absl::StrCat("redis ", address_, ": ", pending_,
                                                                 " commands outstanding")));
        CountError(RedisErrorOp::kUnavailable);
      } else {
        ++pending_;
        submitted_.push_back(
            {std::move(argv), std::move(done), Clock::now() + ToClock(options_.command_timeout)});
      }
      wake = !wake_pending_;
      wake_pending_ = true;
    }
    if (wake) Wake();
  }

  absl::StatusOr<RedisReply> CommandSync(std::vector<std::string> argv) override {
    if (std::this_thread::get_id() == io_thread_id_) {
      return absl::FailedPreconditionError(
          "RedisClient::CommandSync called on the redis I/O thread, which would wait for itself");
    }
    struct Outcome {
      absl::Mutex mu;
      bool done ABSL_GUARDED_BY(mu) = false;
      absl::StatusOr<RedisReply> result ABSL_GUARDED_BY(mu);
    };
    auto outcome = std::make_shared<Outcome>();
    Command(std::move(argv), [outcome](absl::StatusOr<RedisReply> result) {
      absl::MutexLock lock(&outcome->mu);
      outcome->result = std::move(result);
      outcome->done = true;
    });
    absl::MutexLock lock(&outcome->mu);
    if (!outcome->mu.AwaitWithTimeout(absl::Condition(&outcome->done),
                                      options_.command_timeout + kCommandSyncSlack)) {
      return absl::UnavailableError(absl::StrCat("redis ", address_, ": no answer in time"));
    }
    return std::move(outcome->result);
  }

  bool up() const override {
    absl::MutexLock lock(&mu_);
    return up_;
  }

  bool WaitUntilUp(absl::Duration timeout) const override {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&up_), timeout);
  }

 private:
  enum class State { kDown, kConnecting, kHandshake, kUp };

  // --- Any thread.

  void Wake() {
    const uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) < 0 && errno != EAGAIN) {
      Log("redis ", address_, ": eventfd write: ", Errno(errno));
    }
  }

  void CountError(RedisErrorOp op) {
    if (metrics_ != nullptr) metrics_->CountError(op);
  }

  // --- The I/O thread.

  void Run() {
    Connect(Clock::now());
    while (true) {
      std::array<pollfd, 2> fds = {pollfd{wake_fd_, POLLIN, 0}, pollfd{fd_, 0, 0}};
      if (state_ == State::kConnecting) {
        fds[1].events = POLLOUT;
      } else if (fd_ >= 0) {
        fds[1].events = static_cast<int16_t>(POLLIN | (out_offset_ < out_.size() ? POLLOUT : 0));
      }
      const nfds_t count = fd_ >= 0 ? 2 : 1;
      if (poll(fds.data(), count, PollTimeoutMs(Clock::now())) < 0 && errno != EINTR) {
        Log("redis ", address_, ": poll: ", Errno(errno));
      }
      if ((fds[0].revents & POLLIN) != 0) {
        uint64_t ignored;
        while (read(wake_fd_, &ignored, sizeof(ignored)) > 0) {
        }
      }
      if (!TakeSubmissions()) break;
      if (count == 2 && fd_ >= 0 && fds[1].revents != 0) HandleSocket(fds[1].revents);
      HandleTimers(Clock::now());
    }
    Shutdown();
  }

  // Moves callers' commands onto the connection (or fails them while it is not up) and runs the
  // callbacks of refused ones. Returns false once the client is stopping.
  bool TakeSubmissions() {
    std::vector<Submitted> submitted;
    std::vector<std::pair<Callback, absl::Status>> refused;
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      submitted.swap(submitted_);
      refused.swap(refused_);
      wake_pending_ = false;
      stopping = stopping_;
    }
    for (auto& [done, status] : refused) done(std::move(status));
    for (Submitted& command : submitted) {
      if (stopping) {
        Complete(command.done, absl::CancelledError("redis client shutting down"));
      } else if (state_ != State::kUp) {
        CountError(RedisErrorOp::kUnavailable);
        Complete(command.done,
                 absl::UnavailableError(absl::StrCat("redis ", address_, " is down")));
      } else if (!Append(command.argv)) {
        Complete(command.done, absl::ResourceExhaustedError("redis command: out of memory"));
      } else {
        in_flight_.push_back({std::move(command.done), command.deadline});
      }
    }
    if (!stopping && state_ == State::kUp && out_offset_ < out_.size()) Flush();
    return !stopping;
  }

  // Encodes a command onto the output buffer; false if hiredis could not allocate.
  bool Append(const std::vector<std::string>& argv) {
    std::vector<const char*> args;
    std::vector<size_t> lengths;
    args.reserve(argv.size());
    lengths.reserve(argv.size());
    for (const std::string& arg : argv) {
      args.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    char* encoded = nullptr;
    const int length = redisFormatCommandArgv(&encoded, static_cast<int>(args.size()), args.data(),
                                              lengths.data());
    if (length > 0) out_.append(encoded, static_cast<size_t>(length));
    if (encoded != nullptr) redisFreeCommand(encoded);
    return length > 0;
  }

  // Ends one command: it no longer counts against max_pending, then its callback runs.
  void Complete(Callback& done, absl::StatusOr<RedisReply> result) {
    {
      absl::MutexLock lock(&mu_);
      --pending_;
    }
    Callback callback = std::move(done);
    done = nullptr;
    callback(std::move(result));
  }

  int PollTimeoutMs(Clock::time_point now) const {
    std::optional<Clock::time_point> wake;
    const auto at = [&wake](Clock::time_point t) { wake = wake ? std::min(*wake, t) : t; };
    switch (state_) {
      case State::kDown:
        at(next_attempt_);
        break;
      case State::kConnecting:
      case State::kHandshake:
        at(connect_deadline_);
        break;
      case State::kUp:
        if (expired_ < in_flight_.size()) at(in_flight_[expired_].deadline);
        if (!in_flight_.empty()) at(in_flight_.front().deadline + unresponsive_);
        break;
    }
    if (!wake) return 1000;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*wake - now).count();
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 1000));
  }

  void HandleTimers(Clock::time_point now) {
    switch (state_) {
      case State::kDown:
        if (now >= next_attempt_) Connect(now);
        return;
      case State::kConnecting:
      case State::kHandshake:
        if (now >= connect_deadline_) Fail(RedisErrorOp::kConnect, "connect timed out");
        return;
      case State::kUp:
        break;
    }
    while (expired_ < in_flight_.size() && in_flight_[expired_].deadline <= now) {
      InFlight& command = in_flight_[expired_++];
      CountError(RedisErrorOp::kTimeout);
      Complete(command.done, absl::UnavailableError(
                                 absl::StrCat("redis ", address_, ": no reply within ",
                                              absl::FormatDuration(options_.command_timeout))));
    }
    if (!in_flight_.empty() && now >= in_flight_.front().deadline + unresponsive_) {
      Fail(RedisErrorOp::kDisconnect, "unresponsive");
    }
  }

  void Connect(Clock::time_point now) {
    connect_deadline_ = now + ToClock(options_.connect_timeout);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* resolved = nullptr;
    const std::string port = absl::StrCat(options_.port);
    if (const int rc = getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &resolved);
        rc != 0) {
      state_ = State::kConnecting;  // so that Fail counts and backs off like any failed attempt
      Fail(RedisErrorOp::kConnect, absl::StrCat("resolve: ", gai_strerror(rc)));
      return;
    }
    fd_ = socket(resolved->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = -1;
    int error = errno;
    if (fd_ >= 0) {
      const int one = 1;
      setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      rc = connect(fd_, resolved->ai_addr, resolved->ai_addrlen);
      error = errno;
    }
    freeaddrinfo(resolved);
    state_ = State::kConnecting;
    if (rc == 0) {
      Connected();
    } else if (fd_ < 0 || error != EINPROGRESS) {
      Fail(RedisErrorOp::kConnect, Errno(error));
    }
  }

  void Connected() {
    parser_.emplace();
    out_.clear();
    out_offset_ = 0;
    state_ = State::kHandshake;
    std::vector<std::vector<std::string>> handshake;
    if (!options_.password.empty()) {
      handshake.push_back({"AUTH"});
      if (!options_.username.empty()) handshake.back().push_back(options_.username);
      handshake.back().push_back(options_.password);
    }
    if (options_.db != 0) handshake.push_back({"SELECT", absl::StrCat(options_.db)});
    // A server that accepts connections but does not answer (stopped, overloaded) is not up.
    handshake.push_back({"PING"});
    for (const std::vector<std::string>& command : handshake) {
      if (!Append(command)) {
        Fail(RedisErrorOp::kConnect, "out of memory");
        return;
      }
      in_flight_.push_back({nullptr, connect_deadline_, /*handshake=*/true});
    }
    Flush();
  }

  void BecomeUp() {
    state_ = State::kUp;
    backoff_ = options_.reconnect_backoff;
    if (reported_down_) Log("redis ", address_, ": up");
    reported_down_ = false;
    SetUp(true);
  }

  void SetUp(bool up) {
    absl::MutexLock lock(&mu_);  // the gauge agrees with up() as soon as WaitUntilUp returns
    if (metrics_ != nullptr) metrics_->SetUp(up);
    up_ = up;
  }

  void HandleSocket(int16_t revents) {
    if (state_ == State::kConnecting) {
      int error = 0;
      socklen_t length = sizeof(error);
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
      if (error != 0) {
        Fail(RedisErrorOp::kConnect, Errno(error));
      } else {
        Connected();
      }
      return;
    }
    if ((revents & (POLLIN | POLLERR | POLLHUP)) != 0 && !ReadReplies()) return;
    if ((revents & POLLOUT) != 0) Flush();
  }

  // Reads what the socket has and hands out the replies. Returns false if the connection failed.
  bool ReadReplies() {
    std::array<char, size_t{64} * 1024> buffer;
    while (true) {
      const ssize_t n = read(fd_, buffer.data(), buffer.size());
      if (n == 0) return Fail(FailOp(), "closed by the server");
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return Fail(FailOp(), Errno(errno));
      }
      parser_->Feed(std::string_view(buffer.data(), static_cast<size_t>(n)));
      while (true) {
        absl::StatusOr<std::optional<RedisReply>> reply = parser_->Next();
        if (!reply.ok()) return Fail(FailOp(), reply.status().message());
        if (!reply->has_value()) break;
        if (!Dispatch(**std::move(reply))) return false;
      }
      if (static_cast<size_t>(n) < buffer.size()) break;
    }
    return true;
  }

  // Matches a reply to the oldest command in flight. Returns false if the connection failed.
  bool Dispatch(RedisReply reply) {
    if (in_flight_.empty()) return Fail(FailOp(), "a reply nobody asked for");
    InFlight command = std::move(in_flight_.front());
    in_flight_.pop_front();
    if (expired_ > 0) {
      --expired_;  // answered by its timeout already: the late reply is dropped
      return true;
    }
    if (command.handshake) {
      if (reply.is_error() || reply.type != RedisReply::Type::kStatus) {
        return Fail(RedisErrorOp::kConnect, absl::StrCat("handshake: ", reply.DebugString()));
      }
      if (in_flight_.empty()) BecomeUp();
      return true;
    }
    if (reply.is_error()) CountError(RedisErrorOp::kReply);
    Complete(command.done, std::move(reply));
    return true;
  }

  void Flush() {
    while (out_offset_ < out_.size()) {
      const ssize_t n =
          send(fd_, out_.data() + out_offset_, out_.size() - out_offset_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        Fail(FailOp(), Errno(errno));
        return;
      }
      out_offset_ += static_cast<size_t>(n);
    }
    if (out_offset_ == out_.size()) {
      out_.clear();
      out_offset_ = 0;
    } else if (out_offset_ > out_.size() / 2) {
      out_.erase(0, out_offset_);
      out_offset_ = 0;
    }
  }

  // A broken connection counts as a failed attempt while it is being set up.
  RedisErrorOp FailOp() const {
    return state_ == State::kUp ? RedisErrorOp::kDisconnect : RedisErrorOp::kConnect;
  }

  // Closes the connection, fails what was in flight and schedules the next attempt. Returns false
  // (for the callers' "connection failed" results).
  bool Fail(RedisErrorOp op, absl::string_view reason) {
    const bool was_up = state_ == State::kUp;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    parser_.reset();
    out_.clear();
    out_offset_ = 0;
    state_ = State::kDown;
    const Clock::time_point now = Clock::now();
    next_attempt_ = now + ToClock(backoff_);
    backoff_ = std::min(backoff_ * 2, options_.max_reconnect_backoff);
    expired_ = 0;
    CountError(op);
    if (was_up) SetUp(false);
    if (!reported_down_) {
      Log("redis ", address_, ": ", was_up ? "connection lost" : "cannot connect", ": ", reason);
      reported_down_ = true;
    }
    std::deque<InFlight> failed;
    failed.swap(in_flight_);
    const absl::Status status = absl::UnavailableError(
        absl::StrCat("redis ", address_, ": ", was_up ? "connection lost" : "down", ": ", reason));
    for (InFlight& command : failed) {
      if (command.done) Complete(command.done, status);
    }
    return false;
  }

  void Shutdown() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    state_ = State::kDown;
    SetUp(false);
    const absl::Status cancelled = absl::CancelledError("redis client shutting down");
    std::deque<InFlight> in_flight;
    in_flight.swap(in_flight_);
    for (InFlight& command : in_flight) {
      if (command.done) Complete(command.done, cancelled);
    }
    // Callbacks may queue more commands while they run; those are cancelled too.
    while (true) {
      std::vector<Submitted> submitted;
      std::vector<std::pair<Callback, absl::Status>> refused;
      {
        absl::MutexLock lock(&mu_);
        submitted.swap(submitted_);
        refused.swap(refused_);
      }
      if (submitted.empty() && refused.empty()) break;
      for (auto& [done, status] : refused) done(std::move(status));
      for (Submitted& command : submitted) Complete(command.done, cancelled);
    }
  }

  const RedisOptions options_;
  RedisMetrics* const metrics_;
  const std::string address_;
  const int wake_fd_;
  const Clock::duration unresponsive_ = ToClock(options_.unresponsive_timeout);

  mutable absl::Mutex mu_;
  bool up_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;  // accepted, not yet completed
  std::vector<Submitted> submitted_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<Callback, absl::Status>> refused_ ABSL_GUARDED_BY(mu_);

  // The I/O thread's own state: no lock.
  State state_ = State::kDown;
  int fd_ = -1;
  std::optional<RedisReplyParser> parser_;
  std::string out_;  // encoded commands not yet written, from out_offset_
  size_t out_offset_ = 0;
  std::deque<InFlight> in_flight_;
  size_t expired_ = 0;  // the first `expired_` of in_flight_ were answered by their timeout
  Clock::time_point connect_deadline_;
  Clock::time_point next_attempt_;
  absl::Duration backoff_;
  bool reported_down_ = false;  // logged once per outage

  std::thread thread_;
  std::thread::id io_thread_id_;
};

}  // namespace

std::unique_ptr<RedisClient> NewRedisClient(RedisOptions options, RedisMetrics* metrics) {
  return std::make_unique<RedisClientImpl>(std::move(options), metrics);
}

}  // namespace tollgate
