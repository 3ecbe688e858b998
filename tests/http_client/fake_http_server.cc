#include "tests/http_client/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "openssl/err.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/ssl.h"
#include "openssl/x509v3.h"

namespace tollgate::testing {

struct FakeHttpServer::Tls {
  SSL_CTX* context = nullptr;
  ~Tls() { SSL_CTX_free(context); }
};

namespace {

[[noreturn]] void Fatal(absl::string_view what) {
  std::fprintf(stderr, "fake_http_server: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// A self-signed certificate for localhost / 127.0.0.1 and its key, installed in `context`.
std::string InstallSelfSignedCertificate(SSL_CTX* context, const std::string& names) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  if (key == nullptr || cert == nullptr) Fatal("cannot generate a key");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, names.c_str()},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
  }
  if (X509_sign(cert, key, EVP_sha256()) == 0) Fatal("cannot sign the certificate");
  if (SSL_CTX_use_certificate(context, cert) != 1 || SSL_CTX_use_PrivateKey(context, key) != 1) {
    Fatal("cannot install the certificate");
  }
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, size);
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return pem;
}

class SocketConnection final : public FakeConnection {
 public:
  SocketConnection(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~SocketConnection() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }

  bool Write(absl::string_view bytes) override {
    if (closed_) return false;
    while (!bytes.empty()) {
      const ssize_t n = ssl_ != nullptr
                            ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                            : ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(n);
    }
    return true;
  }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    ::shutdown(fd_, SHUT_WR);
  }

  void Reset() override {
    if (closed_) return;
    closed_ = true;
    // The server thread closes the fd when the script returns; with a zero linger that close
    // sends the RST.
    linger hard{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  }

  bool WaitForPeerClose(absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    char buffer[4096];
    while (absl::Now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, 50);
      if (ready < 0) return true;
      if (ready == 0) continue;
      if (Read(buffer, sizeof(buffer)) <= 0) return true;
    }
    return false;
  }

  // Bytes read, 0 at end of stream, < 0 on error.
  ssize_t Read(char* buffer, size_t size) {
    if (ssl_ != nullptr) return SSL_read(ssl_, buffer, static_cast<int>(size));
    return ::recv(fd_, buffer, size, 0);
  }

  bool closed() const { return closed_; }

 private:
  const int fd_;
  SSL* const ssl_;
  bool closed_ = false;
};

// Reads one request; false at end of stream or on garbage.
bool ReadRequest(SocketConnection& connection, std::string& buffer, ReceivedRequest& request) {
  char chunk[4096];
  size_t head_end;
  while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = connection.Read(chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer.append(chunk, n);
  }
  std::vector<std::string> lines = absl::StrSplit(buffer.substr(0, head_end), "\r\n");
  std::vector<std::string> start = absl::StrSplit(lines[0], ' ');
  if (start.size() != 3) return false;
  request.method = start[0];
  request.target = start[1];
  size_t content_length = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) return false;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-length" && !absl::SimpleAtoi(value, &content_length)) return false;
    request.headers.emplace_back(std::move(name), std::move(value));
  }
  buffer.erase(0, head_end + 4);
  while (buffer.size() < content_length) {
    const ssize_t n = connection.Read(chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer.append(chunk, n);
  }
  request.body = buffer.substr(0, content_length);
  buffer.erase(0, content_length);
  return true;
}

}  // namespace

std::string ReceivedRequest::Header(absl::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

bool FakeConnection::WriteInPieces(absl::string_view bytes, size_t piece_bytes) {
  while (!bytes.empty()) {
    const size_t n = std::min(piece_bytes, bytes.size());
    if (!Write(bytes.substr(0, n))) return false;
    bytes.remove_prefix(n);
    absl::SleepFor(absl::Microseconds(300));
  }
  return true;
}

FakeHttpServer::FakeHttpServer(Script script, bool tls, std::string certificate_names)
    : script_(std::move(script)) {
  // OpenSSL writes to the socket (alerts, tickets) where no MSG_NOSIGNAL can be passed.
  ::signal(SIGPIPE, SIG_IGN);
  if (tls) {
    tls_ = std::make_unique<Tls>();
    tls_->context = SSL_CTX_new(TLS_server_method());
    certificate_pem_ = InstallSelfSignedCertificate(tls_->context, certificate_names);
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    Fatal("cannot listen");
  }
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FakeHttpServer::~FakeHttpServer() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> workers;
  {
    absl::MutexLock lock(&mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (std::thread& worker : workers) worker.join();
}

std::vector<ReceivedRequest> FakeHttpServer::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

void FakeHttpServer::AcceptLoop() {
  while (!stopping_) {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const int index = connections_accepted_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd, index] { Serve(fd, index); });
  }
}

void FakeHttpServer::Serve(int fd, int index) {
  SSL* ssl = nullptr;
  if (tls_ != nullptr) {
    ssl = SSL_new(tls_->context);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      ERR_clear_error();
      SSL_free(ssl);
      ssl = nullptr;
    }
  }
  if (tls_ == nullptr || ssl != nullptr) {
    SocketConnection connection(fd, ssl);
    std::string buffer;
    ReceivedRequest request;
    while (!stopping_ && !connection.closed() && ReadRequest(connection, buffer, request)) {
      request.connection = index;
      {
        absl::MutexLock lock(&mu_);
        requests_.push_back(request);
      }
      script_(request, connection);
      request = ReceivedRequest();
    }
  }
  absl::MutexLock lock(&mu_);
  open_fds_.erase(std::find(open_fds_.begin(), open_fds_.end(), fd));
  ::close(fd);
}

std::string HttpResponse(int status, absl::string_view content_type, absl::string_view body,
                         const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  std::string response =
      absl::StrCat("HTTP/1.1 ", status, " Whatever\r\nContent-Type: ", content_type,
                   "\r\nContent-Length: ", body.size(), "\r\n");
  for (const auto& [name, value] : extra_headers)
    absl::StrAppend(&response, name, ": ", value, "\r\n");
  absl::StrAppend(&response, "\r\n", body);
  return response;
}

std::string ChunkedHead(int status, absl::string_view content_type) {
  return absl::StrCat("HTTP/1.1 ", status, " Whatever\r\nContent-Type: ", content_type,
                      "\r\nTransfer-Encoding: chunked\r\n\r\n");
}

std::string Chunk(absl::string_view data) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return absl::StrCat(size, data, "\r\n");
}

void WriteEventStream(FakeConnection& connection, absl::string_view sse, size_t tcp_piece_bytes) {
  std::string wire = ChunkedHead(200, "text/event-stream; charset=utf-8");
  for (size_t i = 0; i < sse.size(); i += 13) absl::StrAppend(&wire, Chunk(sse.substr(i, 13)));
  absl::StrAppend(&wire, kLastChunk);
  if (tcp_piece_bytes == 0) {
    connection.Write(wire);
  } else {
    connection.WriteInPieces(wire, tcp_piece_bytes);
  }
}

}  // namespace tollgate::testing
