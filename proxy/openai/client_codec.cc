#include "proxy/openai/client_codec.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "proxy/common/status_macros.h"
#include "proxy/http/client/backend_json.h"

namespace tollgate::openai {
namespace {

using http::JsonWriter;
using http::MalformedJson;
using http::WriteString;

// The parameters both generation endpoints share, and the stream switch.
void WriteParams(const v1::GenerateRequest& request, bool stream, JsonWriter& writer) {
  const v1::SamplingParams& params = request.params();
  if (params.max_tokens() > 0) {
    writer.Key("max_tokens");
    writer.Uint(params.max_tokens());
  }
  if (params.has_temperature()) {
    writer.Key("temperature");
    http::WriteFloat(writer, params.temperature());
  }
  if (params.has_top_p()) {
    writer.Key("top_p");
    http::WriteFloat(writer, params.top_p());
  }
  if (params.has_seed()) {
    writer.Key("seed");
    writer.Int64(params.seed());
  }
  if (params.stop_size() > 0) {
    writer.Key("stop");
    writer.StartArray();
    for (const std::string& stop : params.stop()) WriteString(writer, stop);
    writer.EndArray();
  }
  if (request.batch()) {
    writer.Key("service_tier");
    WriteString(writer, "flex");
  }
  writer.Key("stream");
  writer.Bool(stream);
  if (stream) {
    writer.Key("stream_options");
    writer.StartObject();
    writer.Key("include_usage");
    writer.Bool(true);
    writer.EndObject();
  }
}

absl::StatusOr<v1::Usage> ParseUsage(const rapidjson::Value& usage) {
  TG_ASSIGN_OR_RETURN(const uint64_t prompt, http::CountMember(usage, "prompt_tokens", "usage"));
  TG_ASSIGN_OR_RETURN(const uint64_t completion,
                      http::CountMember(usage, "completion_tokens", "usage"));
  uint64_t cached = 0;
  uint64_t reasoning = 0;
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* prompt_details,
                      http::ObjectMember(usage, "prompt_tokens_details", "usage"));
  if (prompt_details != nullptr) {
    TG_ASSIGN_OR_RETURN(
        cached, http::CountMember(*prompt_details, "cached_tokens", "usage.prompt_tokens_details"));
  }
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* completion_details,
                      http::ObjectMember(usage, "completion_tokens_details", "usage"));
  if (completion_details != nullptr) {
    TG_ASSIGN_OR_RETURN(reasoning, http::CountMember(*completion_details, "reasoning_tokens",
                                                     "usage.completion_tokens_details"));
  }
  v1::Usage out;
  out.set_input_tokens(prompt);
  out.set_cached_input_tokens(std::min(cached, prompt));  // subsets, whatever the server says
  out.set_output_tokens(completion);
  out.set_reasoning_tokens(std::min(reasoning, completion));
  out.set_source(v1::USAGE_SOURCE_REPORTED);
  return out;
}

absl::StatusOr<std::optional<v1::Usage>> OptionalUsage(const rapidjson::Value& document) {
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* usage, http::ObjectMember(document, "usage", ""));
  if (usage == nullptr) return std::nullopt;
  TG_ASSIGN_OR_RETURN(v1::Usage parsed, ParseUsage(*usage));
  return parsed;
}

// The first choice, or nullptr when `choices` is absent or empty.
absl::StatusOr<const rapidjson::Value*> FirstChoice(const rapidjson::Value& document) {
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* choices, http::ArrayMember(document, "choices", ""));
  if (choices == nullptr || choices->Empty()) return nullptr;
  const rapidjson::Value& first = (*choices)[0];
  if (!first.IsObject()) return MalformedJson("choices[0]: not an object");
  return &first;
}

// The text of a choice: message.content (chat), delta.content (chat stream) or text (completions).
absl::StatusOr<std::string> ChoiceText(const rapidjson::Value& choice) {
  for (const char* holder : {"message", "delta"}) {
    TG_ASSIGN_OR_RETURN(const rapidjson::Value* part,
                        http::ObjectMember(choice, holder, "choices[0]"));
    if (part != nullptr) {
      return http::StringMember(*part, "content", absl::StrCat("choices[0].", holder));
    }
  }
  return http::StringMember(choice, "text", "choices[0]");
}

absl::StatusOr<v1::FinishReason> ChoiceFinishReason(const rapidjson::Value& choice) {
  TG_ASSIGN_OR_RETURN(const std::string reason,
                      http::StringMember(choice, "finish_reason", "choices[0]"));
  return FinishReasonFromOpenAi(reason);
}

