#include "proxy/http/server/http_server.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http/raw_http_client.h"

namespace tollgate::http {
namespace {

using ::testing::HasSubstr;
using testing::RawHttpClient;
using testing::RawResponse;

constexpr absl::Duration kWait = absl::Seconds(10);

// A server on 127.0.0.1:0 whose handler the test supplies; counts handler calls.
class ServerHarness {
 public:
  explicit ServerHarness(Handler handler, ServerOptions options = {}) {
    options.address = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(
        std::move(options), [this, handler = std::move(handler)](
                                Request request, std::shared_ptr<ResponseWriter> writer) {
          calls_.fetch_add(1);
          handler(std::move(request), std::move(writer));
        });
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) server_ = *std::move(server);
  }

  HttpServer& server() { return *server_; }
  int port() const { return server_->port(); }
  int calls() const { return calls_.load(); }
  RawHttpClient Connect() {
    absl::StatusOr<RawHttpClient> client = RawHttpClient::Connect(port());
    EXPECT_TRUE(client.ok()) << client.status();
    return *std::move(client);
  }

 private:
  std::atomic<int> calls_{0};
  std::unique_ptr<HttpServer> server_;
};

// Answers "<method> <target> <body>" with the request's x-echo header echoed back.
void Echo(Request request, std::shared_ptr<ResponseWriter> writer) {
  writer->Send(200,
               {{"content-type", "text/plain"}, {"x-echo", std::string(request.Header("x-echo"))}},
               absl::StrCat(request.method, " ", request.target, " ", request.body));
}

TEST(HttpServer, ServesTwoRequestsOnOneKeepAliveConnection) {
  ServerHarness harness(Echo);
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client.SendRequest("POST", "/v1/a?x=1", {{"X-Echo", "one"}}, "hello").ok());
  absl::StatusOr<RawResponse> first = client.ReadResponse();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "POST /v1/a?x=1 hello");
  EXPECT_EQ(first->Header("x-echo"), "one");
  EXPECT_EQ(first->Header("connection"), "");

  ASSERT_TRUE(client.SendRequest("GET", "/second").ok());
  absl::StatusOr<RawResponse> second = client.ReadResponse();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->body, "GET /second ");
  EXPECT_EQ(harness.calls(), 2);
}

TEST(HttpServer, GivesTheHandlerLowerCasedHeadersPathAndBody) {
  absl::Mutex mu;
  Request seen;
  ServerHarness harness([&](Request request, std::shared_ptr<ResponseWriter> writer) {
    {
      absl::MutexLock lock(&mu);
      seen = request;
    }
    writer->Send(204, {}, "");
  });
  absl::StatusOr<RawResponse> response = testing::Fetch(
      harness.port(), "POST", "/v1/chat?q=2", {{"Content-Type", "application/json"}}, "{\"a\":1}");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 204);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/v1/chat?q=2");
  EXPECT_EQ(seen.Path(), "/v1/chat");
  EXPECT_EQ(seen.Header("content-type"), "application/json");
  EXPECT_EQ(seen.Header("absent"), "");
  EXPECT_EQ(seen.body, "{\"a\":1}");
}

TEST(HttpServer, AcceptsAChunkedRequestBody) {
  ServerHarness harness(Echo);
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client
                  .SendRaw("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                  .ok());
  absl::StatusOr<RawResponse> response = client.ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "POST /c abcde");
}

