#include "proxy/http/client/http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http_client/fake_http_server.h"

namespace tollgate::http {
namespace {

using ::testing::HasSubstr;
using ::tollgate::testing::Chunk;
using ::tollgate::testing::ChunkedHead;
using ::tollgate::testing::FakeConnection;
using ::tollgate::testing::FakeHttpServer;
using ::tollgate::testing::HttpResponse;
using ::tollgate::testing::kLastChunk;
using ::tollgate::testing::ReceivedRequest;

constexpr absl::Duration kWait = absl::Seconds(20);  // bounds every wait; never reached when green

// Records what a response delivered; callbacks may be hooked.
class RecordingHandler : public ResponseHandler {
 public:
  bool OnHeaders(int status, const Headers& headers) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    headers_ = headers;
    return accept_headers_;
  }
  bool OnBody(absl::string_view bytes) override {
    std::function<void()> hook;
    {
      absl::MutexLock lock(&mu_);
      body_.append(bytes.data(), bytes.size());
      ++body_calls_;
      hook = std::move(on_first_body_);
    }
    if (hook) hook();
    return true;
  }
  void OnComplete(absl::Status status) override {
    {
      absl::MutexLock lock(&mu_);
      EXPECT_FALSE(done_.HasBeenNotified()) << "OnComplete twice";
      result_ = std::move(status);
    }
    done_.Notify();
  }

  // Waits (bounded) for OnComplete and returns its status.
  absl::Status Wait() {
    EXPECT_TRUE(done_.WaitForNotificationWithTimeout(kWait)) << "no OnComplete";
    absl::MutexLock lock(&mu_);
    return result_;
  }
  int status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  std::string body() {
    absl::MutexLock lock(&mu_);
    return body_;
  }
  int body_calls() {
    absl::MutexLock lock(&mu_);
    return body_calls_;
  }
  std::string header(absl::string_view name) {
    absl::MutexLock lock(&mu_);
    for (const auto& [n, v] : headers_) {
      if (n == name) return v;
    }
    return "";
  }
  void OnFirstBody(std::function<void()> hook) {
    absl::MutexLock lock(&mu_);
    on_first_body_ = std::move(hook);
  }
  void RejectHeaders() {
    absl::MutexLock lock(&mu_);
    accept_headers_ = false;
  }

 private:
  absl::Mutex mu_;
  int status_ ABSL_GUARDED_BY(mu_) = 0;
  Headers headers_ ABSL_GUARDED_BY(mu_);
  std::string body_ ABSL_GUARDED_BY(mu_);
  int body_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> on_first_body_ ABSL_GUARDED_BY(mu_);
  bool accept_headers_ ABSL_GUARDED_BY(mu_) = true;
  absl::Status result_ ABSL_GUARDED_BY(mu_);
  absl::Notification done_;
};

std::unique_ptr<HttpClient> ClientFor(const FakeHttpServer& server,
                                      HttpClientOptions options = {}) {
  auto client =
      HttpClient::Create({.tls = false, .host = "127.0.0.1", .port = server.port()}, options);
  EXPECT_TRUE(client.ok()) << client.status();
  return *std::move(client);
}

template <typename F>
HttpClientOptions Options(F&& edit) {
  HttpClientOptions options;
  edit(options);
  return options;
}

ClientRequest Post(std::string target, std::string body = "{}") {
  ClientRequest request;
  request.method = "POST";
  request.target = std::move(target);
  request.headers = {{"content-type", "application/json"}, {"x-custom", "yes"}};
  request.body = std::move(body);
  return request;
}

bool BeforeResponse(const absl::Status& status) {
  return status.GetPayload(kBeforeResponsePayload).has_value();
}

TEST(HttpClient, SendsTheRequestAndDeliversTheResponse) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(201, "application/json", "{\"ok\":true}", {{"X-Answer", "42"}}));
  });
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  client->Send(Post("/v1/things?x=1", "{\"a\":1}"), handler);
  ASSERT_TRUE(handler->Wait().ok());
  EXPECT_EQ(handler->status(), 201);
  EXPECT_EQ(handler->body(), "{\"ok\":true}");
  EXPECT_EQ(handler->header("x-answer"), "42");
  ASSERT_EQ(server.requests().size(), 1u);
  const ReceivedRequest request = server.requests()[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/v1/things?x=1");
  EXPECT_EQ(request.body, "{\"a\":1}");
  EXPECT_EQ(request.Header("host"), absl::StrCat("127.0.0.1:", server.port()));
  EXPECT_EQ(request.Header("content-length"), "7");
  EXPECT_EQ(request.Header("x-custom"), "yes");
  EXPECT_EQ(request.Header("user-agent"), "tollgate");
}

