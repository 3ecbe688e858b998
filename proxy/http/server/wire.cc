#include "proxy/http/server/wire.h"

#include <boost/beast/http/status.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tollgate::http::internal {
namespace {

bool IsTokenChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return kSymbols.find(c) != std::string_view::npos;
}

absl::string_view Absl(std::string_view text) { return {text.data(), text.size()}; }

bool IsFramingHeader(std::string_view view) {
  const absl::string_view name = Absl(view);
  return absl::EqualsIgnoreCase(name, "content-length") ||
         absl::EqualsIgnoreCase(name, "transfer-encoding") ||
         absl::EqualsIgnoreCase(name, "connection");
}

}  // namespace

bool IsValidHeader(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!IsTokenChar(c)) return false;
  }
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string AsciiLower(std::string_view text) { return absl::AsciiStrToLower(Absl(text)); }

std::string ResponseHead(int status, const Headers& headers, const ResponseFraming& framing) {
  namespace http = boost::beast::http;
  std::string reason(http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status))));
  if (reason == "<unknown-status>") reason.clear();
  std::string head = absl::StrCat("HTTP/1.1 ", status, " ", reason, "\r\n");
  for (const auto& [name, value] : headers) {
    if (IsFramingHeader(name) || !IsValidHeader(name, value)) continue;
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  if (framing.content_length.has_value()) {
    absl::StrAppend(&head, "Content-Length: ", *framing.content_length, "\r\n");
  }
  if (framing.chunked) head += "Transfer-Encoding: chunked\r\n";
  if (framing.close) {
    head += "Connection: close\r\n";
  } else if (framing.keep_alive) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  return head;
}

std::string ChunkFrame(std::string_view data) {
  return absl::StrCat(absl::Hex(data.size()), "\r\n", Absl(data), "\r\n");
}

std::pair<std::string, std::string> ErrorBody(const ServerOptions& options, int status,
                                              std::string_view message) {
  if (options.error_body) return options.error_body(status, message);
  return {"text/plain; charset=utf-8", absl::StrCat(Absl(message), "\n")};
}

}  // namespace tollgate::http::internal
