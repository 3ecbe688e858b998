#include "proxy/openai/server_codec.h"

#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "proxy/common/status_macros.h"
#include "proxy/common/status_payloads.h"
#include "proxy/http/server/json_fields.h"
#include "proxy/http/server/json_writer.h"

namespace tollgate::openai {
namespace {

using http::json::FieldPath;
using http::json::FieldReader;
using http::json::JsonWriter;

absl::string_view Absl(std::string_view text) { return {text.data(), text.size()}; }

// model, temperature, top_p, seed and stop, shared by chat and completions.
absl::Status ReadSampling(const FieldReader& request, v1::GenerateRequest& generate) {
  TG_ASSIGN_OR_RETURN(std::string model, request.RequiredString("model"));
  if (model.empty()) return absl::InvalidArgumentError("model: must not be empty");
  generate.set_model(std::move(model));
  v1::SamplingParams& params = *generate.mutable_params();
  TG_ASSIGN_OR_RETURN(std::optional<double> temperature, request.OptionalNumber("temperature"));
  if (temperature.has_value()) params.set_temperature(static_cast<float>(*temperature));
  TG_ASSIGN_OR_RETURN(std::optional<double> top_p, request.OptionalNumber("top_p"));
  if (top_p.has_value()) params.set_top_p(static_cast<float>(*top_p));
  TG_ASSIGN_OR_RETURN(std::optional<int64_t> seed, request.OptionalInt64("seed"));
  if (seed.has_value()) params.set_seed(*seed);
  TG_ASSIGN_OR_RETURN(std::vector<std::string> stop, request.StringOrStrings("stop"));
  for (std::string& s : stop) params.add_stop(std::move(s));
  TG_ASSIGN_OR_RETURN(std::optional<uint32_t> n, request.OptionalUint32("n"));
  if (n.has_value() && *n != 1) return absl::InvalidArgumentError("n: only 1 is supported");
  return absl::OkStatus();
}

// stream, stream_options.include_usage, user and service_tier.
absl::Status ReadStreamAndUser(const FieldReader& request, ParsedRequest& parsed) {
  TG_ASSIGN_OR_RETURN(std::optional<bool> stream, request.OptionalBool("stream"));
  parsed.stream = stream.value_or(false);
  if (const rapidjson::Value* options = request.Find("stream_options"); options != nullptr) {
    if (!options->IsObject()) {
      return absl::InvalidArgumentError("stream_options: expected an object");
    }
    FieldReader stream_options(*options, "stream_options");
    TG_ASSIGN_OR_RETURN(std::optional<bool> include_usage,
                        stream_options.OptionalBool("include_usage"));
    parsed.include_usage = include_usage.value_or(false);
  }
  TG_ASSIGN_OR_RETURN(std::optional<std::string> user, request.OptionalString("user"));
  parsed.user = user.value_or("");
  // OpenAI bills flex processing at its Batch API prices: the model's batch discount.
  TG_ASSIGN_OR_RETURN(std::optional<std::string> tier, request.OptionalString("service_tier"));
  parsed.generate.set_batch(tier.value_or("") == "flex");
  return absl::OkStatus();
}

absl::StatusOr<ParsedRequest> ParseCompletions(std::string_view json, bool allow_batch) {
  TG_ASSIGN_OR_RETURN(rapidjson::Document document, http::json::ParseJsonObject(json));
  FieldReader request(document, "");
  ParsedRequest parsed;
  TG_RETURN_IF_ERROR(ReadSampling(request, parsed.generate));
  const rapidjson::Value* prompt = request.Find("prompt");
  if (prompt == nullptr) return absl::InvalidArgumentError("prompt: required");
  if (prompt->IsArray() && prompt->Size() > 0 && (*prompt)[0].IsNumber()) {
    return absl::InvalidArgumentError("prompt: token-id prompts are not supported");
  }
  TG_ASSIGN_OR_RETURN(parsed.prompts, request.StringOrStrings("prompt"));
  if (parsed.prompts.size() > 1 && !allow_batch) {
    return absl::InvalidArgumentError("batched prompts are not supported yet");
  }
  if (parsed.prompts.empty()) return absl::InvalidArgumentError("prompt: must not be empty");
  parsed.generate.set_prompt(parsed.prompts.front());
  TG_ASSIGN_OR_RETURN(std::optional<uint32_t> max_tokens, request.OptionalUint32("max_tokens"));
  if (max_tokens.has_value()) parsed.generate.mutable_params()->set_max_tokens(*max_tokens);
  TG_RETURN_IF_ERROR(ReadStreamAndUser(request, parsed));
  return parsed;
}

// Cost as dollars for people and nano-dollars for exact accounting.
void WriteCost(JsonWriter& json, const v1::Cost* cost) {
  if (cost == nullptr) return;
  json.Key("x_tollgate").StartObject();
  json.Key("cost_usd").Double(static_cast<double>(cost->total_nano_usd()) / 1e9);
  json.Key("cost_nano_usd").Int(cost->total_nano_usd());
  json.EndObject();
}

void WriteUsage(JsonWriter& json, const v1::Usage& usage) {
  json.Key("usage").StartObject();
  json.Key("prompt_tokens").Uint(usage.input_tokens());
  json.Key("completion_tokens").Uint(usage.output_tokens());
  json.Key("total_tokens").Uint(usage.input_tokens() + usage.output_tokens());
  json.Key("prompt_tokens_details").StartObject();
  json.Key("cached_tokens").Uint(usage.cached_input_tokens());
  json.EndObject();
  json.Key("completion_tokens_details").StartObject();
  json.Key("reasoning_tokens").Uint(usage.reasoning_tokens());
  json.EndObject();
  json.EndObject();
}

void WriteHeader(JsonWriter& json, std::string_view id, std::string_view object, int64_t created,
                 std::string_view model) {
  json.Key("id").String(id);
  json.Key("object").String(object);
  json.Key("created").Int(created);
  json.Key("model").String(model);
}

std::string UsageChunk(std::string_view object, const v1::Usage& usage, std::string_view id,
                       std::string_view model, int64_t created, const v1::Cost* cost) {
  JsonWriter json;
  json.StartObject();
  WriteHeader(json, id, object, created, model);
  json.Key("choices").StartArray().EndArray();
  WriteUsage(json, usage);
  WriteCost(json, cost);
  json.EndObject();
  return json.Take();
}

struct ErrorKind {
  std::string_view type;
  std::string_view code;
};

ErrorKind ErrorKindFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return {"invalid_request_error", "invalid_request"};
    case absl::StatusCode::kNotFound:
      return {"invalid_request_error", "not_found"};
    case absl::StatusCode::kUnauthenticated:
      return {"authentication_error", "invalid_api_key"};
    case absl::StatusCode::kPermissionDenied:
      return {"permission_error", "permission_denied"};
    case absl::StatusCode::kResourceExhausted:
      return {"rate_limit_error", "rate_limit_exceeded"};
    case absl::StatusCode::kUnavailable:
      return {"server_error", "service_unavailable"};
    case absl::StatusCode::kDeadlineExceeded:
      return {"server_error", "timeout"};
    case absl::StatusCode::kCancelled:
      return {"invalid_request_error", "cancelled"};
    case absl::StatusCode::kUnimplemented:
      return {"invalid_request_error", "unsupported"};
    default:
      return {"server_error", "internal_error"};
  }
}

}  // namespace

