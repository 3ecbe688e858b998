// An asynchronous HTTP/1.1 client for one origin (scheme, host, port), with a keep-alive
// connection pool, TLS, deadlines and cancellation. The HTTP backends (OpenAI, Anthropic) make
// their calls through it.
//
//   absl::StatusOr<std::unique_ptr<HttpClient>> client =
//       HttpClient::Create({.tls = true, .host = "api.openai.com", .port = 443}, {});
//   std::shared_ptr<Cancellable> call = (*client)->Send(std::move(request), handler);
//   ...
//   call->Cancel();  // any thread; the handler's OnComplete(CANCELLED) follows
//
// Connections: at most `max_connections` are open at once; a request finding none free waits for
// one (its deadline still applies). A connection is reused only after a response was read to its
// end with keep-alive; one that failed, was cancelled or was left half-read is closed. An idle
// connection the server has closed is detected before reuse.
//
// TLS: certificates are verified against the system roots (/etc/ssl/certs) and the host name
// (SNI is sent for names, not for IP literals).
//
// Threads: a process-wide pool of I/O threads runs every client; one client's connections and
// callbacks are serialised on a strand of it. Response handlers must not block.
//
// Thread safety: HttpClient is thread-safe. Destroying it closes its idle connections; requests in
// flight go on to their end, keeping what they need alive. Nothing joins a thread, so a client may
// be destroyed anywhere, even inside one of its handlers' callbacks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tollgate::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Where a client connects. The target of each request carries the path.
struct Origin {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
};

struct ClientRequest {
  std::string method = "POST";
  std::string target;  // "/v1/chat/completions"
  Headers headers;     // besides host, content-length and user-agent, which the client sets
  std::string body;
  absl::Time deadline = absl::InfiniteFuture();
};

// Receives one response. Callbacks for one request never run concurrently; they run on the
// client's I/O threads and must not block.
class ResponseHandler {
 public:
  virtual ~ResponseHandler() = default;
  // The status line and headers; names are lower-case, in the order received. Returning false
  // abandons the response (the connection is closed) and OnComplete(CANCELLED) follows.
  virtual bool OnHeaders(int status, const Headers& headers) = 0;
  // Body bytes as they arrive, de-chunked, in pieces of any size. Returning false abandons the
  // response like OnHeaders.
  virtual bool OnBody(absl::string_view bytes) = 0;
  // Exactly once, last (also when OnHeaders never ran). OK: the whole body was delivered.
  //   UNAVAILABLE        connect, TLS or DNS failure, connection reset or closed early, a
  //                      malformed response, no data for `read_idle_timeout`;
  //   DEADLINE_EXCEEDED  the request's deadline passed;
  //   CANCELLED          Cancel() was called, or the handler abandoned the response;
  //   INTERNAL           the response body exceeded `max_response_body_bytes`.
  // A failure before any byte of the response arrived carries the payload
  // kBeforeResponsePayload = "1": the server cannot have generated anything for the request.
  virtual void OnComplete(absl::Status status) = 0;
};

// absl::Status payload type URL marking a failure that happened before any response byte.
inline constexpr absl::string_view kBeforeResponsePayload = "tollgate.dev/before_response";

// Handle on a request in flight. Keeping it does not keep the request alive or vice versa.
class Cancellable {
 public:
  virtual ~Cancellable() = default;
  // Thread-safe and idempotent; a request that already completed is unaffected.
  virtual void Cancel() = 0;
};

struct HttpClientOptions {
  int max_connections = 64;
  absl::Duration connect_timeout = absl::Seconds(10);  // DNS, TCP and TLS handshake together
  // Longest silence while waiting for response bytes; infinite: only the deadline applies.
  absl::Duration read_idle_timeout = absl::InfiniteDuration();
  // Idle connections older than this are closed instead of reused.
  absl::Duration max_idle_time = absl::Seconds(30);
  size_t max_response_body_bytes = size_t{64} << 20;
  size_t max_response_header_bytes = size_t{64} << 10;
  std::string user_agent = "tollgate";
  // Extra PEM certificates to trust besides the system roots (tests trust a self-signed one).
  std::string extra_trusted_ca_pem;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;

  // INVALID_ARGUMENT for an empty host, port 0, or unusable TLS settings.
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(const Origin& origin,
                                                            const HttpClientOptions& options);

  // Starts `request`. `handler` is kept alive until its OnComplete has returned, which may happen
  // on another thread before Send returns.
  virtual std::shared_ptr<Cancellable> Send(ClientRequest request,
                                            std::shared_ptr<ResponseHandler> handler) = 0;

  // Connections currently open (idle or busy) and TCP connections ever opened; for tests.
  virtual int open_connections() const = 0;
  virtual int64_t connections_opened() const = 0;
};

}  // namespace tollgate::http
