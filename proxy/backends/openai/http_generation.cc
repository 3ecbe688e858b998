#include "proxy/backends/openai/http_generation.h"

#include <algorithm>
#include <functional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proxy/common/grpc_status.h"
#include "proxy/common/log.h"

namespace tollgate {
namespace {

// The handle the pipeline holds; cancelling it aborts the HTTP request.
class HttpCall final : public BackendCall {
 public:
  explicit HttpCall(std::shared_ptr<http::Cancellable> request) : request_(std::move(request)) {}
  void Cancel() override { request_->Cancel(); }

 private:
  const std::shared_ptr<http::Cancellable> request_;
};

class NoCall final : public BackendCall {
 public:
  void Cancel() override {}
};

// One generation. Its callbacks run one at a time (ApiResponseConsumer's contract), so its state
// needs no lock.
class GenerateExchange final : public http::ApiResponseConsumer {
 public:
  GenerateExchange(std::shared_ptr<HttpBackendChannel> channel,
                   std::unique_ptr<GenerationDecoder> decoder,
                   std::shared_ptr<GenerateObserver> observer)
      : channel_(std::move(channel)),
        decoder_(std::move(decoder)),
        observer_(std::move(observer)) {}

  absl::Status OnEvent(const http::SseEvent& event) override {
    absl::StatusOr<GenerationUpdate> update = decoder_->DecodeEvent(event);
    if (!update.ok()) {
      channel_->CountMalformedEvent();
      return absl::OkStatus();
    }
    if (!update->error.ok()) return update->error;
    Remember(*update);
    if (!update->text.empty() || (update->report_usage_now && usage_.has_value())) {
      v1::GenerateResponse message;
      message.set_text(std::move(update->text));
      if (update->report_usage_now && usage_.has_value()) *message.mutable_usage() = *usage_;
      observer_->OnMessage(message);
    }
    return absl::OkStatus();
  }

  absl::Status OnJson(absl::string_view body) override {
    absl::StatusOr<GenerationUpdate> update = decoder_->DecodeBody(body);
    if (!update.ok()) return update.status();
    if (!update->error.ok()) return update->error;
    Remember(*update);
    whole_text_ = std::move(update->text);
    return absl::OkStatus();
  }

  void OnFinished(absl::Status status) override {
    // An answer that ended with its finish reason and usage is complete, even if the connection
    // failed before the stream's closing event.
    const bool finished =
        finish_reason_ != v1::FINISH_REASON_UNSPECIFIED && (status.ok() || usage_.has_value());
    if (finished) {
      v1::GenerateResponse last;
      last.set_text(std::move(whole_text_));
      last.set_finish_reason(finish_reason_);
      if (usage_.has_value()) *last.mutable_usage() = *usage_;
      observer_->OnMessage(last);
      status = absl::OkStatus();
    } else if (status.ok()) {
      status = absl::UnavailableError(
          "the backend ended its answer without a finish reason (truncated stream)");
    }
    std::shared_ptr<GenerateObserver> observer = std::move(observer_);
    observer->OnDone(channel_->ForClient(status));
  }

 private:
  void Remember(const GenerationUpdate& update) {
    if (update.usage.has_value()) usage_ = update.usage;
    if (update.finish_reason != v1::FINISH_REASON_UNSPECIFIED) {
      finish_reason_ = update.finish_reason;
    }
  }

  const std::shared_ptr<HttpBackendChannel> channel_;
  const std::unique_ptr<GenerationDecoder> decoder_;
  std::shared_ptr<GenerateObserver> observer_;
  v1::FinishReason finish_reason_ = v1::FINISH_REASON_UNSPECIFIED;
  std::optional<v1::Usage> usage_;
  std::string whole_text_;  // a whole (JSON) answer's text, sent with the finish reason
};

// A call answered by one whole JSON body (embeddings, a batch of prompts): decoded into a
// Result, or the failure, handed to `done`.
template <typename Result>
class JsonExchange final : public http::ApiResponseConsumer {
 public:
  using Decode = std::function<absl::StatusOr<Result>(absl::string_view body)>;
  using Done = std::function<void(absl::StatusOr<Result>)>;

  // `what` names the request in the error for an event-stream answer.
  JsonExchange(std::shared_ptr<HttpBackendChannel> channel, absl::string_view what, Decode decode,
               Done done)
      : channel_(std::move(channel)),
        what_(what),
        decode_(std::move(decode)),
        done_(std::move(done)) {}

  absl::Status OnEvent(const http::SseEvent&) override {
    return absl::InternalError(
        absl::StrCat("the backend answered ", what_, " with an event stream"));
  }

  absl::Status OnJson(absl::string_view body) override {
    absl::StatusOr<Result> result = decode_(body);
    if (!result.ok()) return result.status();
    result_ = *std::move(result);
    return absl::OkStatus();
  }

  void OnFinished(absl::Status status) override {
    Done done = std::move(done_);
    if (status.ok()) {
      done(std::move(result_));
    } else {
      done(channel_->ForClient(status));
    }
  }