absl::StatusOr<ParsedRequest> ParseChatCompletionsRequest(std::string_view json) {
  TG_ASSIGN_OR_RETURN(rapidjson::Document document, http::json::ParseJsonObject(json));
  FieldReader request(document, "");
  ParsedRequest parsed;
  v1::GenerateRequest& generate = parsed.generate;
  TG_RETURN_IF_ERROR(ReadSampling(request, generate));
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* messages, request.RequiredArray("messages"));
  if (messages->Empty()) return absl::InvalidArgumentError("messages: must not be empty");
  v1::ChatInput& chat = *generate.mutable_chat();
  for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
    const std::string path = absl::StrCat("messages[", i, "]");
    const rapidjson::Value& item = (*messages)[i];
    if (!item.IsObject()) return absl::InvalidArgumentError(path + ": expected an object");
    FieldReader message(item, path);
    v1::Message& out = *chat.add_messages();
    TG_ASSIGN_OR_RETURN(std::string role, message.RequiredString("role"));
    out.set_role(std::move(role));
    TG_ASSIGN_OR_RETURN(std::optional<std::string> name, message.OptionalString("name"));
    if (name.has_value()) out.set_name(*std::move(name));
    const rapidjson::Value* content = message.Find("content");
    if (content != nullptr) {
      TG_ASSIGN_OR_RETURN(std::string text,
                          http::json::TextContent(*content, FieldPath(path, "content")));
      out.set_content(std::move(text));
    }
  }
  TG_ASSIGN_OR_RETURN(std::optional<uint32_t> max_tokens, request.OptionalUint32("max_tokens"));
  TG_ASSIGN_OR_RETURN(std::optional<uint32_t> max_completion_tokens,
                      request.OptionalUint32("max_completion_tokens"));
  if (max_completion_tokens.has_value()) max_tokens = max_completion_tokens;
  if (max_tokens.has_value()) generate.mutable_params()->set_max_tokens(*max_tokens);
  TG_RETURN_IF_ERROR(ReadStreamAndUser(request, parsed));
  return parsed;
}

