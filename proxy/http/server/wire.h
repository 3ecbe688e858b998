// Bytes of HTTP/1.1 responses as the server writes them: the status line and headers, chunk
// framing and the header checks that keep a handler's headers from splitting a response.
// Internal to tollgate_http_server. Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/http/server/http_server.h"

namespace tollgate::http::internal {

struct ResponseFraming {
  std::optional<size_t> content_length = std::nullopt;  // Content-Length when set
  bool chunked = false;                                 // Transfer-Encoding: chunked
  bool close = false;                                   // Connection: close
  bool keep_alive = false;  // Connection: keep-alive (for HTTP/1.0 clients)
};

// "HTTP/1.1 <status> <reason>\r\n<headers>\r\n". Drops the handler's own framing headers
// (content-length, transfer-encoding, connection) and any header unfit for the wire.
std::string ResponseHead(int status, const Headers& headers, const ResponseFraming& framing);

// One chunk of a chunked body: "<hex size>\r\n<data>\r\n". REQUIRES: !data.empty().
std::string ChunkFrame(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// A header name is a non-empty HTTP token; a value has no CR, LF or NUL.
bool IsValidHeader(std::string_view name, std::string_view value);

std::string AsciiLower(std::string_view text);

// The body of an error answered by the server itself, from options.error_body or text/plain.
std::pair<std::string, std::string> ErrorBody(const ServerOptions& options, int status,
                                              std::string_view message);

}  // namespace tollgate::http::internal
