#include "tests/common/webhook_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace tollgate::testing {
namespace {

constexpr int kPollMs = 100;          // how soon the thread notices a stop
constexpr int kReadTimeoutMs = 5000;  // a sender that goes quiet mid-request is dropped
constexpr size_t kMaxRequestBytes = 16 << 20;

// The Content-Length of a request head (lower-cased header names), or -1.
long ContentLength(absl::string_view head) {
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::AsciiStrToLower(line.substr(0, colon)) != "content-length") continue;
    long length = -1;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(colon + 1)), &length)) {
      return length;
    }
  }
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<WebhookReceiver>> WebhookReceiver::Start() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int error = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("listen on 127.0.0.1:0: ", std::strerror(error)));
  }
  std::unique_ptr<WebhookReceiver> receiver(new WebhookReceiver(fd, ntohs(addr.sin_port)));
  receiver->thread_ = std::thread([r = receiver.get()] { r->Serve(); });
  return receiver;
}

WebhookReceiver::WebhookReceiver(int listen_fd, int port) : listen_fd_(listen_fd), port_(port) {}

WebhookReceiver::~WebhookReceiver() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
}

std::string WebhookReceiver::url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

std::vector<std::string> WebhookReceiver::Bodies() const {
  absl::MutexLock lock(&mu_);
  return bodies_;
}

void WebhookReceiver::Serve() {
  while (!stopping_) {
    pollfd listening{.fd = listen_fd_, .events = POLLIN, .revents = 0};
    if (poll(&listening, 1, kPollMs) <= 0) continue;
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    HandleConnection(fd);
    close(fd);
  }
}

void WebhookReceiver::HandleConnection(int fd) {
  std::string request;
  size_t head_end = std::string::npos;
  long body_bytes = -1;
  char buffer[8192];
  while (request.size() < kMaxRequestBytes && !stopping_) {
    if (head_end != std::string::npos &&
        request.size() >= head_end + 4 + static_cast<size_t>(body_bytes)) {
      break;
    }
    pollfd readable{.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&readable, 1, kReadTimeoutMs) <= 0) return;
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return;
    request.append(buffer, n);
    if (head_end == std::string::npos) {
      head_end = request.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        body_bytes = ContentLength(absl::string_view(request).substr(0, head_end));
        if (body_bytes < 0) body_bytes = 0;  // no body we can delimit
      }
    }
  }
  if (head_end == std::string::npos) return;
  {
    absl::MutexLock lock(&mu_);
    bodies_.push_back(request.substr(head_end + 4, body_bytes));
  }
  constexpr absl::string_view kOk =
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  (void)!write(fd, kOk.data(), kOk.size());
}

}  // namespace tollgate::testing