absl::StatusOr<ParsedRequest> ParseCompletionsRequest(std::string_view json) {
  return ParseCompletions(json, /*allow_batch=*/false);
}

absl::StatusOr<ParsedRequest> ParseBatchCompletionsRequest(std::string_view json) {
  return ParseCompletions(json, /*allow_batch=*/true);
}

absl::StatusOr<ParsedRequest> ParseEmbeddingsRequest(std::string_view json) {
  TG_ASSIGN_OR_RETURN(rapidjson::Document document, http::json::ParseJsonObject(json));
  FieldReader request(document, "");
  ParsedRequest parsed;
  TG_ASSIGN_OR_RETURN(std::string model, request.RequiredString("model"));
  if (model.empty()) return absl::InvalidArgumentError("model: must not be empty");
  parsed.embed.set_model(std::move(model));
  const rapidjson::Value* input = request.Find("input");
  if (input == nullptr) return absl::InvalidArgumentError("input: required");
  if (input->IsArray() && input->Size() > 0 && !(*input)[0].IsString()) {
    return absl::InvalidArgumentError("input: only strings are supported (not token ids)");
  }
  TG_ASSIGN_OR_RETURN(std::vector<std::string> inputs, request.StringOrStrings("input"));
  if (inputs.empty()) return absl::InvalidArgumentError("input: must not be empty");
  for (std::string& text : inputs) parsed.embed.add_inputs(std::move(text));
  TG_ASSIGN_OR_RETURN(std::optional<std::string> format, request.OptionalString("encoding_format"));
  if (format.has_value() && *format != "float" && *format != "base64") {
    return absl::InvalidArgumentError("encoding_format: expected \"float\" or \"base64\"");
  }
  parsed.base64_embeddings = format == "base64";
  TG_ASSIGN_OR_RETURN(std::optional<std::string> user, request.OptionalString("user"));
  parsed.user = user.value_or("");
  return parsed;
}

std::string_view FinishReasonName(v1::FinishReason finish) {
  switch (finish) {
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_LENGTH:
      return "length";
    default:
      return "";
  }
}

std::string ChatCompletionJson(const v1::GenerateResponse& r, std::string_view id,
                               std::string_view model, int64_t created, const v1::Cost* cost) {
  JsonWriter json;
  json.StartObject();
  WriteHeader(json, id, "chat.completion", created, model);
  json.Key("choices").StartArray().StartObject();
  json.Key("index").Int(0);
  json.Key("message").StartObject();
  json.Key("role").String("assistant").Key("content").String(r.text());
  json.EndObject();
  json.Key("logprobs").Null();
  json.Key("finish_reason").StringOrNull(FinishReasonName(r.finish_reason()));
  json.EndObject().EndArray();
  if (r.has_usage()) WriteUsage(json, r.usage());
  WriteCost(json, cost);
  json.EndObject();
  return json.Take();
}

std::string ChatCompletionChunkJson(std::string_view delta_text, v1::FinishReason finish,
                                    std::string_view id, std::string_view model, int64_t created,
                                    bool first) {
  JsonWriter json;
  json.StartObject();
  WriteHeader(json, id, "chat.completion.chunk", created, model);
  json.Key("choices").StartArray().StartObject();
  json.Key("index").Int(0);
  json.Key("delta").StartObject();
  if (first) json.Key("role").String("assistant");
  if (first || !delta_text.empty()) json.Key("content").String(delta_text);
  json.EndObject();
  json.Key("logprobs").Null();
  json.Key("finish_reason").StringOrNull(FinishReasonName(finish));
  json.EndObject().EndArray();
  json.EndObject();
  return json.Take();
}

std::string UsageChunkJson(const v1::Usage& usage, std::string_view id, std::string_view model,
                           int64_t created, const v1::Cost* cost) {
  return UsageChunk("chat.completion.chunk", usage, id, model, created, cost);
}

