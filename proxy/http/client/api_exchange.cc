#include "proxy/http/client/api_exchange.h"

#include <charconv>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/http/client/http_status.h"

namespace tollgate::http {
namespace {

constexpr size_t kMaxErrorBodyBytes = 64 << 10;

// "Application/JSON; charset=utf-8" → "application/json".
std::string MediaType(absl::string_view content_type) {
  const size_t semicolon = content_type.find(';');
  if (semicolon != absl::string_view::npos) content_type = content_type.substr(0, semicolon);
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(content_type));
}

// retry-after in seconds, or retry-after-ms converted to seconds.
std::string RetryAfterSeconds(const Headers& headers) {
  absl::string_view milliseconds;
  for (const auto& [name, value] : headers) {
    if (name == "retry-after") return value;
    if (name == "retry-after-ms") milliseconds = value;
  }
  double ms = 0;
  const auto [end, ec] =
      std::from_chars(milliseconds.data(), milliseconds.data() + milliseconds.size(), ms);
  if (milliseconds.empty() || ec != std::errc() || ms < 0) return "";
  return absl::StrCat(ms / 1000);
}

class ApiExchange final : public ResponseHandler {
 public:
  ApiExchange(ErrorMessageFn error_message, std::shared_ptr<ApiResponseConsumer> consumer)
      : error_message_(error_message), consumer_(std::move(consumer)) {}

  bool OnHeaders(int status, const Headers& headers) override {
    http_status_ = status;
    std::string content_type;
    for (const auto& [name, value] : headers) {
      if (name == "content-type") content_type = value;
    }
    if (status < 200 || status >= 300) {
      mode_ = Mode::kError;
      retry_after_ = RetryAfterSeconds(headers);
      return true;
    }
    const std::string media_type = MediaType(content_type);
    if (media_type == "text/event-stream") {
      mode_ = Mode::kEvents;
    } else if (media_type == "application/json" || absl::EndsWith(media_type, "+json")) {
      mode_ = Mode::kJson;
    } else {
      error_ = absl::InternalError(
          absl::StrCat("backend answered HTTP ", status, " with content-type \"", content_type,
                       "\"; expected application/json or text/event-stream"));
      return false;
    }
    return true;
  }

  bool OnBody(absl::string_view bytes) override {
    switch (mode_) {
      case Mode::kEvents:
        return FeedEvents(bytes);
      case Mode::kJson:
        body_.append(bytes.data(), bytes.size());
        return true;
      case Mode::kError:
        bytes = bytes.substr(0, kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, body_.size()));
        body_.append(bytes.data(), bytes.size());
        return true;
    }
    return true;
  }

  void OnComplete(absl::Status status) override {
    if (error_.ok()) {
      if (mode_ == Mode::kError) {
        // Even a truncated error body is an error answer; its message is best effort.
        error_ = HttpErrorStatus(http_status_, error_message_(body_), retry_after_);
      } else if (!status.ok()) {
        error_ = std::move(status);
      } else if (mode_ == Mode::kEvents) {
        std::vector<SseEvent> events;
        error_ = events_.Finish(&events);
        if (error_.ok()) Deliver(events);
      } else {
        error_ = consumer_->OnJson(body_);
      }
    }
    std::shared_ptr<ApiResponseConsumer> consumer = std::move(consumer_);
    consumer->OnFinished(std::move(error_));
  }

 private:
  enum class Mode { kJson, kEvents, kError };

  bool FeedEvents(absl::string_view bytes) {
    std::vector<SseEvent> events;
    const absl::Status fed = events_.Feed(bytes, &events);
    Deliver(events);
    if (error_.ok() && !fed.ok()) {
      error_ = absl::InternalError(
          absl::StrCat("backend sent a malformed event stream: ", fed.message()));
    }
    return error_.ok();
  }

  void Deliver(const std::vector<SseEvent>& events) {
    for (const SseEvent& event : events) {
      if (!error_.ok()) return;
      error_ = consumer_->OnEvent(event);
    }
  }

  const ErrorMessageFn error_message_;
  std::shared_ptr<ApiResponseConsumer> consumer_;
  Mode mode_ = Mode::kJson;
  int http_status_ = 0;
  std::string retry_after_;
  std::string body_;
  SseParser events_;
  absl::Status error_;  // the first failure
};

}  // namespace

std::shared_ptr<Cancellable> SendApiRequest(HttpClient& client, ClientRequest request,
                                            ErrorMessageFn error_message,
                                            std::shared_ptr<ApiResponseConsumer> consumer) {
  return client.Send(std::move(request),
                     std::make_shared<ApiExchange>(error_message, std::move(consumer)));
}

}  // namespace tollgate::http
