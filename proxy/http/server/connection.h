// One accepted HTTP/1.1 connection; internal to tollgate_http_server.
//
// Reads a request (Beast's parser), hands it to the handler with a writer, writes the response,
// and loops for keep-alive. While a response is pending it keeps one read outstanding so that a
// client disconnect is noticed (any bytes that arrive are kept for the next request).
//
// Thread safety: every member function except the Post* entry points runs on the connection's
// strand, so the state needs no lock. Post* may be called from any thread; they hand the work to
// the strand. Ownership: shared; pending asynchronous operations and the current writer each hold
// a reference. `seq` identifies the request a writer answers, so late calls from a finished
// writer are ignored.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proxy/http/server/server_core.h"

namespace tollgate::http::internal {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Takes over an accepted socket (whose executor is a strand) and starts reading.
  static void Start(std::shared_ptr<ServerCore> core, boost::asio::ip::tcp::socket socket);

  Connection(std::shared_ptr<ServerCore> core, boost::asio::ip::tcp::socket socket);
  ~Connection();

  // Writer entry points, from any thread.
  void PostSend(uint64_t seq, int status, Headers headers, std::string body);
  void PostStartStream(uint64_t seq, int status, Headers headers);
  void PostWrite(uint64_t seq, std::string data);
  void PostEnd(uint64_t seq);
  void PostOnClientGone(uint64_t seq, std::function<void()> callback);
  void PostAbort(uint64_t seq);
  void PostWriterDropped(uint64_t seq);

  // Shutdown: close now when idle, else after the response in flight.
  void PostDrain();
  // Shutdown: close now; a pending response's OnClientGone runs.
  void PostClose();

 private:
  enum class Phase {
    kReadingHeader,
    kReadingBody,
    kHandling,   // the handler has the request; nothing written yet
    kStreaming,  // chunked head written; chunks follow
    kFinishing,  // the whole response is queued; the connection waits for it to be written
    kClosed,
  };
  enum class CloseKind {
    kQuiet,          // nothing to answer: idle, timed out, or the request was cut short
    kAfterResponse,  // the response completed and asked for the connection to close
    kClientGone,     // the client went away (or the server shut down) before the response completed
    kAbort,          // the writer asked for a reset
  };

  template <typename Fn>
  void Post(Fn fn);
  bool IsCurrent(uint64_t seq) const {
    return seq == seq_ && phase_ != Phase::kClosed && !abort_after_writes_;
  }

  void ReadRequest();
  void OnHeader(boost::system::error_code ec);
  void OnBody(boost::system::error_code ec);
  // A read of the request failed: answers 400/413/431 or just closes.
  void OnReadError(boost::system::error_code ec);
  void Dispatch();

  void Send(uint64_t seq, int status, Headers headers, std::string body);
  void StartStream(uint64_t seq, int status, Headers headers);
  void WriteChunk(uint64_t seq, std::string data);
  void End(uint64_t seq);
  void SetClientGone(uint64_t seq, std::function<void()> callback);
  void WriterDropped(uint64_t seq);
  // Answers an error the server detected itself, then closes.
  void SendErrorAndClose(int status, std::string_view message);

  void Enqueue(std::string bytes);
  void FlushWrites();
  void OnWritten(boost::system::error_code ec);
  void OnResponseComplete();

  void Watch();
  void OnWatch(boost::system::error_code ec, size_t bytes);

  void ArmTimer(absl::Duration timeout);
  void CancelTimer();
  void Close(CloseKind kind);
  void Linger();
  void OnLinger(boost::system::error_code ec, size_t bytes);

  // Destroyed last: the sockets and timers below belong to its io_context.
  const std::shared_ptr<ServerCore> core_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  uint64_t timer_generation_ = 0;

  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;

  Phase phase_ = Phase::kReadingHeader;
  uint64_t seq_ = 0;  // the request being answered
  bool first_request_ = true;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool head_request_ = false;  // HEAD: the response has headers only
  bool close_after_response_ = false;
  bool draining_ = false;
  bool response_completed_ = false;
  bool client_gone_ = false;
  std::function<void()> on_client_gone_;

  std::deque<std::string> queued_;
  std::vector<std::string> writing_;  // the batch being written
  size_t unwritten_bytes_ = 0;        // in queued_ and writing_
  bool watching_ = false;
  bool peer_closed_ = false;  // the watch read saw the client close while a write was in flight
  bool abort_after_writes_ = false;  // Abort arrived while a write was in flight
  bool read_after_watch_ = false;
  std::string discard_;  // lingering close: where unread bytes go
  size_t discarded_ = 0;
};

}  // namespace tollgate::http::internal
