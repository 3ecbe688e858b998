#include "proxy/http/server/connection.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "proxy/http/server/response_writer.h"
#include "proxy/http/server/wire.h"

namespace tollgate::http::internal {
namespace {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;
using boost::system::error_code;

// While a response is pending, bytes the client sends ahead are buffered up to this much.
constexpr size_t kMaxReadAheadBytes = 64 << 10;
constexpr size_t kWatchReadBytes = 4 << 10;
// After a response with Connection: close, unread request bytes are drained for this long (at
// most kLingerBytes) before the socket closes.
constexpr absl::Duration kLingerTime = absl::Seconds(1);
constexpr size_t kLingerBytes = 1 << 20;
// Keeps steady_clock arithmetic from overflowing for "infinite" timeouts.
constexpr absl::Duration kLongestTimeout = absl::Hours(24 * 365);

bool IsHttpError(const error_code& ec) {
  return ec.category() == beast_http::make_error_code(beast_http::error::bad_method).category();
}

}  // namespace

void Connection::Start(std::shared_ptr<ServerCore> core, asio::ip::tcp::socket socket) {
  auto connection = std::make_shared<Connection>(std::move(core), std::move(socket));
  connection->core_->Register(connection.get(), connection);
  connection->Post([connection] { connection->ReadRequest(); });
}

Connection::Connection(std::shared_ptr<ServerCore> core, asio::ip::tcp::socket socket)
    : core_(std::move(core)), socket_(std::move(socket)), timer_(socket_.get_executor()) {
  error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
}

Connection::~Connection() {
  error_code ignored;
  socket_.close(ignored);
  core_->Unregister(this);
}

template <typename Fn>
void Connection::Post(Fn fn) {
  if (core_->stopped.load(std::memory_order_acquire)) return;
  asio::post(socket_.get_executor(), std::move(fn));
}

void Connection::PostSend(uint64_t seq, int status, Headers headers, std::string body) {
  Post([self = shared_from_this(), seq, status, headers = std::move(headers),
        body = std::move(body)]() mutable {
    self->Send(seq, status, std::move(headers), std::move(body));
  });
}

void Connection::PostStartStream(uint64_t seq, int status, Headers headers) {
  Post([self = shared_from_this(), seq, status, headers = std::move(headers)]() mutable {
    self->StartStream(seq, status, std::move(headers));
  });
}

void Connection::PostWrite(uint64_t seq, std::string data) {
  Post([self = shared_from_this(), seq, data = std::move(data)]() mutable {
    self->WriteChunk(seq, std::move(data));
  });
}

void Connection::PostEnd(uint64_t seq) {
  Post([self = shared_from_this(), seq] { self->End(seq); });
}

void Connection::PostOnClientGone(uint64_t seq, std::function<void()> callback) {
  Post([self = shared_from_this(), seq, callback = std::move(callback)]() mutable {
    self->SetClientGone(seq, std::move(callback));
  });
}

void Connection::PostAbort(uint64_t seq) {
  Post([self = shared_from_this(), seq] {
    if (!self->IsCurrent(seq) || self->phase_ < Phase::kHandling) return;
    // What was written before the abort goes out first; nothing written after it does.
    if (self->writing_.empty()) {
      self->Close(CloseKind::kAbort);
    } else {
      self->abort_after_writes_ = true;
    }
  });
}

void Connection::PostWriterDropped(uint64_t seq) {
  Post([self = shared_from_this(), seq] { self->WriterDropped(seq); });
}

void Connection::PostDrain() {
  Post([self = shared_from_this()] {
    self->draining_ = true;
    if (self->phase_ == Phase::kReadingHeader) self->Close(CloseKind::kQuiet);
  });
}

void Connection::PostClose() {
  // Also when stopped: Shutdown polls the io_context once more to run these.
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->Close(CloseKind::kClientGone);
    error_code ignored;
    self->socket_.close(ignored);  // ends a lingering close too
  });
}

// ---- Reading a request ----

