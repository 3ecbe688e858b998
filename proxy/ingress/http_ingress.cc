#include "proxy/ingress/http_ingress.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "accounting/pricing.h"
#include "proxy/common/cancel_latch.h"
#include "proxy/common/status_payloads.h"
#include "proxy/openai/server_codec.h"

namespace tollgate {
namespace {

constexpr absl::string_view kJson = "application/json";

std::string CacheHeader(v1::CacheStatus status) {
  const std::string_view label = CacheStatusLabel(status);
  return label.empty() ? "miss" : std::string(label);
}

http::Headers AccountingHeaders(const v1::Cost& cost, v1::CacheStatus cache,
                                const std::string& request_id) {
  http::Headers headers = {{"x-tollgate-cost-usd", FormatNanoUsd(cost.total_nano_usd())},
                           {"x-tollgate-cache", CacheHeader(cache)}};
  if (!request_id.empty()) headers.emplace_back("x-request-id", request_id);
  return headers;
}

void SendError(http::ResponseWriter& writer, const absl::Status& status, int http_status = 0,
               http::Headers headers = {}) {
  headers.emplace_back("content-type", std::string(kJson));
  if (const auto retry_after = status.GetPayload(kRetryAfterPayload); retry_after.has_value()) {
    headers.emplace_back("retry-after", std::string(*retry_after));
  }
  writer.Send(http_status != 0 ? http_status : openai::HttpStatusFor(status.code()),
              std::move(headers), openai::ErrorJson(status));
}

IngressInfo InfoFor(const http::Request& request) {
  IngressInfo info;
  const std::string_view authorization = request.Header("authorization");
  const std::string_view request_id = request.Header("x-request-id");
  info.authorization = absl::string_view(authorization.data(), authorization.size());
  info.request_id = absl::string_view(request_id.data(), request_id.size());
  return info;
}

// Relays one generation to an HTTP client, as a JSON document or as server-sent events. Owns
// itself from creation until the pipeline's OnFinish; the pipeline's calls are serialised.
class HttpGenerateSink final : public GenerateSink {
 public:
  HttpGenerateSink(std::shared_ptr<http::ResponseWriter> writer, bool chat,
                   const openai::ParsedRequest& parsed)
      : writer_(std::move(writer)),
        chat_(chat),
        stream_(parsed.stream),
        include_usage_(parsed.include_usage),
        model_(parsed.generate.model()),
        created_(absl::ToUnixSeconds(absl::Now())) {}

  static void Run(Pipeline* pipeline, const http::Request& request,
                  const std::shared_ptr<http::ResponseWriter>& writer, bool chat,
                  const openai::ParsedRequest& parsed) {
    auto sink = std::make_shared<HttpGenerateSink>(writer, chat, parsed);
    sink->self_ = sink;
    writer->OnClientGone([weak = std::weak_ptr<HttpGenerateSink>(sink)] {
      if (auto s = weak.lock()) s->Cancel();
    });
    sink->handle_.Set(
        pipeline->Generate(InfoFor(request), parsed.generate, parsed.stream, sink.get()));
  }

  void OnDelta(v1::GenerateResponse delta) override {
    if (!started_) StartStream(delta.request_id(), delta.cache_status());
    writer_->Write(openai::SseEvent(Chunk(delta.text(), v1::FINISH_REASON_UNSPECIFIED)));
  }

  void OnFinish(const absl::Status& status, v1::GenerateResponse final) override {
    std::shared_ptr<HttpGenerateSink> keep = std::move(self_);  // released when this returns
    if (stream_) {
      FinishStream(status, final);
    } else if (status.ok()) {
      http::Headers headers =
          AccountingHeaders(final.cost(), final.cache_status(), final.request_id());
      headers.emplace_back("content-type", std::string(kJson));
      const std::string id = Id(final.request_id());
      writer_->Send(200, std::move(headers),
                    chat_ ? openai::ChatCompletionJson(final, id, model_, created_, &final.cost())
                          : openai::CompletionJson(final, id, model_, created_, &final.cost()));
    } else {
      SendError(*writer_, status, 0,
                AccountingHeaders(final.cost(), final.cache_status(), final.request_id()));
    }
  }

