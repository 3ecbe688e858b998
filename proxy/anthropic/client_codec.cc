#include "proxy/anthropic/client_codec.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proxy/common/status_macros.h"
#include "proxy/http/client/backend_json.h"

namespace tollgate::anthropic {
namespace {

using http::JsonWriter;
using http::MalformedJson;
using http::WriteString;

void WriteMessage(JsonWriter& writer, absl::string_view role, absl::string_view content) {
  writer.StartObject();
  writer.Key("role");
  WriteString(writer, role);
  writer.Key("content");
  WriteString(writer, content);
  writer.EndObject();
}

absl::StatusOr<RawUsage> ParseUsage(const rapidjson::Value& usage, absl::string_view path) {
  RawUsage out;
  struct Field {
    const char* name;
    std::optional<uint64_t>* target;
  };
  for (const Field& field :
       {Field{"input_tokens", &out.input_tokens}, Field{"output_tokens", &out.output_tokens},
        Field{"cache_read_input_tokens", &out.cache_read_input_tokens},
        Field{"cache_creation_input_tokens", &out.cache_creation_input_tokens}}) {
    if (http::FindMember(usage, field.name) == nullptr) continue;
    TG_ASSIGN_OR_RETURN(*field.target, http::CountMember(usage, field.name, path));
  }
  return out;
}

absl::StatusOr<std::optional<RawUsage>> OptionalUsage(const rapidjson::Value& object,
                                                      absl::string_view path) {
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* usage, http::ObjectMember(object, "usage", path));
  if (usage == nullptr) return std::nullopt;
  return ParseUsage(*usage, path.empty() ? "usage" : absl::StrCat(path, ".usage"));
}

absl::StatusOr<v1::FinishReason> StopReason(const rapidjson::Value& object,
                                            absl::string_view path) {
  TG_ASSIGN_OR_RETURN(const std::string reason, http::StringMember(object, "stop_reason", path));
  return FinishReasonFromStopReason(reason);
}

absl::StatusOr<StreamEvent> ParseError(const rapidjson::Value& document) {
  StreamEvent event;
  event.type = StreamEvent::Type::kError;
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* error, http::ObjectMember(document, "error", ""));
  std::string type = "error";
  std::string message;
  if (error != nullptr) {
    TG_ASSIGN_OR_RETURN(type, http::StringMember(*error, "type", "error"));
    TG_ASSIGN_OR_RETURN(message, http::StringMember(*error, "message", "error"));
  }
  event.error = absl::Status(StatusForErrorType(type),
                             absl::StrCat("backend reported ", type, " mid-stream: ", message));
  return event;
}

}  // namespace

void RawUsage::MergeFrom(const RawUsage& later) {
  // Counts only grow: a later event that repeats a field with a smaller value (some compatible
  // servers send 0 for what they no longer track) does not undo an earlier report.
  auto merge = [](std::optional<uint64_t>& mine, const std::optional<uint64_t>& theirs) {
    if (theirs.has_value()) mine = std::max(mine.value_or(0), *theirs);
  };
  merge(input_tokens, later.input_tokens);
  merge(output_tokens, later.output_tokens);
  merge(cache_read_input_tokens, later.cache_read_input_tokens);
  merge(cache_creation_input_tokens, later.cache_creation_input_tokens);
}

v1::Usage NormaliseUsage(const RawUsage& usage) {
  const uint64_t cache_read = usage.cache_read_input_tokens.value_or(0);
  const uint64_t cache_write = usage.cache_creation_input_tokens.value_or(0);
  v1::Usage out;
  out.set_input_tokens(usage.input_tokens.value_or(0) + cache_read + cache_write);
  out.set_cached_input_tokens(cache_read);
  out.set_cache_write_input_tokens(cache_write);
  out.set_output_tokens(usage.output_tokens.value_or(0));
  out.set_source(v1::USAGE_SOURCE_REPORTED);
  return out;
}

