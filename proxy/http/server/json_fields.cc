#include "proxy/http/server/json_fields.h"

#include <rapidjson/error/en.h>

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tollgate::http::json {
namespace {

absl::Status Expected(const std::string& path, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": expected ", absl::string_view(what.data(), what.size())));
}

}  // namespace

absl::StatusOr<rapidjson::Document> ParseJsonObject(std::string_view text) {
  rapidjson::Document document;
  document.Parse(text.data(), text.size());
  if (document.HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at offset ", document.GetErrorOffset(), ": ",
                     rapidjson::GetParseError_En(document.GetParseError())));
  }
  if (!document.IsObject()) {
    return absl::InvalidArgumentError("the request body must be a JSON object");
  }
  return document;
}

std::string FieldPath(std::string_view parent, std::string_view child) {
  if (parent.empty()) return std::string(child);
  if (!child.empty() && child.front() == '[')
    return absl::StrCat(absl::string_view(parent.data(), parent.size()),
                        absl::string_view(child.data(), child.size()));
  return absl::StrCat(absl::string_view(parent.data(), parent.size()), ".",
                      absl::string_view(child.data(), child.size()));
}

const rapidjson::Value* FieldReader::Find(std::string_view name) const {
  const rapidjson::Value key(rapidjson::StringRef(name.data(), name.size()));
  const auto member = object_.FindMember(key);
  if (member == object_.MemberEnd() || member->value.IsNull()) return nullptr;
  return &member->value;
}

absl::StatusOr<std::string> FieldReader::RequiredString(std::string_view name) const {
  absl::StatusOr<std::optional<std::string>> value = OptionalString(name);
  if (!value.ok()) return value.status();
  if (!value->has_value())
    return absl::InvalidArgumentError(absl::StrCat(Path(name), ": required"));
  return **std::move(value);
}

absl::StatusOr<std::optional<std::string>> FieldReader::OptionalString(
    std::string_view name) const {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->IsString()) return Expected(Path(name), "a string");
  return std::optional<std::string>(std::string(StringOf(*value)));
}

absl::StatusOr<std::optional<bool>> FieldReader::OptionalBool(std::string_view name) const {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->IsBool()) return Expected(Path(name), "true or false");
  return std::optional<bool>(value->GetBool());
}

absl::StatusOr<std::optional<double>> FieldReader::OptionalNumber(std::string_view name) const {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->IsNumber()) return Expected(Path(name), "a number");
  return std::optional<double>(value->GetDouble());
}

absl::StatusOr<std::optional<uint32_t>> FieldReader::OptionalUint32(std::string_view name) const {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->IsUint()) return Expected(Path(name), "a non-negative integer below 2^32");
  return std::optional<uint32_t>(value->GetUint());
}

absl::StatusOr<std::optional<int64_t>> FieldReader::OptionalInt64(std::string_view name) const {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->IsInt64()) return Expected(Path(name), "a 64-bit integer");
  return std::optional<int64_t>(value->GetInt64());
}

absl::StatusOr<std::vector<std::string>> FieldReader::StringOrStrings(std::string_view name) const {
  const rapidjson::Value* value = Find(name);
  std::vector<std::string> strings;
  if (value == nullptr) return strings;
  if (value->IsString()) {
    strings.emplace_back(StringOf(*value));
    return strings;
  }
  if (!value->IsArray()) return Expected(Path(name), "a string or an array of strings");
  for (rapidjson::SizeType i = 0; i < value->Size(); ++i) {
    const rapidjson::Value& item = (*value)[i];
    if (!item.IsString())
      return Expected(FieldPath(Path(name), absl::StrCat("[", i, "]")), "a string");
    strings.emplace_back(StringOf(item));
  }
  return strings;
}

absl::StatusOr<const rapidjson::Value*> FieldReader::RequiredArray(std::string_view name) const {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return absl::InvalidArgumentError(absl::StrCat(Path(name), ": required"));
  if (!value->IsArray()) return Expected(Path(name), "an array");
  return value;
}

absl::StatusOr<std::string> TextContent(const rapidjson::Value& content, std::string_view path) {
  const std::string where(path);
  if (content.IsNull()) return std::string();
  if (content.IsString()) return std::string(StringOf(content));
  if (!content.IsArray()) return Expected(where, "a string or an array of text parts");
  std::string text;
  for (rapidjson::SizeType i = 0; i < content.Size(); ++i) {
    const std::string part_path = FieldPath(where, absl::StrCat("[", i, "]"));
    const rapidjson::Value& part = content[i];
    if (!part.IsObject()) return Expected(part_path, "an object");
    FieldReader reader(part, part_path);
    absl::StatusOr<std::string> type = reader.RequiredString("type");
    if (!type.ok()) return type.status();
    if (*type != "text") {
      return absl::InvalidArgumentError(absl::StrCat(
          reader.Path("type"), ": only \"text\" parts are supported, got \"", *type, "\""));
    }
    absl::StatusOr<std::string> part_text = reader.RequiredString("text");
    if (!part_text.ok()) return part_text.status();
    if (i > 0) text += "\n";
    text += *part_text;
  }
  return text;
}

}  // namespace tollgate::http::json
