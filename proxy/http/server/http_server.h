// An asynchronous HTTP/1.1 server (Boost.Beast on Boost.Asio) for Tollgate's HTTP ingress and the
// simulator's OpenAI/Anthropic-compatible API.
//
//   absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(
//       {.address = "127.0.0.1:0", .threads = 2},
//       [](Request request, std::shared_ptr<ResponseWriter> writer) {
//         writer->Send(200, {{"content-type", "text/plain"}}, "hello\n");
//       });
//   ... (*server)->port() ...
//   (*server)->Shutdown(absl::Seconds(5));
//
// A pool of `threads` io threads serves every connection; none is dedicated to a connection.
// Connections are kept alive between requests and serve one request at a time (a pipelined
// request waits until the previous response has been written). The server answers protocol errors
// itself: 400 for malformed HTTP (then closes), 413 for a body over max_body_bytes (the handler is
// not called), 431 for oversized headers, 417 for an Expect other than 100-continue, and 500 when a
// handler drops its writer without answering. A request whose body is cut short by the client is
// never handed to the handler.
//
// Thread safety: HttpServer's methods may be called from any thread, except that Shutdown and the
// destructor must not run on an io thread (not inside a handler or an OnClientGone callback):
// they join the io threads. Handlers run on an
// io thread and must not block; they may answer later from any thread through the writer.
// Ownership: the handler is owned by the server. A writer may outlive the server; its calls then do
// nothing.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tollgate::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST"
  std::string target;  // path + query, e.g. "/v1/chat/completions"
  Headers headers;     // names lower-cased, in arrival order
  std::string body;

  // The first header named `lower_name`; "" when absent.
  std::string_view Header(std::string_view lower_name) const;
  // The target without its query string: "/v1/models?x=1" -> "/v1/models".
  std::string_view Path() const;
};

// One response. Methods may be called from any thread, one at a time (the caller serialises); the
// work is handed to the connection's io strand, so no call blocks. Exactly one of Send or
// StartStream...End should be used; calls after the response is complete, or out of order, are
// ignored. The server sets Content-Length, Transfer-Encoding and Connection itself (the ones in
// `headers` are dropped, as are headers with CR or LF in them).
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // A complete response.
  virtual void Send(int status, Headers headers, std::string body) = 0;
  // Starts a response with chunked transfer encoding (for an HTTP/1.0 client: a body delimited by
  // closing the connection).
  virtual void StartStream(int status, Headers headers) = 0;
  // One chunk; queued, never blocks. Empty data is ignored (an empty chunk would end the body).
  virtual void Write(std::string data) = 0;
  // The last chunk; the connection then returns to keep-alive.
  virtual void End() = 0;
  // Runs once (on a server thread) if the client disconnects before Send/End completed. May be
  // registered at any time; if the client is already gone it runs promptly. A later registration
  // replaces an earlier one that has not run yet.
  virtual void OnClientGone(std::function<void()> callback) = 0;
  // Drops the connection abruptly (TCP reset) without a proper end. OnClientGone does not run.
  virtual void Abort() = 0;
};

// Called on an io thread for every complete request; must not block. Dropping the last reference
// to `writer` before answering makes the server answer 500 (or abort a started stream).
using Handler = std::function<void(Request request, std::shared_ptr<ResponseWriter> writer)>;

struct ServerOptions {
  std::string address = "127.0.0.1:0";  // host:port ("[::1]:0" for IPv6); port 0 picks one
  int threads = 2;                      // io threads; at least 1
  size_t max_body_bytes = 4 << 20;      // larger → 413 without calling the handler
  size_t max_header_bytes = 16 << 10;   // larger → 431
  // Response bytes queued for a client that reads slower than the handler writes; past this the
  // client counts as gone (the connection closes and OnClientGone runs), so memory stays bounded.
  size_t max_queued_response_bytes = 16 << 20;
  // How long an idle keep-alive connection is kept open waiting for its next request.
  absl::Duration idle_timeout = absl::Seconds(60);
  // How long a client may take to send a request's headers, and again its body, once it started.
  absl::Duration header_timeout = absl::Seconds(30);
  // Body for errors the server answers itself, given status and message; returns
  // {content-type, body}. Default: text/plain with the message.
  std::function<std::pair<std::string, std::string>(int status, std::string_view message)>
      error_body = nullptr;
};

class HttpServer {
 public:
  // Binds, listens and starts the io threads. INVALID_ARGUMENT for a bad address or option,
  // UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(ServerOptions options, Handler handler);

  virtual ~HttpServer() = default;  // Shutdown(absl::ZeroDuration()) if not done
  // The bound port (also when the address asked for port 0).
  virtual int port() const = 0;
  // Stops accepting, closes idle connections, lets responses in flight finish for up to `drain`,
  // then closes every connection and joins the io threads. Idempotent; blocks until done.
  virtual void Shutdown(absl::Duration drain) = 0;

 protected:
  HttpServer() = default;
};

}  // namespace tollgate::http
