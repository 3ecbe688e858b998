// One call to a JSON-over-HTTP API (OpenAI, Anthropic): sends the request, and turns the answer
// into either a stream of server-sent events or one JSON document for the consumer, or an error
// status.
//
//   std::shared_ptr<Cancellable> call =
//       SendApiRequest(client, std::move(request), &openai::ErrorMessage, consumer);
//
// - 2xx text/event-stream: each event goes to OnEvent as it completes;
// - 2xx application/json (or any +json type): the whole body goes to OnJson;
// - 2xx of any other content type: INTERNAL naming the type (an HTML error page from a proxy);
// - any other status: HttpErrorStatus (http_status.h) with the API's error message, read from the
//   error body with `error_message`, and the retry-after header (or retry-after-ms).
//
// Thread safety: the consumer's methods for one call run one at a time, on the HTTP client's
// threads, and must not block.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proxy/http/client/http_client.h"
#include "proxy/http/client/sse_parser.h"

namespace tollgate::http {

class ApiResponseConsumer {
 public:
  virtual ~ApiResponseConsumer() = default;
  // One event of an event-stream answer. A non-OK status ends the call with it.
  virtual absl::Status OnEvent(const SseEvent& event) = 0;
  // The whole body of a JSON answer. A non-OK status ends the call with it.
  virtual absl::Status OnJson(absl::string_view body) = 0;
  // Exactly once, last: OK when the answer was read to its end and every callback returned OK;
  // otherwise the first error (a callback's, the HTTP error answer's, or the transport's, see
  // ResponseHandler::OnComplete).
  virtual void OnFinished(absl::Status status) = 0;
};

// The API's own message in an error body ("" when there is none).
using ErrorMessageFn = std::string (*)(absl::string_view body);

// `consumer` is kept alive until its OnFinished has returned.
std::shared_ptr<Cancellable> SendApiRequest(HttpClient& client, ClientRequest request,
                                            ErrorMessageFn error_message,
                                            std::shared_ptr<ApiResponseConsumer> consumer);

}  // namespace tollgate::http
