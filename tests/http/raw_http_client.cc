#include "tests/http/raw_http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace tollgate::http::testing {
namespace {

absl::string_view Absl(std::string_view text) { return {text.data(), text.size()}; }

}  // namespace

std::string_view RawResponse::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::vector<SseEvent> ParseSse(std::string_view body) {
  std::vector<SseEvent> events;
  for (absl::string_view block : absl::StrSplit(Absl(body), "\n\n", absl::SkipEmpty())) {
    SseEvent event;
    bool has_field = false;
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::ConsumePrefix(&line, "event:")) {
        event.event = std::string(absl::StripLeadingAsciiWhitespace(line));
        has_field = true;
      } else if (absl::ConsumePrefix(&line, "data:")) {
        if (!event.data.empty()) event.data += "\n";
        absl::ConsumePrefix(&line, " ");
        event.data += std::string(line);
        has_field = true;
      }
    }
    if (has_field) events.push_back(std::move(event));
  }
  return events;
}

absl::StatusOr<RawHttpClient> RawHttpClient::Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect: ", strerror(error)));
  }
  return RawHttpClient(fd);
}

RawHttpClient& RawHttpClient::operator=(RawHttpClient&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    pending_ = std::move(other.pending_);
  }
  return *this;
}

RawHttpClient::~RawHttpClient() { Close(); }

absl::Status RawHttpClient::SendRaw(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
    }
    bytes.remove_prefix(static_cast<size_t>(sent));
  }
  return absl::OkStatus();
}