absl::StatusOr<std::string> MessagesBody(const v1::GenerateRequest& request, bool stream) {
  if (!request.has_chat() && request.input_case() != v1::GenerateRequest::kPrompt) {
    return absl::InvalidArgumentError("a message needs chat input or a prompt");
  }
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("model");
  WriteString(writer, request.model());
  const v1::SamplingParams& params = request.params();
  writer.Key("max_tokens");
  writer.Uint(params.max_tokens() > 0 ? params.max_tokens() : kDefaultMaxTokens);
  std::vector<absl::string_view> system;
  writer.Key("messages");
  writer.StartArray();
  if (request.has_chat()) {
    for (const v1::Message& message : request.chat().messages()) {
      if (message.role() == "system") {
        system.push_back(message.content());
      } else {
        WriteMessage(writer, message.role() == "assistant" ? "assistant" : "user",
                     message.content());
      }
    }
  } else {
    WriteMessage(writer, "user", request.prompt());
  }
  writer.EndArray();
  if (!system.empty()) {
    writer.Key("system");
    WriteString(writer, absl::StrJoin(system, "\n\n"));
  }
  if (params.has_temperature()) {
    writer.Key("temperature");
    http::WriteFloat(writer, params.temperature());
  }
  if (params.has_top_p()) {
    writer.Key("top_p");
    http::WriteFloat(writer, params.top_p());
  }
  if (params.stop_size() > 0) {
    writer.Key("stop_sequences");
    writer.StartArray();
    for (const std::string& stop : params.stop()) WriteString(writer, stop);
    writer.EndArray();
  }
  writer.Key("stream");
  writer.Bool(stream);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

v1::FinishReason FinishReasonFromStopReason(absl::string_view stop_reason) {
  if (stop_reason.empty()) return v1::FINISH_REASON_UNSPECIFIED;
  if (stop_reason == "max_tokens") return v1::FINISH_REASON_LENGTH;
  return v1::FINISH_REASON_STOP;
}

absl::StatusOr<Message> ParseMessage(absl::string_view body) {
  TG_ASSIGN_OR_RETURN(const rapidjson::Document document, http::ParseJsonObject(body));
  Message message;
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* content, http::ArrayMember(document, "content", ""));
  if (content != nullptr) {
    for (rapidjson::SizeType i = 0; i < content->Size(); ++i) {
      const rapidjson::Value& block = (*content)[i];
      const std::string path = absl::StrCat("content[", i, "]");
      if (!block.IsObject()) return MalformedJson(absl::StrCat(path, ": not an object"));
      TG_ASSIGN_OR_RETURN(const std::string type, http::StringMember(block, "type", path));
      if (type != "text") continue;  // thinking, tool_use: not text for the client
      TG_ASSIGN_OR_RETURN(const std::string text, http::StringMember(block, "text", path));
      message.text += text;
    }
  }
  TG_ASSIGN_OR_RETURN(message.finish_reason, StopReason(document, ""));
  if (message.finish_reason == v1::FINISH_REASON_UNSPECIFIED) {
    message.finish_reason = v1::FINISH_REASON_STOP;
  }
  TG_ASSIGN_OR_RETURN(std::optional<RawUsage> usage, OptionalUsage(document, ""));
  if (!usage.has_value()) return MalformedJson("usage: missing");
  message.usage = *usage;
  return message;
}

absl::StatusOr<StreamEvent> ParseStreamEvent(absl::string_view data) {
  TG_ASSIGN_OR_RETURN(const rapidjson::Document document, http::ParseJsonObject(data));
  TG_ASSIGN_OR_RETURN(const std::string type, http::StringMember(document, "type", ""));
  StreamEvent event;
  if (type == "message_start") {
    event.type = StreamEvent::Type::kMessageStart;
    TG_ASSIGN_OR_RETURN(const rapidjson::Value* message,
                        http::ObjectMember(document, "message", ""));
    if (message == nullptr) return MalformedJson("message: missing in message_start");
    TG_ASSIGN_OR_RETURN(event.usage, OptionalUsage(*message, "message"));
  } else if (type == "content_block_delta") {
    TG_ASSIGN_OR_RETURN(const rapidjson::Value* delta, http::ObjectMember(document, "delta", ""));
    if (delta == nullptr) return MalformedJson("delta: missing in content_block_delta");
    TG_ASSIGN_OR_RETURN(const std::string delta_type, http::StringMember(*delta, "type", "delta"));
    if (delta_type == "text_delta") {
      event.type = StreamEvent::Type::kTextDelta;
      TG_ASSIGN_OR_RETURN(event.text, http::StringMember(*delta, "text", "delta"));
    }
  } else if (type == "message_delta") {
    event.type = StreamEvent::Type::kMessageDelta;
    TG_ASSIGN_OR_RETURN(const rapidjson::Value* delta, http::ObjectMember(document, "delta", ""));
    if (delta != nullptr) {
      TG_ASSIGN_OR_RETURN(event.finish_reason, StopReason(*delta, "delta"));
    }
    TG_ASSIGN_OR_RETURN(event.usage, OptionalUsage(document, ""));
  } else if (type == "message_stop") {
    event.type = StreamEvent::Type::kMessageStop;
  } else if (type == "error") {
    return ParseError(document);
  } else if (type.empty()) {
    return MalformedJson("type: missing");
  }
  return event;
}

absl::StatusCode StatusForErrorType(absl::string_view type) {
  if (type == "rate_limit_error") return absl::StatusCode::kResourceExhausted;
  if (type == "invalid_request_error" || type == "request_too_large") {
    return absl::StatusCode::kInvalidArgument;
  }
  if (type == "authentication_error" || type == "permission_error") {
    return absl::StatusCode::kPermissionDenied;
  }
  if (type == "not_found_error") return absl::StatusCode::kNotFound;
  return absl::StatusCode::kUnavailable;  // overloaded_error, api_error, anything new
}

std::string ErrorMessage(absl::string_view body) { return http::ApiErrorMessage(body); }

}  // namespace tollgate::anthropic
