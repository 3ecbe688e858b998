// A tiny blocking HTTP/1.1 client over one raw TCP connection to 127.0.0.1, for tests of HTTP
// servers (tollgate_http_server, tollgate-sim's HTTP API). It sends exactly the bytes a test asks
// for and reads responses piece by piece, so tests can check keep-alive, chunk-by-chunk streaming,
// malformed input and disconnects. Every read gives up after kReadTimeout (a bound, not a timing
// assertion).
//
// Not thread-safe: one thread uses a client at a time. Move-only; owns its socket.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tollgate::http::testing {

inline constexpr absl::Duration kReadTimeout = absl::Seconds(10);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct RawResponse {
  int status = 0;
  HeaderList headers;               // names lower-cased
  std::string body;                 // the whole body (chunks joined)
  std::vector<std::string> chunks;  // chunked responses: the chunks as received

  std::string_view Header(std::string_view lower_name) const;
};

// One Server-Sent Event: `event:` (empty when absent) and `data:`.
struct SseEvent {
  std::string event;
  std::string data;
};
// Splits a text/event-stream body into events (blank-line separated; comment lines ignored).
std::vector<SseEvent> ParseSse(std::string_view body);

class RawHttpClient {
 public:
  static absl::StatusOr<RawHttpClient> Connect(int port);

  RawHttpClient(RawHttpClient&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  RawHttpClient& operator=(RawHttpClient&& other) noexcept;
  ~RawHttpClient();

  // Sends bytes as they are.
  absl::Status SendRaw(std::string_view bytes);
  // Sends one HTTP/1.1 request, adding Host and (for a non-empty body or POST) Content-Length.
  absl::Status SendRequest(std::string_view method, std::string_view target,
                           const HeaderList& headers = {}, std::string_view body = "");

  // Reads a status line and headers (skipping 1xx interim responses unless keep_interim).
  absl::StatusOr<RawResponse> ReadHead(bool keep_interim = false);
  // Reads the next chunk of a chunked body; std::nullopt at the last (empty) chunk.
  absl::StatusOr<std::optional<std::string>> ReadChunk();
  // Reads a whole response: by Content-Length, by chunks, or until the server closes.
  absl::StatusOr<RawResponse> ReadResponse();
  // The rest of a chunked body after ReadHead, into `response`.
  absl::Status ReadChunkedBody(RawResponse& response);

  // True when the server closes the connection (orderly or by reset) within kReadTimeout;
  // bytes that arrive first are discarded.
  bool WaitForClose();
  // True when the server reset the connection (rather than closing it in order) within the bound.
  bool WaitForReset();
  // Closes the socket with a TCP reset (SO_LINGER 0), as a crashing client would.
  void Reset();
  // Closes the socket in order.
  void Close();

 private:
  explicit RawHttpClient(int fd) : fd_(fd) {}
  // Reads more bytes into pending_; false at end of stream, error or timeout.
  absl::Status Fill();
  absl::StatusOr<std::string> ReadLine();
  absl::StatusOr<std::string> ReadExactly(size_t size);

  int fd_ = -1;
  std::string pending_;  // received and not yet consumed
};

// Connects, sends one request and reads its response.
absl::StatusOr<RawResponse> Fetch(int port, std::string_view method, std::string_view target,
                                  const HeaderList& headers = {}, std::string_view body = "");

}  // namespace tollgate::http::testing