std::string Finish(JsonWriter& writer, rapidjson::StringBuffer& buffer) {
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// The objects of `array` (the member `name`) placed at their "index" (their position when a server
// omits it) in a vector of `slots`, nullptr where none is; INTERNAL when an element is not an
// object or its index is out of range or repeated.
absl::StatusOr<std::vector<const rapidjson::Value*>> ByIndex(const rapidjson::Value& array,
                                                             absl::string_view name, size_t slots) {
  std::vector<const rapidjson::Value*> by_index(slots, nullptr);
  for (rapidjson::SizeType i = 0; i < array.Size(); ++i) {
    const rapidjson::Value& item = array[i];
    const std::string path = absl::StrCat(name, "[", i, "]");
    if (!item.IsObject()) return MalformedJson(absl::StrCat(path, ": not an object"));
    uint64_t index = i;
    if (http::FindMember(item, "index") != nullptr) {
      TG_ASSIGN_OR_RETURN(index, http::CountMember(item, "index", path));
    }
    if (index >= slots || by_index[index] != nullptr) {
      return MalformedJson(
          absl::StrCat(path, ".index: ", index, " is out of range or repeated (", slots, ")"));
    }
    by_index[index] = &item;
  }
  return by_index;
}

// A /v1/completions body: `prompts` as the prompt, one string or (`as_array`) an array of them.
std::string CompletionsJson(const v1::GenerateRequest& request,
                            absl::Span<const std::string> prompts, bool as_array, bool stream) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("model");
  WriteString(writer, request.model());
  writer.Key("prompt");
  if (as_array) writer.StartArray();
  for (const std::string& prompt : prompts) WriteString(writer, prompt);
  if (as_array) writer.EndArray();
  WriteParams(request, stream, writer);
  return Finish(writer, buffer);
}

}  // namespace

absl::StatusOr<std::string> ChatCompletionsBody(const v1::GenerateRequest& request, bool stream) {
  if (!request.has_chat()) {
    return absl::InvalidArgumentError("chat completions need chat input");
  }
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("model");
  WriteString(writer, request.model());
  writer.Key("messages");
  writer.StartArray();
  for (const v1::Message& message : request.chat().messages()) {
    writer.StartObject();
    writer.Key("role");
    WriteString(writer, message.role());
    writer.Key("content");
    WriteString(writer, message.content());
    if (!message.name().empty()) {
      writer.Key("name");
      WriteString(writer, message.name());
    }
    writer.EndObject();
  }
  writer.EndArray();
  WriteParams(request, stream, writer);
  return Finish(writer, buffer);
}

absl::StatusOr<std::string> CompletionsBody(const v1::GenerateRequest& request, bool stream) {
  if (request.input_case() != v1::GenerateRequest::kPrompt) {
    return absl::InvalidArgumentError("completions need a prompt");
  }
  return CompletionsJson(request, absl::MakeConstSpan(&request.prompt(), 1), /*as_array=*/false,
                         stream);
}

absl::StatusOr<std::string> CompletionsBatchBody(const v1::GenerateRequest& request,
                                                 const std::vector<std::string>& prompts) {
  if (prompts.empty()) return absl::InvalidArgumentError("a batch needs at least one prompt");
  return CompletionsJson(request, prompts, /*as_array=*/true, /*stream=*/false);
}

std::string EmbeddingsBody(const v1::EmbedRequest& request) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  writer.Key("model");
  WriteString(writer, request.model());
  writer.Key("input");
  writer.StartArray();
  for (const std::string& input : request.inputs()) WriteString(writer, input);
  writer.EndArray();
  writer.Key("encoding_format");
  writer.String("float");
  return Finish(writer, buffer);
}

v1::FinishReason FinishReasonFromOpenAi(absl::string_view finish_reason) {
  if (finish_reason.empty()) return v1::FINISH_REASON_UNSPECIFIED;
  if (finish_reason == "length") return v1::FINISH_REASON_LENGTH;
  return v1::FINISH_REASON_STOP;
}

absl::StatusOr<Completion> ParseCompletion(absl::string_view body) {
  TG_ASSIGN_OR_RETURN(const rapidjson::Document document, http::ParseJsonObject(body));
  Completion completion;
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* choice, FirstChoice(document));
  if (choice == nullptr) return MalformedJson("choices: none in a completion");
  TG_ASSIGN_OR_RETURN(completion.text, ChoiceText(*choice));
  TG_ASSIGN_OR_RETURN(completion.finish_reason, ChoiceFinishReason(*choice));
  if (completion.finish_reason == v1::FINISH_REASON_UNSPECIFIED) {
    completion.finish_reason = v1::FINISH_REASON_STOP;
  }
  TG_ASSIGN_OR_RETURN(completion.usage, OptionalUsage(document));
  return completion;
}