TEST(HttpClient, ReusesOneKeepAliveConnectionForSequentialRequests) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "text/plain", "hi"));
  });
  auto client = ClientFor(server);
  for (int i = 0; i < 3; ++i) {
    auto handler = std::make_shared<RecordingHandler>();
    client->Send(Post("/"), handler);
    ASSERT_TRUE(handler->Wait().ok());
    EXPECT_EQ(handler->body(), "hi");
  }
  EXPECT_EQ(server.connections_accepted(), 1);
  EXPECT_EQ(client->connections_opened(), 1);
}

TEST(HttpClient, DoesNotReuseAConnectionTheServerAskedToClose) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(HttpResponse(200, "text/plain", "bye", {{"Connection", "close"}}));
    c.Close();
  });
  auto client = ClientFor(server);
  for (int i = 0; i < 2; ++i) {
    auto handler = std::make_shared<RecordingHandler>();
    client->Send(Post("/"), handler);
    ASSERT_TRUE(handler->Wait().ok());
  }
  EXPECT_EQ(server.connections_accepted(), 2);
}

TEST(HttpClient, NoticesThatTheServerClosedAnIdleConnectionBeforeReusingIt) {
  absl::Notification closed;
  FakeHttpServer server([&](const ReceivedRequest& request, FakeConnection& c) {
    c.Write(HttpResponse(200, "text/plain", "ok"));
    if (request.connection == 0) {
      c.Close();  // without saying so in the response
      closed.Notify();
    }
  });
  auto client = ClientFor(server);
  auto first = std::make_shared<RecordingHandler>();
  client->Send(Post("/"), first);
  ASSERT_TRUE(first->Wait().ok());
  ASSERT_TRUE(closed.WaitForNotificationWithTimeout(kWait));
  auto second = std::make_shared<RecordingHandler>();
  client->Send(Post("/"), second);
  EXPECT_TRUE(second->Wait().ok());
  EXPECT_EQ(server.connections_accepted(), 2);
}

TEST(HttpClient, DeliversAChunkedBodyWrittenInTinyPieces) {
  std::string expected;
  for (int i = 0; i < 40; ++i) expected += absl::StrCat("data: {\"n\":", i, "}\r\n\r\n");
  FakeHttpServer server([&](const ReceivedRequest&, FakeConnection& c) {
    std::string wire = ChunkedHead(200, "text/event-stream");
    for (size_t i = 0; i < expected.size(); i += 37) wire += Chunk(expected.substr(i, 37));
    absl::StrAppend(&wire, kLastChunk);
    c.WriteInPieces(wire, 5);
  });
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  client->Send(Post("/"), handler);
  ASSERT_TRUE(handler->Wait().ok());
  EXPECT_EQ(handler->body(), expected);
  EXPECT_GT(handler->body_calls(), 1);
}

TEST(HttpClient, AnUnreachableServerIsUnavailableBeforeAnyResponse) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);  // nothing listens on the port now
  auto client = HttpClient::Create({.host = "127.0.0.1", .port = ntohs(address.sin_port)}, {});
  ASSERT_TRUE(client.ok());
  auto handler = std::make_shared<RecordingHandler>();
  (*client)->Send(Post("/"), handler);
  const absl::Status status = handler->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(BeforeResponse(status)) << status;
  EXPECT_EQ((*client)->open_connections(), 0);
}

TEST(HttpClient, AServerThatClosesWithoutAnsweringIsUnavailableBeforeAnyResponse) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) { c.Close(); });
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  client->Send(Post("/"), handler);
  const absl::Status status = handler->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(BeforeResponse(status)) << status;
}

