#include "sim/http_api.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "proxy/anthropic/server_codec.h"
#include "proxy/openai/server_codec.h"
#include "sim/generator.h"
#include "sim/http_batch_call.h"
#include "sim/http_encoders.h"
#include "sim/http_generate_call.h"

namespace tollgate::sim {
namespace {

const http::Headers& JsonHeaders() {
  static const auto* const headers = new http::Headers{{"content-type", "application/json"}};
  return *headers;
}

// An error in the shape of the API the request was for.
void SendError(std::shared_ptr<http::ResponseWriter> writer, bool anthropic_shape,
               const absl::Status& status, int http_status, http::Headers extra = {}) {
  http::Headers headers = JsonHeaders();
  headers.insert(headers.end(), extra.begin(), extra.end());
  writer->Send(http_status, std::move(headers),
               anthropic_shape ? anthropic::ErrorJson(status) : openai::ErrorJson(status));
}

void SendError(std::shared_ptr<http::ResponseWriter> writer, bool anthropic_shape,
               const absl::Status& status) {
  SendError(std::move(writer), anthropic_shape, status, openai::HttpStatusFor(status.code()));
}

// The status-code fault answered instead of the real response.
void SendFault(std::shared_ptr<http::ResponseWriter> writer, bool anthropic_shape, int status) {
  switch (status) {
    case 429:
      SendError(std::move(writer), anthropic_shape,
                absl::ResourceExhaustedError("simulated rate limit (tollgate-sim fault)"), 429,
                {{"retry-after", "1"}});
      return;
    case 503:
      SendError(std::move(writer), anthropic_shape,
                absl::UnavailableError("simulated overload (tollgate-sim fault)"), 503);
      return;
    default:
      SendError(std::move(writer), anthropic_shape,
                absl::InternalError("simulated server error (tollgate-sim fault)"), status);
  }
}

// A label value in the exposition format: backslash, double quote and newline escaped.
std::string EscapeLabelValue(std::string_view value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') escaped += '\\';
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += c;
  }
  return escaped;
}

void AppendMetric(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help, std::string_view model, double value) {
  absl::StrAppendFormat(
      &out, "# HELP %s %s\n# TYPE %s %s\n%s{model_name=\"%s\"} %.17g\n",
      absl::string_view(name.data(), name.size()), absl::string_view(help.data(), help.size()),
      absl::string_view(name.data(), name.size()), absl::string_view(type.data(), type.size()),
      absl::string_view(name.data(), name.size()), absl::string_view(model.data(), model.size()),
      value);
}

}  // namespace

SimHttpApi::SimHttpApi(SimEngine* engine, HttpApiOptions options)
    : engine_(engine), options_(std::move(options)), faults_(options_.faults) {}

http::Handler SimHttpApi::Handler() {
  return [this](http::Request request, std::shared_ptr<http::ResponseWriter> writer) {
    Handle(std::move(request), std::move(writer));
  };
}

void SimHttpApi::Handle(http::Request request, std::shared_ptr<http::ResponseWriter> writer) {
  const std::string_view path = request.Path();
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  struct Route {
    std::string_view path;
    Api api;
  };
  static constexpr Route kApiRoutes[] = {{"/v1/chat/completions", Api::kChat},
                                         {"/v1/completions", Api::kCompletions},
                                         {"/v1/embeddings", Api::kEmbeddings},
                                         {"/v1/messages", Api::kMessages}};
  for (const Route& route : kApiRoutes) {
    if (path != route.path) continue;
    if (!post) {
      SendError(std::move(writer), route.api == Api::kMessages,
                absl::InvalidArgumentError("use POST"), 405);
      return;
    }
    HandleApi(route.api, request, std::move(writer));
    return;
  }
  if (get && path == "/v1/models") {
    writer->Send(
        200, JsonHeaders(),
        openai::ModelsJson({options_.served_model_name}, absl::ToUnixSeconds(absl::Now())));
  } else if (get && path == "/metrics") {
    writer->Send(200, {{"content-type", "text/plain; version=0.0.4; charset=utf-8"}},
                 MetricsText());
  } else if (get && path == "/health") {
    writer->Send(200, {{"content-type", "text/plain"}}, "");
  } else {
    SendError(
        std::move(writer), false,
        absl::NotFoundError(absl::StrCat("no route for ", request.method, " ", std::string(path))));
  }
}