TEST(HttpServer, StreamsChunksThatTheClientReceivesOneByOne) {
  absl::Notification first_chunk_read;
  ServerHarness harness([&](Request, std::shared_ptr<ResponseWriter> writer) {
    writer->StartStream(200, {{"content-type", "text/event-stream"}});
    writer->Write("data: 1\n\n");
    // The rest comes from another thread once the client has seen the first chunk.
    std::thread([&first_chunk_read, writer] {
      first_chunk_read.WaitForNotificationWithTimeout(kWait);
      writer->Write("data: 2\n\n");
      writer->End();
    }).detach();
  });
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client.SendRequest("GET", "/stream").ok());
  absl::StatusOr<RawResponse> head = client.ReadHead();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->Header("transfer-encoding"), "chunked");
  EXPECT_EQ(head->Header("content-type"), "text/event-stream");
  absl::StatusOr<std::optional<std::string>> chunk = client.ReadChunk();
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_EQ(chunk->value_or(""), "data: 1\n\n");
  first_chunk_read.Notify();
  chunk = client.ReadChunk();
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_EQ(chunk->value_or(""), "data: 2\n\n");
  chunk = client.ReadChunk();
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_FALSE(chunk->has_value());

  // The connection is kept alive after the last chunk.
  ASSERT_TRUE(client.SendRequest("GET", "/again").ok());
  EXPECT_TRUE(client.ReadHead().ok());
}

TEST(HttpServer, RejectsABodyOverTheLimitWith413WithoutCallingTheHandler) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  ServerHarness harness(Echo, options);
  absl::StatusOr<RawResponse> response =
      testing::Fetch(harness.port(), "POST", "/big", {}, std::string(5000, 'x'));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->Header("connection"), "close");
  EXPECT_EQ(harness.calls(), 0);
}

TEST(HttpServer, RejectsAChunkedBodyThatGrowsOverTheLimitWith413) {
  ServerOptions options;
  options.max_body_bytes = 10;
  ServerHarness harness(Echo, options);
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client
                  .SendRaw("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
                  .ok());
  absl::StatusOr<RawResponse> response = client.ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(harness.calls(), 0);
}

TEST(HttpServer, AnswersOversizedHeadersWith431) {
  ServerOptions options;
  options.max_header_bytes = 2048;
  ServerHarness harness(Echo, options);
  absl::StatusOr<RawResponse> response =
      testing::Fetch(harness.port(), "GET", "/", {{"x-big", std::string(4096, 'a')}});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 431);
  EXPECT_EQ(harness.calls(), 0);
}

TEST(HttpServer, AnswersAGarbageRequestLineWith400AndCloses) {
  ServerOptions options;
  options.error_body = [](int status, std::string_view message) {
    return std::pair<std::string, std::string>(
        "application/json",
        absl::StrCat("{\"status\":", status, ",\"message\":\"", std::string(message), "\"}"));
  };
  ServerHarness harness(Echo, options);
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client.SendRaw("THIS IS NOT HTTP\r\n\r\n").ok());
  absl::StatusOr<RawResponse> response = client.ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->Header("content-type"), "application/json");
  EXPECT_THAT(response->body, HasSubstr("\"status\":400"));
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_EQ(harness.calls(), 0);
}

TEST(HttpServer, DoesNotCallTheHandlerWhenTheBodyIsCutShort) {
  ServerHarness harness(Echo);
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(
      client.SendRaw("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort").ok());
  client.Close();
  // A later request on a new connection is served, so the first one has been dealt with by then.
  absl::StatusOr<RawResponse> response = testing::Fetch(harness.port(), "GET", "/after");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "GET /after ");
  EXPECT_EQ(harness.calls(), 1);
}

TEST(HttpServer, AnswersExpectContinueBeforeTheBodyIsSent) {
  ServerHarness harness(Echo);
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client
                  .SendRaw("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                           "Expect: 100-continue\r\n\r\n")
                  .ok());
  absl::StatusOr<RawResponse> interim = client.ReadHead(/*keep_interim=*/true);
  ASSERT_TRUE(interim.ok()) << interim.status();
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.SendRaw("body").ok());
  absl::StatusOr<RawResponse> response = client.ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "POST /e body");
}

TEST(HttpServer, AnswersA500WhenTheHandlerDropsItsWriter) {
  ServerHarness harness([](Request, std::shared_ptr<ResponseWriter>) {});
  absl::StatusOr<RawResponse> response = testing::Fetch(harness.port(), "GET", "/");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 500);
}