TEST(HttpClient, AResetMidBodyDeliversThePartAndIsUnavailable) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/event-stream") + Chunk("data: partial\n\n"));
    absl::SleepFor(absl::Milliseconds(20));
    c.Reset();
  });
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  client->Send(Post("/"), handler);
  const absl::Status status = handler->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(BeforeResponse(status));
  EXPECT_EQ(handler->body(), "data: partial\n\n");
  EXPECT_EQ(client->open_connections(), 0);
}

TEST(HttpClient, ABodyShorterThanItsContentLengthIsUnavailable) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        "{\"trunc");
    c.Close();
  });
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  client->Send(Post("/"), handler);
  const absl::Status status = handler->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("mid-response"));
}

TEST(HttpClient, ABodyOverTheLimitIsAnError) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/plain"));
    for (int i = 0; i < 100 && c.Write(Chunk(std::string(1000, 'x'))); ++i) {
    }
    c.Write(kLastChunk);
  });
  auto client = ClientFor(server, Options([](auto& o) { o.max_response_body_bytes = 10000; }));
  auto handler = std::make_shared<RecordingHandler>();
  client->Send(Post("/"), handler);
  const absl::Status status = handler->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("exceeds 10000 bytes"));
  EXPECT_LE(handler->body().size(), 10000u);
}

TEST(HttpClient, CancelMidStreamEndsTheRequestAndClosesTheConnection) {
  absl::Notification client_closed;
  FakeHttpServer server([&](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/event-stream") + Chunk("data: one\n\n"));
    if (c.WaitForPeerClose(kWait)) client_closed.Notify();
  });
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  std::shared_ptr<Cancellable> call;
  absl::Notification sent;
  handler->OnFirstBody([&] {
    sent.WaitForNotification();
    call->Cancel();
  });
  call = client->Send(Post("/"), handler);
  sent.Notify();
  const absl::Status status = handler->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(BeforeResponse(status));
  EXPECT_EQ(handler->body(), "data: one\n\n");
  EXPECT_TRUE(client_closed.WaitForNotificationWithTimeout(kWait));
  call->Cancel();  // idempotent, after completion too
}

TEST(HttpClient, ADeadlineMidStreamIsDeadlineExceeded) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/event-stream") + Chunk("data: one\n\n"));
    c.WaitForPeerClose(kWait);
  });
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  ClientRequest request = Post("/");
  request.deadline = absl::Now() + absl::Milliseconds(200);
  client->Send(std::move(request), handler);
  EXPECT_EQ(handler->Wait().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(handler->body(), "data: one\n\n");
}

TEST(HttpClient, ARequestWaitingForAConnectionHonoursItsDeadline) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/event-stream"));
    c.WaitForPeerClose(kWait);
  });
  auto client = ClientFor(server, Options([](auto& o) { o.max_connections = 1; }));
  auto busy = std::make_shared<RecordingHandler>();
  auto busy_call = client->Send(Post("/"), busy);
  auto waiting = std::make_shared<RecordingHandler>();
  ClientRequest request = Post("/");
  request.deadline = absl::Now() + absl::Milliseconds(100);
  client->Send(std::move(request), waiting);
  const absl::Status status = waiting->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(BeforeResponse(status));
  busy_call->Cancel();
  EXPECT_EQ(busy->Wait().code(), absl::StatusCode::kCancelled);
}

TEST(HttpClient, RequestsBeyondMaxConnectionsWaitAndShareTheConnection) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    absl::SleepFor(absl::Milliseconds(5));
    c.Write(HttpResponse(200, "text/plain", "ok"));
  });
  auto client = ClientFor(server, Options([](auto& o) { o.max_connections = 1; }));
  std::vector<std::shared_ptr<RecordingHandler>> handlers;
  for (int i = 0; i < 5; ++i) {
    handlers.push_back(std::make_shared<RecordingHandler>());
    client->Send(Post("/"), handlers.back());
  }
  for (auto& handler : handlers) EXPECT_TRUE(handler->Wait().ok());
  EXPECT_EQ(server.connections_accepted(), 1);
}

