// A scripted HTTP/1.1 server for client tests: it accepts on 127.0.0.1 (port 0), parses each
// request, and hands it to a script that writes whatever bytes it likes, in whatever pieces, and
// may close or reset the connection. Optionally TLS, with a self-signed certificate for
// "localhost" and 127.0.0.1 generated at start-up.
//
//   FakeHttpServer server([](const ReceivedRequest& request, FakeConnection& connection) {
//     connection.Write(HttpResponse(200, "application/json", "{}"));
//   });
//   ... connect to 127.0.0.1:server.port() ...
//
// Thread safety: one thread per connection runs the script; the accessors are thread-safe.
// Destroying the server wakes blocked scripts (their connections are shut down) and joins them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tollgate::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  int connection = 0;  // index of the TCP connection it came on, from 0

  std::string Header(absl::string_view name) const;  // "" when absent
};

class FakeConnection {
 public:
  virtual ~FakeConnection() = default;
  // One send (or TLS record) per call; false once the peer is gone.
  virtual bool Write(absl::string_view bytes) = 0;
  // Writes `bytes` in pieces of `piece_bytes`, pausing briefly between them so that the client
  // receives them as separate reads.
  bool WriteInPieces(absl::string_view bytes, size_t piece_bytes);
  // Ends the connection with a FIN; the server reads no further request on it.
  virtual void Close() = 0;
  // Ends the connection with a TCP RST once the script returns.
  virtual void Reset() = 0;
  // Waits until the client closes the connection; false on timeout.
  virtual bool WaitForPeerClose(absl::Duration timeout) = 0;
};

using Script = std::function<void(const ReceivedRequest&, FakeConnection&)>;

class FakeHttpServer {
 public:
  // `certificate_names` are the subject alternative names of the TLS certificate.
  explicit FakeHttpServer(Script script, bool tls = false,
                          std::string certificate_names = "DNS:localhost,IP:127.0.0.1");
  ~FakeHttpServer();

  uint16_t port() const { return port_; }
  int connections_accepted() const { return connections_accepted_.load(); }
  std::vector<ReceivedRequest> requests() const;
  // The self-signed certificate (TLS servers only), for the client to trust.
  const std::string& certificate_pem() const { return certificate_pem_; }

 private:
  struct Tls;
  void AcceptLoop();
  void Serve(int fd, int index);

  Script script_;
  std::unique_ptr<Tls> tls_;
  std::string certificate_pem_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> connections_accepted_{0};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable absl::Mutex mu_;
  std::vector<ReceivedRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
};

// A complete response with content-length.
std::string HttpResponse(
    int status, absl::string_view content_type, absl::string_view body,
    const std::vector<std::pair<std::string, std::string>>& extra_headers = {});
// The head of a chunked response; follow it with Chunk() pieces and kLastChunk.
std::string ChunkedHead(int status, absl::string_view content_type);
std::string Chunk(absl::string_view data);
inline constexpr absl::string_view kLastChunk = "0\r\n\r\n";
// Writes a whole 200 text/event-stream response carrying `sse`, in HTTP chunks of 13 bytes sent
// in TCP writes of `tcp_piece_bytes` (0: all at once), so that chunk headers, CRLFs, events and
// UTF-8 sequences are split everywhere.
void WriteEventStream(FakeConnection& connection, absl::string_view sse,
                      size_t tcp_piece_bytes = 7);

}  // namespace tollgate::testing