absl::Status RawHttpClient::SendRequest(std::string_view method, std::string_view target,
                                        const HeaderList& headers, std::string_view body) {
  std::string request =
      absl::StrCat(Absl(method), " ", Absl(target), " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&request, name, ": ", value, "\r\n");
  if (!body.empty() || method == "POST") {
    absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&request, "\r\n", Absl(body));
  return SendRaw(request);
}

absl::Status RawHttpClient::Fill() {
  const absl::Time give_up = absl::Now() + kReadTimeout;
  while (true) {
    const absl::Duration left = give_up - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("read timed out");
    pollfd waiting{.fd = fd_, .events = POLLIN, .revents = 0};
    const int ready = poll(&waiting, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buffer[16 << 10];
    const ssize_t received = recv(fd_, buffer, sizeof(buffer), 0);
    if (received < 0 && errno == EINTR) continue;
    if (received < 0) return absl::AbortedError(absl::StrCat("recv: ", strerror(errno)));
    if (received == 0) return absl::OutOfRangeError("connection closed");
    pending_.append(buffer, static_cast<size_t>(received));
    return absl::OkStatus();
  }
}

absl::StatusOr<std::string> RawHttpClient::ReadLine() {
  size_t end;
  while ((end = pending_.find("\r\n")) == std::string::npos) {
    if (absl::Status status = Fill(); !status.ok()) return status;
  }
  std::string line = pending_.substr(0, end);
  pending_.erase(0, end + 2);
  return line;
}

absl::StatusOr<std::string> RawHttpClient::ReadExactly(size_t size) {
  while (pending_.size() < size) {
    if (absl::Status status = Fill(); !status.ok()) return status;
  }
  std::string bytes = pending_.substr(0, size);
  pending_.erase(0, size);
  return bytes;
}

absl::StatusOr<RawResponse> RawHttpClient::ReadHead(bool keep_interim) {
  while (true) {
    absl::StatusOr<std::string> status_line = ReadLine();
    if (!status_line.ok()) return status_line.status();
    std::vector<absl::string_view> parts = absl::StrSplit(*status_line, absl::MaxSplits(' ', 2));
    RawResponse response;
    if (parts.size() < 2 || !absl::StartsWith(parts[0], "HTTP/1.") ||
        !absl::SimpleAtoi(parts[1], &response.status)) {
      return absl::DataLossError(absl::StrCat("bad status line: ", *status_line));
    }
    while (true) {
      absl::StatusOr<std::string> line = ReadLine();
      if (!line.ok()) return line.status();
      if (line->empty()) break;
      const size_t colon = line->find(':');
      if (colon == std::string::npos) return absl::DataLossError("bad header line: " + *line);
      response.headers.emplace_back(
          absl::AsciiStrToLower(line->substr(0, colon)),
          std::string(absl::StripAsciiWhitespace(absl::string_view(*line).substr(colon + 1))));
    }
    if (response.status >= 200 || keep_interim) return response;
  }
}

absl::StatusOr<std::optional<std::string>> RawHttpClient::ReadChunk() {
  absl::StatusOr<std::string> size_line = ReadLine();
  if (!size_line.ok()) return size_line.status();
  size_t size = 0;
  if (!absl::SimpleHexAtoi(size_line->substr(0, size_line->find(';')), &size)) {
    return absl::DataLossError(absl::StrCat("bad chunk size line: ", *size_line));
  }
  if (size == 0) {
    absl::StatusOr<std::string> trailer_end = ReadLine();
    if (!trailer_end.ok()) return trailer_end.status();
    return std::nullopt;
  }
  absl::StatusOr<std::string> data = ReadExactly(size + 2);
  if (!data.ok()) return data.status();
  data->resize(size);
  return std::optional<std::string>(*std::move(data));
}

absl::Status RawHttpClient::ReadChunkedBody(RawResponse& response) {
  while (true) {
    absl::StatusOr<std::optional<std::string>> chunk = ReadChunk();
    if (!chunk.ok()) return chunk.status();
    if (!chunk->has_value()) return absl::OkStatus();
    response.body += **chunk;
    response.chunks.push_back(**std::move(chunk));
  }
}

absl::StatusOr<RawResponse> RawHttpClient::ReadResponse() {
  absl::StatusOr<RawResponse> response = ReadHead();
  if (!response.ok()) return response.status();
  if (absl::EqualsIgnoreCase(Absl(response->Header("transfer-encoding")), "chunked")) {
    if (absl::Status status = ReadChunkedBody(*response); !status.ok()) return status;
    return response;
  }
  if (std::string_view length = response->Header("content-length"); !length.empty()) {
    size_t size = 0;
    if (!absl::SimpleAtoi(Absl(length), &size)) return absl::DataLossError("bad content-length");
    absl::StatusOr<std::string> body = ReadExactly(size);
    if (!body.ok()) return body.status();
    response->body = *std::move(body);
    return response;
  }
  if (response->status == 204 || response->status == 304) return response;
  while (true) {  // delimited by the end of the connection
    absl::Status status = Fill();
    if (absl::IsOutOfRange(status)) break;
    if (!status.ok()) return status;
  }
  response->body = std::exchange(pending_, "");
  return response;
}

bool RawHttpClient::WaitForClose() {
  while (true) {
    absl::Status status = Fill();
    if (absl::IsOutOfRange(status) || absl::IsAborted(status)) return true;
    if (!status.ok()) return false;
    pending_.clear();
  }
}

bool RawHttpClient::WaitForReset() {
  while (true) {
    absl::Status status = Fill();
    if (absl::IsAborted(status)) return true;
    if (!status.ok()) return false;
    pending_.clear();
  }
}

void RawHttpClient::Reset() {
  if (fd_ < 0) return;
  linger option{.l_onoff = 1, .l_linger = 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
  Close();
}

void RawHttpClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

absl::StatusOr<RawResponse> Fetch(int port, std::string_view method, std::string_view target,
                                  const HeaderList& headers, std::string_view body) {
  absl::StatusOr<RawHttpClient> client = RawHttpClient::Connect(port);
  if (!client.ok()) return client.status();
  if (absl::Status status = client->SendRequest(method, target, headers, body); !status.ok()) {
    return status;
  }
  return client->ReadResponse();
}

}  // namespace tollgate::http::testing