void Connection::ReadRequest() {
  if (draining_ || core_->stopped.load(std::memory_order_acquire)) {
    Close(CloseKind::kQuiet);
    return;
  }
  phase_ = Phase::kReadingHeader;
  parser_.emplace();
  parser_->header_limit(
      static_cast<uint32_t>(std::min<size_t>(core_->options.max_header_bytes, UINT32_MAX)));
  parser_->body_limit(core_->options.max_body_bytes);
  const bool waiting_for_next = !first_request_ && buffer_.size() == 0;
  ArmTimer(waiting_for_next ? core_->options.idle_timeout : core_->options.header_timeout);
  beast_http::async_read_header(
      socket_, buffer_, *parser_,
      [self = shared_from_this()](error_code ec, size_t) { self->OnHeader(ec); });
}

void Connection::OnHeader(error_code ec) {
  CancelTimer();
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    OnReadError(ec);
    return;
  }
  first_request_ = false;
  const auto& request = parser_->get();
  bool expects_continue = false;
  if (auto expect = request.find(beast_http::field::expect); expect != request.end()) {
    const absl::string_view value(expect->value().data(), expect->value().size());
    if (!absl::EqualsIgnoreCase(value, "100-continue")) {
      SendErrorAndClose(417, "unsupported Expect header");
      return;
    }
    expects_continue = request.version() >= 11;
  }
  if (parser_->is_done()) {
    Dispatch();
    return;
  }
  phase_ = Phase::kReadingBody;
  if (expects_continue) Enqueue(std::string(kContinue));
  ArmTimer(core_->options.header_timeout);
  beast_http::async_read(socket_, buffer_, *parser_,
                         [self = shared_from_this()](error_code ec, size_t) { self->OnBody(ec); });
}

void Connection::OnBody(error_code ec) {
  CancelTimer();
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    OnReadError(ec);
    return;
  }
  Dispatch();
}

void Connection::OnReadError(error_code ec) {
  if (ec == beast_http::error::body_limit) {
    SendErrorAndClose(413, "request body too large");
  } else if (ec == beast_http::error::header_limit) {
    SendErrorAndClose(431, "request headers too large");
  } else if (IsHttpError(ec) && ec != beast_http::error::end_of_stream &&
             ec != beast_http::error::partial_message) {
    SendErrorAndClose(400, "malformed HTTP request");
  } else {
    // The client closed (before a request, or with one cut short), a timeout closed the socket,
    // or the network failed: nobody to answer.
    Close(CloseKind::kQuiet);
  }
}

void Connection::Dispatch() {
  if (core_->stopped.load(std::memory_order_acquire)) {
    Close(CloseKind::kQuiet);
    return;
  }
  auto& message = parser_->get();
  Request request;
  request.method.assign(message.method_string().data(), message.method_string().size());
  request.target.assign(message.target().data(), message.target().size());
  request.headers.reserve(std::distance(message.begin(), message.end()));
  for (const auto& field : message) {
    request.headers.emplace_back(
        AsciiLower(std::string_view(field.name_string().data(), field.name_string().size())),
        std::string(field.value().data(), field.value().size()));
  }
  request.body = std::move(message.body());
  keep_alive_ = message.keep_alive();
  http10_ = message.version() < 11;
  head_request_ = message.method() == boost::beast::http::verb::head;
  parser_.reset();

  ++seq_;
  phase_ = Phase::kHandling;
  response_completed_ = false;
  close_after_response_ = false;
  on_client_gone_ = nullptr;
  Watch();

  std::shared_ptr<ResponseWriter> writer = MakeResponseWriter(shared_from_this(), seq_);
  try {
    core_->handler(std::move(request), std::move(writer));
  } catch (...) {
    // The handler's writer went with the exception and answers 500 unless it already answered.
  }
}

// ---- Writing a response ----