TEST(HttpServer, RunsOnClientGoneWhenTheClientDisconnectsMidStream) {
  absl::Notification gone;
  std::shared_ptr<ResponseWriter> kept;
  absl::Mutex mu;
  ServerHarness harness([&](Request, std::shared_ptr<ResponseWriter> writer) {
    writer->OnClientGone([&gone] { gone.Notify(); });
    writer->StartStream(200, {});
    writer->Write("first");
    absl::MutexLock lock(&mu);
    kept = std::move(writer);  // never ends the stream
  });
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client.SendRequest("GET", "/s").ok());
  ASSERT_TRUE(client.ReadHead().ok());
  ASSERT_TRUE(client.ReadChunk().ok());
  client.Close();
  EXPECT_TRUE(gone.WaitForNotificationWithTimeout(kWait));

  // Registered after the client left, a callback runs right away.
  absl::Notification late;
  absl::MutexLock lock(&mu);
  kept->OnClientGone([&late] { late.Notify(); });
  EXPECT_TRUE(late.WaitForNotificationWithTimeout(kWait));
}

TEST(HttpServer, TreatsAClientThatStopsReadingAsGoneInsteadOfBufferingWithoutBound) {
  absl::Notification gone;
  ServerOptions options;
  options.max_queued_response_bytes = 1 << 20;
  std::thread writer_thread;
  ServerHarness harness(
      [&](Request, std::shared_ptr<ResponseWriter> writer) {
        writer->OnClientGone([&gone] { gone.Notify(); });
        writer->StartStream(200, {});
        // Far more than the socket buffers and the cap hold, from another thread as a backend
        // would; the client never reads.
        writer_thread = std::thread([writer, &gone] {
          for (int i = 0; i < 4096 && !gone.HasBeenNotified(); ++i) {
            writer->Write(std::string(64 << 10, 'x'));
          }
        });
      },
      options);
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client.SendRequest("GET", "/flood").ok());
  EXPECT_TRUE(gone.WaitForNotificationWithTimeout(kWait));
  writer_thread.join();
}

TEST(HttpServer, DoesNotRunOnClientGoneAfterTheResponseCompleted) {
  std::atomic<int> gone_calls{0};
  ServerHarness harness([&](Request, std::shared_ptr<ResponseWriter> writer) {
    writer->OnClientGone([&gone_calls] { gone_calls.fetch_add(1); });
    writer->Send(200, {}, "done");
  });
  {
    absl::StatusOr<RawResponse> response = testing::Fetch(harness.port(), "GET", "/");
    ASSERT_TRUE(response.ok());
  }
  // The next request on a new connection is answered after the first connection's close.
  ASSERT_TRUE(testing::Fetch(harness.port(), "GET", "/").ok());
  harness.server().Shutdown(absl::Seconds(1));
  EXPECT_EQ(gone_calls.load(), 0);
}

TEST(HttpServer, AbortResetsTheConnectionMidStream) {
  ServerHarness harness([](Request, std::shared_ptr<ResponseWriter> writer) {
    writer->StartStream(200, {});
    writer->Write("partial");
    writer->Abort();
  });
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client.SendRequest("GET", "/").ok());
  ASSERT_TRUE(client.ReadHead().ok());
  EXPECT_TRUE(client.WaitForReset());
}