 private:
  void Cancel() { handle_.Cancel(); }

  std::string Id(const std::string& request_id) const {
    return absl::StrCat(chat_ ? "chatcmpl-" : "cmpl-", request_id);
  }

  void StartStream(const std::string& request_id, v1::CacheStatus cache) {
    started_ = true;
    id_ = Id(request_id);
    http::Headers headers = {{"content-type", "text/event-stream"},
                             {"cache-control", "no-cache"},
                             {"x-tollgate-cache", CacheHeader(cache)}};
    if (!request_id.empty()) headers.emplace_back("x-request-id", request_id);
    writer_->StartStream(200, std::move(headers));
  }

  std::string Chunk(std::string_view text, v1::FinishReason finish) {
    const bool first = !sent_first_chunk_;
    sent_first_chunk_ = true;
    return chat_ ? openai::ChatCompletionChunkJson(text, finish, id_, model_, created_, first)
                 : openai::CompletionChunkJson(text, finish, id_, model_, created_);
  }

  void FinishStream(const absl::Status& status, const v1::GenerateResponse& final) {
    if (!started_ && !status.ok()) {
      SendError(*writer_, status, 0,
                AccountingHeaders(final.cost(), final.cache_status(), final.request_id()));
      return;
    }
    if (!started_) StartStream(final.request_id(), final.cache_status());
    if (status.ok()) {
      writer_->Write(openai::SseEvent(Chunk("", final.finish_reason())));
    } else {
      writer_->Write(openai::SseEvent(openai::ErrorJson(status)));
    }
    // The usage chunk only when the client asked for it: the one Tollgate asks the backend for is
    // never shown to a client that did not.
    if (include_usage_) {
      writer_->Write(openai::SseEvent(
          chat_ ? openai::UsageChunkJson(final.usage(), id_, model_, created_, &final.cost())
                : openai::CompletionUsageChunkJson(final.usage(), id_, model_, created_,
                                                   &final.cost())));
    }
    writer_->Write(std::string(openai::kSseDone));
    writer_->End();
  }

  const std::shared_ptr<http::ResponseWriter> writer_;
  const bool chat_;
  const bool stream_;
  const bool include_usage_;
  const std::string model_;
  const int64_t created_;

  CancelLatch<RequestHandle> handle_;  // the pipeline's request, cancelled when the client goes

  // Touched only by the pipeline's serialised calls.
  std::shared_ptr<HttpGenerateSink> self_;
  bool started_ = false;
  bool sent_first_chunk_ = false;
  std::string id_;
};

bool IsJsonContentType(absl::string_view content_type) {
  if (content_type.empty()) return true;  // curl -d without -H; the body is parsed anyway
  const absl::string_view media = content_type.substr(0, content_type.find(';'));
  return absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(media), kJson);
}

}  // namespace

v1::CacheControl CacheControlFromHeader(absl::string_view value) {
  bool no_cache = false, no_store = false;
  for (absl::string_view directive : absl::StrSplit(value, ',')) {
    directive = absl::StripAsciiWhitespace(directive.substr(0, directive.find('=')));
    no_cache |= absl::EqualsIgnoreCase(directive, "no-cache");
    no_store |= absl::EqualsIgnoreCase(directive, "no-store");
  }
  if (no_cache && no_store) return v1::CACHE_CONTROL_BYPASS_NO_STORE;
  if (no_cache) return v1::CACHE_CONTROL_BYPASS;
  if (no_store) return v1::CACHE_CONTROL_NO_STORE;
  return v1::CACHE_CONTROL_DEFAULT;
}