void Connection::Send(uint64_t seq, int status, Headers headers, std::string body) {
  if (!IsCurrent(seq) || phase_ != Phase::kHandling) return;
  close_after_response_ = !keep_alive_ || draining_;
  const bool bodyless = status == 204 || status == 304 || (status >= 100 && status < 200);
  ResponseFraming framing;
  if (!bodyless) framing.content_length = body.size();
  framing.close = close_after_response_;
  framing.keep_alive = http10_;
  std::string bytes = ResponseHead(status, headers, framing);
  if (!bodyless && !head_request_) bytes += body;
  phase_ = Phase::kFinishing;
  Enqueue(std::move(bytes));
}

void Connection::StartStream(uint64_t seq, int status, Headers headers) {
  if (!IsCurrent(seq) || phase_ != Phase::kHandling) return;
  // HTTP/1.0 has no chunked encoding: the body ends where the connection does.
  close_after_response_ = !keep_alive_ || draining_ || http10_;
  phase_ = Phase::kStreaming;
  ResponseFraming framing;
  framing.chunked = !http10_;
  framing.close = close_after_response_;
  Enqueue(ResponseHead(status, headers, framing));
}

void Connection::WriteChunk(uint64_t seq, std::string data) {
  if (!IsCurrent(seq) || phase_ != Phase::kStreaming || data.empty()) return;
  Enqueue(http10_ ? std::move(data) : ChunkFrame(data));
}

void Connection::End(uint64_t seq) {
  if (!IsCurrent(seq) || phase_ != Phase::kStreaming) return;
  phase_ = Phase::kFinishing;
  if (http10_) {
    if (queued_.empty() && writing_.empty()) OnResponseComplete();
    return;
  }
  Enqueue(std::string(kLastChunk));
}

void Connection::SetClientGone(uint64_t seq, std::function<void()> callback) {
  if (seq != seq_ || response_completed_) return;
  if (phase_ == Phase::kClosed) {
    if (client_gone_) callback();
    return;
  }
  on_client_gone_ = std::move(callback);
}

void Connection::WriterDropped(uint64_t seq) {
  if (!IsCurrent(seq)) return;
  if (phase_ == Phase::kHandling) {
    auto [content_type, body] =
        ErrorBody(core_->options, 500, "the request handler did not answer");
    Send(seq, 500, {{"content-type", std::move(content_type)}}, std::move(body));
  } else if (phase_ == Phase::kStreaming) {
    Close(CloseKind::kAbort);  // the body can no longer end properly
  }
}

void Connection::SendErrorAndClose(int status, std::string_view message) {
  parser_.reset();
  keep_alive_ = false;
  phase_ = Phase::kFinishing;
  close_after_response_ = true;
  auto [content_type, body] = ErrorBody(core_->options, status, message);
  ResponseFraming framing;
  framing.content_length = body.size();
  framing.close = true;
  std::string bytes = ResponseHead(status, {{"content-type", std::move(content_type)}}, framing);
  bytes += body;
  Enqueue(std::move(bytes));
}

void Connection::Enqueue(std::string bytes) {
  unwritten_bytes_ += bytes.size();
  if (unwritten_bytes_ > core_->options.max_queued_response_bytes) {
    Close(CloseKind::kClientGone);  // not reading: stop buffering for it
    return;
  }
  queued_.push_back(std::move(bytes));
  if (writing_.empty()) FlushWrites();
}

void Connection::FlushWrites() {
  writing_.assign(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
  queued_.clear();
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(writing_.size());
  for (const std::string& bytes : writing_) buffers.push_back(asio::buffer(bytes));
  asio::async_write(socket_, buffers,
                    [self = shared_from_this()](error_code ec, size_t) { self->OnWritten(ec); });
}

void Connection::OnWritten(error_code ec) {
  for (const std::string& bytes : writing_) unwritten_bytes_ -= bytes.size();
  writing_.clear();
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    Close(CloseKind::kClientGone);
    return;
  }
  if (abort_after_writes_) {
    if (queued_.empty()) {
      Close(CloseKind::kAbort);
    } else {
      FlushWrites();
    }
    return;
  }
  if (peer_closed_) {
    if (phase_ == Phase::kFinishing && queued_.empty()) {
      response_completed_ = true;
      Close(CloseKind::kQuiet);
    } else {
      Close(CloseKind::kClientGone);
    }
    return;
  }
  if (!queued_.empty()) {
    FlushWrites();
  } else if (phase_ == Phase::kFinishing) {
    OnResponseComplete();
  }
}

