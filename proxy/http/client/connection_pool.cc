#include "proxy/http/client/connection_pool.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <thread>

#include "absl/strings/str_cat.h"
#include "boost/asio/ip/address.hpp"
#include "boost/asio/post.hpp"
#include "proxy/common/log.h"

namespace tollgate::http::internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

class IoThreads {
 public:
  IoThreads() : guard_(asio::make_work_guard(context_)) {
    const unsigned n = std::clamp(std::thread::hardware_concurrency() / 2, 1u, 4u);
    for (unsigned i = 0; i < n; ++i) {
      std::thread([this] {
        for (;;) {
          try {
            context_.run();
            return;
          } catch (const std::exception& e) {  // a handler threw; keep the thread serving
            Log("http client: I/O thread caught an exception: ", e.what());
          }
        }
      }).detach();
    }
  }

  asio::io_context context_;

 private:
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
};

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string HostHeader(const Origin& o) {
  const std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  const bool default_port = o.port == (o.tls ? 443 : 80);
  return default_port ? host : absl::StrCat(host, ":", o.port);
}

}  // namespace

asio::io_context& IoContext() {
  static IoThreads* const threads = new IoThreads;
  return threads->context_;
}

SteadyClock::duration ToSteady(absl::Duration d) {
  const absl::Duration capped = std::clamp(d, absl::ZeroDuration(), absl::Hours(24 * 365));
  return std::chrono::duration_cast<SteadyClock::duration>(absl::ToChronoNanoseconds(capped));
}

beast::tcp_stream& Connection::tcp() {
  return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(*s); },
                    stream);
}

void Connection::Close() {
  beast::error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp().close();
}

bool Connection::LooksAlive() {
  if (buffer.size() > 0 || !tcp().socket().is_open()) return false;
  char byte;  // a peek that would block: nothing arrived, not even a FIN
  const ssize_t n = ::recv(tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

ConnectionPool::ConnectionPool(Origin origin, HttpClientOptions options,
                               std::unique_ptr<ssl::context> tls)
    : origin_(std::move(origin)),
      options_(std::move(options)),
      tls_(std::move(tls)),
      strand_(asio::make_strand(IoContext())),
      host_header_(HostHeader(origin_)),
      send_sni_(!IsIpLiteral(origin_.host)) {}

std::unique_ptr<Connection> ConnectionPool::NewConnection() {
  opened_.fetch_add(1, std::memory_order_relaxed);
  auto connection = std::make_unique<Connection>();
  if (tls_ != nullptr) {
    connection->stream = std::make_unique<Connection::Tls>(strand_, *tls_);
  } else {
    connection->stream = std::make_unique<Connection::Plain>(strand_);
  }
  return connection;
}

void ConnectionPool::CloseStaleIdle() {
  const SteadyClock::time_point oldest = SteadyClock::now() - ToSteady(options_.max_idle_time);
  auto stale = std::remove_if(idle_.begin(), idle_.end(), [&](auto& c) {
    return shut_down_ || c->idle_since < oldest || !c->LooksAlive();
  });
  for (auto it = stale; it != idle_.end(); ++it) {
    (*it)->Close();
    open_.fetch_sub(1, std::memory_order_relaxed);
  }
  idle_.erase(stale, idle_.end());
}

void ConnectionPool::Acquire(const std::shared_ptr<PooledRequest>& request) {
  CloseStaleIdle();
  if (!idle_.empty()) {
    std::unique_ptr<Connection> connection = std::move(idle_.back());
    idle_.pop_back();
    request->Use(std::move(connection), /*fresh=*/false);
  } else if (open_.load(std::memory_order_relaxed) < options_.max_connections) {
    open_.fetch_add(1, std::memory_order_relaxed);
    request->Use(NewConnection(), /*fresh=*/true);
  } else {
    waiting_.push_back(request);
  }
}

void ConnectionPool::Release(std::unique_ptr<Connection> connection, bool reusable) {
  if (reusable && !shut_down_) {
    if (!waiting_.empty()) {
      std::shared_ptr<PooledRequest> next = std::move(waiting_.front());
      waiting_.pop_front();
      next->Use(std::move(connection), /*fresh=*/false);
      return;
    }
    connection->idle_since = SteadyClock::now();
    idle_.push_back(std::move(connection));
    return;
  }
  connection.reset();
  open_.fetch_sub(1, std::memory_order_relaxed);
  if (!waiting_.empty() && open_.load(std::memory_order_relaxed) < options_.max_connections) {
    std::shared_ptr<PooledRequest> next = std::move(waiting_.front());
    waiting_.pop_front();
    open_.fetch_add(1, std::memory_order_relaxed);
    next->Use(NewConnection(), /*fresh=*/true);
  }
}

void ConnectionPool::Forget(const PooledRequest* request) {
  auto it = std::find_if(waiting_.begin(), waiting_.end(),
                         [&](const auto& waiting) { return waiting.get() == request; });
  if (it != waiting_.end()) waiting_.erase(it);
}

void ConnectionPool::Shutdown() {
  asio::post(strand_, [self = shared_from_this()] {
    self->shut_down_ = true;
    self->CloseStaleIdle();
  });
}

absl::StatusOr<std::unique_ptr<ssl::context>> NewTlsContext(const HttpClientOptions& options) {
  try {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
    context->set_default_verify_paths();
    beast::error_code ignored;  // a machine without the directory still has the defaults
    context->add_verify_path("/etc/ssl/certs", ignored);
    if (!options.extra_trusted_ca_pem.empty()) {
      context->add_certificate_authority(asio::buffer(options.extra_trusted_ca_pem));
    }
    context->set_verify_mode(ssl::verify_peer);
    return context;
  } catch (const boost::system::system_error& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot set up TLS: ", e.what()));
  }
}

}  // namespace tollgate::http::internal
