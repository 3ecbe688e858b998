// Beast/Asio implementation of HttpClient. Everything of one client (its pool, its connections, its
// requests' I/O and handler callbacks) runs on one strand of the process-wide I/O threads, so none
// of that state needs a lock; only the counters read by tests are atomic.
#include "proxy/http/client/http_client.h"

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/http.hpp"
#include "openssl/err.h"
#include "proxy/http/client/connection_pool.h"

namespace tollgate::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using internal::Connection;
using internal::ConnectionPool;
using internal::ToSteady;

constexpr size_t kReadChunkBytes = 16 << 10;

absl::string_view ToStd(beast::string_view s) { return {s.data(), s.size()}; }

absl::Status WithPayload(absl::Status status, absl::string_view url, absl::string_view value) {
  status.SetPayload(url, absl::Cord(value));
  return status;
}

// One request/response. Owns itself (through the shared_ptrs its pending handlers hold) from Send
// until OnComplete. All members are touched on the strand only.
class Exchange final : public Cancellable,
                       public internal::PooledRequest,
                       public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<ConnectionPool> core, ClientRequest request,
           std::shared_ptr<ResponseHandler> handler)
      : core_(std::move(core)),
        request_(std::move(request)),
        handler_(std::move(handler)),
        deadline_timer_(core_->strand()),
        phase_timer_(core_->strand()) {}

  void Start() {
    asio::post(core_->strand(), [self = shared_from_this()] { self->StartOnStrand(); });
  }

  void Cancel() override {
    asio::post(core_->strand(), [self = shared_from_this()] {
      self->Abort(absl::CancelledError("HTTP request cancelled"));
    });
  }

  void Use(std::unique_ptr<Connection> connection, bool fresh) override {
    connection_ = std::move(connection);
    if (fresh) {
      Resolve();
    } else {
      Write();
    }
  }

 private:
  enum class Phase { kQueued, kConnecting, kWriting, kReadingHeader, kReadingBody, kDone };

  template <typename F>
  void WithStream(F&& f) {
    std::visit([&](auto& stream) { f(*stream); }, connection_->stream);
  }

  std::string Where() const {
    return absl::StrCat(core_->origin().host, ":", core_->origin().port);
  }

  void StartOnStrand() {
    auto verb = bhttp::string_to_verb(request_.method);
    if (verb == bhttp::verb::unknown) {
      Complete(absl::InvalidArgumentError(absl::StrCat("bad HTTP method ", request_.method)));
      return;
    }
    wire_request_ = bhttp::request<bhttp::string_body>(verb, request_.target, 11);
    wire_request_.set(bhttp::field::host, core_->host_header());
    wire_request_.set(bhttp::field::user_agent, core_->options().user_agent);
    for (const auto& [name, value] : request_.headers) wire_request_.insert(name, value);
    wire_request_.body() = std::move(request_.body);
    wire_request_.prepare_payload();
    if (request_.deadline <= absl::Now()) {
      Complete(absl::DeadlineExceededError("HTTP request deadline exceeded before it was sent"));
      return;
    }
    if (request_.deadline != absl::InfiniteFuture()) {
      deadline_timer_.expires_after(ToSteady(request_.deadline - absl::Now()));
      deadline_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (!ec) self->Abort(absl::DeadlineExceededError("HTTP request deadline exceeded"));
      });
    }
    core_->Acquire(shared_from_this());
  }

  // Ends the exchange early. Pending I/O is cancelled by closing the socket; its handler then
  // completes the exchange with `status`.
  void Abort(absl::Status status) {
    if (phase_ == Phase::kDone || !abort_status_.ok()) return;
    if (phase_ == Phase::kQueued) {
      core_->Forget(this);
      Complete(std::move(status));
      return;
    }
    abort_status_ = std::move(status);
    resolver_.reset();  // cancels a pending resolve
    if (connection_ != nullptr) connection_->Close();
  }

  void ArmPhaseTimer(absl::Duration timeout, std::string what) {
    ++phase_timer_generation_;
    if (timeout == absl::InfiniteDuration()) {
      phase_timer_.cancel();
      return;
    }
    phase_timer_.expires_after(ToSteady(timeout));
    phase_timer_.async_wait([self = shared_from_this(), generation = phase_timer_generation_,
                             what = std::move(what)](beast::error_code ec) {
      if (ec || generation != self->phase_timer_generation_) return;
      self->Abort(absl::UnavailableError(what));
    });
  }

  void Resolve() {
    phase_ = Phase::kConnecting;
    ArmPhaseTimer(core_->options().connect_timeout,
                  absl::StrCat("connecting to ", Where(), " timed out"));
    resolver_ = std::make_unique<tcp::resolver>(core_->strand());
    resolver_->async_resolve(core_->origin().host, std::to_string(core_->origin().port),
                             [self = shared_from_this()](
                                 beast::error_code ec, const tcp::resolver::results_type& results) {
                               self->resolver_.reset();
                               if (ec || self->aborted()) return self->Fail(ec, "cannot resolve ");
                               self->connection_->tcp().async_connect(
                                   results, [self](beast::error_code ec, const tcp::endpoint&) {
                                     if (ec || self->aborted())
                                       return self->Fail(ec, "cannot connect to ");
                                     self->Handshake();
                                   });
                             });
  }

  void Handshake() {
    auto* tls = std::get_if<std::unique_ptr<Connection::Tls>>(&connection_->stream);
    if (tls == nullptr) return Write();
    Connection::Tls& stream = **tls;
    const std::string& host = core_->origin().host;
    if (core_->send_sni() && !SSL_set_tlsext_host_name(stream.native_handle(), host.c_str())) {
      return Fail(
          beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()),
          "cannot set TLS SNI for ");
    }
    stream.set_verify_callback(ssl::host_name_verification(host));
    stream.async_handshake(ssl::stream_base::client,
                           [self = shared_from_this()](beast::error_code ec) {
                             if (ec || self->aborted()) {
                               return self->Fail(ec, "TLS handshake failed with ");
                             }
                             self->Write();
                           });
  }

  void Write() {
    phase_ = Phase::kWriting;
    ArmPhaseTimer(absl::InfiniteDuration(), "");
    parser_.emplace();
    parser_->body_limit(core_->options().max_response_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(core_->options().max_response_header_bytes));
    if (wire_request_.method() == bhttp::verb::head) parser_->skip(true);
    WithStream([this](auto& stream) {
      bhttp::async_write(stream, wire_request_,
                         [self = shared_from_this()](beast::error_code ec, size_t) {
                           if (ec || self->aborted()) {
                             return self->Fail(ec, "sending the request failed to ");
                           }
                           self->ReadHeader();
                         });
    });
  }

  void ReadHeader() {
    phase_ = Phase::kReadingHeader;
    ArmPhaseTimer(core_->options().read_idle_timeout,
                  absl::StrCat("no response from ", Where(), " within the read timeout"));
    WithStream([this](auto& stream) {
      bhttp::async_read_header(stream, connection_->buffer, *parser_,
                               [self = shared_from_this()](beast::error_code ec, size_t) {
                                 if (ec || self->aborted()) {
                                   return self->Fail(ec, "no response from ");
                                 }
                                 self->OnHeader();
                               });
    });
  }

  void OnHeader() {
    const auto& message = parser_->get();
    Headers headers;
    for (const auto& field : message) {
      headers.emplace_back(absl::AsciiStrToLower(ToStd(field.name_string())),
                           std::string(ToStd(field.value())));
    }
    headers_seen_ = true;
    if (!handler_->OnHeaders(static_cast<int>(message.result_int()), headers)) {
      return Complete(absl::CancelledError("HTTP response abandoned by its handler"));
    }
    if (parser_->is_done()) return Complete(absl::OkStatus());
    ReadBody();
  }

  void ReadBody() {
    phase_ = Phase::kReadingBody;
    ArmPhaseTimer(core_->options().read_idle_timeout,
                  absl::StrCat("no data from ", Where(), " within the read timeout"));
    parser_->get().body().data = chunk_;
    parser_->get().body().size = sizeof(chunk_);
    WithStream([this](auto& stream) {
      bhttp::async_read_some(
          stream, connection_->buffer, *parser_,
          [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBodyRead(ec); });
    });
  }

  void OnBodyRead(beast::error_code ec) {
    if (aborted()) return Fail(ec, "");
    if (ec == bhttp::error::need_buffer) ec = {};
    const size_t n = sizeof(chunk_) - parser_->get().body().size;
    if (n > 0 && !handler_->OnBody(absl::string_view(chunk_, n))) {
      return Complete(absl::CancelledError("HTTP response abandoned by its handler"));
    }
    if (ec == ssl::error::stream_truncated && parser_->need_eof()) {
      parser_->put_eof(ec);  // a TLS peer that closed without close_notify ended the body
    }
    if (ec) return Fail(ec, "");
    if (parser_->is_done()) return Complete(absl::OkStatus());
    ReadBody();
  }

  bool aborted() const { return !abort_status_.ok(); }

  // Whether any byte of the response arrived.
  bool ResponseStarted() const {
    return headers_seen_ || (parser_.has_value() && parser_->got_some()) ||
           (connection_ != nullptr && connection_->buffer.size() > 0);
  }

  // An I/O step failed with `ec` (or completed after Abort).
  void Fail(beast::error_code ec, absl::string_view what) {
    if (aborted()) return Complete(abort_status_);
    if (ec == bhttp::error::body_limit) {
      return Complete(
          absl::InternalError(absl::StrCat("response body from ", Where(), " exceeds ",
                                           core_->options().max_response_body_bytes, " bytes")));
    }
    if (headers_seen_) {
      return Complete(absl::UnavailableError(
          absl::StrCat("connection lost mid-response from ", Where(), ": ", ec.message())));
    }
    Complete(absl::UnavailableError(absl::StrCat(what, Where(), ": ", ec.message())));
  }

  void Complete(absl::Status status) {
    if (phase_ == Phase::kDone) return;
    const bool reusable = status.ok() && parser_.has_value() && parser_->is_done() &&
                          parser_->keep_alive() && connection_ != nullptr &&
                          connection_->buffer.size() == 0;
    phase_ = Phase::kDone;
    deadline_timer_.cancel();
    phase_timer_.cancel();
    if (!status.ok() && !ResponseStarted()) {
      status = WithPayload(std::move(status), kBeforeResponsePayload, "1");
    }
    if (connection_ != nullptr) {
      if (!reusable) connection_->Close();
      core_->Release(std::move(connection_), reusable);
    }
    std::shared_ptr<ResponseHandler> handler = std::move(handler_);
    handler->OnComplete(std::move(status));
  }

  const std::shared_ptr<ConnectionPool> core_;
  ClientRequest request_;
  std::shared_ptr<ResponseHandler> handler_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer phase_timer_;  // connect timeout, then read idle timeout
  uint64_t phase_timer_generation_ = 0;
  Phase phase_ = Phase::kQueued;
  absl::Status abort_status_;  // set by Abort while I/O was pending
  bool headers_seen_ = false;
  std::unique_ptr<tcp::resolver> resolver_;
  std::unique_ptr<Connection> connection_;
  bhttp::request<bhttp::string_body> wire_request_;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser_;
  char chunk_[kReadChunkBytes];
};