void SimHttpApi::HandleApi(Api api, const http::Request& request,
                           std::shared_ptr<http::ResponseWriter> writer) {
  const bool anthropic_shape = api == Api::kMessages;
  absl::StatusOr<RequestFaults> faults = faults_.ForRequest(request);
  if (!faults.ok()) {
    SendError(std::move(writer), anthropic_shape, faults.status());
    return;
  }
  if (api == Api::kEmbeddings) {
    HandleEmbeddings(request, *faults, std::move(writer));
    return;
  }
  v1::GenerateRequest generate;
  bool stream = false;
  std::vector<std::string> prompts;  // completions
  std::string id;
  std::unique_ptr<GenerateEncoder> encoder;
  const int64_t created = absl::ToUnixSeconds(absl::Now());
  absl::Status status;
  if (api == Api::kMessages) {
    absl::StatusOr<anthropic::ParsedMessagesRequest> parsed =
        anthropic::ParseMessagesRequest(request.body);
    status = parsed.status();
    if (parsed.ok()) {
      generate = std::move(parsed->generate);
      stream = parsed->stream;
      encoder = MakeMessagesEncoder(NextId("msg_"), generate.model());
    }
  } else {
    absl::StatusOr<openai::ParsedRequest> parsed =
        api == Api::kChat ? openai::ParseChatCompletionsRequest(request.body)
                          : openai::ParseBatchCompletionsRequest(request.body);
    status = parsed.status();
    if (parsed.ok()) {
      generate = std::move(parsed->generate);
      stream = parsed->stream;
      prompts = std::move(parsed->prompts);
      id = NextId(api == Api::kChat ? "chatcmpl-" : "cmpl-");
      encoder = api == Api::kChat
                    ? MakeChatEncoder(id, generate.model(), created, parsed->include_usage)
                    : MakeCompletionEncoder(id, generate.model(), created, parsed->include_usage);
    }
  }
  if (status.ok()) status = ValidateRequest(generate);
  if (status.ok() && stream && prompts.size() > 1) {
    status = absl::InvalidArgumentError(
        "prompt: tollgate-sim answers an array of several prompts only with \"stream\": false");
  }
  if (!status.ok()) {
    SendError(std::move(writer), anthropic_shape, status);
    return;
  }
  if (faults->status != 0) {
    AfterDelay(faults->first_byte_delay,
               [writer = std::move(writer), anthropic_shape, code = faults->status] {
                 SendFault(writer, anthropic_shape, code);
               });
    return;
  }
  if (prompts.size() > 1) {
    std::vector<v1::GenerateRequest> requests(prompts.size(), generate);
    for (size_t i = 0; i < prompts.size(); ++i) requests[i].set_prompt(std::move(prompts[i]));
    StartBatchCompletionCall(engine_, &delays_, std::move(requests), *faults, std::move(id),
                             created, std::move(writer));
    return;
  }
  StartGenerateCall(engine_, &delays_, std::move(generate), stream, *faults, std::move(encoder),
                    std::move(writer));
}

void SimHttpApi::HandleEmbeddings(const http::Request& request, const RequestFaults& faults,
                                  std::shared_ptr<http::ResponseWriter> writer) {
  absl::StatusOr<openai::ParsedRequest> parsed = openai::ParseEmbeddingsRequest(request.body);
  if (!parsed.ok()) {
    SendError(std::move(writer), false, parsed.status());
    return;
  }
  AfterDelay(faults.first_byte_delay, [this, parsed = *std::move(parsed), faults,
                                       writer = std::move(writer)]() mutable {
    if (faults.status != 0) {
      SendFault(std::move(writer), false, faults.status);
      return;
    }
    const v1::EmbedRequest& embed = parsed.embed;
    engine_->SubmitEmbed(
        embed, ShapeForModel(embed.model()),
        [writer = std::move(writer), model = embed.model(), base64 = parsed.base64_embeddings,
         omit_usage = faults.omit_usage](absl::StatusOr<v1::EmbedResponse> response) {
          if (!response.ok()) {
            SendError(writer, false, response.status());
            return;
          }
          if (omit_usage) response->clear_usage();
          writer->Send(200, JsonHeaders(),
                       openai::EmbeddingsJson(*response, model, nullptr, base64));
        });
  });
}

void SimHttpApi::AfterDelay(absl::Duration delay, std::function<void()> fn) {
  if (delay > absl::ZeroDuration()) {
    delays_.RunAfter(delay, std::move(fn));
  } else {
    fn();
  }
}

std::string SimHttpApi::NextId(std::string_view prefix) {
  return absl::StrCat(
      absl::string_view(prefix.data(), prefix.size()),
      absl::Hex(next_id_.fetch_add(1, std::memory_order_relaxed), absl::kZeroPad16));
}

std::pair<std::string, std::string> SimHttpApi::ServerErrorBody(int status,
                                                                std::string_view message) {
  const absl::Status error(
      status >= 500 ? absl::StatusCode::kInternal : absl::StatusCode::kInvalidArgument,
      absl::string_view(message.data(), message.size()));
  return {"application/json", openai::ErrorJson(error)};
}

std::string SimHttpApi::MetricsText() const {
  const SimEngine::Stats stats = engine_->GetStats();
  const std::string model = EscapeLabelValue(options_.served_model_name);
  const uint64_t capacity = engine_->kv_capacity_bytes();
  const double kv_usage =
      capacity == 0 ? 0 : static_cast<double>(stats.kv_cache_bytes) / static_cast<double>(capacity);
  std::string out;
  AppendMetric(out, "vllm:num_requests_running", "gauge",
               "Number of requests in model execution batches.", model, stats.running);
  AppendMetric(out, "vllm:num_requests_waiting", "gauge",
               "Number of requests waiting to be processed.", model, stats.waiting);
  AppendMetric(out, "vllm:kv_cache_usage_perc", "gauge",
               "KV-cache usage. 1 means 100 percent usage.", model, kv_usage);
  AppendMetric(out, "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.",
               model, static_cast<double>(stats.prompt_tokens_total));
  AppendMetric(out, "vllm:generation_tokens_total", "counter",
               "Number of generation tokens processed.", model,
               static_cast<double>(stats.generation_tokens_total));
  AppendMetric(out, "vllm:num_preemptions_total", "counter",
               "Cumulative number of preemptions from the engine.", model,
               static_cast<double>(stats.num_preemptions));
  // The exact figure behind kv_cache_usage_perc, for comparing Tollgate's own KV accounting.
  AppendMetric(out, "tollgate_sim_kv_cache_bytes", "gauge",
               "KV-cache bytes the running requests hold, in whole blocks.", model,
               static_cast<double>(stats.kv_cache_bytes));
  AppendMetric(out, "tollgate_sim_requests_total", "counter",
               "Generate and embed requests the simulator admitted, over every API.", model,
               static_cast<double>(stats.requests_total));
  return out;
}

}  // namespace tollgate::sim
