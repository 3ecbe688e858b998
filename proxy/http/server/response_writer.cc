#include "proxy/http/server/response_writer.h"

#include <utility>

namespace tollgate::http::internal {
namespace {

// Callers serialise their calls (see ResponseWriter), so `answered_` needs no lock.
class ConnectionResponseWriter final : public ResponseWriter {
 public:
  ConnectionResponseWriter(std::shared_ptr<Connection> connection, uint64_t seq)
      : connection_(std::move(connection)), seq_(seq) {}
  ~ConnectionResponseWriter() override {
    if (!answered_) connection_->PostWriterDropped(seq_);
  }

  void Send(int status, Headers headers, std::string body) override {
    answered_ = true;
    connection_->PostSend(seq_, status, std::move(headers), std::move(body));
  }
  void StartStream(int status, Headers headers) override {
    connection_->PostStartStream(seq_, status, std::move(headers));
  }
  void Write(std::string data) override { connection_->PostWrite(seq_, std::move(data)); }
  void End() override {
    answered_ = true;
    connection_->PostEnd(seq_);
  }
  void OnClientGone(std::function<void()> callback) override {
    connection_->PostOnClientGone(seq_, std::move(callback));
  }
  void Abort() override {
    answered_ = true;
    connection_->PostAbort(seq_);
  }

 private:
  const std::shared_ptr<Connection> connection_;
  const uint64_t seq_;
  bool answered_ = false;
};

}  // namespace

std::shared_ptr<ResponseWriter> MakeResponseWriter(std::shared_ptr<Connection> connection,
                                                   uint64_t seq) {
  return std::make_shared<ConnectionResponseWriter>(std::move(connection), seq);
}

}  // namespace tollgate::http::internal