class BeastHttpClient final : public HttpClient {
 public:
  explicit BeastHttpClient(std::shared_ptr<ConnectionPool> core) : core_(std::move(core)) {}
  ~BeastHttpClient() override { core_->Shutdown(); }

  std::shared_ptr<Cancellable> Send(ClientRequest request,
                                    std::shared_ptr<ResponseHandler> handler) override {
    auto exchange = std::make_shared<Exchange>(core_, std::move(request), std::move(handler));
    exchange->Start();
    return exchange;
  }

  int open_connections() const override { return core_->open_connections(); }
  int64_t connections_opened() const override { return core_->connections_opened(); }

 private:
  const std::shared_ptr<ConnectionPool> core_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(const Origin& origin,
                                                               const HttpClientOptions& options) {
  if (origin.host.empty() || origin.port == 0) {
    return absl::InvalidArgumentError("an HTTP client needs a host and a port");
  }
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("an HTTP client needs max_connections >= 1");
  }
  std::unique_ptr<ssl::context> tls;
  if (origin.tls) {
    absl::StatusOr<std::unique_ptr<ssl::context>> context = internal::NewTlsContext(options);
    if (!context.ok()) return context.status();
    tls = *std::move(context);
  }
  return std::make_unique<BeastHttpClient>(
      std::make_shared<ConnectionPool>(origin, options, std::move(tls)));
}

}  // namespace tollgate::http