std::pair<std::string, std::string> HttpIngress::ErrorBody(int status, std::string_view message) {
  absl::StatusCode code = absl::StatusCode::kInvalidArgument;
  if (status >= 500) code = absl::StatusCode::kInternal;
  return {std::string(kJson),
          openai::ErrorJson(absl::Status(code, absl::string_view(message.data(), message.size())))};
}

void HttpIngress::Handle(const http::Request& request,
                         const std::shared_ptr<http::ResponseWriter>& writer) {
  const std::string_view path = request.Path();
  const bool post = request.method == "POST";
  if (path == "/v1/models" && request.method == "GET") return Models(request, writer);
  const bool chat = path == "/v1/chat/completions";
  if (!chat && path != "/v1/completions" && path != "/v1/embeddings") {
    return SendError(*writer, absl::NotFoundError(absl::StrCat(
                                  "no route for ", absl::string_view(path.data(), path.size()))));
  }
  if (!post) {
    return SendError(*writer,
                     absl::InvalidArgumentError(
                         absl::StrCat(absl::string_view(path.data(), path.size()), " takes POST")),
                     405);
  }
  const std::string_view content_type = request.Header("content-type");
  if (!IsJsonContentType(absl::string_view(content_type.data(), content_type.size()))) {
    return SendError(*writer,
                     absl::InvalidArgumentError("the request body must be application/json"), 415);
  }
  if (path == "/v1/embeddings") return Embed(request, writer);
  Generate(request, writer, chat);
}

void HttpIngress::Generate(const http::Request& request,
                           const std::shared_ptr<http::ResponseWriter>& writer, bool chat) {
  absl::StatusOr<openai::ParsedRequest> parsed =
      chat ? openai::ParseChatCompletionsRequest(request.body)
           : openai::ParseCompletionsRequest(request.body);
  if (!parsed.ok()) return SendError(*writer, parsed.status());
  const std::string_view cache_control = request.Header("cache-control");
  parsed->generate.set_cache_control(
      CacheControlFromHeader(absl::string_view(cache_control.data(), cache_control.size())));
  HttpGenerateSink::Run(pipeline_, request, writer, chat, *parsed);
}

void HttpIngress::Embed(const http::Request& request,
                        const std::shared_ptr<http::ResponseWriter>& writer) {
  absl::StatusOr<openai::ParsedRequest> parsed = openai::ParseEmbeddingsRequest(request.body);
  if (!parsed.ok()) return SendError(*writer, parsed.status());
  const std::string model = parsed->embed.model();
  const bool base64 = parsed->base64_embeddings;
  pipeline_->Embed(
      InfoFor(request), parsed->embed,
      [writer, model, base64](const absl::Status& status, const v1::EmbedResponse& response) {
        http::Headers headers =
            AccountingHeaders(response.cost(), response.cache_status(), response.request_id());
        if (!status.ok()) return SendError(*writer, status, 0, std::move(headers));
        headers.emplace_back("content-type", std::string(kJson));
        writer->Send(200, std::move(headers),
                     openai::EmbeddingsJson(response, model, &response.cost(), base64));
      });
}

void HttpIngress::Models(const http::Request& request,
                         const std::shared_ptr<http::ResponseWriter>& writer) {
  std::shared_ptr<const Snapshot> snapshot = snapshots_->Get();
  const std::string_view authorization = request.Header("authorization");
  absl::StatusOr<std::string> tenant = Authenticate(
      *snapshot->config, absl::string_view(authorization.data(), authorization.size()));
  if (!tenant.ok()) return SendError(*writer, tenant.status());
  std::vector<std::string> names;
  for (const ModelConfig& model : snapshot->config->models) names.push_back(model.name);
  writer->Send(200, {{"content-type", std::string(kJson)}},
               openai::ModelsJson(names, absl::ToUnixSeconds(absl::Now())));
}

}  // namespace tollgate