 private:
  const std::shared_ptr<HttpBackendChannel> channel_;
  const std::string what_;
  const Decode decode_;
  Done done_;
  Result result_;
};

}  // namespace

HttpBackendChannel::HttpBackendChannel(const BackendConfig& config,
                                       std::unique_ptr<http::HttpClient> client,
                                       http::ErrorMessageFn error_message)
    : backend_name_(config.name),
      path_prefix_(config.base_url.path_prefix),
      extra_headers_(config.headers.begin(), config.headers.end()),
      client_(std::move(client)),
      timeout_(config.timeout),
      error_message_(error_message) {}

absl::Time HttpBackendChannel::Deadline(absl::Time call_deadline) const {
  if (timeout_ <= absl::ZeroDuration()) return call_deadline;
  return std::min(call_deadline, absl::Now() + timeout_);
}

http::ClientRequest HttpBackendChannel::JsonPost(absl::string_view path, std::string body,
                                                 bool stream, http::Headers api_headers,
                                                 absl::Time call_deadline) const {
  http::ClientRequest request;
  request.method = "POST";
  request.target = absl::StrCat(path_prefix_, path);
  request.headers = {{"content-type", "application/json"},
                     {"accept", stream ? "text/event-stream" : "application/json"}};
  request.headers.insert(request.headers.end(), std::make_move_iterator(api_headers.begin()),
                         std::make_move_iterator(api_headers.end()));
  request.headers.insert(request.headers.end(), extra_headers_.begin(), extra_headers_.end());
  request.body = std::move(body);
  request.deadline = Deadline(call_deadline);
  return request;
}

std::shared_ptr<BackendCall> HttpBackendChannel::Generate(
    http::ClientRequest request, std::unique_ptr<GenerationDecoder> decoder,
    std::shared_ptr<GenerateObserver> observer) {
  auto exchange = std::make_shared<GenerateExchange>(shared_from_this(), std::move(decoder),
                                                     std::move(observer));
  return std::make_shared<HttpCall>(
      http::SendApiRequest(*client_, std::move(request), error_message_, std::move(exchange)));
}

void HttpBackendChannel::Embed(http::ClientRequest request, EmbeddingsDecoder decode,
                               int expected_embeddings, EmbedCallback done) {
  auto decode_all =
      [decode, expected_embeddings](absl::string_view body) -> absl::StatusOr<v1::EmbedResponse> {
    absl::StatusOr<v1::EmbedResponse> response = decode(body);
    if (response.ok() && response->embeddings_size() != expected_embeddings) {
      return absl::InternalError(absl::StrCat("the backend returned ", response->embeddings_size(),
                                              " embeddings for ", expected_embeddings, " inputs"));
    }
    return response;
  };
  http::SendApiRequest(
      *client_, std::move(request), error_message_,
      std::make_shared<JsonExchange<v1::EmbedResponse>>(shared_from_this(), "an embeddings request",
                                                        std::move(decode_all), std::move(done)));
}

void HttpBackendChannel::CompleteBatch(http::ClientRequest request, BatchCompletionDecoder decode,
                                       size_t prompts, CompleteBatchCallback done) {
  http::SendApiRequest(
      *client_, std::move(request), error_message_,
      std::make_shared<JsonExchange<CompleteBatchResult>>(
          shared_from_this(), "a batch of prompts",
          [decode, prompts](absl::string_view body) { return decode(body, prompts); },
          std::move(done)));
}

absl::Status HttpBackendChannel::ForClient(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kPermissionDenied &&
      !auth_failure_logged_.exchange(true)) {
    Log("backend \"", backend_name_,
        "\" rejected Tollgate's credentials (check its api_key_env): ", status.message());
  }
  absl::Status translated = BackendErrorForClient(status);
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& value) { translated.SetPayload(url, value); });
  return translated;
}

void HttpBackendChannel::CountMalformedEvent() {
  const uint64_t n = malformed_events_.fetch_add(1) + 1;
  if ((n & (n - 1)) == 0) {  // 1, 2, 4, 8, ...: bounded logging
    Log("backend \"", backend_name_, "\" sent ", n,
        " malformed stream event(s) so far; they were skipped");
  }
}

absl::StatusOr<std::shared_ptr<HttpBackendChannel>> NewHttpBackendChannel(
    const BackendConfig& config, http::HttpClientOptions options,
    http::ErrorMessageFn error_message) {
  options.max_connections = static_cast<int>(std::min<uint32_t>(config.max_connections, 1 << 20));
  absl::StatusOr<std::unique_ptr<http::HttpClient>> client = http::HttpClient::Create(
      {.tls = config.base_url.tls, .host = config.base_url.host, .port = config.base_url.port},
      options);
  if (!client.ok()) return client.status();
  return std::make_shared<HttpBackendChannel>(config, *std::move(client), error_message);
}

std::shared_ptr<BackendCall> FinishedCall() { return std::make_shared<NoCall>(); }

}  // namespace tollgate
