#include "proxy/http/server/http_server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "proxy/common/log.h"
#include "proxy/http/server/connection.h"
#include "proxy/http/server/server_core.h"

namespace tollgate::http {

std::string_view Request::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::string_view Request::Path() const {
  std::string_view path = target;
  return path.substr(0, path.find('?'));
}

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using internal::Connection;
using internal::ServerCore;

// Accept failures such as EMFILE are retried after this pause rather than in a busy loop.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);

absl::StatusOr<tcp::endpoint> ResolveAddress(asio::io_context& io, const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address, "\": expected host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("address \"", address, "\": bad port"));
  }
  error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(ip, static_cast<uint16_t>(port));
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address, "\": cannot resolve host: ", ec.message()));
  }
  return results.begin()->endpoint();
}

// Evaluated by Await with core->mu held.
bool AllClosed(ServerCore* core) ABSL_NO_THREAD_SAFETY_ANALYSIS { return core->open.empty(); }

class HttpServerImpl final : public HttpServer {
 public:
  explicit HttpServerImpl(std::shared_ptr<ServerCore> core)
      : core_(std::move(core)),
        acceptor_(asio::make_strand(core_->io)),
        retry_timer_(acceptor_.get_executor()),
        work_(asio::make_work_guard(core_->io)) {}

  ~HttpServerImpl() override { Shutdown(absl::ZeroDuration()); }

  absl::Status Listen(const tcp::endpoint& endpoint) {
    error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) port_ = acceptor_.local_endpoint(ec).port();
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", core_->options.address, ": ", ec.message()));
    }
    return absl::OkStatus();
  }

  void Run() {
    asio::post(acceptor_.get_executor(), [this] { Accept(); });
    for (int i = 0; i < core_->options.threads; ++i) {
      threads_.emplace_back([this] { RunIoThread(); });
    }
  }

  int port() const override { return port_; }

  void Shutdown(absl::Duration drain) override {
    absl::MutexLock shutdown_lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
    asio::post(acceptor_.get_executor(), [this] {
      accepting_ = false;
      error_code ignored;
      acceptor_.close(ignored);
      retry_timer_.cancel();
    });
    for (const std::shared_ptr<Connection>& connection : OpenConnections()) {
      connection->PostDrain();
    }
    {
      absl::MutexLock lock(&core_->mu);
      core_->mu.AwaitWithTimeout(absl::Condition(&AllClosed, core_.get()), drain);
    }
    for (const std::shared_ptr<Connection>& connection : OpenConnections()) {
      connection->PostClose();
    }
    work_.reset();
    core_->stopped.store(true, std::memory_order_release);
    core_->io.stop();
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
    // Runs what the io threads left: the closes above and the aborted operations they complete,
    // which release the connections. Nothing starts new I/O once `stopped` is set.
    core_->io.restart();
    while (core_->io.poll() > 0) {
    }
  }

 private:
  std::vector<std::shared_ptr<Connection>> OpenConnections() {
    std::vector<std::shared_ptr<Connection>> connections;
    absl::MutexLock lock(&core_->mu);
    for (const auto& [raw, weak] : core_->open) {
      if (std::shared_ptr<Connection> connection = weak.lock()) {
        connections.push_back(std::move(connection));
      }
    }
    return connections;
  }

  // On the acceptor's strand.
  void Accept() {
    if (!accepting_) return;
    acceptor_.async_accept(asio::make_strand(core_->io), [this](error_code ec, tcp::socket socket) {
      if (!accepting_ || ec == asio::error::operation_aborted) return;
      if (ec) {
        retry_timer_.expires_after(kAcceptRetryDelay);
        retry_timer_.async_wait([this](error_code wait_ec) {
          if (!wait_ec) Accept();
        });
        return;
      }
      Connection::Start(core_, std::move(socket));
      Accept();
    });
  }

  void RunIoThread() {
    while (true) {
      try {
        core_->io.run();
        return;
      } catch (const std::exception& e) {
        // Only a handler's own exception can get here; the server's code reports errors by code.
        Log("http server: exception escaped a handler: ", e.what());
      } catch (...) {
        Log("http server: unknown exception escaped a handler");
      }
    }
  }

  const std::shared_ptr<ServerCore> core_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  bool accepting_ = true;  // on the acceptor's strand
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  int port_ = 0;
  std::vector<std::thread> threads_;

  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

absl::Status ValidateOptions(const ServerOptions& options) {
  if (options.threads < 1) return absl::InvalidArgumentError("threads must be at least 1");
  if (options.idle_timeout <= absl::ZeroDuration() ||
      options.header_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeouts must be positive");
  }
  if (options.max_header_bytes < 1024) {
    return absl::InvalidArgumentError("max_header_bytes must be at least 1024");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(ServerOptions options,
                                                              Handler handler) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  if (handler == nullptr) return absl::InvalidArgumentError("handler must be set");
  auto core = std::make_shared<ServerCore>(std::move(options), std::move(handler));
  absl::StatusOr<tcp::endpoint> endpoint = ResolveAddress(core->io, core->options.address);
  if (!endpoint.ok()) return endpoint.status();
  auto server = std::make_unique<HttpServerImpl>(core);
  if (absl::Status status = server->Listen(*endpoint); !status.ok()) return status;
  server->Run();
  return server;
}

}  // namespace tollgate::http
