#include "proxy/anthropic/server_codec.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/common/status_macros.h"
#include "proxy/http/server/json_fields.h"
#include "proxy/http/server/json_writer.h"

namespace tollgate::anthropic {
namespace {

using http::json::FieldPath;
using http::json::FieldReader;
using http::json::JsonWriter;

absl::string_view Absl(std::string_view text) { return {text.data(), text.size()}; }

std::string Event(std::string_view type, const std::string& json) {
  return absl::StrCat("event: ", Absl(type), "\ndata: ", json, "\n\n");
}

// Anthropic's input_tokens leave out cache reads and writes.
void WriteUsage(JsonWriter& json, const v1::Usage& usage, uint64_t output_tokens) {
  const uint64_t cached = usage.cached_input_tokens() + usage.cache_write_input_tokens();
  json.Key("usage").StartObject();
  json.Key("input_tokens").Uint(usage.input_tokens() - std::min(cached, usage.input_tokens()));
  json.Key("cache_creation_input_tokens").Uint(usage.cache_write_input_tokens());
  json.Key("cache_read_input_tokens").Uint(usage.cached_input_tokens());
  json.Key("output_tokens").Uint(output_tokens);
  json.EndObject();
}

// The message object up to its content, which the caller writes.
void WriteMessageHead(JsonWriter& json, std::string_view id, std::string_view model) {
  json.Key("id").String(id);
  json.Key("type").String("message");
  json.Key("role").String("assistant");
  json.Key("model").String(model);
}

std::string_view ErrorTypeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnimplemented:
      return "invalid_request_error";
    case absl::StatusCode::kUnauthenticated:
      return "authentication_error";
    case absl::StatusCode::kPermissionDenied:
      return "permission_error";
    case absl::StatusCode::kNotFound:
      return "not_found_error";
    case absl::StatusCode::kResourceExhausted:
      return "rate_limit_error";
    case absl::StatusCode::kUnavailable:
      return "overloaded_error";
    default:
      return "api_error";
  }
}

}  // namespace

absl::StatusOr<ParsedMessagesRequest> ParseMessagesRequest(std::string_view json) {
  TG_ASSIGN_OR_RETURN(rapidjson::Document document, http::json::ParseJsonObject(json));
  FieldReader request(document, "");
  ParsedMessagesRequest parsed;
  v1::GenerateRequest& generate = parsed.generate;
  TG_ASSIGN_OR_RETURN(std::string model, request.RequiredString("model"));
  if (model.empty()) return absl::InvalidArgumentError("model: must not be empty");
  generate.set_model(std::move(model));
  TG_ASSIGN_OR_RETURN(std::optional<uint32_t> max_tokens, request.OptionalUint32("max_tokens"));
  if (!max_tokens.has_value()) return absl::InvalidArgumentError("max_tokens: required");
  v1::SamplingParams& params = *generate.mutable_params();
  params.set_max_tokens(*max_tokens);
  TG_ASSIGN_OR_RETURN(std::optional<double> temperature, request.OptionalNumber("temperature"));
  if (temperature.has_value()) params.set_temperature(static_cast<float>(*temperature));
  TG_ASSIGN_OR_RETURN(std::optional<double> top_p, request.OptionalNumber("top_p"));
  if (top_p.has_value()) params.set_top_p(static_cast<float>(*top_p));
  if (const rapidjson::Value* stops = request.Find("stop_sequences");
      stops != nullptr && !stops->IsArray()) {
    return absl::InvalidArgumentError("stop_sequences: expected an array of strings");
  }
  TG_ASSIGN_OR_RETURN(std::vector<std::string> stops, request.StringOrStrings("stop_sequences"));
  for (std::string& stop : stops) params.add_stop(std::move(stop));
  TG_ASSIGN_OR_RETURN(std::optional<bool> stream, request.OptionalBool("stream"));
  parsed.stream = stream.value_or(false);

  v1::ChatInput& chat = *generate.mutable_chat();
  if (const rapidjson::Value* system = request.Find("system"); system != nullptr) {
    TG_ASSIGN_OR_RETURN(std::string text, http::json::TextContent(*system, "system"));
    if (!text.empty()) {
      v1::Message& message = *chat.add_messages();
      message.set_role("system");
      message.set_content(std::move(text));
    }
  }
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* messages, request.RequiredArray("messages"));
  if (messages->Empty()) return absl::InvalidArgumentError("messages: must not be empty");
  for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
    const std::string path = absl::StrCat("messages[", i, "]");
    const rapidjson::Value& item = (*messages)[i];
    if (!item.IsObject()) return absl::InvalidArgumentError(path + ": expected an object");
    FieldReader message(item, path);
    TG_ASSIGN_OR_RETURN(std::string role, message.RequiredString("role"));
    if (role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(
          absl::StrCat(message.Path("role"), ": expected \"user\" or \"assistant\""));
    }
    const rapidjson::Value* content = message.Find("content");
    if (content == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(message.Path("content"), ": required"));
    }
    TG_ASSIGN_OR_RETURN(std::string text,
                        http::json::TextContent(*content, FieldPath(path, "content")));
    v1::Message& out = *chat.add_messages();
    out.set_role(std::move(role));
    out.set_content(std::move(text));
  }
  return parsed;
}