absl::StatusOr<BatchCompletion> ParseBatchCompletion(absl::string_view body, size_t prompts) {
  TG_ASSIGN_OR_RETURN(const rapidjson::Document document, http::ParseJsonObject(body));
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* choices, http::ArrayMember(document, "choices", ""));
  if (choices == nullptr) return MalformedJson("choices: missing");
  TG_ASSIGN_OR_RETURN(const std::vector<const rapidjson::Value*> by_index,
                      ByIndex(*choices, "choices", prompts));
  BatchCompletion batch;
  batch.choices.resize(prompts);
  for (size_t i = 0; i < prompts; ++i) {
    BatchCompletionChoice& out = batch.choices[i];
    if (by_index[i] == nullptr) {
      out.status = MalformedJson(absl::StrCat("choices: none for prompt ", i, " of ", prompts));
      continue;
    }
    const std::string path = absl::StrCat("choices[index ", i, "]");
    absl::StatusOr<std::string> text = http::StringMember(*by_index[i], "text", path);
    absl::StatusOr<std::string> reason = http::StringMember(*by_index[i], "finish_reason", path);
    if (!text.ok() || !reason.ok()) {
      out.status = !text.ok() ? text.status() : reason.status();
      continue;
    }
    out.text = *std::move(text);
    out.finish_reason = FinishReasonFromOpenAi(*reason);
    if (out.finish_reason == v1::FINISH_REASON_UNSPECIFIED) {
      out.finish_reason = v1::FINISH_REASON_STOP;  // a whole answer is complete
    }
  }
  TG_ASSIGN_OR_RETURN(batch.usage, OptionalUsage(document));
  return batch;
}

absl::StatusOr<CompletionChunk> ParseCompletionChunk(absl::string_view data) {
  TG_ASSIGN_OR_RETURN(const rapidjson::Document document, http::ParseJsonObject(data));
  CompletionChunk chunk;
  if (http::FindMember(document, "error") != nullptr) {
    std::string message = http::ApiErrorMessage(data);
    chunk.error = absl::UnavailableError(
        absl::StrCat("backend reported an error mid-stream: ",
                     message.empty() ? std::string(data.substr(0, 200)) : message));
    return chunk;
  }
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* choice, FirstChoice(document));
  if (choice != nullptr) {
    TG_ASSIGN_OR_RETURN(chunk.text, ChoiceText(*choice));
    TG_ASSIGN_OR_RETURN(chunk.finish_reason, ChoiceFinishReason(*choice));
  }
  TG_ASSIGN_OR_RETURN(chunk.usage, OptionalUsage(document));
  return chunk;
}

absl::StatusOr<v1::EmbedResponse> ParseEmbeddings(absl::string_view body) {
  TG_ASSIGN_OR_RETURN(const rapidjson::Document document, http::ParseJsonObject(body));
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* data, http::ArrayMember(document, "data", ""));
  if (data == nullptr) return MalformedJson("data: missing");
  const size_t n = data->Size();
  TG_ASSIGN_OR_RETURN(std::vector<const rapidjson::Value*> by_index, ByIndex(*data, "data", n));
  for (size_t i = 0; i < n; ++i) {
    const std::string path = absl::StrCat("data[index ", i, "]");
    TG_ASSIGN_OR_RETURN(by_index[i], http::ArrayMember(*by_index[i], "embedding", path));
    if (by_index[i] == nullptr) return MalformedJson(absl::StrCat(path, ".embedding: missing"));
  }
  v1::EmbedResponse response;
  for (size_t i = 0; i < n; ++i) {
    v1::Embedding* embedding = response.add_embeddings();
    embedding->mutable_values()->Reserve(static_cast<int>(by_index[i]->Size()));
    for (const rapidjson::Value& value : by_index[i]->GetArray()) {
      if (!value.IsNumber()) {
        return MalformedJson(absl::StrCat("embedding ", i, ": a value is not a number"));
      }
      embedding->add_values(static_cast<float>(value.GetDouble()));
    }
  }
  TG_ASSIGN_OR_RETURN(const rapidjson::Value* usage, http::ObjectMember(document, "usage", ""));
  if (usage != nullptr) {
    TG_ASSIGN_OR_RETURN(const uint64_t prompt, http::CountMember(*usage, "prompt_tokens", "usage"));
    response.mutable_usage()->set_input_tokens(prompt);
    response.mutable_usage()->set_source(v1::USAGE_SOURCE_REPORTED);
  }
  return response;
}

std::string ErrorMessage(absl::string_view body) { return http::ApiErrorMessage(body); }

}  // namespace tollgate::openai