std::string CompletionJson(const v1::GenerateResponse& r, std::string_view id,
                           std::string_view model, int64_t created, const v1::Cost* cost) {
  return BatchCompletionJson({&r, 1}, r.has_usage() ? &r.usage() : nullptr, id, model, created,
                             cost);
}

std::string BatchCompletionJson(absl::Span<const v1::GenerateResponse> choices,
                                const v1::Usage* usage, std::string_view id, std::string_view model,
                                int64_t created, const v1::Cost* cost) {
  JsonWriter json;
  json.StartObject();
  WriteHeader(json, id, "text_completion", created, model);
  json.Key("choices").StartArray();
  for (size_t i = 0; i < choices.size(); ++i) {
    json.StartObject();
    json.Key("text").String(choices[i].text());
    json.Key("index").Uint(i);
    json.Key("logprobs").Null();
    json.Key("finish_reason").StringOrNull(FinishReasonName(choices[i].finish_reason()));
    json.EndObject();
  }
  json.EndArray();
  if (usage != nullptr) WriteUsage(json, *usage);
  WriteCost(json, cost);
  json.EndObject();
  return json.Take();
}

std::string CompletionChunkJson(std::string_view text, v1::FinishReason finish, std::string_view id,
                                std::string_view model, int64_t created) {
  JsonWriter json;
  json.StartObject();
  WriteHeader(json, id, "text_completion", created, model);
  json.Key("choices").StartArray().StartObject();
  json.Key("text").String(text);
  json.Key("index").Int(0);
  json.Key("logprobs").Null();
  json.Key("finish_reason").StringOrNull(FinishReasonName(finish));
  json.EndObject().EndArray();
  json.EndObject();
  return json.Take();
}

std::string CompletionUsageChunkJson(const v1::Usage& usage, std::string_view id,
                                     std::string_view model, int64_t created,
                                     const v1::Cost* cost) {
  return UsageChunk("text_completion", usage, id, model, created, cost);
}

std::string EmbeddingsJson(const v1::EmbedResponse& r, std::string_view model, const v1::Cost* cost,
                           bool base64) {
  JsonWriter json;
  json.StartObject();
  json.Key("object").String("list");
  json.Key("data").StartArray();
  for (int i = 0; i < r.embeddings_size(); ++i) {
    const v1::Embedding& embedding = r.embeddings(i);
    json.StartObject();
    json.Key("object").String("embedding");
    json.Key("index").Int(i);
    json.Key("embedding");
    if (base64) {
      // Little-endian float32, as the OpenAI SDKs decode it (x86 and ARM are little-endian).
      std::string bytes(static_cast<size_t>(embedding.values_size()) * sizeof(float), '\0');
      if (!bytes.empty()) std::memcpy(bytes.data(), embedding.values().data(), bytes.size());
      json.String(absl::Base64Escape(bytes));
    } else {
      json.StartArray();
      for (float value : embedding.values()) json.Double(value);
      json.EndArray();
    }
    json.EndObject();
  }
  json.EndArray();
  json.Key("model").String(model);
  if (r.has_usage()) {
    json.Key("usage").StartObject();
    json.Key("prompt_tokens").Uint(r.usage().input_tokens());
    json.Key("total_tokens").Uint(r.usage().input_tokens());
    json.EndObject();
  }
  WriteCost(json, cost);
  json.EndObject();
  return json.Take();
}

std::string ModelsJson(const std::vector<std::string>& model_ids, int64_t created) {
  JsonWriter json;
  json.StartObject();
  json.Key("object").String("list");
  json.Key("data").StartArray();
  for (const std::string& id : model_ids) {
    json.StartObject();
    json.Key("id").String(id);
    json.Key("object").String("model");
    json.Key("created").Int(created);
    json.Key("owned_by").String("tollgate");
    json.EndObject();
  }
  json.EndArray();
  json.EndObject();
  return json.Take();
}

std::string ErrorJson(const absl::Status& status) {
  const ErrorKind kind = status.GetPayload(kBudgetPayload).has_value()
                             ? ErrorKind{"insufficient_quota", "insufficient_quota"}
                             : ErrorKindFor(status.code());
  JsonWriter json;
  json.StartObject().Key("error").StartObject();
  json.Key("message").String(std::string_view(status.message().data(), status.message().size()));
  json.Key("type").String(kind.type);
  json.Key("param").Null();
  json.Key("code").String(kind.code);
  json.EndObject().EndObject();
  return json.Take();
}

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string SseEvent(std::string_view json) { return absl::StrCat("data: ", Absl(json), "\n\n"); }

}  // namespace tollgate::openai