TEST(HttpServer, ShutdownLetsAResponseInFlightFinish) {
  absl::Notification handler_called;
  std::shared_ptr<ResponseWriter> pending;
  absl::Mutex mu;
  auto harness = std::make_unique<ServerHarness>([&](Request, std::shared_ptr<ResponseWriter> w) {
    absl::MutexLock lock(&mu);
    pending = std::move(w);
    handler_called.Notify();
  });
  RawHttpClient busy = harness->Connect();
  RawHttpClient idle = harness->Connect();
  ASSERT_TRUE(busy.SendRequest("GET", "/slow").ok());
  ASSERT_TRUE(handler_called.WaitForNotificationWithTimeout(kWait));

  std::thread shutdown([&] { harness->server().Shutdown(kWait); });
  EXPECT_TRUE(idle.WaitForClose());  // idle connections close at once
  {
    absl::MutexLock lock(&mu);
    pending->Send(200, {}, "finished");
  }
  absl::StatusOr<RawResponse> response = busy.ReadResponse();
  EXPECT_TRUE(response.ok() && response->body == "finished") << response.status();
  EXPECT_TRUE(busy.WaitForClose());  // not kept alive
  shutdown.join();
  EXPECT_FALSE(RawHttpClient::Connect(harness->port()).ok());
  // A writer that outlives the server is inert.
  absl::MutexLock lock(&mu);
  pending->Send(200, {}, "again");
}

TEST(HttpServer, ShutdownClosesResponsesStillPendingAfterTheDrainTime) {
  absl::Notification gone;
  std::shared_ptr<ResponseWriter> pending;
  absl::Notification handler_called;
  ServerHarness harness([&](Request, std::shared_ptr<ResponseWriter> writer) {
    writer->OnClientGone([&gone] { gone.Notify(); });
    pending = std::move(writer);
    handler_called.Notify();
  });
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client.SendRequest("GET", "/never").ok());
  ASSERT_TRUE(handler_called.WaitForNotificationWithTimeout(kWait));
  harness.server().Shutdown(absl::ZeroDuration());
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_TRUE(gone.HasBeenNotified());
}

TEST(HttpServer, StreamsToAnHttp10ClientUntilTheConnectionCloses) {
  ServerHarness harness([](Request, std::shared_ptr<ResponseWriter> writer) {
    writer->StartStream(200, {});
    writer->Write("ab");
    writer->Write("cd");
    writer->End();
  });
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client.SendRaw("GET / HTTP/1.0\r\n\r\n").ok());
  absl::StatusOr<RawResponse> response = client.ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->Header("transfer-encoding"), "");
  EXPECT_EQ(response->body, "abcd");
}

TEST(HttpServer, KeepsAnHttp10KeepAliveConnectionAndAnswersHeadWithoutABody) {
  ServerHarness harness(Echo);
  RawHttpClient client = harness.Connect();
  ASSERT_TRUE(client.SendRaw("HEAD /h HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").ok());
  absl::StatusOr<RawResponse> head = client.ReadHead();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->Header("connection"), "keep-alive");
  EXPECT_EQ(head->Header("content-length"), "8");  // "HEAD /h "
  ASSERT_TRUE(client.SendRaw("GET /next HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").ok());
  absl::StatusOr<RawResponse> next = client.ReadResponse();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->body, "GET /next ");
}

TEST(HttpServer, DropsHeadersThatCouldSplitTheResponse) {
  ServerHarness harness([](Request, std::shared_ptr<ResponseWriter> writer) {
    writer->Send(200,
                 {{"x-ok", "fine"},
                  {"x-bad", "a\r\nx-injected: yes"},
                  {"bad name", "v"},
                  {"content-length", "999"}},
                 "body");
  });
  absl::StatusOr<RawResponse> response = testing::Fetch(harness.port(), "GET", "/");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->Header("x-ok"), "fine");
  EXPECT_EQ(response->Header("x-bad"), "");
  EXPECT_EQ(response->Header("x-injected"), "");
  EXPECT_EQ(response->Header("content-length"), "4");
  EXPECT_EQ(response->body, "body");
}

TEST(HttpServer, RejectsABadAddressAndAPortInUse) {
  EXPECT_EQ(HttpServer::Start({.address = "no-port"}, Echo).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<HttpServer>> first = HttpServer::Start({}, Echo);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<HttpServer>> second =
      HttpServer::Start({.address = absl::StrCat("127.0.0.1:", (*first)->port())}, Echo);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tollgate::http
