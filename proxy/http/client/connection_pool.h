// Internal to the HTTP client (http_client.cc): the process-wide I/O threads, one pooled
// connection, and the keep-alive pool of one client. Not for use elsewhere: it exposes Beast.
//
// Thread safety: a ConnectionPool's methods (except the accessors of constant settings and the
// atomic counters) run on its strand only; so do its connections' I/O and the requests using them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/ssl.hpp"
#include "proxy/http/client/http_client.h"

namespace tollgate::http::internal {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using SteadyClock = std::chrono::steady_clock;

// The I/O threads every client runs on. Never destroyed: requests may end on any thread at any
// time, and a client's last reference may be dropped on one of these threads.
boost::asio::io_context& IoContext();

// `d` clamped to [0, one year].
SteadyClock::duration ToSteady(absl::Duration d);

// One TCP or TLS connection and its read buffer (which survives between responses).
struct Connection {
  using Plain = boost::beast::tcp_stream;
  using Tls = boost::beast::ssl_stream<boost::beast::tcp_stream>;
  std::variant<std::unique_ptr<Plain>, std::unique_ptr<Tls>> stream;
  boost::beast::flat_buffer buffer;
  SteadyClock::time_point idle_since;

  boost::beast::tcp_stream& tcp();
  void Close();
  // Whether an idle connection may be reused: the server has neither closed it nor sent anything
  // since the last response.
  bool LooksAlive();
};

// What waits for a connection from the pool.
class PooledRequest {
 public:
  virtual ~PooledRequest() = default;
  // The connection to run on; `fresh` ones still have to be connected.
  virtual void Use(std::unique_ptr<Connection> connection, bool fresh) = 0;
};

// The settings and connections of one client. Lives as long as the client or any request of it.
class ConnectionPool : public std::enable_shared_from_this<ConnectionPool> {
 public:
  // `tls` is null for plain HTTP.
  ConnectionPool(Origin origin, HttpClientOptions options,
                 std::unique_ptr<boost::asio::ssl::context> tls);

  const Origin& origin() const { return origin_; }
  const HttpClientOptions& options() const { return options_; }
  const std::string& host_header() const { return host_header_; }  // "host" or "host:port"
  bool send_sni() const { return send_sni_; }                      // false for IP literals
  Strand& strand() { return strand_; }
  int open_connections() const { return open_.load(std::memory_order_relaxed); }
  int64_t connections_opened() const { return opened_.load(std::memory_order_relaxed); }

  // Gives `request` an idle connection, or a new one while under max_connections, or queues it
  // until a connection is released.
  void Acquire(const std::shared_ptr<PooledRequest>& request);
  // Takes back a connection from a finished request: kept (or handed to a waiting request) when
  // `reusable`, closed otherwise.
  void Release(std::unique_ptr<Connection> connection, bool reusable);
  // Removes a request that stopped waiting.
  void Forget(const PooledRequest* request);
  // Closes idle connections now and released ones from then on. Any thread.
  void Shutdown();

 private:
  std::unique_ptr<Connection> NewConnection();
  void CloseStaleIdle();

  const Origin origin_;
  const HttpClientOptions options_;
  const std::unique_ptr<boost::asio::ssl::context> tls_;
  Strand strand_;
  const std::string host_header_;
  const bool send_sni_;
  std::atomic<int> open_{0};
  std::atomic<int64_t> opened_{0};
  // Strand-only state.
  bool shut_down_ = false;
  std::vector<std::unique_ptr<Connection>> idle_;       // most recently used last
  std::deque<std::shared_ptr<PooledRequest>> waiting_;  // oldest first
};

// A TLS client context trusting the system roots and `options.extra_trusted_ca_pem`.
absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> NewTlsContext(
    const HttpClientOptions& options);

}  // namespace tollgate::http::internal