void Connection::OnResponseComplete() {
  response_completed_ = true;
  on_client_gone_ = nullptr;
  if (close_after_response_ || draining_) {
    Close(CloseKind::kAfterResponse);
    return;
  }
  phase_ = Phase::kReadingHeader;
  if (watching_) {
    // The watch read must finish before the next request is read; its bytes are kept.
    read_after_watch_ = true;
    error_code ignored;
    socket_.cancel(ignored);
    return;
  }
  ReadRequest();
}

// ---- Noticing a client that goes away while its response is pending ----

void Connection::Watch() {
  if (watching_ || buffer_.size() >= kMaxReadAheadBytes) return;
  watching_ = true;
  socket_.async_read_some(
      buffer_.prepare(kWatchReadBytes),
      [self = shared_from_this()](error_code ec, size_t bytes) { self->OnWatch(ec, bytes); });
}

void Connection::OnWatch(error_code ec, size_t bytes) {
  watching_ = false;
  if (!ec) buffer_.commit(bytes);
  if (phase_ == Phase::kClosed) return;
  if (read_after_watch_) {
    read_after_watch_ = false;
    if (!ec || ec == asio::error::operation_aborted) {
      ReadRequest();
    } else {
      Close(CloseKind::kQuiet);
    }
    return;
  }
  if (ec) {
    // End of stream or a reset before the response completed: the client is gone, unless the
    // write in flight turns out to have completed the response (see OnWritten).
    if (writing_.empty()) {
      Close(CloseKind::kClientGone);
    } else {
      peer_closed_ = true;
    }
    return;
  }
  Watch();
}

// ---- Timeouts and closing ----

void Connection::ArmTimer(absl::Duration timeout) {
  const uint64_t generation = ++timer_generation_;
  timer_.expires_after(absl::ToChronoNanoseconds(std::min(timeout, kLongestTimeout)));
  timer_.async_wait([self = shared_from_this(), generation](error_code ec) {
    if (ec || generation != self->timer_generation_) return;
    error_code ignored;
    self->socket_.close(ignored);  // the pending read fails and closes the connection
  });
}

void Connection::CancelTimer() {
  ++timer_generation_;
  timer_.cancel();
}

void Connection::Close(CloseKind kind) {
  if (phase_ == Phase::kClosed) return;
  const bool response_pending = phase_ >= Phase::kHandling && !response_completed_;
  phase_ = Phase::kClosed;
  CancelTimer();
  error_code ignored;
  if (kind == CloseKind::kAfterResponse && socket_.is_open()) {
    if (watching_) socket_.cancel(ignored);
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    ArmTimer(kLingerTime);
    discard_.resize(kWatchReadBytes);
    Linger();
    return;
  }
  if (kind == CloseKind::kAbort) {
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  }
  socket_.close(ignored);
  core_->Unregister(this);
  if (kind == CloseKind::kClientGone && response_pending) {
    client_gone_ = true;
    if (std::function<void()> callback = std::move(on_client_gone_); callback) callback();
  }
}

// Lingering close: after the response, stop sending, then read and drop what the client still
// sends (until it closes, kLingerBytes, or kLingerTime) so that closing a socket with unread
// bytes does not reset the connection before the client has read its response.
void Connection::Linger() {
  socket_.async_read_some(
      asio::buffer(discard_),
      [self = shared_from_this()](error_code ec, size_t bytes) { self->OnLinger(ec, bytes); });
}

void Connection::OnLinger(error_code ec, size_t bytes) {
  discarded_ += bytes;
  if (!ec && discarded_ < kLingerBytes && socket_.is_open()) {
    Linger();
    return;
  }
  CancelTimer();
  error_code ignored;
  socket_.close(ignored);
  core_->Unregister(this);
}

}  // namespace tollgate::http::internal