std::string_view StopReasonName(v1::FinishReason finish) {
  switch (finish) {
    case v1::FINISH_REASON_STOP:
      return "end_turn";
    case v1::FINISH_REASON_LENGTH:
      return "max_tokens";
    default:
      return "";
  }
}

std::string MessageJson(const v1::GenerateResponse& response, std::string_view id,
                        std::string_view model) {
  JsonWriter json;
  json.StartObject();
  WriteMessageHead(json, id, model);
  json.Key("content").StartArray().StartObject();
  json.Key("type").String("text").Key("text").String(response.text());
  json.EndObject().EndArray();
  json.Key("stop_reason").StringOrNull(StopReasonName(response.finish_reason()));
  json.Key("stop_sequence").Null();
  if (response.has_usage()) WriteUsage(json, response.usage(), response.usage().output_tokens());
  json.EndObject();
  return json.Take();
}

std::string MessageStartEvent(const v1::Usage* usage, std::string_view id, std::string_view model) {
  JsonWriter json;
  json.StartObject().Key("type").String("message_start").Key("message").StartObject();
  WriteMessageHead(json, id, model);
  json.Key("content").StartArray().EndArray();
  json.Key("stop_reason").Null().Key("stop_sequence").Null();
  if (usage != nullptr) WriteUsage(json, *usage, 0);
  json.EndObject().EndObject();
  return Event("message_start", json.Take());
}

std::string ContentBlockStartEvent() {
  JsonWriter json;
  json.StartObject().Key("type").String("content_block_start").Key("index").Int(0);
  json.Key("content_block").StartObject().Key("type").String("text").Key("text").String("");
  json.EndObject().EndObject();
  return Event("content_block_start", json.Take());
}

std::string PingEvent() { return Event("ping", R"({"type":"ping"})"); }

std::string ContentBlockDeltaEvent(std::string_view text) {
  JsonWriter json;
  json.StartObject().Key("type").String("content_block_delta").Key("index").Int(0);
  json.Key("delta").StartObject().Key("type").String("text_delta").Key("text").String(text);
  json.EndObject().EndObject();
  return Event("content_block_delta", json.Take());
}

std::string ContentBlockStopEvent() {
  return Event("content_block_stop", R"({"type":"content_block_stop","index":0})");
}

std::string MessageDeltaEvent(v1::FinishReason finish, std::optional<uint64_t> output_tokens) {
  JsonWriter json;
  json.StartObject().Key("type").String("message_delta");
  json.Key("delta").StartObject();
  json.Key("stop_reason").StringOrNull(StopReasonName(finish));
  json.Key("stop_sequence").Null();
  json.EndObject();
  if (output_tokens.has_value()) {
    json.Key("usage").StartObject().Key("output_tokens").Uint(*output_tokens).EndObject();
  }
  json.EndObject();
  return Event("message_delta", json.Take());
}

std::string MessageStopEvent() { return Event("message_stop", R"({"type":"message_stop"})"); }

std::string ErrorEvent(const absl::Status& status) { return Event("error", ErrorJson(status)); }

std::string ErrorJson(const absl::Status& status) {
  JsonWriter json;
  json.StartObject().Key("type").String("error");
  json.Key("error").StartObject();
  json.Key("type").String(ErrorTypeFor(status.code()));
  json.Key("message").String(std::string_view(status.message().data(), status.message().size()));
  json.EndObject().EndObject();
  return json.Take();
}

}  // namespace tollgate::anthropic