TEST(HttpClient, SilenceLongerThanTheReadTimeoutIsUnavailable) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/event-stream"));
    c.WaitForPeerClose(kWait);
  });
  auto client =
      ClientFor(server, Options([](auto& o) { o.read_idle_timeout = absl::Milliseconds(100); }));
  auto handler = std::make_shared<RecordingHandler>();
  client->Send(Post("/"), handler);
  const absl::Status status = handler->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("read timeout"));
}

TEST(HttpClient, AHandlerCanAbandonAResponseAtItsHeaders) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    c.Write(ChunkedHead(200, "text/html") + Chunk("<html>"));
    c.WaitForPeerClose(kWait);
  });
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  handler->RejectHeaders();
  client->Send(Post("/"), handler);
  EXPECT_EQ(handler->Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(handler->body(), "");
}

TEST(HttpClient, AnUnknownMethodIsInvalid) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection&) {});
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  ClientRequest request = Post("/");
  request.method = "FROB";
  client->Send(std::move(request), handler);
  EXPECT_EQ(handler->Wait().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpClient, RejectsAnOriginWithoutHostOrPort) {
  EXPECT_EQ(HttpClient::Create({.host = "", .port = 80}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpClient::Create({.host = "example.com", .port = 0}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HttpClient, SpeaksTlsToAServerWhoseCertificateItTrusts) {
  FakeHttpServer server(
      [](const ReceivedRequest&, FakeConnection& c) {
        c.Write(HttpResponse(200, "application/json", "{\"secure\":true}"));
      },
      /*tls=*/true);
  auto client = HttpClient::Create(
      {.tls = true, .host = "localhost", .port = server.port()},
      Options([&](auto& o) { o.extra_trusted_ca_pem = server.certificate_pem(); }));
  ASSERT_TRUE(client.ok()) << client.status();
  for (int i = 0; i < 2; ++i) {
    auto handler = std::make_shared<RecordingHandler>();
    (*client)->Send(Post("/"), handler);
    ASSERT_TRUE(handler->Wait().ok());
    EXPECT_EQ(handler->body(), "{\"secure\":true}");
  }
  EXPECT_EQ(server.connections_accepted(), 1);
  EXPECT_EQ(server.requests()[0].Header("host"), absl::StrCat("localhost:", server.port()));
}

TEST(HttpClient, RefusesATlsServerWhoseCertificateItDoesNotTrust) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection&) {}, /*tls=*/true);
  auto client = HttpClient::Create({.tls = true, .host = "localhost", .port = server.port()}, {});
  ASSERT_TRUE(client.ok());
  auto handler = std::make_shared<RecordingHandler>();
  (*client)->Send(Post("/"), handler);
  const absl::Status status = handler->Wait();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("certificate verify failed"));
  EXPECT_TRUE(BeforeResponse(status));
  EXPECT_TRUE(server.requests().empty());
}

TEST(HttpClient, RefusesATlsCertificateForAnotherHostName) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection&) {}, /*tls=*/true,
                        "DNS:api.example.test");
  auto client = HttpClient::Create(
      {.tls = true, .host = "127.0.0.1", .port = server.port()},
      Options([&](auto& o) { o.extra_trusted_ca_pem = server.certificate_pem(); }));
  ASSERT_TRUE(client.ok());
  auto handler = std::make_shared<RecordingHandler>();
  (*client)->Send(Post("/"), handler);
  EXPECT_EQ(handler->Wait().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(server.requests().empty());
}

TEST(HttpClient, DestroyingTheClientLetsRequestsInFlightFinish) {
  FakeHttpServer server([](const ReceivedRequest&, FakeConnection& c) {
    absl::SleepFor(absl::Milliseconds(50));
    c.Write(HttpResponse(200, "text/plain", "still here"));
  });
  auto client = ClientFor(server);
  auto handler = std::make_shared<RecordingHandler>();
  client->Send(Post("/"), handler);
  client.reset();
  ASSERT_TRUE(handler->Wait().ok());
  EXPECT_EQ(handler->body(), "still here");
}

}  // namespace
}  // namespace tollgate::http
